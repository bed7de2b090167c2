"""Experiment files: valid ones load, bad ones name the field and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.unit.tuner_doubles import EXPERIMENT
from tuneloop.validation import ConfigError
from tuner.appliers.base import KnobClass
from tuner.signals.base import SignalRef
from tuner.signals.settings import SignalSettings
from tuner.spec import load_experiment, loads_experiment, parse_experiment

ROOT = Path(__file__).resolve().parents[2]


def test_examples_load():
    hap = load_experiment(ROOT / "examples" / "haproxy-weights.yaml")
    assert hap.objective.direction == "maximize" and hap.mode == "advisory"
    assert hap.constraints[0].max == 0.5 and hap.constraints[0].ref == SignalRef(
        signal="p99_ttft_seconds"
    )
    assert len(hap.safety.freeze_windows) == 2
    tcp = load_experiment(ROOT / "examples" / "tcp-buffers.yaml")
    assert tcp.knob("rmem_max").log and tcp.knob("rmem_max").knob_class is KnobClass.COLD
    assert tcp.knob("congestion_control").categories == ("cubic", "bbr")
    assert tcp.measurement.warmup_s[KnobClass.COLD] == 120


def test_defaults():
    exp = loads_experiment(EXPERIMENT.replace("mode: apply\n", ""))
    assert exp.mode == "advisory"
    assert exp.measurement.window_s == 30 and exp.measurement.warmup_s[KnobClass.HOT] == 5
    assert exp.measurement.warmup_s[KnobClass.COLD] == 180
    assert exp.source.startswith("\nname: weights")


def _mutate(path: str, value):
    data = yaml.safe_load(EXPERIMENT)
    node = data
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node[key]
    last = keys[-1]
    if value is KeyError:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "field", "reason"),
    [
        ("name", KeyError, "name", "is required"),
        ("mode", "yolo", "mode", "must be one of advisory, apply"),
        ("knobs.0.type", "float", "knobs[0].type", "must be one of"),
        ("knobs.0.bounds", [10, 1], "knobs[0].bounds", "low must be below high"),
        ("knobs.0.applier", "nope", "knobs[0].applier", "names no applier"),
        ("knobs.1.name", "a", "knobs[1].name", "duplicate knob name"),
        ("knobs.0.current", 500, "knobs[0].current", "outside bounds"),
        ("knobs.0.colour", "red", "knobs[0].colour", "unknown field"),
        ("knobs.0.class", "lukewarm", "knobs[0].class", "must be one of hot, warm, cold"),
        ("objective.signal", "p100", "objective.signal", "must be one of"),
        ("objective.direction", "up", "objective.direction", "must be one of"),
        ("constraints.0.max", "fast", "constraints[0].max", "finite number"),
        ("measurement.window", "soon", "measurement.window", "duration"),
        ("measurement.repeats", 0, "measurement.repeats", ">= 1"),
        ("budget.trials", -1, "budget.trials", ">= 1"),
        ("safety.cooldown", "x", "safety.cooldown", "duration"),
        ("safety.freeze_windows", [{"days": ["funday"], "start": "1:00", "end": "2:00"}],
         "safety.freeze_windows[0].days[0]", "must be one of"),
        ("safety.freeze_windows", [{"days": ["mon"], "start": "25:00", "end": "2:00"}],
         "safety.freeze_windows[0].start", "between 00:00 and 24:00"),
        ("safety.freeze_windows", [{"start": "2025-01-02T00:00Z", "end": "2025-01-01T00:00Z"}],
         "safety.freeze_windows[0].end", "must be after start"),
        ("strategy.name", "hillclimb", "strategy.name", "must be one of"),
        ("colour", "red", "colour", "unknown field (allowed: appliers, budget, constraints,"),
        ("appliers", {}, "appliers", "must not be empty"),
        ("appliers.lb", {"address": "x"}, "appliers.lb.kind", "is required"),
        ("knobs", [], "knobs", "must be a non-empty list"),
        ("knobs.0.bounds", KeyError, "knobs[0].bounds", "must be a list [low, high]"),
        ("knobs.0.bounds", [1.5, 3], "knobs[0].bounds[0]", "must be an integer"),
        ("knobs.0.values", ["x", "y"], "knobs[0].values", "only a categorical knob"),
        ("knobs.0.init", {"bdp": {"rtt": "1ms"}}, "knobs[0].init.bdp.bandwidth_bps",
         "is required"),
        ("knobs.0.init", {"capacity": 2, "bdp": {"rtt": "1ms", "bandwidth_bps": 1e9}},
         "knobs[0].init", "needs exactly one of 'bdp' or 'capacity'"),
        ("knobs.0.init", {"capacity": {"signal": "p100"}}, "knobs[0].init.capacity.signal",
         "must be one of"),
        ("knobs.1.target", "be/a", "knobs[1].target", "already set by another knob"),
        ("objective", {"direction": "minimize"}, "objective", "needs exactly one of 'query'"),
        ("objective", KeyError, "objective", "is required"),
        ("measurement.warmup", {"tepid": "1s"}, "measurement.warmup.tepid", "unknown field"),
        ("measurement.rate", {"signal": "request_rate", "max": 1}, "measurement.rate.max",
         "unknown field"),
        ("safety.trust_region", 1.5, "safety.trust_region", "must be <= 1"),
        ("budget.wall_time", "-1s", "budget.wall_time", "duration"),
    ],
)  # fmt: skip
def test_errors_name_field_and_reason(path, value, field, reason):
    with pytest.raises(ConfigError) as err:
        parse_experiment(_mutate(path, value))
    assert err.value.field == field
    assert reason in err.value.reason


def test_constraint_needs_one_bound_and_one_source():
    data = _mutate("constraints.0", {"signal": "p99_ttft_seconds", "max": 1, "min": 0})
    with pytest.raises(ConfigError, match=r"constraints\[0\]: needs exactly one bound"):
        parse_experiment(data)
    data = _mutate("constraints.0", {"signal": "p99_ttft_seconds", "query": "up", "max": 1})
    with pytest.raises(ConfigError, match=r"constraints\[0\]: needs exactly one of 'query'"):
        parse_experiment(data)


def test_log_knob_needs_positive_bounds():
    data = _mutate("knobs.0.bounds", [0, 10])
    data["knobs"][0]["log"] = True
    with pytest.raises(ConfigError, match=r"knobs\[0\]\.bounds: a log-scaled knob"):
        parse_experiment(data)


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_experiment(tmp_path / "missing.yaml")
    assert "missing.yaml" in err.value.field
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError) as err:
        load_experiment(bad)
    assert err.value.field == str(bad) and "not valid YAML" in err.value.reason


def test_signals_settings_are_validated_with_their_field_names():
    data = yaml.safe_load(EXPERIMENT)
    data["signals"] = {"prometheus": "http://127.0.0.1:9090", "timeout": "5s"}
    assert parse_experiment(data).signals.timeout_s == 5.0
    data["signals"]["timeout"] = "soon"
    with pytest.raises(ConfigError, match=r"^signals\.timeout: must be a duration"):
        parse_experiment(data)
    data["signals"] = {"retries": -1}
    with pytest.raises(ConfigError, match=r"^signals\.retries: must be"):
        parse_experiment(data)


def test_derived_defaults():
    data = yaml.safe_load(EXPERIMENT)
    data["measurement"] = {"window": "4s"}
    data["constraints"] = [{"signal": "error_ratio", "max": 0.1}, {"query": "up", "min": 1}]
    del data["strategy"]
    exp = parse_experiment(data)
    assert exp.measurement.check_interval_s == 4 and exp.measurement.warmup_s[KnobClass.HOT] == 10
    assert [c.name for c in exp.constraints] == ["error_ratio", "constraint1"]
    assert exp.signals == SignalSettings()  # fleet source, no scope, 5 s timeout, 2 retries
    assert exp.strategy.name == "skopt-gp" and exp.budget.wall_time_s is None


def test_applier_options_pass_through_and_categorical_current_is_text():
    data = yaml.safe_load(EXPERIMENT)
    data["appliers"]["lb"] = {"kind": "haproxy", "address": "/run/a.sock", "timeout": 2}
    data["knobs"][1] = {"name": "cc", "type": "categorical", "applier": "lb", "target": "be/b",
                        "class": "cold", "values": ["cubic", "bbr"], "current": "bbr"}  # fmt: skip
    exp = parse_experiment(data)
    assert exp.appliers["lb"].name == "lb" and exp.appliers["lb"].kind == "haproxy"
    assert exp.appliers["lb"].options == {"address": "/run/a.sock", "timeout": 2}
    assert exp.knob("cc").current == "bbr" and exp.knob("cc").low is None
