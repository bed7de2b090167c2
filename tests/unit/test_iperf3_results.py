"""The JSON-lines results store and the bench collector's exported families."""

import json
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.bench.iperf3 import Iperf3BusyError, Iperf3TimeoutError, parse_iperf3_json
from agent.bench.perf import PerfResult, parse_perf_csv
from agent.bench.results import (
    BenchResultsCollector,
    ResultsStore,
    iperf3_error_record,
    iperf3_record,
    perf_record,
)
from tuneloop.catalog import ALL

FIXTURES = Path(__file__).parent.parent / "fixtures" / "bench"


def result(name, peer="10.0.0.2", port=5201):
    return parse_iperf3_json((FIXTURES / name).read_text(), peer, port)


def samples(collector):
    collector.refresh()
    registry = CollectorRegistry()
    registry.register(collector)
    out = {}
    for fam in text_string_to_metric_families(generate_latest(registry).decode()):
        assert fam.name in ALL or fam.name.removesuffix("_total") + "_total" in ALL
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_store_appends_and_tolerates_torn_last_line(tmp_path):
    store = ResultsStore(tmp_path / "state" / "bench.jsonl")
    store.append(iperf3_record(result("iperf3_ok.json")))
    with store.path.open("a") as fh:
        fh.write('{"kind": "iperf3", "peer": "torn')  # a crash mid-write
    assert [r["kind"] for r in store.read()] == ["iperf3"]
    store.append(iperf3_error_record("10.0.0.3", 5201, Iperf3BusyError("busy")))
    records = store.read()
    assert [r["kind"] for r in records] == ["iperf3", "iperf3_error"]
    assert records[1]["reason"] == "busy"


def test_collector_exports_last_result_per_peer_and_direction(tmp_path):
    store = ResultsStore(tmp_path / "bench.jsonl")
    collector = BenchResultsCollector(store.path)
    assert collector.name == "bench"
    assert samples(collector) == {}  # no file yet: nothing, and no error
    store.append(iperf3_record(result("iperf3_streams4_window.json")))
    store.append(iperf3_record(result("iperf3_ok.json")))  # newer result for the same peer
    store.append(iperf3_record(result("iperf3_reverse.json")))
    store.append(iperf3_record(result("iperf3_ok.json", "10.0.0.9", 5302)))
    for _ in range(2):
        store.append(iperf3_error_record("10.0.0.3", 5201, Iperf3TimeoutError("t")))
    got = samples(collector)
    peer = (("peer", "10.0.0.2"),)
    send = (("direction", "send"), ("peer", "10.0.0.2"))
    recv = (("direction", "receive"), ("peer", "10.0.0.2"))
    assert got[("tuneloop_iperf3_throughput_bytes_per_second", peer)] == 18248281109.5884 / 8
    assert (
        got[("tuneloop_iperf3_receive_throughput_bytes_per_second", peer)] == 18621738126.28497 / 8
    )
    key = ("tuneloop_iperf3_throughput_bytes_per_second", (("peer", "10.0.0.9:5302"),))
    assert got[key] == 18248281109.5884 / 8
    assert got[("tuneloop_iperf3_retransmits", send)] == 10
    assert got[("tuneloop_iperf3_mean_rtt_seconds", send)] == 73e-6
    assert ("tuneloop_iperf3_mean_rtt_seconds", recv) not in got  # unknown, not zero
    assert got[("tuneloop_iperf3_last_run_timestamp_seconds", send)] == 1795560656
    fail = (("peer", "10.0.0.3"), ("reason", "timeout"))
    assert got[("tuneloop_iperf3_failures_total", fail)] == 2


def test_collector_reads_incrementally_and_restarts_on_rotation(tmp_path):
    store = ResultsStore(tmp_path / "bench.jsonl")
    collector = BenchResultsCollector(store.path)
    store.append(iperf3_error_record("h", 5201, Iperf3BusyError("b")))
    fail = ("tuneloop_iperf3_failures_total", (("peer", "h"), ("reason", "busy")))
    assert samples(collector)[fail] == 1
    store.append(iperf3_error_record("h", 5201, Iperf3BusyError("b")))
    assert samples(collector)[fail] == 2  # only the new line was read
    store.path.write_text("")  # rotated
    store.append(iperf3_error_record("h", 5201, Iperf3BusyError("b")))
    assert samples(collector)[fail] == 1


def test_collector_skips_invalid_records(tmp_path):
    path = tmp_path / "bench.jsonl"
    good = iperf3_record(result("iperf3_ok.json"))
    bad = dict(good, throughput_bps=-1.0)
    path.write_text("\n".join([json.dumps(good), "not json", json.dumps(bad), "[1]"]) + "\n")
    collector = BenchResultsCollector(path)
    got = samples(collector)
    assert collector.skipped == 1
    assert got[("tuneloop_iperf3_throughput_bytes_per_second", (("peer", "10.0.0.2"),))] > 0


def test_perf_families(tmp_path):
    store = ResultsStore(tmp_path / "bench.jsonl")
    events = tuple(parse_perf_csv((FIXTURES / "perf_system.csv").read_text()))
    store.append(perf_record(PerfResult(events, 0.5, None, 1234.0)))
    got = samples(BenchResultsCollector(store.path))
    assert got[("tuneloop_perf_event_per_second", (("event", "context-switches"),))] == 94
    assert (
        got[("tuneloop_perf_event_supported", (("event", "cycles"), ("status", "not_supported")))]
        == 0
    )
    assert ("tuneloop_perf_event_per_second", (("event", "cycles"),)) not in got
    assert ("tuneloop_perf_instructions_per_cycle", ()) not in got
    assert got[("tuneloop_perf_window_seconds", ())] == 0.5
    assert got[("tuneloop_perf_last_run_timestamp_seconds", ())] == 1234.0
