"""HaproxyApplier against a real HAProxy started by the test."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.realprocs import haproxy as real
from tuneloop.validation import ConfigError
from tuner.appliers.base import ApplierError, VerifyError
from tuner.appliers.haproxy import HaproxyApplier
from tuner.appliers.registry import check_knobs
from tuner.spec import loads_experiment

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not real.available(), reason="haproxy is not installed"),
]


@pytest.fixture(scope="module")
def haproxy(tmp_path_factory):
    backends = {"be_app": {"s1": 10, "s2": 20, "s3": 30}, "be_other": {"o1": 1}}
    with real.running_haproxy(tmp_path_factory.mktemp("haproxy"), backends) as proc:
        yield proc


@pytest.fixture
def applier(haproxy):
    app = HaproxyApplier(haproxy.admin_address)
    initial = {"be_app/s1": 10, "be_app/s2": 20, "be_app/s3": 30, "be_other/o1": 1}
    app.apply(initial)  # each test starts from the configured weights
    return app


def test_reads_configured_weights(applier):
    assert applier.read(["be_app/s1", "be_app/s3"]) == {"be_app/s1": 10, "be_app/s3": 30}
    assert applier.get_weight("be_app/s2") == (20, 20)


def test_apply_verify_and_rollback(applier):
    snap = applier.snapshot(["be_app/s1", "be_app/s2"])
    applier.apply({"be_app/s1": 5, "be_app/s2": 0})
    applier.verify({"be_app/s1": 5, "be_app/s2": 0})
    assert applier.get_weight("be_app/s1") == (5, 10)
    stats = {(s.backend, s.server): s for s in applier.servers()}
    assert stats[("be_app", "s2")].weight == 0
    assert stats[("be_app", "s1")].weight == 5
    applier.rollback(snap)
    assert applier.read(["be_app/s1", "be_app/s2"]) == {"be_app/s1": 10, "be_app/s2": 20}


def test_apply_is_idempotent(applier):
    applier.apply({"be_app/s3": 256})
    applier.apply({"be_app/s3": 256})
    assert applier.read(["be_app/s3"]) == {"be_app/s3": 256}


def test_verify_reports_difference(applier):
    with pytest.raises(VerifyError, match=r"be_app/s1: wanted 3, found 10"):
        applier.verify({"be_app/s1": 3})


def test_unix_socket_reaches_the_same_process(haproxy, applier):
    over_socket = HaproxyApplier(str(haproxy.socket_path))
    over_socket.apply({"be_other/o1": 4})
    assert applier.read(["be_other/o1"]) == {"be_other/o1": 4}


@pytest.mark.parametrize(
    ("target", "message"),
    [("be_app/nope", "No such server"), ("nope/s1", "No such backend")],
)
def test_haproxy_errors_carry_its_text(applier, target, message):
    with pytest.raises(ApplierError, match=message):
        applier.read([target])
    with pytest.raises(ApplierError, match=message):
        applier.set_weight(target, 2)


def test_user_level_socket_is_refused(haproxy, applier):
    with pytest.raises(ApplierError, match=r"Permission denied"):
        HaproxyApplier(haproxy.user_address).apply({"be_app/s1": 2})
    assert applier.read(["be_app/s1"]) == {"be_app/s1": 10}


@pytest.mark.parametrize("bad", [-1, 257, 2.5, "3", True])
def test_bad_weights_are_rejected_before_any_change(applier, bad):
    with pytest.raises(ApplierError, match=r"weight must be an integer 0..256"):
        applier.apply({"be_app/s2": 7, "be_app/s1": bad})
    assert applier.read(["be_app/s2"]) == {"be_app/s2": 20}


def test_bad_target_and_unreachable_address(haproxy):
    with pytest.raises(ApplierError, match=r"backend/server"):
        HaproxyApplier(haproxy.admin_address).read(["be_app"])
    with pytest.raises(ApplierError, match=r"not a valid HAProxy name"):
        HaproxyApplier(haproxy.admin_address).read(["be_app/s1 extra"])
    with pytest.raises(ApplierError, match=r"address"):
        HaproxyApplier("no-port")
    closed = HaproxyApplier("127.0.0.1:1", timeout_s=0.5)
    with pytest.raises(ApplierError, match=r"failed"):
        closed.read(["be_app/s1"])


@contextmanager
def recording_relay(upstream: str) -> Iterator[tuple[str, list[bytes]]]:
    """A loopback TCP relay in front of the runtime API that records every request it forwards."""
    host, port = upstream.rsplit(":", 1)
    seen: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            with client, socket.create_connection((host, int(port)), timeout=5) as server:
                client.settimeout(5)
                request = client.recv(65536)
                seen.append(request)
                server.sendall(request)
                while reply := server.recv(65536):
                    client.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}", seen
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


INJECTING = ["be_app/s1;help", "be_app/s1\nhelp", "be_app/s1 weight 0;show info", "be_app/s1\r"]


@pytest.mark.parametrize("target", INJECTING)
def test_injected_command_is_refused_and_haproxy_never_sees_it(haproxy, applier, target):
    with recording_relay(haproxy.admin_address) as (address, seen):
        relayed = HaproxyApplier(address)
        with pytest.raises(ApplierError, match=r"not a valid HAProxy name"):
            relayed.read([target])
        with pytest.raises(ApplierError, match=r"not a valid HAProxy name"):
            relayed.apply({"be_app/s2": 5, target: 2})
        with pytest.raises(ApplierError, match=r"refusing to send"):
            relayed.command(f"get weight {target}")
        assert seen == []  # nothing reached HAProxy
        assert relayed.read(["be_app/s2"]) == {"be_app/s2": 20}
        assert seen == [b"get weight be_app/s2\n"]  # the relay does forward what is valid


def test_injected_target_is_refused_at_experiment_load(haproxy, applier):
    text = f"""
name: inject
signals: {{prometheus: "http://127.0.0.1:1"}}
appliers:
  lb: {{kind: haproxy, address: "{haproxy.admin_address}"}}
knobs:
  - {{name: w0, applier: lb, target: "be_app/s1", type: int, bounds: [1, 256], class: hot}}
  - {{name: w1, applier: lb, target: "be_app/s1;help", type: int, bounds: [1, 9], class: hot}}
objective: {{signal: request_rate}}
"""
    exp = loads_experiment(text)
    appliers = {"lb": HaproxyApplier(haproxy.admin_address)}
    with pytest.raises(ConfigError, match=r"^knobs\[1\]\.target: .*not a valid HAProxy name"):
        check_knobs(exp, appliers)
    assert applier.read(["be_app/s1"]) == {"be_app/s1": 10}
