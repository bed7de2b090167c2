"""What the loop leaves applied: the strategy's robust pick, measured again before it stays."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tests.unit.tuner_doubles import EXPERIMENT, FakeClock, MemoryApplier, ModelSignals
from tuner.audit import AuditLog
from tuner.loop import TuningLoop
from tuner.spec import loads_experiment
from tuner.store import TrialStore
from tuner.strategy.base import Params, Strategy, TrialResult
from tuner.trial_state import TrialKind


class Scripted(Strategy):
    """Proposes a fixed sequence; recommends a configuration chosen by the test."""

    def __init__(self, proposals: list[Params], pick: Params) -> None:
        self.proposals = list(proposals)
        self.pick = pick

    def ask(self) -> Params:
        return self.proposals.pop(0) if self.proposals else {"a": 50, "b": 50}

    def tell(self, params: Mapping[str, object], result: TrialResult) -> None:
        pass

    def recommend(self) -> Params | None:
        return dict(self.pick)


def run(
    tmp_path: Path, pick: Params, breach_final_at: Params | None = None
) -> tuple[TuningLoop, MemoryApplier, TrialStore]:
    """Three scripted trials, then the final choice; ``breach_final_at`` makes the final
    measurement of that configuration breach the P99 SLO (its trial measured fine)."""
    text = EXPERIMENT.replace("budget: {trials: 8}", "budget: {trials: 3}")
    text = text.replace("max_relative_step: 1.0", "max_relative_step: null")
    exp = loads_experiment(text)
    applier = MemoryApplier({"be/a": 50, "be/b": 50})
    signals = ModelSignals(lambda: applier.state, {"be/a": 70, "be/b": 30})
    clock = FakeClock()
    store = TrialStore(tmp_path / "trials.db", clock)
    strategy = Scripted([{"a": 60, "b": 40}, {"a": 70, "b": 30}, {"a": 65, "b": 35}], pick)
    if breach_final_at is not None:
        at = {f"be/{k}": v for k, v in breach_final_at.items()}

        def p99(state: Mapping[str, object]) -> float:
            in_flight = store.trials("weights")[-1]
            return 9.0 if in_flight.kind == TrialKind.FINAL and dict(state) == at else 0.2

        signals.overrides["p99_ttft_seconds"] = p99
    audit = AuditLog(tmp_path / "audit.jsonl", clock=clock)
    loop = TuningLoop(
        exp, {"lb": applier}, signals, store, clock=clock, audit=audit, strategy=strategy
    )
    loop.run()
    return loop, applier, store


def test_the_robust_pick_is_applied_and_measured_again(tmp_path: Path) -> None:
    _, applier, store = run(tmp_path, {"a": 60, "b": 40})  # measured, feasible, not the best
    assert applier.state == {"be/a": 60, "be/b": 40}
    final = [t for t in store.trials("weights") if t.kind == TrialKind.FINAL]
    assert len(final) == 1 and final[0].params == {"a": 60, "b": 40}
    incumbent = store.incumbent("weights")
    assert incumbent is not None and incumbent[0].params == {"a": 60, "b": 40}


def test_a_pick_never_measured_leaves_the_incumbent(tmp_path: Path) -> None:
    _, applier, _ = run(tmp_path, {"a": 1, "b": 1})
    assert applier.state == {"be/a": 70, "be/b": 30}  # the best measured, the model's optimum


def test_a_pick_already_in_place_is_measured_again_and_becomes_the_incumbent(
    tmp_path: Path,
) -> None:
    # The last trial (65/35) is in place when the budget ends, and it is the pick.
    _, applier, store = run(tmp_path, {"a": 65, "b": 35})
    assert applier.state == {"be/a": 65, "be/b": 35}
    final = [t for t in store.trials("weights") if t.kind == TrialKind.FINAL]
    assert len(final) == 1 and final[0].params == {"a": 65, "b": 35}
    incumbent = store.incumbent("weights")
    assert incumbent is not None and incumbent[0].params == {"a": 65, "b": 35}


def test_a_pick_that_breaches_when_measured_again_gives_way_to_the_incumbent(
    tmp_path: Path,
) -> None:
    _, applier, store = run(tmp_path, {"a": 60, "b": 40}, breach_final_at={"a": 60, "b": 40})
    assert applier.state == {"be/a": 70, "be/b": 30}  # the incumbent, not the last trial
    finals = [t for t in store.trials("weights") if t.kind == TrialKind.FINAL]
    assert [(t.params, t.state) for t in finals] == [
        ({"a": 60, "b": 40}, "infeasible"),
        ({"a": 70, "b": 30}, "done"),
    ]
    incumbent = store.incumbent("weights")
    assert incumbent is not None and incumbent[0].params == {"a": 70, "b": 30}
