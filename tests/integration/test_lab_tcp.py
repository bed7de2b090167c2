"""Closed loop over real TCP: buffer caps across a 20 ms RTT link between two test namespaces.

The tuner's applier drives the agent's node-tuning reconciler inside both namespaces; iperf3
across the link is the objective. From 64 KiB caps (window-limited to about 64 KiB per 20 ms) a
few trials must find caps that carry several times more.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from agent.netlab.link import DelayedLink
from lab.tcp import TARGET, Iperf3Probe, NetnsBufferApplier, reconcilers_for
from tuneloop.clock import RealClock
from tuner.loop import TuningLoop
from tuner.spec import load_experiment
from tuner.store import TrialStore

pytestmark = [
    pytest.mark.integration,
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(shutil.which("iperf3") is None, reason="iperf3 is not installed"),
]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lab-tcp-buffers.yaml"


def test_tuner_raises_throughput_from_64k_caps(tmp_path: Path) -> None:
    exp = load_experiment(EXAMPLE)
    with DelayedLink(10.0) as link:
        applier = NetnsBufferApplier(reconcilers_for([link.a, link.b], tmp_path / "journals"))
        applier.apply({TARGET: 65536})
        probe = Iperf3Probe(link.a, link.b, link.addr_b, seconds=2)
        store = TrialStore(tmp_path / "trials.db")
        try:
            loop = TuningLoop(
                exp, {"link": applier}, probe, store, clock=RealClock(), progress=lambda line: None
            )
            result = loop.run(max_trials=4, apply=True)
            trials = store.trials(exp.name)
        finally:
            store.close()
            probe.stop()
        inside = applier.read([TARGET])[TARGET]
    first = trials[0]
    assert first.params == {"buffer_max": 65536} and first.state == "done"
    assert result.best is not None and result.best_value is not None
    assert result.best_value >= 3 * (first.objective or 0), [
        (t.params, t.objective) for t in trials
    ]
    assert inside == result.best.params["buffer_max"], "the best caps are left in place"
    assert probe.tests <= 2 * len(trials), "one iperf3 test per measurement, not per read"
