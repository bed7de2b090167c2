"""The controller's configuration file: experiments, shifts, state, interval, hysteresis, Lease.

The dataclasses are the file's schema (:mod:`tuneloop.schema`). Paths are relative to the file's
folder; the ``hysteresis:`` mapping fills the ``*_ratio`` and ``min_interval_s`` fields. A
controller names at least one experiment or one traffic shifter (``shifts:``, each run at its own
interval while the controller leads).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from tuneloop.config_file import read_mapping
from tuneloop.schema import parse, setting
from tuneloop.validation import fail, join


@dataclass(frozen=True)
class LeaseSettings:
    """Leader election through a coordination.k8s.io Lease: one controller acts at a time."""

    name: str = setting("tuneloop-tuner", help="The Lease's name.")
    namespace: str = setting("default", help="The Lease's namespace.")
    identity: str = setting(
        factory=socket.gethostname, default_text="the host name (the pod's name)",
        help="This candidate's identity in the Lease.",
    )  # fmt: skip
    duration_s: int = setting(
        15, key="duration", kind="duration", help="How long a Lease holds without renewal."
    )
    renew_deadline_s: int = setting(
        10, key="renew_deadline", kind="duration", help="The leader gives up if not renewed by."
    )
    retry_period_s: int = setting(
        2, key="retry_period", kind="duration", help="Time between attempts to acquire or renew."
    )

    def check_config(self, field: str) -> None:
        if self.retry_period_s < 1:
            fail(join(field, "retry_period"), "must be at least 1s")
        if self.renew_deadline_s <= 1.2 * self.retry_period_s:
            fail(join(field, "renew_deadline"), "must exceed 1.2 x retry_period")
        if self.duration_s <= self.renew_deadline_s:
            fail(join(field, "duration"), "must exceed renew_deadline")


@dataclass(frozen=True)
class ControllerConfig:
    """The controller: which experiments it re-tunes, when, and under which Lease."""

    experiments: tuple[Path, ...] = setting(
        (), relative=True, help="Experiment files, relative to this file."
    )
    shifts: tuple[Path, ...] = setting(
        (), relative=True,
        help="Traffic shifter files (tuneloop shift), relative to this file; each runs while "
        "the controller leads, and its baselines are restored when it stops leading.",
    )  # fmt: skip
    state: Path = setting(
        Path("tuneloop-state"), relative=True, help="State folder (trial stores), relative."
    )
    interval_s: float = setting(
        300.0, key="interval", kind="duration", help="Time between checks of the objective."
    )
    metrics_port: int = setting(9108, minimum=0, maximum=65535, help="Port of /metrics.")
    metrics_address: str = setting(
        "0.0.0.0", help="Address /metrics binds to (127.0.0.1 behind a local proxy)."
    )
    ema_alpha: float = setting(
        0.3, positive=True, maximum=1, help="Smoothing of the objective (EMA weight of a sample)."
    )
    baseline_samples: int = setting(3, minimum=1, help="Samples that set the baseline.")
    start_ratio: float = setting(
        0.10, group="hysteresis", key="start", positive=True,
        help="Relative degradation of the objective that starts a tuning round.",
    )  # fmt: skip
    clear_ratio: float = setting(
        0.03, group="hysteresis", key="clear", minimum=0,
        help="Relative degradation below which the trigger re-arms (below start).",
    )  # fmt: skip
    min_interval_s: float = setting(
        3600.0, group="hysteresis", key="min_interval", kind="duration", positive=False,
        help="Least time between two tuning rounds.",
    )  # fmt: skip
    lease: LeaseSettings | None = setting(None, help="Leader election (none: a single replica).")

    GROUP_HELP: ClassVar[dict[str, str]] = {
        "hysteresis": "When a drift of the objective starts a tuning round (ratios to baseline)."
    }

    def check_config(self, field: str) -> None:
        if not self.experiments and not self.shifts:
            fail(join(field, "experiments"), "name at least one experiment (or a shift)")
        try:
            ipaddress.ip_address(self.metrics_address)
        except ValueError:
            fail(join(field, "metrics_address"), "must be an IP address")
        if self.clear_ratio >= self.start_ratio:
            msg = f"must be below hysteresis.start ({self.start_ratio:g})"
            fail(join(field, "hysteresis.clear"), msg)


def load_controller_config(path: str | Path) -> ControllerConfig:
    """Read the controller's YAML; experiment and state paths are relative to the file."""
    p = Path(path)
    return parse(ControllerConfig, read_mapping(p), base_dir=p.parent)
