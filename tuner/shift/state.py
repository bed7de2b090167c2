"""The shifter's memory on disk: baselines and per-replica state, written atomically each change.

A restarted shifter resumes from this file, so a shift in progress keeps its baselines (the
tuner's weights) instead of taking the shifted weights as the new normal. The file is also the
marker the tuner reads: while it says a shift is active on a balancer, the tuner starts no trial
on that balancer, so the two never fight over its weights.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tuneloop.durable import atomic_write
from tuner.shift.policy import ReplicaState

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
UNKNOWN = "*"  # a state file that cannot be read: every balancer counts as busy


def balancer_identity(kind: str, options: Mapping[str, Any]) -> str:
    """One name for a balancer, shared by the shifter's config and the tuner's experiments."""
    where = options.get("address") or options.get("upstream_file") or options.get("upstream")
    return f"{kind}:{where or ''}"


def shift_pause(state_dir: Path, balancers: set[str]) -> Callable[[], str | None]:
    """A check for the tuning loop: why not to start a trial now (a shift active on one of
    ``balancers``), or None."""

    def paused() -> str | None:
        active = active_balancers(state_dir)
        if UNKNOWN in active:
            return f"a shifter's state file under {state_dir} cannot be read"
        busy = sorted(active & balancers)
        return f"traffic shift active on {', '.join(busy)}" if busy else None

    return paused


def state_path(state_dir: Path, name: str) -> Path:
    """Where the shifter named ``name`` keeps its state under ``state_dir``."""
    return Path(state_dir) / f"shift-{_UNSAFE.sub('_', name)}.json"


def save(path: Path, balancer: str, states: dict[str, ReplicaState], since: float | None) -> None:
    """Write the state (atomic, fsynced)."""
    payload = {
        "balancer": balancer,
        "active": any(s.shifted for s in states.values()),
        "active_since": since,
        "replicas": {name: asdict(state) for name, state in states.items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def load(path: Path) -> tuple[dict[str, ReplicaState], float | None] | None:
    """The saved states and the active-since time, or None when nothing was saved."""
    try:
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: the shifter's state cannot be read ({exc})") from exc
    states = {name: ReplicaState(**fields) for name, fields in raw["replicas"].items()}
    return states, raw.get("active_since")


def active_balancers(state_dir: Path) -> set[str]:
    """The balancers (applier addresses) on which a shift is active now (``UNKNOWN``: any)."""
    out = set()
    for path in sorted(Path(state_dir).glob("shift-*.json")):
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            out.add(UNKNOWN)  # unreadable: fail safe, as if a shift were active everywhere
            continue
        if raw.get("active"):
            out.add(str(raw.get("balancer", "")))
    return out
