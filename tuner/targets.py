"""The experiment's knobs grouped by applier instance: read, snapshot, apply, restore."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuner.appliers.base import Applier, KnobClass, Value
from tuner.spec import Experiment
from tuner.strategy.base import Params

_CLASS_ORDER = {KnobClass.HOT: 0, KnobClass.WARM: 1, KnobClass.COLD: 2}


class Targets:
    """Every knob's applier and target; values move between knob names and targets here."""

    def __init__(self, experiment: Experiment, appliers: Mapping[str, Applier]) -> None:
        self.exp = experiment
        self.appliers = appliers
        self.by_applier: dict[str, dict[str, str]] = {}  # applier -> target -> knob
        for k in experiment.knobs:
            if k.applier not in appliers:
                raise KeyError(f"no applier instance {k.applier!r} for knob {k.name!r}")
            self.by_applier.setdefault(k.applier, {})[k.target] = k.name

    def read(self) -> Params:
        out: Params = {}
        for name, targets in self.by_applier.items():
            values = self.appliers[name].read(list(targets))
            for target, knob in targets.items():
                out[knob] = values[target]
        return out

    def snapshot(self) -> dict[str, Any]:
        return {n: self.appliers[n].snapshot(list(t)) for n, t in self.by_applier.items()}

    def apply(self, params: Mapping[str, Value]) -> None:
        """Apply and verify every applier's share of ``params``."""
        for name, targets in self.by_applier.items():
            desired = {target: params[knob] for target, knob in targets.items()}
            self.appliers[name].apply(desired)
            self.appliers[name].verify(desired)

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        for name, snap in snapshot.items():
            self.appliers[name].rollback(snap)

    def class_of_change(
        self, before: Mapping[str, Value], after: Mapping[str, Value]
    ) -> KnobClass | None:
        """The most disruptive class among the knobs that change (None: nothing changes)."""
        changed = [k.knob_class for k in self.exp.knobs if before.get(k.name) != after.get(k.name)]
        return max(changed, key=lambda c: _CLASS_ORDER[c]) if changed else None
