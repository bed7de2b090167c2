"""What the reconciler reports: the changes it planned, what it wrote, and why it failed."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Change:
    """One key whose current value differs from the desired one."""

    key: str
    current: str
    desired: str


@dataclass
class ApplyResult:
    """What an apply, rollback or recovery did."""

    generation: int | None
    changes: list[Change] = field(default_factory=list)
    dry_run: bool = False
    written: list[str] = field(default_factory=list)
    rolled_back: bool = False
    skipped: str = ""  # why nothing was attempted, when so
    error: str = ""
    recovery: ApplyResult | None = None  # what crash recovery did first, when it did anything

    @property
    def ok(self) -> bool:
        """True unless the apply (or the recovery before it) failed."""
        return not self.error and (self.recovery is None or self.recovery.ok)


class ApplyFailure(Exception):
    """A write or a read-back failed; ``reason`` is the failure metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
