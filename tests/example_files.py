"""Load an example experiment with its ``signals:`` section parsed by ``parse_signal_settings``.

``tuner.spec.load_experiment`` reads the file; the ``signals:`` keys it does not parse itself yet
(``source``, ``scope``) are validated by :func:`tuner.signals.settings.parse_signal_settings` and
left out of the copy it reads. Once the experiment model holds the settings, this is
``load_experiment(path)`` and ``exp.signals``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tuner.signals.settings import SignalSettings, parse_signal_settings
from tuner.spec import Experiment, load_experiment

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
_SPEC_KEYS = ("prometheus", "timeout", "retries")


def load_example(
    path: Path, workdir: Path, edit: Callable[[dict[str, Any]], None] | None = None
) -> tuple[Experiment, SignalSettings]:
    """The experiment (through ``load_experiment``) and its signal settings; ``edit`` may change
    the parsed document first (a test's Prometheus URL, shorter windows)."""
    data = yaml.safe_load(path.read_text())
    if edit is not None:
        edit(data)
    settings = parse_signal_settings(data.get("signals", {}), "signals")
    data["signals"] = {k: v for k, v in (data.get("signals") or {}).items() if k in _SPEC_KEYS}
    copy = workdir / path.name
    copy.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_experiment(copy), settings
