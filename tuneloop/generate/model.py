"""The data alert definitions are written in: alerts, their runbooks and their promtool cases.

Definitions are Python data (``alerts/*.py``), not hand-written YAML, so the rules, the promtool
tests and the runbook pages come from one place and cannot disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SEVERITIES = ("critical", "warning", "info")
ALERT_PREFIX = "Tuneloop"
_CAMEL = re.compile(r"^Tuneloop(?:[A-Z][a-z0-9]*)+$")
_RECORD = re.compile(r"^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$")


@dataclass(frozen=True)
class Case:
    """A promtool case: input series (``series``, ``values``) and the time to evaluate at.

    ``labels`` are the labels the firing alert carries beyond ``alertname`` and ``severity``;
    ``description`` the rendered description. A case that must not fire leaves both empty.
    """

    series: tuple[tuple[str, str], ...]
    eval_time: str
    interval: str = "1m"
    labels: dict[str, str] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class Runbook:
    """The page an engineer reads when the alert fires."""

    meaning: str
    impact: str
    promql: tuple[str, ...]
    commands: tuple[str, ...]
    mitigation: tuple[str, ...]
    diagnosis_notes: str = ""


@dataclass(frozen=True)
class Alert:
    """One alerting rule with its runbook and its promtool cases.

    ``labels`` are static labels beyond ``severity`` (``xid_class``, for Alertmanager's
    grouping and routing); ``more_cases`` are further promtool cases, each firing when it names
    labels and quiet when it does not.
    """

    name: str
    expr: str
    severity: str
    for_: str
    summary: str
    description: str
    runbook: Runbook
    fires: Case
    quiet: Case
    labels: dict[str, str] = field(default_factory=dict)
    more_cases: tuple[Case, ...] = ()

    def __post_init__(self) -> None:
        where = f"alert {self.name!r}"
        if "severity" in self.labels or any("{{" in v for v in self.labels.values()):
            raise ValueError(f"{where}: labels must be static and must not set severity")
        for case in self.more_cases:
            if bool(case.labels) != bool(case.description):
                raise ValueError(f"{where}: a further case needs both labels and description")
        if not _CAMEL.match(self.name):
            raise ValueError(f"{where}: name must be CamelCase starting with {ALERT_PREFIX}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"{where}: severity must be one of {', '.join(SEVERITIES)}")
        if not self.summary.endswith(".") or "{{" in self.summary:
            raise ValueError(f"{where}: summary must be static and end with a period")
        if "{{" not in self.description:
            raise ValueError(f"{where}: description must be templated ($labels or $value)")
        if not self.fires.labels or not self.fires.description:
            raise ValueError(f"{where}: the firing case needs its expected labels and description")
        if self.quiet.labels or self.quiet.description:
            raise ValueError(f"{where}: the quiet case must expect no alert")


@dataclass(frozen=True)
class Recording:
    """A recording rule: ``level:metric:operations`` naming, with optional static labels."""

    record: str
    expr: str
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _RECORD.match(self.record):
            raise ValueError(f"recording rule {self.record!r}: name must be level:metric:ops")


@dataclass(frozen=True)
class Group:
    """A rule group: recording rules first, then alerts."""

    name: str
    alerts: tuple[Alert, ...]
    recordings: tuple[Recording, ...] = ()
    interval: str | None = None
