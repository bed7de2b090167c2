"""Serving SLOs per model, read from ``alerts/slos.yaml``, into multiwindow burn-rate rules.

The file follows the shape of Sloth and Pyrra specs, cut to what the agent measures: per model
an availability objective (the share of requests that succeed, client aborts left out) and a
time-to-first-token objective (the share of requests whose first token comes within a threshold).
One entry may be ``model: "*"``: the SLO of every model the file does not name.

Decisions:
- One error-ratio recording per window serves every model (the ratio does not depend on the
  objective); the TTFT ratio depends on the threshold, so each entry gets its own recordings,
  selected by ``model="M"`` (or, for ``*``, by ``model!="M"`` for every named model, so no two
  rules write the same series); those carry ``slo_model`` (the entry's model, ``*`` for the
  default), which tells the rules apart and tells a reader which entry a model falls under.
- Aggregations keep ``cluster`` (``by (cluster, model)``): one Prometheus or Thanos may see many
  clusters, and a model's SLO is per cluster.
- Each burn-rate alert is one rule whose expression ORs one term per entry, each term tagged with
  the entry's objective in the ``slo_objective`` label, so the alert names the SLO it breaks.
- The TTFT threshold must be a bucket boundary of the engines' histograms (vLLM and SGLang have
  0.5, 1, 2.5, 5, ...); the value is written as Prometheus writes ``le`` (``1.0``, ``2.5``).
- Windows and factors are the SRE workbook's: page on 14.4x over 1h and 5m or 6x over 6h and
  30m; ticket on 3x over 1d and 2h or 1x over 3d and 6h. An objective whose budget times 14.4
  reaches 1 could never page, so it is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tuneloop.generate.model import Recording

SLO_FILE = "alerts/slos.yaml"
DEFAULT_MODEL = "*"
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
PAGE = (("1h", "5m", 14.4), ("6h", "30m", 6.0))
TICKET = (("1d", "2h", 3.0), ("3d", "6h", 1.0))
ERROR_RECORD = "model:tuneloop_inference_errors:ratio_rate{w}"
TTFT_RECORD = "model:tuneloop_inference_ttft_slow:ratio_rate{w}"
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$")


@dataclass(frozen=True)
class ModelSlo:
    """One model's objectives (``model`` is ``*`` for every model not named elsewhere)."""

    model: str
    availability: float
    ttft_objective: float
    ttft_threshold_s: float

    @property
    def le(self) -> str:
        """The TTFT threshold as the ``le`` label value Prometheus stores."""
        return repr(float(self.ttft_threshold_s))


def _objective(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: must be a number between 0 and 1, got {value!r}")
    if not 0 < value < 1:
        raise ValueError(f"{where}: must lie strictly between 0 and 1, got {value}")
    if (1 - value) * PAGE[0][2] >= 1:
        raise ValueError(f"{where}: {value} leaves a budget no {PAGE[0][2]}x burn can reach")
    return float(value)


def _entry(raw: Any, where: str) -> ModelSlo:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be a mapping with model, availability and ttft")
    unknown = set(raw) - {"model", "availability", "ttft"}
    if unknown:
        raise ValueError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    model = raw.get("model")
    if not isinstance(model, str) or not (model == DEFAULT_MODEL or _MODEL.match(model)):
        raise ValueError(f"{where}.model: want a model name or '*', got {model!r}")
    ttft = raw.get("ttft")
    if not isinstance(ttft, dict) or set(ttft) != {"objective", "threshold_seconds"}:
        raise ValueError(f"{where}.ttft: want objective and threshold_seconds")
    threshold = ttft["threshold_seconds"]
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold <= 0:
        raise ValueError(f"{where}.ttft.threshold_seconds: want seconds > 0, got {threshold!r}")
    return ModelSlo(
        model=model,
        availability=_objective(raw.get("availability"), f"{where}.availability"),
        ttft_objective=_objective(ttft["objective"], f"{where}.ttft.objective"),
        ttft_threshold_s=float(threshold),
    )


def parse(document: Any, source: str = SLO_FILE) -> list[ModelSlo]:
    """The SLO entries of a loaded YAML document; ValueError names the entry and field."""
    if not isinstance(document, dict) or not isinstance(document.get("slos"), list):
        raise ValueError(f"{source}: want a mapping with a list under 'slos'")
    entries = [_entry(raw, f"{source}: slos[{i}]") for i, raw in enumerate(document["slos"])]
    if not entries:
        raise ValueError(f"{source}: slos is empty")
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        if entry.model in seen:
            raise ValueError(f"{source}: slos[{i}].model: {entry.model!r} is listed twice")
        seen.add(entry.model)
    return entries


def load(path: Path) -> list[ModelSlo]:
    """Read and check an SLO file."""
    return parse(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))


def selector(entry: ModelSlo, entries: list[ModelSlo]) -> str:
    """Label matchers that pick this entry's models (``*``: every model not named)."""
    if entry.model != DEFAULT_MODEL:
        return f'model="{entry.model}"'
    named = [e.model for e in entries if e.model != DEFAULT_MODEL]
    return ", ".join(f'model!="{m}"' for m in named)


def recordings(entries: list[ModelSlo]) -> tuple[Recording, ...]:
    """Error ratios for every model, TTFT-over-threshold ratios per entry, for every window."""
    out = []
    for w in WINDOWS:
        errors = f'rate(tuneloop_inference_requests_total{{outcome="error"}}[{w}])'
        answered = f'rate(tuneloop_inference_requests_total{{outcome=~"success|error"}}[{w}])'
        out.append(
            Recording(
                ERROR_RECORD.format(w=w),
                f"sum by (cluster, model) ({errors}) / sum by (cluster, model) ({answered})",
            )
        )
    for entry in entries:
        sel = selector(entry, entries)
        sel_le = f"{sel}, " if sel else ""
        sel_braces = f"{{{sel}}}" if sel else ""
        for w in WINDOWS:
            fast = f'rate(tuneloop_inference_ttft_seconds_bucket{{{sel_le}le="{entry.le}"}}[{w}])'
            every = f"rate(tuneloop_inference_ttft_seconds_count{sel_braces}[{w}])"
            out.append(
                Recording(
                    TTFT_RECORD.format(w=w),
                    f"1 - sum by (cluster, model) ({fast}) / sum by (cluster, model) ({every})",
                    {"slo_model": entry.model},
                )
            )
    return tuple(out)


def percent(value: float) -> str:
    """``0.999`` -> ``99.9%``."""
    return f"{round(value * 100, 4):g}%"


def availability_label(entry: ModelSlo) -> str:
    """The ``slo_objective`` label of an availability alert."""
    return f"{percent(entry.availability)} succeed"


def ttft_label(entry: ModelSlo) -> str:
    """The ``slo_objective`` label of a TTFT alert."""
    return f"{percent(entry.ttft_objective)} within {entry.ttft_threshold_s:g}s"


def burn_expr(
    record: str,
    entries: list[ModelSlo],
    pairs: tuple[tuple[str, str, float], ...],
    kind: str,
) -> str:
    """One OR-ed term per entry: both windows of a pair above factor x that entry's budget."""
    terms = []
    for entry in entries:
        objective = entry.availability if kind == "availability" else entry.ttft_objective
        label = availability_label(entry) if kind == "availability" else ttft_label(entry)
        sel = selector(entry, entries)
        matcher = f"{{{sel}}}" if sel else ""
        budget = 1 - objective
        windows = []
        for long, short, factor in pairs:
            threshold = f"{round(factor * budget, 6):g}"
            windows.append(
                f"({record.format(w=long)}{matcher} > {threshold} "
                f"and {record.format(w=short)}{matcher} > {threshold})"
            )
        terms.append(f'label_replace({" or ".join(windows)}, "slo_objective", "{label}", "", "")')
    return "\n  or\n".join(terms)
