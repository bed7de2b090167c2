"""What HAProxy and nginx accept as names and addresses: checked before anything is sent to them.

Decisions:
- Whitelists, not blacklists. A value is accepted only when it matches the target program's own
  grammar (or a stricter subset of it), so no character with a meaning to that program's parser
  (newline, ``;``, ``{``, ``#``, quotes, ``$``, whitespace) can reach it.
- HAProxy names (backends, servers) follow HAProxy's rule for proxy and server names: upper and
  lower case ASCII letters, digits, ``-``, ``_``, ``.`` and ``:``. The runtime API splits commands
  on ``;`` and lines on newlines, so this grammar is also what keeps a command a single command.
- nginx upstream names are host-like (letters, digits, ``-``, ``_``, ``.``; starting with a letter
  or digit) because ``proxy_pass http://NAME`` reads them as a host. Server names (the tuner's own
  labels, written as a comment) follow the HAProxy name rule. Server addresses are ``host:port``
  (a DNS name of RFC 1123 labels or an IPv4 literal), ``[IPv6]:port`` or ``unix:/absolute/path``.
- Every check raises :class:`ConfigError` naming the field, so an experiment file's mistake reads
  ``appliers.lb.servers.r0: ...``; appliers wrap the same checks into ApplierError at run time.
- Values are matched with ``re.fullmatch`` on ASCII classes (never ``$``, which accepts a
  trailing newline, and never ``\\w``, which accepts non-ASCII letters).
"""

from __future__ import annotations

import ipaddress
import re

from tuneloop.validation import ConfigError

HAPROXY_NAME = re.compile(r"[A-Za-z0-9_.:-]+")
NGINX_UPSTREAM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_UNIX_PATH = re.compile(r"/[A-Za-z0-9_./@+=,-]*")
_PORT = re.compile(r"[0-9]{1,5}")
MAX_NAME = 255
_HAPROXY_RULE = "use letters, digits, '-', '_', '.' and ':'"


def _too_long(text: str, field: str) -> None:
    if len(text) > MAX_NAME:
        raise ConfigError(field, f"must be at most {MAX_NAME} characters, got {len(text)}")


def haproxy_name(text: object, field: str, what: str = "name") -> str:
    """A backend or server name HAProxy accepts."""
    if not isinstance(text, str) or not HAPROXY_NAME.fullmatch(text):
        raise ConfigError(field, f"{what} {text!r} is not a valid HAProxy name: {_HAPROXY_RULE}")
    _too_long(text, field)
    return text


def haproxy_target(text: object, field: str) -> tuple[str, str]:
    """``backend/server`` -> (backend, server), each a valid HAProxy name."""
    if not isinstance(text, str) or text.count("/") != 1:
        raise ConfigError(field, f"must be 'backend/server', got {text!r}")
    backend, server = text.split("/")
    return haproxy_name(backend, field, "backend"), haproxy_name(server, field, "server")


def nginx_upstream_name(text: object, field: str) -> str:
    """An nginx upstream name (host-like, as ``proxy_pass http://NAME`` reads it)."""
    if not isinstance(text, str) or not NGINX_UPSTREAM.fullmatch(text):
        raise ConfigError(
            field,
            f"{text!r} is not a valid nginx upstream name: start with a letter or digit, "
            "then letters, digits, '-', '_' and '.'",
        )
    _too_long(text, field)
    return text


def nginx_server_name(text: object, field: str) -> str:
    """The tuner's label for one server of an upstream (written as a comment)."""
    if not isinstance(text, str) or not HAPROXY_NAME.fullmatch(text):
        raise ConfigError(field, f"server name {text!r} is not valid: {_HAPROXY_RULE}")
    _too_long(text, field)
    return text


def _port(text: str, field: str, address: str) -> None:
    if not _PORT.fullmatch(text) or not 0 < int(text) < 65536:
        raise ConfigError(field, f"port must be 1..65535 in {address!r}")


def _hostname(host: str) -> bool:
    if len(host) > 253:
        return False
    labels = host.removesuffix(".").split(".")
    return all(_DNS_LABEL.fullmatch(label) for label in labels)


def nginx_server_address(text: object, field: str) -> str:
    """An upstream server address nginx accepts: ``host:port``, ``[v6]:port``, ``unix:/path``."""
    if not isinstance(text, str) or not text:
        raise ConfigError(field, f"must be host:port, [IPv6]:port or unix:/path, got {text!r}")
    if text.startswith("unix:"):
        if not _UNIX_PATH.fullmatch(text.removeprefix("unix:")) or len(text) > 108:
            raise ConfigError(
                field,
                f"unix socket path must be absolute and use letters, digits and _./@+=,- "
                f"(at most 108 characters), got {text!r}",
            )
        return text
    if text.startswith("["):
        literal, sep, port = text[1:].partition("]:")
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            raise ConfigError(field, f"{literal!r} is not an IPv6 address in {text!r}") from None
        if not sep or "%" in literal:
            raise ConfigError(field, f"must be [IPv6]:port without a zone, got {text!r}")
        _port(port, field, text)
        return text
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ConfigError(field, f"must be host:port, [IPv6]:port or unix:/path, got {text!r}")
    if ":" in host:
        raise ConfigError(field, f"an IPv6 address must be written [address]:port, got {text!r}")
    if not _hostname(host):
        raise ConfigError(field, f"{host!r} is not a host name or IPv4 address in {text!r}")
    if host.replace(".", "").isdigit():
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ConfigError(field, f"{host!r} is not an IPv4 address in {text!r}") from None
    _port(port, field, text)
    return text


def nginx_quoted(text: str) -> str:
    """``text`` as a double-quoted nginx token; only for values already checked above."""
    if '"' in text or "\\" in text or any(not c.isprintable() for c in text):
        raise ValueError(f"refusing to quote {text!r} for nginx")
    return f'"{text}"'
