"""Load an example experiment, optionally edited first (a Prometheus URL, shorter windows)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tuner.signals.settings import SignalSettings
from tuner.spec import Experiment, load_experiment

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(
    path: Path, workdir: Path, edit: Callable[[dict[str, Any]], None] | None = None
) -> tuple[Experiment, SignalSettings]:
    """The experiment (through ``load_experiment``, as ``tuneloop tune`` reads it) and its signal
    settings; ``edit`` may change the parsed document first."""
    data = yaml.safe_load(path.read_text())
    if edit is not None:
        edit(data)
    copy = workdir / path.name
    copy.write_text(yaml.safe_dump(data, sort_keys=False))
    exp = load_experiment(copy)
    return exp, exp.signals
