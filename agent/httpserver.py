"""A small HTTP/1.1 server for the agent's endpoints that bounded clients cannot exhaust.

Design decisions:

- One selector thread accepts connections and reads request heads without blocking; only a
  complete head is handed to a fixed pool of worker threads, through a bounded queue. A client
  that sends its head slowly (slowloris) costs a socket and a few bytes, never a thread, so
  3,000 of them cannot make 3,000 threads, nor delay a scrape that sends its head at once.
- Bounds: at most ``max_connections`` open connections (the oldest is closed to make room for a
  new one: the attackers of a flood are old, the scraper that just connected is new); a head
  must arrive complete within ``header_timeout_s`` of its first byte (or of the accept), and
  within ``max_header_bytes``; an idle keep-alive connection is closed after
  ``idle_timeout_s``; a response must be written within ``write_timeout_s`` in all.
- Only GET and HEAD are served: anything else is 405 with ``Allow: GET, HEAD`` and the
  connection is closed (its body is never read). HEAD answers the headers of GET, no body.
- TLS (an ``ssl.SSLContext``) is handshaken on the selector thread too, non-blocking, under the
  same head deadline.
- The application is a WSGI callable; the environ holds what the agent's endpoints use.
"""

from __future__ import annotations

import contextlib
import io
import logging
import queue
import selectors
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

log = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ALLOWED_METHODS = ("GET", "HEAD")
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class Limits:
    """How much the server gives any client."""

    workers: int = 4
    queue_size: int = 64
    max_connections: int = 512
    header_timeout_s: float = 5.0
    idle_timeout_s: float = 60.0
    write_timeout_s: float = 10.0
    max_header_bytes: int = 16 * 1024


@dataclass(eq=False)
class _Conn:
    sock: socket.socket
    address: tuple[Any, ...]
    deadline: float
    handshaking: bool = False
    buffer: bytearray = field(default_factory=bytearray)


class HttpServer:
    """Serves a WSGI app on a bound socket; ``start()`` runs it in the background."""

    def __init__(
        self,
        app: WsgiApp,
        host: str,
        port: int,
        limits: Limits | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.app = app
        self.limits = limits or Limits()
        self._ssl = ssl_context
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind((host, port))
            self._listener.listen(128)
        except OSError:
            self._listener.close()
            raise
        self._listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._conns: dict[_Conn, None] = {}  # insertion order: oldest first
        self._returned: queue.SimpleQueue[_Conn] = queue.SimpleQueue()
        self._work: queue.Queue[_Conn | None] = queue.Queue(self.limits.queue_size)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.port = int(self._listener.getsockname()[1])

    def start(self) -> None:
        """Start the selector thread and the worker pool (all daemons)."""
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        threads = [threading.Thread(target=self._loop, name="http-accept", daemon=True)]
        threads += [
            threading.Thread(target=self._worker, name=f"http-worker-{i}", daemon=True)
            for i in range(self.limits.workers)
        ]
        for thread in threads:
            thread.start()
        self._threads = threads

    def stop(self, timeout: float = 2.0) -> None:
        """Stop accepting, close every connection, and wait (bounded) for the threads."""
        self._stop.set()
        self._wake()
        for _ in range(self.limits.workers):
            try:
                self._work.put_nowait(None)
            except queue.Full:
                break
        end = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(end - time.monotonic(), 0.0))
        self._listener.close()

    def open_connections(self) -> int:
        """Connections open right now (waiting for a head, idle, or queued)."""
        return len(self._conns)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    # -- the selector thread ---------------------------------------------------------------

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                for key, _ in self._selector.select(timeout=0.25):
                    if key.fileobj is self._listener:
                        self._accept()
                    elif key.fileobj is self._wake_r:
                        self._drain_wake()
                    else:
                        self._readable(key.data)
                self._expire()
        finally:
            for conn in list(self._conns):
                self._close(conn)
            self._selector.close()
            self._wake_r.close()
            self._wake_w.close()

    def _accept(self) -> None:
        for _ in range(64):  # a burst at a time, then serve the others
            try:
                sock, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:  # EMFILE and friends: the backlog keeps them
                log.warning("accept failed: %s", err)
                return
            while len(self._conns) >= self.limits.max_connections:
                self._close(next(iter(self._conns)))  # the oldest makes room
            sock.setblocking(False)
            conn = _Conn(sock, address, time.monotonic() + self.limits.header_timeout_s)
            if self._ssl is not None:
                try:
                    conn.sock = self._ssl.wrap_socket(
                        sock, server_side=True, do_handshake_on_connect=False
                    )
                except (OSError, ValueError):
                    sock.close()
                    continue
                conn.handshaking = True
            self._conns[conn] = None
            self._selector.register(conn.sock, selectors.EVENT_READ, conn)
            if conn.handshaking:
                self._readable(conn)

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        while True:
            try:
                conn = self._returned.get_nowait()
            except queue.Empty:
                return
            if self._stop.is_set():
                self._close(conn)
                continue
            conn.deadline = time.monotonic() + self.limits.idle_timeout_s
            self._conns[conn] = None
            self._selector.register(conn.sock, selectors.EVENT_READ, conn)
            if conn.buffer or (isinstance(conn.sock, ssl.SSLSocket) and conn.sock.pending()):
                self._readable(conn)

    def _readable(self, conn: _Conn) -> None:
        try:
            if conn.handshaking:
                assert isinstance(conn.sock, ssl.SSLSocket)
                conn.sock.do_handshake()
                conn.handshaking = False
            data = conn.sock.recv(16 * 1024)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return
        except OSError:  # reset, TLS failure: nothing to answer
            self._close(conn)
            return
        if not data and not conn.buffer:
            self._close(conn)
            return
        if not conn.buffer:  # the first byte of a head starts its deadline
            conn.deadline = min(conn.deadline, time.monotonic() + self.limits.header_timeout_s)
        conn.buffer += data
        if b"\r\n\r\n" in conn.buffer or b"\n\n" in conn.buffer:
            self._dispatch(conn)
        elif len(conn.buffer) > self.limits.max_header_bytes:
            self._reject(conn, 431)
        elif not data:
            self._close(conn)

    def _dispatch(self, conn: _Conn) -> None:
        self._selector.unregister(conn.sock)
        del self._conns[conn]
        try:
            self._work.put_nowait(conn)
        except queue.Full:
            self._conns[conn] = None
            self._selector.register(conn.sock, selectors.EVENT_READ, conn)
            self._reject(conn, 503)

    def _reject(self, conn: _Conn, status: int) -> None:
        body = f"{_REASONS[status].lower()}\n".encode()
        head = f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Length: {len(body)}\r\n"
        with contextlib.suppress(OSError, ValueError):
            conn.sock.send(head.encode() + b"Connection: close\r\n\r\n" + body)
        self._close(conn)

    def _expire(self) -> None:
        now = time.monotonic()
        for conn in [c for c in self._conns if c.deadline <= now]:
            self._close(conn)

    def _close(self, conn: _Conn) -> None:
        self._conns.pop(conn, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)
        with contextlib.suppress(OSError):
            conn.sock.close()

    # -- the workers -----------------------------------------------------------------------

    def _worker(self) -> None:
        while True:
            conn = self._work.get()
            if conn is None or self._stop.is_set():
                if conn is not None:
                    conn.sock.close()
                return
            try:
                keep = self._serve(conn)
            except Exception:  # one bad request never stops the worker
                log.exception("request from %s failed", conn.address[0])
                keep = False
            if keep:
                conn.sock.setblocking(False)
                self._returned.put(conn)
                self._wake()
            else:
                conn.sock.close()

    def _serve(self, conn: _Conn) -> bool:
        """Answer one request; True when the connection may carry another."""
        raw = bytes(conn.buffer)
        sep = b"\r\n\r\n" if b"\r\n\r\n" in raw else b"\n\n"
        head, _, rest = raw.partition(sep)
        conn.buffer = bytearray(rest)
        lines = head.decode("latin-1").splitlines()
        parts = lines[0].split() if lines else []
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return self._respond(conn, "GET", 400, [], b"bad request\n", keep=False)
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                return self._respond(conn, "GET", 400, [], b"bad request\n", keep=False)
            key = "HTTP_" + name.strip().upper().replace("-", "_")
            headers[key] = f"{headers[key]},{value.strip()}" if key in headers else value.strip()
        if method not in ALLOWED_METHODS:
            allow = [("Allow", ", ".join(ALLOWED_METHODS))]
            return self._respond(conn, "GET", 405, allow, b"method not allowed\n", keep=False)
        has_body = headers.get("HTTP_CONTENT_LENGTH", "0") != "0" or (
            "HTTP_TRANSFER_ENCODING" in headers
        )
        keep = (
            version == "HTTP/1.1"
            and "close" not in headers.get("HTTP_CONNECTION", "").lower()
            and not has_body
            and not self._stop.is_set()
        )
        status, extra, body = self._call_app(conn, method, target, version, headers)
        return self._respond(conn, method, status, extra, body, keep=keep)

    def _call_app(
        self, conn: _Conn, method: str, target: str, version: str, headers: dict[str, str]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        path, _, query = target.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "PATH_INFO": unquote(path, encoding="latin-1"),
            "QUERY_STRING": query,
            "SERVER_PROTOCOL": version,
            "SERVER_NAME": "tuneloop-agent",
            "SERVER_PORT": str(self.port),
            "REMOTE_ADDR": str(conn.address[0]),
            "wsgi.url_scheme": "https" if self._ssl is not None else "http",
            "wsgi.input": io.BytesIO(),
            "wsgi.errors": sys.stderr,
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            **headers,
        }
        if isinstance(conn.sock, ssl.SSLSocket):
            environ["tuneloop.peer_cert"] = conn.sock.getpeercert()
        started: list[Any] = []

        def start_response(status: str, response_headers: list[tuple[str, str]], *_: Any) -> Any:
            started[:] = [status, response_headers]
            return lambda data: None

        body = b"".join(self.app(environ, start_response))
        code = int(str(started[0]).split()[0])
        extra = [(k, v) for k, v in started[1] if k.lower() not in ("content-length", "connection")]
        return code, extra, body

    def _respond(
        self,
        conn: _Conn,
        method: str,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        *,
        keep: bool,
    ) -> bool:
        reason = _REASONS.get(status, "Status")
        lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers)]
        if not any(k.lower() == "content-type" for k, _ in headers):
            lines.append("Content-Type: text/plain; charset=utf-8")
        lines += [
            f"Content-Length: {len(body)}",
            f"Connection: {'keep-alive' if keep else 'close'}",
        ]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if method != "HEAD":
            data += body
        end = time.monotonic() + self.limits.write_timeout_s
        view = memoryview(data)
        try:
            while view:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return False
                conn.sock.settimeout(remaining)
                sent = conn.sock.send(view[: 256 * 1024])
                view = view[sent:]
        except OSError:
            return False
        return keep
