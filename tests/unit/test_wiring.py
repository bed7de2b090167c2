"""One way to build a loop, and no module importing the command line."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.unit.tuner_doubles import EXPERIMENT, FakeClock, MemoryApplier, ModelSignals
from tuner.spec import loads_experiment
from tuner.wiring import Factories, build_loop, event_sink

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_no_module_imports_the_command_line():
    sources = [*ROOT.glob("tuner/**/*.py"), *ROOT.glob("lab/**/*.py"), *ROOT.glob("bench/*.py")]
    offenders = [
        str(p.relative_to(ROOT))
        for p in sources
        if p.name != "cli.py" and "tuner.cli" in imported_modules(p)
    ]
    assert offenders == []


def test_build_loop_wires_store_audit_metrics_and_no_events(tmp_path):
    applier = MemoryApplier({"be/a": 40, "be/b": 60})
    signals = ModelSignals(lambda: applier.state, {"be/a": 70, "be/b": 30})
    clock = FakeClock()
    factories = Factories(appliers=lambda e: {"lb": applier}, signals=lambda e: signals,
                          clock=lambda: clock, kube_events=None)  # fmt: skip
    exp = loads_experiment(EXPERIMENT)
    assert event_sink(factories, [exp]) is None
    loop = build_loop(exp, factories, tmp_path / "state", progress=lambda line: None)
    try:
        loop.run(max_trials=2)
        assert loop.clock is clock and loop.signals is signals
        assert (tmp_path / "state" / "trials.db").exists()
        assert (tmp_path / "state" / "audit.jsonl").read_text().count('"action": "propose"') >= 2
    finally:
        loop.store.close()
    again = build_loop(exp, factories, tmp_path / "state", progress=lambda line: None)
    try:  # counters start from the store
        done = again.metrics.value("tuneloop_tuner_trials_total", experiment="weights",
                                   outcome="done")  # fmt: skip
        assert done is not None and done >= 1
    finally:
        again.store.close()
