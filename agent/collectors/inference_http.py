"""A deadline-bounded HTTP GET of an inference server's ``/metrics``.

Design decisions:

- One absolute deadline covers the whole fetch: connect, TLS handshake, headers and body.
  Before every receive the socket's timeout is set to the time left, so a server trickling one
  byte every half second is cut at its deadline; a per-read timeout (what requests and urllib
  offer) would let it hold the fetch forever.
- The body is read in chunks and refused (reason ``too_large``) as soon as it passes the cap;
  a ``Content-Length`` over the cap is refused before any of the body is read. gzip is not
  asked for; a server that sends it anyway is decompressed under the same cap.
- Redirects are never followed (reason ``redirect``): a metrics endpoint has no reason to move,
  and following one would let a pod's annotation steer the agent, which runs on the host
  network, to any host or port. The operator configures the final URL.
- HTTP/1.1 with ``Connection: close``: one request per connection, no pool to go stale, and
  nothing left open between collections. Proxies from the environment are not used: the
  targets are on this node.
"""

from __future__ import annotations

import socket
import ssl
import time
import zlib
from collections.abc import Callable
from urllib.parse import urlsplit

REASONS = (
    "timeout",
    "connection",
    "http_status",
    "redirect",
    "too_large",
    "too_many_series",
    "duplicate",
    "parse",
    "unrecognised",
    "error",
)
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_HEADER_BYTES = 64 * 1024
_CHUNK = 64 * 1024
ACCEPT = "text/plain;version=0.0.4;q=1.0, */*;q=0.1"


class FetchError(Exception):
    """A target could not be read; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class _Reader:
    """Buffered receives from a socket, each bounded by the time left to one deadline."""

    def __init__(
        self, sock: socket.socket, deadline: float, clock: Callable[[], float], url: str
    ) -> None:
        self._sock = sock
        self._deadline = deadline
        self._clock = clock
        self._url = url
        self._buffer = bytearray()
        self.eof = False

    def _fill(self) -> None:
        remaining = self._deadline - self._clock()
        if remaining <= 0:
            raise FetchError("timeout", f"{self._url}: no complete answer within the deadline")
        self._sock.settimeout(remaining)
        try:
            data = self._sock.recv(_CHUNK)
        except TimeoutError:
            raise FetchError(
                "timeout", f"{self._url}: no complete answer within the deadline"
            ) from None
        if not data:
            self.eof = True
        self._buffer += data

    def line(self, limit: int) -> bytes:
        """One CRLF- or LF-terminated line (without it); FetchError past ``limit`` bytes."""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                return line.rstrip(b"\r")
            if len(self._buffer) > limit:
                raise FetchError("error", f"{self._url}: header line longer than {limit} bytes")
            if self.eof:
                raise FetchError("connection", f"{self._url}: connection closed mid-answer")
            self._fill()

    def some(self, most: int) -> bytes:
        """Up to ``most`` bytes (at least one unless the peer closed)."""
        if not self._buffer and not self.eof:
            self._fill()
        data = bytes(self._buffer[:most])
        del self._buffer[:most]
        return data

    def exactly(self, count: int) -> bytes:
        """``count`` bytes, or FetchError when the peer closes first."""
        while len(self._buffer) < count:
            if self.eof:
                raise FetchError("connection", f"{self._url}: connection closed mid-body")
            self._fill()
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data


class _Body:
    """Collects the (decompressed) body under the size cap."""

    def __init__(self, max_bytes: int, url: str, gzipped: bool) -> None:
        self._max = max_bytes
        self._url = url
        self._parts: list[bytes] = []
        self._size = 0
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None

    def add(self, data: bytes) -> None:
        if self._inflate is not None:
            data = self._inflate.decompress(data, self._max + 1 - self._size)
            if self._inflate.unconsumed_tail:
                self._size = self._max + 1
        self._size += len(data)
        if self._size > self._max:
            raise FetchError("too_large", f"{self._url} sent more than {self._max} bytes")
        self._parts.append(data)

    def text(self) -> str:
        return b"".join(self._parts).decode("utf-8", errors="replace")


def _split_url(url: str) -> tuple[str, str, int, str, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError("error", f"{url}: not an http:// or https:// URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise FetchError("error", f"{url}: bad port") from None
    host = parts.hostname
    host_header = f"[{host}]" if ":" in host else host
    if parts.port:
        host_header += f":{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, host, port, host_header, target


class HttpFetcher:
    """The default fetch: one GET under one total deadline, size-capped, no redirects."""

    def __init__(
        self,
        max_bytes: int = MAX_BODY_BYTES,
        clock: Callable[[], float] = time.monotonic,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes: must be positive, got {max_bytes!r}")
        self._max_bytes = max_bytes
        self._clock = clock
        self._ssl = ssl_context

    def __call__(self, url: str, timeout_s: float) -> str:
        deadline = self._clock() + timeout_s
        scheme, host, port, host_header, target = _split_url(url)
        try:
            sock = socket.create_connection((host, port), timeout=timeout_s)
        except TimeoutError:
            raise FetchError("timeout", f"{url}: connect timed out after {timeout_s:g} s") from None
        except OSError as exc:
            raise FetchError("connection", f"{url}: {exc.strerror or exc}") from None
        try:
            if scheme == "https":
                context = self._ssl or ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=host)
            request = (
                f"GET {target} HTTP/1.1\r\nHost: {host_header}\r\nAccept: {ACCEPT}\r\n"
                "Accept-Encoding: identity\r\nUser-Agent: tuneloop-agent\r\n"
                "Connection: close\r\n\r\n"
            )
            sock.sendall(request.encode("ascii"))
            return self._answer(_Reader(sock, deadline, self._clock, url), url)
        except TimeoutError:
            raise FetchError("timeout", f"{url}: no answer within {timeout_s:g} s") from None
        except ssl.SSLError as exc:
            raise FetchError("connection", f"{url}: TLS: {exc.reason or exc}") from None
        except OSError as exc:
            raise FetchError("connection", f"{url}: {exc.strerror or exc}") from None
        finally:
            sock.close()

    def _answer(self, reader: _Reader, url: str) -> str:
        status_line = reader.line(MAX_HEADER_BYTES).decode("latin-1")
        version, _, rest = status_line.partition(" ")
        code_text = rest[:3]
        if not version.startswith("HTTP/1.") or not code_text.isdigit():
            raise FetchError("error", f"{url}: not an HTTP answer: {status_line[:60]!r}")
        headers = self._headers(reader, url)
        code = int(code_text)
        if 300 <= code < 400:
            where = headers.get("location", "nowhere")[:200]
            raise FetchError(
                "redirect", f"{url}: HTTP {code} to {where}; redirects are not followed"
            )
        if code != 200:
            raise FetchError("http_status", f"HTTP {code} from {url}")
        encoding = headers.get("content-encoding", "identity").lower()
        if encoding not in ("identity", "gzip"):
            raise FetchError("error", f"{url}: unsupported Content-Encoding {encoding!r}")
        body = _Body(self._max_bytes, url, encoding == "gzip")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._chunked(reader, body, url)
        elif "content-length" in headers:
            self._sized(reader, body, headers["content-length"], url)
        else:
            while data := reader.some(_CHUNK):
                body.add(data)
        return body.text()

    def _headers(self, reader: _Reader, url: str) -> dict[str, str]:
        headers: dict[str, str] = {}
        size = 0
        while line := reader.line(MAX_HEADER_BYTES):
            size += len(line)
            if size > MAX_HEADER_BYTES:
                raise FetchError("error", f"{url}: headers longer than {MAX_HEADER_BYTES} bytes")
            name, sep, value = line.decode("latin-1").partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        return headers

    def _sized(self, reader: _Reader, body: _Body, length_text: str, url: str) -> None:
        if not length_text.isdigit():
            raise FetchError("error", f"{url}: bad Content-Length {length_text[:40]!r}")
        left = int(length_text)
        if left > self._max_bytes:
            raise FetchError("too_large", f"{url} announces {left} bytes, over {self._max_bytes}")
        while left > 0:
            data = reader.some(min(left, _CHUNK))
            if not data:
                raise FetchError("connection", f"{url}: connection closed mid-body")
            body.add(data)
            left -= len(data)

    def _chunked(self, reader: _Reader, body: _Body, url: str) -> None:
        while True:
            size_text = reader.line(1024).split(b";")[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise FetchError("error", f"{url}: bad chunk size {size_text[:20]!r}") from None
            if size == 0:
                while reader.line(MAX_HEADER_BYTES):  # trailers
                    pass
                return
            while size > 0:
                data = reader.some(min(size, _CHUNK))
                if not data:
                    raise FetchError("connection", f"{url}: connection closed mid-chunk")
                body.add(data)
                size -= len(data)
            reader.exactly(2)  # the CRLF after each chunk
