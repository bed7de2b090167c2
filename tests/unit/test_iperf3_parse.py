"""iperf3 JSON parsing against real captured outputs, and fuzzing."""

import json
import math
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.bench.iperf3 import (
    BACKOFF_CAP_S,
    Iperf3BusyError,
    Iperf3Error,
    Iperf3ParseError,
    Iperf3Result,
    Iperf3UnreachableError,
    backoff_s,
    parse_iperf3_json,
    run_client,
    split_peer,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "bench"


def load(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_forward_test_fields():
    r = parse_iperf3_json(load("iperf3_ok.json"), "10.0.0.2", 5301)
    assert r.peer == "10.0.0.2" and r.port == 5301
    assert r.throughput_bps == pytest.approx(18248281109.5884)  # sum_received
    assert r.retransmits == 10
    assert r.mean_rtt_s == pytest.approx(73e-6)
    assert r.cpu_local_ratio == pytest.approx(0.970056448180411)
    assert r.cpu_remote_ratio == pytest.approx(0.372595627623281)
    assert r.duration_s == pytest.approx(1.000407)
    assert r.streams == 1 and r.window_bytes is None and r.reverse is False
    assert r.started_at == 1795560656


def test_parallel_streams_with_window_average_rtt():
    r = parse_iperf3_json(load("iperf3_streams4_window.json"), "h", 5201)
    assert r.streams == 4
    assert r.window_bytes == 262144
    assert r.mean_rtt_s == pytest.approx((28 + 32 + 37 + 93) / 4 * 1e-6)
    assert r.retransmits == 0


def test_reverse_zero_rtt_is_unknown_not_zero():
    r = parse_iperf3_json(load("iperf3_reverse.json"), "h", 5201)
    assert r.reverse is True
    assert r.mean_rtt_s is None
    assert r.retransmits == 12
    assert r.throughput_bps > 1e9


@pytest.mark.parametrize(
    ("name", "cls", "words"),
    [
        ("iperf3_busy.json", Iperf3BusyError, "busy"),
        ("iperf3_refused.json", Iperf3UnreachableError, "Connection refused"),
        ("iperf3_unresolved.json", Iperf3UnreachableError, "Name or service not known"),
        ("iperf3_interrupted.json", Iperf3Error, "interrupt"),
    ],
)
def test_error_documents(name, cls, words):
    with pytest.raises(cls, match=words) as info:
        parse_iperf3_json(load(name), "h", 5201)
    assert type(info.value) is cls


def test_reasons_are_labels():
    assert Iperf3BusyError("x").reason == "busy"
    assert Iperf3UnreachableError("x").reason == "unreachable"


def test_garbage_and_missing_fields_name_the_problem():
    with pytest.raises(Iperf3ParseError, match="not JSON"):
        parse_iperf3_json("iperf3: error - something\n", "h", 1)
    doc = json.loads(load("iperf3_ok.json"))
    del doc["end"]["sum_received"]
    with pytest.raises(Iperf3ParseError, match=r"end\.sum_received"):
        parse_iperf3_json(json.dumps(doc), "h", 1)
    doc = json.loads(load("iperf3_ok.json"))
    doc["end"]["sum_received"]["bits_per_second"] = -5
    with pytest.raises(Iperf3ParseError, match="bits_per_second"):
        parse_iperf3_json(json.dumps(doc), "h", 1)
    text = load("iperf3_ok.json").replace("18248281109.5884", "NaN")
    with pytest.raises(Iperf3ParseError, match="finite"):
        parse_iperf3_json(text, "h", 1)


def test_result_json_round_trip():
    r = parse_iperf3_json(load("iperf3_streams4_window.json"), "h", 5201)
    assert Iperf3Result.from_json(json.loads(json.dumps(r.to_json()))) == r
    bad = r.to_json() | {"throughput_bps": "fast"}
    with pytest.raises(ValueError, match="throughput_bps"):
        Iperf3Result.from_json(bad)
    with pytest.raises(ValueError, match="'peer'"):
        Iperf3Result.from_json({k: v for k, v in r.to_json().items() if k != "peer"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("node-a", ("node-a", 5201)),
        ("node-a:5302", ("node-a", 5302)),
        ("[fd00::1]:7000", ("fd00::1", 7000)),
        ("fd00::1", ("fd00::1", 5201)),
    ],
)
def test_split_peer(text, expected):
    assert split_peer(text) == expected


@pytest.mark.parametrize("text", ["", "a:0", "a:99999", "a:x", "[::1", "-evil", "[::1]x"])
def test_split_peer_rejects(text):
    with pytest.raises(ValueError, match="peer"):
        split_peer(text)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"duration_s": 0.5}, "duration_s"),
        ({"duration_s": 0}, "duration_s"),
        ({"streams": 0}, "streams"),
        ({"window_bytes": 0}, "window_bytes"),
        ({"busy_retries": -1}, "busy_retries"),
        ({"timeout_s": 0}, "timeout_s"),
    ],
)
def test_run_client_rejects_bad_arguments(kwargs, field):
    with pytest.raises(ValueError, match=field):
        run_client("127.0.0.1", 5201, **kwargs)


def test_backoff_is_full_jitter_and_capped():
    rng = random.Random(7)
    draws = [backoff_s(a, rng) for a in range(12) for _ in range(50)]
    assert all(0 <= d <= BACKOFF_CAP_S for d in draws)
    assert max(backoff_s(0, rng) for _ in range(200)) <= 0.5
    assert max(backoff_s(10, rng) for _ in range(200)) > 0.5 * 2**3  # grows, up to the cap


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=15), children, max_size=5)
    ),
    max_leaves=30,
)


def _mutate(doc, path, value):
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


PATHS = [
    ("end", "sum_received", "bits_per_second"),
    ("end", "sum_received", "seconds"),
    ("end", "sum_sent", "retransmits"),
    ("end", "streams"),
    ("end", "cpu_utilization_percent"),
    ("start", "test_start", "num_streams"),
    ("start", "sock_bufsize"),
    ("start", "timestamp"),
    ("end",),
    ("error",),
]


def _check(text):
    try:
        r = parse_iperf3_json(text, "h", 5201)
    except Iperf3Error:
        return
    assert math.isfinite(r.throughput_bps) and r.throughput_bps >= 0
    assert r.mean_rtt_s is None or (math.isfinite(r.mean_rtt_s) and r.mean_rtt_s > 0)
    assert r.retransmits is None or r.retransmits >= 0
    assert r.streams >= 1


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_arbitrary_text(text):
    _check(text)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_fuzz_arbitrary_json(value):
    _check(json.dumps(value))


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(PATHS), json_values, st.sampled_from(["iperf3_ok.json", "iperf3_reverse.json"])
)
def test_fuzz_mutated_real_output(path, value, name):
    doc = _mutate(json.loads(load(name)), path, value)
    _check(json.dumps(doc))
