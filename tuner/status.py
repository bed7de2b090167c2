"""What ``tuneloop status`` and ``tuneloop audit`` print, as text for people or JSON for scripts.

JSON output is one document on stdout (``status``: ``{"experiments": [...]}`` with every trial;
``audit``: ``{"entries": [...]}``), with the store's own field names and values, so a script
reads the same words the store and the audit log hold.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from tuner.progress import fmt
from tuner.store import Trial, TrialStore


def _trial_dict(t: Trial) -> dict[str, Any]:
    out = asdict(t)
    out.pop("snapshot", None)  # applier internals; ``tuneloop rollback`` uses them
    return out


def status_data(store: TrialStore, experiment: str | None = None) -> dict[str, Any]:
    """Experiments with their incumbent and trials, as plain data."""
    out: list[dict[str, Any]] = []
    for row in store.experiments():
        name = row["name"]
        if experiment and name != experiment:
            continue
        inc = store.incumbent(name)
        out.append(
            {
                "name": name,
                "incumbent": None
                if inc is None
                else {"trial": inc[0].number, "objective": inc[1], "params": inc[0].params},
                "trials": [_trial_dict(t) for t in store.trials(name)],
            }
        )
    return {"experiments": out}


def status_text(store: TrialStore, experiment: str | None = None) -> str:
    """Experiments and a trials table."""
    out: list[str] = []
    for exp in status_data(store, experiment)["experiments"]:
        inc = exp["incumbent"]
        best = "-" if inc is None else f"trial {inc['trial']} objective={inc['objective']:.4g}"
        out.append(f"experiment {exp['name']}: {len(exp['trials'])} trials, best: {best}")
        out.append(f"  {'#':>4} {'kind':<9} {'state':<11} {'objective':>10}  params / reason")
        for t in exp["trials"]:
            obj = "-" if t["objective"] is None else f"{t['objective']:.4g}"
            params = " ".join(f"{k}={v}" for k, v in t["params"].items())
            why = f"  ({t['reason']})" if t["reason"] else ""
            out.append(
                f"  {t['number']:>4} {t['kind']:<9} {t['state']:<11} {obj:>10}  {params}{why}"
            )
    return "\n".join(out) if out else "no experiments"


def filter_entries(
    entries: Iterable[dict[str, Any]], experiment: str | None = None, since: float | None = None
) -> list[dict[str, Any]]:
    """Audit entries of one experiment and/or at or after a time (unix seconds)."""
    return [
        e
        for e in entries
        if (experiment is None or e.get("experiment") == experiment)
        and (since is None or float(e.get("ts", 0.0)) >= since)
    ]


def audit_text(entries: Iterable[dict[str, Any]]) -> str:
    """One line per audit entry: time, experiment, action, trial, then the other fields."""
    from datetime import UTC, datetime

    lines = []
    for e in entries:
        when = datetime.fromtimestamp(float(e.get("ts", 0.0)), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        trial = f" trial {e['trial']}" if "trial" in e else ""
        rest = " ".join(
            f"{k}={_compact(v)}"
            for k, v in sorted(e.items())
            if k not in ("ts", "experiment", "action", "trial")
        )
        lines.append(f"{when} {e.get('experiment', '-')} {e.get('action', '-')}{trial} {rest}")
    return "\n".join(lines) if lines else "no audit entries"


def _compact(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return fmt(value)


def dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True, indent=2, default=str)
