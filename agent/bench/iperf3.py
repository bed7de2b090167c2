"""iperf3 client tests and the parser of iperf3's ``--json`` output.

Decisions:

- Throughput is ``end.sum_received.bits_per_second``: what actually arrived, in either direction.
- Mean RTT is the mean of the sending streams' ``mean_rtt`` (microseconds in iperf3's JSON).
  In a reverse (``-R``) test the server sends and iperf3 reports its RTT as 0, which means "not
  measured"; a zero RTT is therefore read as unknown (None), never as a zero-latency path.
- CPU ratios are iperf3's ``host_total``/``remote_total`` divided by 100: CPU time per wall
  second of the iperf3 process (1.0 = one core busy).
- iperf3 parses ``-t`` as a whole number and treats 0 as "forever", so ``duration_s`` must be a
  whole number of seconds >= 1; anything else is refused rather than silently run forever.
- iperf3 serves one test at a time. "the server is busy" is retried with exponential backoff and
  full jitter (sleep uniform in [0, min(cap, base * 2**attempt)]), at most ``busy_retries`` times.
  ``timeout_s`` bounds each attempt: iperf3 3.12 does not honour ``--connect-timeout`` against a
  black-holed address, so the process group is killed when an attempt overruns.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from typing import Any

from agent.bench.process import find_binary, netns_prefix, run_bounded

CONNECT_TIMEOUT_S = 3.0
TIMEOUT_MARGIN_S = 5.0
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 10.0

_rng = random.Random()


class Iperf3Error(Exception):
    """An iperf3 test that gave no result; ``reason`` is a short label for metrics."""

    reason = "failed"


class Iperf3BusyError(Iperf3Error):
    """The server is running another test."""

    reason = "busy"


class Iperf3UnreachableError(Iperf3Error):
    """The server could not be reached (refused, unresolved, no route)."""

    reason = "unreachable"


class Iperf3TimeoutError(Iperf3Error):
    """The test overran its timeout and was killed."""

    reason = "timeout"


class Iperf3MissingBinaryError(Iperf3Error):
    """The iperf3 program is not installed."""

    reason = "missing_binary"


class Iperf3ParseError(Iperf3Error):
    """iperf3's output was not the JSON document expected."""

    reason = "parse"


@dataclass(frozen=True)
class Iperf3Result:
    """One finished iperf3 test, as seen by the client."""

    peer: str
    port: int
    throughput_bps: float
    retransmits: int | None
    mean_rtt_s: float | None
    cpu_local_ratio: float | None
    cpu_remote_ratio: float | None
    duration_s: float
    streams: int
    window_bytes: int | None
    started_at: float
    reverse: bool = False  # True when the peer sent (iperf3 -R)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict of every field."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Iperf3Result:
        """Rebuild a result from :meth:`to_json` output; ValueError names a bad field."""
        try:
            return cls(
                peer=_str(data["peer"], "peer"),
                port=_port(data["port"]),
                throughput_bps=_nonneg(data["throughput_bps"], "throughput_bps"),
                retransmits=_opt_int(data.get("retransmits"), "retransmits"),
                mean_rtt_s=_opt_nonneg(data.get("mean_rtt_s"), "mean_rtt_s"),
                cpu_local_ratio=_opt_nonneg(data.get("cpu_local_ratio"), "cpu_local_ratio"),
                cpu_remote_ratio=_opt_nonneg(data.get("cpu_remote_ratio"), "cpu_remote_ratio"),
                duration_s=_nonneg(data["duration_s"], "duration_s"),
                streams=_int(data["streams"], "streams", minimum=1),
                window_bytes=_opt_int(data.get("window_bytes"), "window_bytes"),
                started_at=_nonneg(data["started_at"], "started_at"),
                reverse=bool(data.get("reverse", False)),
            )
        except KeyError as exc:
            raise ValueError(f"iperf3 record lacks field {exc.args[0]!r}") from None


def _finite(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{field}: expected a finite number, got {value!r}")
    return float(value)


def _nonneg(value: object, field: str) -> float:
    number = _finite(value, field)
    if number < 0:
        raise ValueError(f"{field}: expected a number >= 0, got {value!r}")
    return number


def _opt_nonneg(value: object, field: str) -> float | None:
    return None if value is None else _nonneg(value, field)


def _int(value: object, field: str, minimum: int = 0) -> int:
    number = _finite(value, field)
    if number != int(number):
        raise ValueError(f"{field}: expected a whole number, got {value!r}")
    if number < minimum:
        raise ValueError(f"{field}: expected >= {minimum}, got {value!r}")
    return int(number)


def _opt_int(value: object, field: str) -> int | None:
    return None if value is None else _int(value, field)


def _str(value: object, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field}: expected a non-empty string, got {value!r}")
    return value


def _port(value: object) -> int:
    port = _int(value, "port", minimum=1)
    if port > 65535:
        raise ValueError(f"port: expected 1..65535, got {value!r}")
    return port


def classify_error(message: str) -> Iperf3Error:
    """The exception for iperf3's own ``"error"`` message."""
    text = f"iperf3: {message}"
    lowered = message.lower()
    if "busy" in lowered:
        return Iperf3BusyError(text)
    unreachable = (
        "unable to connect",
        "connection refused",
        "no route to host",
        "network is unreachable",
        "name or service not known",
        "temporary failure in name resolution",
        "connection timed out",
    )
    if any(marker in lowered for marker in unreachable):
        return Iperf3UnreachableError(text)
    return Iperf3Error(text)


def _obj(parent: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise Iperf3ParseError(f"iperf3 JSON: {path} is missing or not an object")
    return value


def _field(parse: Any, value: object, path: str) -> Any:
    try:
        return parse(value, path)
    except ValueError as exc:
        raise Iperf3ParseError(f"iperf3 JSON: {exc}") from None


def _mean_rtt_s(end: dict[str, Any]) -> float | None:
    streams = end.get("streams")
    if not isinstance(streams, list):
        return None
    rtts: list[float] = []
    for i, stream in enumerate(streams):
        sender = stream.get("sender") if isinstance(stream, dict) else None
        if not isinstance(sender, dict) or sender.get("mean_rtt") is None:
            continue
        rtt = _field(_nonneg, sender["mean_rtt"], f"end.streams[{i}].sender.mean_rtt")
        if rtt > 0:
            rtts.append(rtt)
    return sum(rtts) / len(rtts) / 1e6 if rtts else None


def parse_iperf3_json(text: str, peer: str, port: int) -> Iperf3Result:
    """Parse one ``iperf3 --json`` client document; Iperf3Error (a subclass) on anything else."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        snippet = text.strip()[:80]
        raise Iperf3ParseError(f"iperf3 output is not JSON ({exc}): {snippet!r}") from None
    if not isinstance(doc, dict):
        raise Iperf3ParseError("iperf3 JSON: top level is not an object")
    error = doc.get("error")
    if error is not None:
        raise classify_error(str(error))
    start = _obj(doc, "start", "start")
    end = _obj(doc, "end", "end")
    received = _obj(end, "sum_received", "end.sum_received (UDP tests are not supported)")
    test_start = _obj(start, "test_start", "start.test_start")
    throughput = _field(_nonneg, received.get("bits_per_second"), "sum_received.bits_per_second")
    seconds = _field(_nonneg, received.get("seconds"), "end.sum_received.seconds")
    sent = end.get("sum_sent")
    retransmits = None
    if isinstance(sent, dict):
        retransmits = _field(_opt_int, sent.get("retransmits"), "end.sum_sent.retransmits")
    streams = _field(lambda v, p: _int(v, p, 1), test_start.get("num_streams"), "num_streams")
    bufsize = _field(_opt_int, start.get("sock_bufsize"), "start.sock_bufsize")
    stamp = start.get("timestamp")
    started_at = time.time() - seconds
    if isinstance(stamp, dict) and stamp.get("timesecs") is not None:
        started_at = _field(_nonneg, stamp["timesecs"], "start.timestamp.timesecs")
    cpu = end.get("cpu_utilization_percent")
    cpu_local = cpu_remote = None
    if isinstance(cpu, dict):
        local = _field(_opt_nonneg, cpu.get("host_total"), "cpu_utilization_percent.host_total")
        remote = _field(
            _opt_nonneg, cpu.get("remote_total"), "cpu_utilization_percent.remote_total"
        )
        cpu_local = None if local is None else local / 100.0
        cpu_remote = None if remote is None else remote / 100.0
    return Iperf3Result(
        peer=peer,
        port=port,
        throughput_bps=throughput,
        retransmits=retransmits,
        mean_rtt_s=_mean_rtt_s(end),
        cpu_local_ratio=cpu_local,
        cpu_remote_ratio=cpu_remote,
        duration_s=seconds,
        streams=streams,
        window_bytes=bufsize or None,
        started_at=started_at,
        reverse=bool(test_start.get("reverse")),
    )


def split_peer(text: str, default_port: int = 5201) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT`` or ``[V6]:PORT`` as (host, port); ValueError names the input."""
    text = text.strip()
    host, port = text, default_port
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ValueError(f"peer {text!r}: unclosed '['")
        host, rest = text[1:close], text[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"peer {text!r}: expected ':PORT' after ']'")
            port = _parse_port(rest[1:], text)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _parse_port(port_text, text)
    if not host or host.startswith("-") or any(c.isspace() for c in host):
        raise ValueError(f"peer {text!r}: invalid host")
    return host, port


def _parse_port(text: str, peer: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"peer {peer!r}: port must be 1..65535, got {text!r}")
    return int(text)


def backoff_s(attempt: int, rng: random.Random = _rng) -> float:
    """Full-jitter exponential backoff before retry number ``attempt`` (0-based)."""
    return rng.uniform(0.0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt))


def _validate(peer: str, port: int, duration_s: float, streams: int, window: int | None) -> None:
    if not peer or peer.startswith("-") or any(c.isspace() for c in peer):
        raise ValueError(f"peer: invalid host {peer!r}")
    if isinstance(port, bool) or not 1 <= port <= 65535:
        raise ValueError(f"port: expected 1..65535, got {port!r}")
    if not math.isfinite(duration_s) or duration_s < 1 or duration_s != int(duration_s):
        raise ValueError(
            f"duration_s: iperf3 needs a whole number of seconds >= 1, got {duration_s}"
        )
    if not 1 <= streams <= 128:
        raise ValueError(f"streams: expected 1..128, got {streams}")
    if window is not None and window <= 0:
        raise ValueError(f"window_bytes: expected > 0, got {window}")


def run_client(
    peer: str,
    port: int = 5201,
    *,
    duration_s: float = 5.0,
    streams: int = 1,
    window_bytes: int | None = None,
    timeout_s: float | None = None,
    netns: str | None = None,
    busy_retries: int = 5,
    binary: str = "iperf3",
    reverse: bool = False,
) -> Iperf3Result:
    """Run one iperf3 TCP test against ``peer:port`` and return its parsed result."""
    _validate(peer, port, duration_s, streams, window_bytes)
    if busy_retries < 0:
        raise ValueError(f"busy_retries: expected >= 0, got {busy_retries}")
    if timeout_s is not None and not timeout_s > 0:
        raise ValueError(f"timeout_s: expected > 0, got {timeout_s}")
    resolved = find_binary(binary)
    if resolved is None:
        raise Iperf3MissingBinaryError(f"iperf3 binary {binary!r} not found (install iperf3)")
    argv = [*netns_prefix(netns), resolved, "-c", peer, "-p", str(port), "--json"]
    argv += ["-t", str(int(duration_s)), "-P", str(streams)]
    argv += ["--connect-timeout", str(int(CONNECT_TIMEOUT_S * 1000))]
    if window_bytes is not None:
        argv += ["-w", str(window_bytes)]
    if reverse:
        argv.append("-R")
    limit = (
        timeout_s if timeout_s is not None else duration_s + CONNECT_TIMEOUT_S + TIMEOUT_MARGIN_S
    )
    for attempt in range(busy_retries + 1):
        done = run_bounded(argv, limit)
        if done.timed_out:
            raise Iperf3TimeoutError(f"iperf3 test to {peer}:{port} overran {limit:g}s; killed")
        if not done.stdout.strip():
            detail = done.stderr.strip().splitlines()
            message = detail[-1] if detail else f"exit status {done.returncode}"
            raise Iperf3Error(f"iperf3 test to {peer}:{port} printed nothing: {message}")
        try:
            return parse_iperf3_json(done.stdout, peer, port)
        except Iperf3BusyError:
            if attempt == busy_retries:
                raise Iperf3BusyError(
                    f"iperf3 server {peer}:{port} still busy after {busy_retries} retries"
                ) from None
            time.sleep(backoff_s(attempt))
    raise AssertionError("unreachable: the loop returns or raises")
