"""``tuneloop demo``: a short run end to end, and the per-GPU-type weight applier it uses."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from tuner.appliers.base import ApplierError
from tuner.demo import (
    START,
    TTFT_SLO_S,
    PoolSimApplier,
    add_demo_command,
    demo_fleet,
    main,
    run_demo,
)
from tuner.store import TrialStore


def test_short_demo_improves_the_objective_and_keeps_the_slo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before, after, md = run_demo(tmp_path, trials=8, seed=0, quick=True)
    b, a = before.stats, after.stats
    assert a["p99_e2e_latency_seconds"] is not None and b["p99_e2e_latency_seconds"] is not None
    assert a["p99_e2e_latency_seconds"] < b["p99_e2e_latency_seconds"]  # the objective
    assert a["p99_ttft_seconds"] is not None and a["p99_ttft_seconds"] <= TTFT_SLO_S
    assert a["error_ratio"] is not None and a["error_ratio"] <= 0.01
    assert after.params != before.params and before.params == START
    out = capsys.readouterr().out
    assert out.count("trial ") >= 8 and "P99 TTFT (s)" in out and "before" in out
    applied = re.search(r"applied: objective ([0-9.]+) s re-measured .*observed: ([0-9.]+) s", out)
    assert applied is not None, out
    text = md.read_text()
    assert "## Before and after" in text and "| P99 end-to-end (s) |" in text
    png = tmp_path / "demo-fleet-convergence.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    store = TrialStore(tmp_path / "state" / "trials.db")
    try:
        trials = [t for t in store.trials("demo-fleet") if t.kind == "trial"]
        assert len(trials) == 8
    finally:
        store.close()


def test_a_second_demo_in_the_same_directory_starts_fresh(tmp_path: Path) -> None:
    run_demo(tmp_path, trials=2, seed=1, quick=True)
    run_demo(tmp_path, trials=3, seed=1, quick=True)
    store = TrialStore(tmp_path / "state" / "trials.db")
    try:
        assert len([t for t in store.trials("demo-fleet") if t.kind == "trial"]) == 3
    finally:
        store.close()


def test_pool_weights_cover_replicas_scaled_in_later() -> None:
    fleet = demo_fleet(0)  # 4 replicas: H100, A100-80GB, L40S, H100
    applier = PoolSimApplier(fleet)
    applier.apply({"replicas": 4, "pool_weight:H100": 12, "pool_weight:L40S": 2})
    applier.verify({"pool_weight:H100": 12, "pool_weight:L40S": 2, "replicas": 4})
    assert fleet.weights == [12.0, 8.0, 2.0, 12.0]
    applier.apply({"replicas": 6, "pool_weight:L40S": 3})  # r4 (A100), r5 (L40S) join
    assert fleet.weights == [12.0, 8.0, 3.0, 12.0, 1.0, 3.0]
    assert applier.read(["pool_weight:L40S", "batch_limit"]) == {
        "pool_weight:L40S": 3.0,
        "batch_limit": 512,
    }


def test_pool_weight_errors_name_the_target() -> None:
    applier = PoolSimApplier(demo_fleet(0))
    with pytest.raises(ApplierError, match=r"pool_weight:T4.*unknown GPU profile"):
        applier.apply({"pool_weight:T4": 2})
    with pytest.raises(ApplierError, match=r"pool_weight:H100.*positive weight"):
        applier.apply({"pool_weight:H100": 0})


def test_command_registers_and_rejects_a_zero_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    add_demo_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["demo", "--quick", "--out", str(tmp_path)])
    assert args.quick and args.trials is None and args.out == str(tmp_path)
    assert main(["--trials", "0", "--out", str(tmp_path)]) == 2
    assert "--trials" in capsys.readouterr().err
