import gzip
import urllib.request

import pytest

from agent.exporter import Exporter, build_exposition, make_app, parse_listen
from agent.scheduler import CollectorRunner, Schedule, Scheduler
from tests.unit.collector_doubles import Failing, Steady


@pytest.fixture
def served():
    steady, failing = Steady(), Failing()
    runners = [CollectorRunner(steady, Schedule(5, 1)), CollectorRunner(failing, Schedule(5, 1))]
    scheduler = Scheduler(runners)
    exposition = build_exposition([steady, failing], scheduler)
    exporter = Exporter(make_app(exposition, scheduler.ready), "127.0.0.1:0")
    exporter.start()
    yield f"http://127.0.0.1:{exporter.port}", runners
    exporter.stop()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


def test_readiness_waits_for_the_first_collection(served):
    base, runners = served
    assert get(base + "/healthz")[0] == 200
    assert get(base + "/readyz")[0] == 503
    for runner in runners:
        runner.run_once()
    assert get(base + "/readyz")[0] == 200


def test_metrics_serves_collectors_self_metrics_and_process_metrics(served):
    base, runners = served
    for runner in runners:
        runner.run_once()
    status, body, headers = get(base + "/metrics")
    text = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert 'tuneloop_test_value{k="a"} 1.0' in text
    assert 'tuneloop_collector_success{collector="failing"} 0.0' in text
    assert "tuneloop_agent_process_resident_memory_bytes" in text
    status, body, headers = get(base + "/metrics", {"Accept-Encoding": "gzip"})
    assert headers.get("Content-Encoding") == "gzip"
    assert b"tuneloop_test_value" in gzip.decompress(body)


def test_unknown_paths_are_404(served):
    base, _ = served
    assert get(base + "/nope")[0] == 404


@pytest.mark.parametrize(
    ("listen", "expected"),
    [(":9450", ("0.0.0.0", 9450)), ("127.0.0.1:1", ("127.0.0.1", 1)), ("[::1]:80", ("::1", 80))],
)
def test_parse_listen(listen, expected):
    assert parse_listen(listen) == expected


@pytest.mark.parametrize("bad", ["9450", "host:", "host:99999", "host:http"])
def test_parse_listen_rejects(bad):
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen(bad)


def test_snapshots_are_rendered_once_per_change():
    steady = Steady()
    runner = CollectorRunner(steady, Schedule(5, 1))
    exposition = build_exposition([steady], Scheduler([runner]))
    runner.run_once()
    first = exposition.render()
    assert b'tuneloop_test_value{k="a"} 1.0' in first
    cached = exposition._cache[0][1]
    exposition.render()
    assert exposition._cache[0][1] is cached  # no new rendering without a new snapshot
    runner.run_once()
    assert b'tuneloop_test_value{k="a"} 2.0' in exposition.render()
    steady.clear()
    assert b"tuneloop_test_value" not in exposition.render()
