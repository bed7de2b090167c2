"""perf stat CSV parsing against real captured outputs, failure mapping, and fuzzing."""

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.bench import perf
from agent.bench.perf import PerfEvent, PerfParseError, PerfResult, parse_perf_csv, run_perf_stat

FIXTURES = Path(__file__).parent.parent / "fixtures" / "bench"


def load(name: str) -> str:
    return (FIXTURES / name).read_text()


def by_event(events):
    return {e.event: e for e in events}


def test_system_wide_capture():
    events = by_event(parse_perf_csv(load("perf_system.csv")))
    assert events["cycles"].status == "not_supported" and not events["cycles"].supported
    assert events["context-switches"] == PerfEvent("context-switches", "counted", 47.0, "", 1.0)
    assert events["cpu-migrations"].value == 7
    assert events["page-faults"].value == 83
    assert events["task-clock"].value == pytest.approx(604.10)
    assert events["task-clock"].unit == "msec"


def test_not_counted_is_supported_without_value():
    events = by_event(parse_perf_csv(load("perf_pid_not_counted.csv")))
    ev = events["context-switches"]
    assert ev.status == "not_counted" and ev.supported and ev.value is None


def test_user_modifier_names_kept_by_parser():
    events = by_event(parse_perf_csv(load("perf_user_modifier.csv")))
    assert events["context-switches:u"].value == 0
    assert events["cycles:u"].status == "not_supported"


def test_ipc_only_when_both_counted():
    def result(*events):
        return PerfResult(tuple(events), 1.0, None, 0.0)

    both = result(
        PerfEvent("cycles", "counted", 2000.0), PerfEvent("instructions", "counted", 3000.0)
    )
    assert both.ipc == pytest.approx(1.5)
    one = result(PerfEvent("cycles", "not_supported"), PerfEvent("instructions", "counted", 3.0))
    assert one.ipc is None
    zero = result(PerfEvent("cycles", "counted", 0.0), PerfEvent("instructions", "counted", 3.0))
    assert zero.ipc is None


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("12,,", "line 1"),
        ("abc,,cycles,1,100.00,,", "value 'abc'"),
        ("-5,,cycles,1,100.00,,", "finite count"),
        ("nan,,cycles,1,100.00,,", "finite count"),
        ("# c\n\n5,,cycles,1,bogus,,", "line 3: percentage"),
    ],
)
def test_bad_lines_name_the_line(text, words):
    with pytest.raises(PerfParseError, match=words):
        parse_perf_csv(text)


def test_paranoid_refusal_is_per_event():
    events = perf._failure(
        ["context-switches", "page-faults"], load("perf_paranoid_stderr.txt"), 255
    )
    assert [e.status for e in events] == ["refused", "refused"]
    assert "perf_event_paranoid=2" in events[0].message


def test_invalid_event_is_singled_out():
    events = perf._failure(["bogus-event", "page-faults"], load("perf_bad_event_stderr.txt"), 129)
    assert [(e.event, e.status) for e in events] == [
        ("bogus-event", "invalid"),
        ("page-faults", "error"),
    ]


def test_missing_binary_is_per_event():
    r = run_perf_stat(0.1, events=["cycles", "page-faults"], binary="no-such-perf-binary")
    assert [e.status for e in r.events] == ["missing_binary", "missing_binary"]
    assert "no-such-perf-binary" in r.events[0].message


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"window_s": 0}, "window_s"),
        ({"window_s": float("nan")}, "window_s"),
        ({"window_s": 1, "pid": 0}, "pid"),
        ({"window_s": 1, "events": []}, "events"),
        ({"window_s": 1, "events": ["-a"]}, "events"),
        ({"window_s": 1, "events": ["cycles; rm"]}, "events"),
    ],
)
def test_bad_arguments(kwargs, field):
    with pytest.raises(ValueError, match=field):
        run_perf_stat(**kwargs)


def test_result_json_round_trip():
    events = tuple(parse_perf_csv(load("perf_system.csv")))
    r = PerfResult(events, 0.3, None, 1.0)
    assert PerfResult.from_json(r.to_json()) == r
    with pytest.raises(ValueError, match="status"):
        PerfResult.from_json(r.to_json() | {"events": [{"event": "x", "status": "great"}]})


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_arbitrary_text(text):
    try:
        events = parse_perf_csv(text)
    except PerfParseError:
        return
    for ev in events:
        assert ev.value is None or (math.isfinite(ev.value) and ev.value >= 0)


field_text = st.sampled_from(
    ["", "12", "3.5", "<not supported>", "<not counted>", "-1", "inf", "1e400", "cycles", "100.00"]
) | st.text(alphabet=st.characters(blacklist_characters=",\n\r"), max_size=10)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(field_text, min_size=1, max_size=8), max_size=6))
def test_fuzz_csv_shaped_lines(rows):
    text = "\n".join(",".join(r) for r in rows)
    try:
        events = parse_perf_csv(text)
    except PerfParseError:
        return
    for ev in events:
        assert ev.status in perf.STATUSES
        assert ev.value is None or (math.isfinite(ev.value) and ev.value >= 0)
        assert ev.running_ratio is None or ev.running_ratio >= 0
