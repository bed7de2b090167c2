"""The applier seam: read, apply, verify, roll back; every method idempotent.

An applier owns a set of *targets* (an HAProxy ``backend/server``, a Deployment
``namespace/name``, a sysctl key). Knobs in an experiment name an applier instance and a target.
Values are plain ``int | float | str`` so snapshots serialise to JSON for the trial store.

Each applier also says what the system behind it accepts, so an experiment is checked when it is
loaded rather than when a trial first touches the system: ``check_target`` (the target's grammar),
``accepted_range`` (the values a target may take there, e.g. HAProxy weights 0..256) and
``bounds_conflicts`` (limits across several knobs, e.g. an HPA's min must stay <= its max), and,
at preflight, ``live_bounds_conflicts`` (limits set by the system's current state, e.g. an HPA's
max that no knob tunes).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

Value = int | float | str


class KnobClass(StrEnum):
    """How disruptive a change is; the loop budgets warm-up time per class."""

    HOT = "hot"  # balancer weights: takes effect at once
    WARM = "warm"  # replicas, HPA bounds: pods start or stop
    COLD = "cold"  # batch size, sysctls: restart or node-level change


class ApplierError(Exception):
    """The system refused or failed a read or a change; the message says which and why."""


class VerifyError(ApplierError):
    """What was read back after an apply differs from what was asked for."""


@dataclass(frozen=True)
class AcceptedRange:
    """The values a target may take on its system; ``what`` names them in errors."""

    low: float
    high: float
    what: str  # e.g. "HAProxy weights"

    def describe(self) -> str:
        return f"{self.what} are {number_text(self.low)}..{number_text(self.high)}"

    def holds(self, low: float, high: float) -> bool:
        return self.low <= low and high <= self.high


def number_text(value: float) -> str:
    """A bound as written in a file: ``-50`` for integral values, else the float."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class Applier(ABC):
    """Base class for appliers. ``kind`` names it in experiment files."""

    kind: str = ""

    @abstractmethod
    def read(self, targets: list[str]) -> dict[str, Value]:
        """Current value of each target."""

    @abstractmethod
    def apply(self, desired: Mapping[str, Value]) -> None:
        """Set each target to its desired value (a no-op for targets already there)."""

    def check_target(self, target: str) -> None:
        """Raise ApplierError when ``target`` is not a valid target of this applier."""
        if not isinstance(target, str) or not target:
            raise ApplierError(f"{self.kind}: a target must be a non-empty string, got {target!r}")

    def accepted_range(self, target: str) -> AcceptedRange | None:
        """The numeric values ``target`` accepts on its system, or None when not numeric."""
        return None

    def bounds_conflicts(self, bounds: Mapping[str, tuple[float, float]]) -> dict[str, str]:
        """Targets whose knob bounds (target -> (low, high)) clash with another knob's; why."""
        return {}

    def live_bounds_conflicts(self, bounds: Mapping[str, tuple[float, float]]) -> dict[str, str]:
        """Like ``bounds_conflicts`` against the system's current state (reads; preflight only)."""
        return {}

    def verify(self, desired: Mapping[str, Value]) -> None:
        """Read back and raise VerifyError on any difference."""
        current = self.read(list(desired))
        wrong = {k: (v, current.get(k)) for k, v in desired.items() if current.get(k) != v}
        if wrong:
            detail = ", ".join(f"{k}: wanted {w!r}, found {f!r}" for k, (w, f) in wrong.items())
            raise VerifyError(f"{self.kind}: read-back differs: {detail}")

    def snapshot(self, targets: list[str]) -> dict[str, Any]:
        """A JSON-safe record of the current state, enough for ``rollback``."""
        return dict(self.read(targets))

    def rollback(self, snapshot: Mapping[str, Any]) -> None:
        """Restore a snapshot and verify it took."""
        self.apply(snapshot)
        self.verify(snapshot)


def as_text(value: Any, kind: str, what: str) -> str | None:
    """A value as the text an object stores (``None`` stays None: unset)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ApplierError(f"{kind}: value must be {what}, got {value!r}")
    return str(value)


class TextApplier(Applier):
    """An applier whose targets hold text that may be unset (env vars, ConfigMap keys).

    Subclasses implement ``_values``; an unset target reads as ``""`` and snapshots as ``None``,
    so rolling back removes what the tuner added. ``value_kind`` words the type error.
    """

    value_kind = "a number or string"

    @abstractmethod
    def _values(self, targets: list[str]) -> dict[str, str | None]:
        """Each target's text, or None when unset."""

    def text(self, value: Any) -> str | None:
        """A desired value as the stored text (an error names this applier)."""
        return as_text(value, self.kind, self.value_kind)

    def read(self, targets: list[str]) -> dict[str, Value]:
        """Current values; an unset target reads as ``""``."""
        return {t: "" if v is None else v for t, v in self._values(targets).items()}

    def snapshot(self, targets: list[str]) -> dict[str, Any]:
        return dict(self._values(targets))

    def verify(self, desired: Mapping[str, Value]) -> None:
        current = self._values(list(desired))
        wrong = {t: (v, current[t]) for t, v in desired.items() if self.text(v) != current[t]}
        if wrong:
            detail = ", ".join(f"{t}: wanted {w!r}, found {f!r}" for t, (w, f) in wrong.items())
            raise VerifyError(f"{self.kind}: read-back differs: {detail}")
