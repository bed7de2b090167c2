"""The ``tuneloop`` command line with in-test appliers, signals and clock."""

from __future__ import annotations

import pytest

from tests.unit.tuner_doubles import EXPERIMENT, FakeClock, MemoryApplier, ModelSignals
from tuner.cli import Factories, build_parser, main


@pytest.fixture
def world(tmp_path):
    applier = MemoryApplier({"be/a": 40, "be/b": 60})
    signals = ModelSignals(lambda: applier.state, {"be/a": 70, "be/b": 30})
    clock = FakeClock()
    factories = Factories(appliers=lambda exp: {"lb": applier}, signals=lambda exp: signals,
                          clock=lambda: clock)  # fmt: skip
    exp = tmp_path / "exp.yaml"
    exp.write_text(EXPERIMENT.replace("mode: apply", "mode: advisory"))
    return applier, factories, exp, tmp_path / "state"


def test_tune_apply_prints_a_line_per_trial_and_writes_metrics(world, capsys, tmp_path):
    _, factories, exp, state = world
    metrics = tmp_path / "m" / "tuner.prom"
    code = main(["tune", str(exp), "--apply", "--state", str(state), "--trials", "4",
                 "--metrics-file", str(metrics)], factories)  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    lines = [line for line in out.splitlines() if line.startswith("trial ")]
    assert len([line for line in lines if "[incumbent]" not in line]) == 4
    assert "best=" in lines[0] and "objective=" in lines[0]
    assert "applied:" in out.splitlines()[-1]
    text = metrics.read_text()
    assert 'tuneloop_tuner_trials_total{experiment="weights",outcome="done"}' in text
    assert 'tuneloop_tuner_best_objective{experiment="weights"}' in text
    assert 'tuneloop_tuner_knob_value{experiment="weights",knob="a"}' in text
    assert (state / "trials.db").exists() and (state / "audit.jsonl").exists()


def test_advisory_by_default_changes_nothing(world, capsys):
    applier, factories, exp, state = world
    assert main(["tune", str(exp), "--state", str(state)], factories) == 0
    assert applier.applies == []
    assert "advisory:" in capsys.readouterr().out


def test_status_rollback_and_report(world, capsys, tmp_path):
    applier, factories, exp, state = world
    main(["tune", str(exp), "--apply", "--state", str(state), "--trials", "3"], factories)
    capsys.readouterr()
    assert main(["status", "--state", str(state)], factories) == 0
    out = capsys.readouterr().out
    assert out.startswith("experiment weights:") and "   1 trial" in out
    assert main(["rollback", "--state", str(state), "--to", "initial"], factories) == 0
    assert applier.state == {"be/a": 40, "be/b": 60}
    assert main(["report", "--state", str(state), "-o", str(tmp_path / "r")], factories) == 0
    assert (tmp_path / "r" / "weights.md").exists()
    assert (tmp_path / "r" / "weights-convergence.png").exists()


def test_experiment_errors_exit_2_naming_the_field(world, capsys, tmp_path):
    _, factories, exp, state = world
    bad = tmp_path / "bad.yaml"
    bad.write_text(exp.read_text().replace("type: int", "type: integer", 1))
    assert main(["tune", str(bad), "--state", str(state)], factories) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: knobs[0].type: must be one of int, real, categorical")


def test_missing_prometheus_url_is_a_config_error(world, capsys):
    _, factories, exp, state = world
    factories.signals = Factories().signals
    assert main(["tune", str(exp), "--state", str(state)], factories) == 2
    assert "error: signals.prometheus: is required" in capsys.readouterr().err


def test_status_without_store(tmp_path, capsys):
    assert main(["status", "--state", str(tmp_path / "none")]) == 1
    assert "error: no trial store" in capsys.readouterr().err


def test_parser_has_one_adder_per_command():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sub.choices is not None
    assert {"tune", "status", "rollback", "report", "controller"} <= set(sub.choices)
    assert {"sim", "generate", "demo"} <= set(sub.choices)
    assert "lab" not in sub.choices  # the lab builds on the tuner: its own command


def test_rollback_to_incumbent_and_unknown_experiment(world, capsys):
    applier, factories, exp, state = world
    main(["tune", str(exp), "--apply", "--state", str(state), "--trials", "3"], factories)
    applier.state.update({"be/a": 1, "be/b": 1})  # someone changed it by hand
    assert main(["rollback", "--state", str(state), "--to", "incumbent"], factories) == 0
    from tuner.store import TrialStore

    store = TrialStore(state / "trials.db")
    incumbent = store.incumbent("weights")
    assert incumbent is not None
    inc = incumbent[0]
    assert applier.state == {"be/a": inc.params["a"], "be/b": inc.params["b"]}
    code = main(["rollback", "--state", str(state), "--experiment", "other"], factories)
    assert code == 1 and "no experiment named 'other'" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("tuneloop ")


def test_status_report_and_audit_as_json(world, capsys, tmp_path):
    import json

    _, factories, exp, state = world
    main(["tune", str(exp), "--apply", "--state", str(state), "--trials", "2"], factories)
    capsys.readouterr()
    assert main(["status", "--state", str(state), "--output", "json"], factories) == 0
    data = json.loads(capsys.readouterr().out)
    (weights,) = data["experiments"]
    assert weights["name"] == "weights" and weights["incumbent"]["trial"] >= 1
    assert [t["number"] for t in weights["trials"]][:2] == [1, 2]
    assert {"state", "kind", "params", "objective"} <= set(weights["trials"][0])
    assert main(["report", "--state", str(state), "--out", str(tmp_path / "r"),
                 "--output", "json"], factories) == 0  # fmt: skip
    files = json.loads(capsys.readouterr().out)["files"]
    assert any(f.endswith("weights.md") for f in files)
    assert main(["audit", str(state), "--output", "json", "--experiment", "weights"],
                factories) == 0  # fmt: skip
    entries = json.loads(capsys.readouterr().out)["entries"]
    actions = [e["action"] for e in entries]
    assert {"propose", "apply", "result", "promote"} <= set(actions)
    assert all(e["experiment"] == "weights" for e in entries)
    assert main(["audit", "--state", str(state), "--experiment", "other"], factories) == 0
    assert capsys.readouterr().out.strip() == "no audit entries"


def test_audit_text_and_since(world, capsys):
    _, factories, exp, state = world
    main(["tune", str(exp), "--apply", "--state", str(state), "--trials", "1"], factories)
    capsys.readouterr()
    assert main(["audit", str(state)], factories) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(" weights propose trial 1 " in line for line in lines)
    factories.clock().sleep(7200)  # two hours later, nothing is newer than one hour
    assert main(["audit", str(state), "--since", "1h"], factories) == 0
    assert capsys.readouterr().out.strip() == "no audit entries"
    assert main(["audit", str(state), "--since", "soon"], factories) == 2
    assert "error: --since" in capsys.readouterr().err


def test_failing_signals_exit_4_with_the_system_on_the_initial_configuration(world, capsys):
    applier, factories, exp, state = world
    _, signals = factories.appliers(None), factories.signals(None)
    signals.overrides.update(p50_ttft_seconds=None, p99_ttft_seconds=0.2)
    code = main(["tune", str(exp), "--apply", "--state", str(state)], factories)
    assert code == 4
    assert "error: signals failing: 3 consecutive" in capsys.readouterr().err
    assert applier.state == {"be/a": 40, "be/b": 60}


def test_json_logs_carry_experiment_and_trial(world, capsys):
    import json
    import logging

    _, factories, exp, state = world
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        main(["--log-format", "json", "tune", str(exp), "--apply", "--state", str(state),
              "--trials", "1"], factories)  # fmt: skip
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    records = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    events = {r.get("event") for r in records if r.get("trial") == 1}
    assert {"proposed", "applied", "measured"} <= events
    assert all(r["experiment"] == "weights" for r in records if "event" in r)
