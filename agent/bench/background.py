"""The fabric check inside ``tuneloop-agent serve``: this node's iperf3 slots on a daemon thread.

The schedule is a file projected from a ConfigMap (``tuneloop-agent bench fabric-schedule`` writes
it). It is read when the agent starts; a new schedule comes with a new ConfigMap, which rolls the
DaemonSet. Each slot's result or failure is appended to the results file that the ``bench``
collector exports.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from agent.bench.fabric import FabricRunner, FabricSchedule, SlotOutcome
from agent.bench.iperf3 import split_peer
from agent.bench.results import ResultsStore, iperf3_error_record, iperf3_record

log = logging.getLogger("tuneloop.bench")


def store_outcome(store: ResultsStore, outcome: SlotOutcome) -> None:
    """Append a slot's result (or its failure) to the results file; skipped slots add nothing."""
    if outcome.result is not None:
        store.append(iperf3_record(outcome.result))
    elif outcome.error is not None:
        host, port = split_peer(outcome.slot.server)
        store.append(iperf3_error_record(host, port, outcome.error))


def start_fabric_check(
    schedule_path: Path, me: str, results: Path, stop: threading.Event
) -> threading.Thread:
    """Load the schedule (errors raise now, naming the file) and run this host's slots."""
    schedule = FabricSchedule.load(schedule_path)
    store = ResultsStore(results)

    def record(outcome: SlotOutcome) -> None:
        store_outcome(store, outcome)
        if outcome.error is not None:
            slot = outcome.slot
            log.warning("fabric slot %d to %s: %s", slot.index, slot.server, outcome.error)

    runner = FabricRunner(schedule, me, on_outcome=record)
    thread = threading.Thread(target=runner.run_forever, args=(stop,), name="fabric", daemon=True)
    thread.start()
    return thread
