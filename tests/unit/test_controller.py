"""Controller: EMA, hysteresis, rounds, config, and lease timing through the kubernetes client."""

from __future__ import annotations

import json

import pytest
from freezegun import freeze_time as _freeze_time
from kubernetes.client.rest import ApiException

from tests.unit.tuner_doubles import make_loop as make
from tuneloop.clock import RealClock
from tuneloop.validation import ConfigError
from tuner.controller import Controller, Decision, DecisionKind, Ema, Hysteresis
from tuner.controller_config import ControllerConfig, LeaseSettings, load_controller_config
from tuner.kube.election import make_election


def freeze_time(when: str):
    """freezegun without scanning the kubernetes client's lazily imported models."""
    return _freeze_time(when, ignore=["kubernetes.client"])


def test_ema_smooths_and_resets():
    ema = Ema(0.5)
    assert ema.update(10) == 10
    assert ema.update(20) == 15
    assert ema.update(20) == 17.5
    ema.reset()
    assert ema.value is None and ema.update(3) == 3


def test_hysteresis_start_clear_and_min_interval_with_frozen_time():
    h = Hysteresis(start=0.10, clear=0.03, min_interval_s=3600)
    clock = RealClock()
    with freeze_time("2025-03-03 12:00:00") as frozen:
        assert not h.should_start(0.05, clock.now())  # inside the band
        assert h.should_start(0.20, clock.now())  # degraded: start
        frozen.tick(7200)
        assert not h.should_start(0.20, clock.now())  # not re-armed yet
        assert not h.should_start(0.05, clock.now())  # between clear and start: still disarmed
        assert not h.should_start(0.01, clock.now())  # re-armed below clear
        assert h.should_start(0.20, clock.now())
        h.armed = True
        frozen.tick(600)
        assert not h.should_start(0.5, clock.now())  # within min_interval of the last round


def config(tmp_path, **kw):
    base = {"experiments": (), "state": tmp_path, "interval_s": 60, "ema_alpha": 0.5}
    base |= {"baseline_samples": 2, "start_ratio": 0.2, "clear_ratio": 0.05, "min_interval_s": 0}
    base.update(kw)
    return ControllerConfig(**base)


def test_controller_tunes_when_never_tuned_then_on_degradation_only(tmp_path):
    loop, _, signals, store, clock, _ = make(tmp_path, start=(40, 60))  # apply mode, 8 trials
    ctl = Controller(config(tmp_path), [loop], clock)
    assert {k: str(v) for k, v in ctl.tick().items()} == {"weights": "round: never tuned"}
    first = len(store.trials("weights"))
    assert first >= 8
    assert str(ctl.tick()["weights"]) == "baselining"
    assert ctl.tick()["weights"].kind == DecisionKind.BASELINED
    for _ in range(3):
        assert ctl.tick()["weights"].kind == DecisionKind.STEADY
    assert len(store.trials("weights")) == first
    signals.overrides["p50_ttft_seconds"] = 5.0  # the world changed: much worse latency
    decisions = [ctl.tick()["weights"] for _ in range(4)]
    assert any(d.starts_round and str(d).startswith("round: objective") for d in decisions)
    assert len(store.trials("weights")) > first


def test_controller_makes_no_decision_without_data(tmp_path):
    loop, _, signals, store, clock, _ = make(tmp_path)
    signals.overrides["p50_ttft_seconds"] = None
    ctl = Controller(config(tmp_path), [loop], clock)
    assert ctl.tick() == {"weights": Decision(DecisionKind.NO_DECISION, "no data")}
    assert store.trials("weights") == []


def test_config_loading_and_errors(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("experiments: [e.yaml]\ninterval: 2m\nhysteresis: {start: 0.2, clear: 0.05}\n"
                    "lease: {name: l, namespace: ns, identity: me}\n")  # fmt: skip
    cfg = load_controller_config(path)
    assert cfg.experiments == (tmp_path / "e.yaml",) and cfg.interval_s == 120
    assert cfg.lease == LeaseSettings("l", "ns", "me", 15, 10, 2)
    path.write_text("experiments: [e.yaml]\nhysteresis: {start: 0.1, clear: 0.2}\n")
    with pytest.raises(ConfigError, match=r"hysteresis\.clear: must be below"):
        load_controller_config(path)
    path.write_text("experiments: [e.yaml]\nlease: {duration: 5s, renew_deadline: 10s}\n")
    with pytest.raises(ConfigError, match=r"lease\.duration: must exceed renew_deadline"):
        load_controller_config(path)
    path.write_text("experiments: []\n")
    with pytest.raises(ConfigError, match=r"experiments: name at least one experiment"):
        load_controller_config(path)


def test_config_defaults_are_relative_to_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("experiments: [sub/e.yaml]\nlease: {}\n")
    cfg = load_controller_config(path)
    assert cfg.experiments == (tmp_path / "sub" / "e.yaml",)
    assert cfg.state == tmp_path / "tuneloop-state" and cfg.interval_s == 300
    assert (cfg.start_ratio, cfg.clear_ratio, cfg.min_interval_s) == (0.10, 0.03, 3600)
    assert cfg.lease is not None and cfg.lease.name == "tuneloop-tuner" and cfg.lease.identity


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "hysteresis: {stop: 1}",
            r"^hysteresis\.stop: unknown field \(allowed: clear, min_interval, start\)",
        ),
        ("lease: {retry_period: 500ms}", r"^lease\.retry_period: must be at least 1s"),
        ("lease: {renew_deadline: 2s}", r"^lease\.renew_deadline: must exceed 1\.2 x retry"),
        ("metrics_port: 70000", r"^metrics_port: must be <= 65535"),
        ("metrics_address: localhost", r"^metrics_address: must be an IP address"),
        ("ema_alpha: 0", r"^ema_alpha: must be a positive number"),
        ("interval: soon", r"^interval: must be a duration"),
    ],
)
def test_config_errors_name_the_field(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(f"experiments: [e.yaml]\n{text}\n")
    with pytest.raises(ConfigError, match=message):
        load_controller_config(path)


class FakeLeaseLock:
    """In-memory stand-in for the client's LeaseLock, with the API server's 404 on a missing Lease
    and a shared backing store so two candidates see each other."""

    def __init__(self, store: dict, identity: str, name: str = "tuner", namespace: str = "ns"):
        self.store, self.identity, self.name, self.namespace = store, identity, name, namespace

    def get(self, name, namespace):
        if name not in self.store:
            exc = ApiException(status=404, reason="Not Found")
            exc.body = json.dumps({"kind": "Status", "code": 404, "reason": "NotFound"})
            return False, exc
        return True, self.store[name]

    def create(self, name, namespace, election_record):
        if name in self.store:
            return False
        self.store[name] = election_record
        return True

    def update(self, name, namespace, updated_record):
        self.store[name] = updated_record
        return True


def test_lease_is_held_until_it_expires_without_renewal():
    lease = LeaseSettings("tuner", "ns", "a", duration_s=15, renew_deadline_s=10, retry_period_s=2)
    backing: dict = {}
    with freeze_time("2025-03-03 12:00:00") as frozen:
        a = make_election(FakeLeaseLock(backing, "a"), lease, lambda: None, lambda: None)
        b = make_election(FakeLeaseLock(backing, "b"), lease, lambda: None, lambda: None)
        assert a.try_acquire_or_renew()  # creates the Lease
        assert not b.try_acquire_or_renew()  # b observes a's record
        frozen.tick(10)
        assert a.try_acquire_or_renew()  # a renews in time
        assert not b.try_acquire_or_renew()  # b sees a fresh record: waits a full lease again
        frozen.tick(14)
        assert not b.try_acquire_or_renew()  # still within the lease b observed
        frozen.tick(2)
        assert b.try_acquire_or_renew()  # a stopped renewing: b takes over
        assert backing["tuner"].holder_identity == "b"


def test_an_error_in_one_experiment_does_not_stop_the_others(tmp_path, caplog):
    from tests.unit.tuner_doubles import EXPERIMENT

    broken, broken_applier, broken_signals, _, _, _ = make(
        tmp_path / "a", EXPERIMENT.replace("name: weights", "name: broken")
    )
    broken_signals.overrides["p50_ttft_seconds"] = 1.0  # observed fine: a round starts
    broken_signals.state = lambda: {"be/a": 50, "be/b": 50}  # the signals still answer
    broken_applier.state.clear()  # every read fails: preflight stops the round
    loop, _, _, store, clock, _ = make(tmp_path / "b", start=(40, 60))
    ctl = Controller(config(tmp_path), [broken, loop], clock)
    with caplog.at_level("ERROR", logger="tuner.controller"):
        first = ctl.tick()
    assert first["broken"].kind == DecisionKind.FAILED and "PreflightError" in str(first["broken"])
    assert "unknown target" in str(first["broken"])
    assert first["weights"].starts_round and store.incumbent("weights") is not None
    assert any(r.experiment == "broken" for r in caplog.records)
    assert ctl.tick()["broken"].kind == DecisionKind.FAILED  # still watched, still failing
