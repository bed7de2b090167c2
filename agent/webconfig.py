"""The Prometheus exporter-toolkit web configuration file: TLS and basic auth for /metrics.

The format is the one node_exporter takes with ``--web.config.file``::

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_ca_file: ca.crt            # needed by the Verify* client auth types
      client_auth_type: RequireAndVerifyClientCert
      min_version: TLS12                # TLS10 .. TLS13
    basic_auth_users:
      prometheus: $2y$10$...            # bcrypt hashes

Design decisions:

- Relative paths are relative to the web config file (as in exporter-toolkit).
- ``client_auth_type``: ``NoClientCert``, ``VerifyClientCertIfGiven`` and
  ``RequireAndVerifyClientCert`` are supported. ``RequestClientCert`` and
  ``RequireAnyClientCert`` ask for a certificate without verifying it, which Python's ``ssl``
  cannot do; they are refused with a clear error rather than silently weakened or strengthened.
- Basic auth checks bcrypt hashes with the ``bcrypt`` package (never a home-made bcrypt). When
  it is not installed, a file with ``basic_auth_users`` is an error at start-up, never an open
  endpoint. A verified user and password are remembered (as a SHA-256 digest) so that a scrape
  every few seconds does not pay bcrypt's cost each time.
- Every error names the file and the field, in one line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Verify = Callable[[bytes, bytes], bool]
TLS_KEYS = {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version"}
CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
UNVERIFIED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert")
TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}


class WebConfigError(ValueError):
    """A web configuration that cannot be used; the message names the file and field."""


@dataclass(frozen=True)
class WebConfig:
    """What the web configuration asks for: a TLS context and basic-auth users, each optional."""

    ssl_context: ssl.SSLContext | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)


def bcrypt_verify() -> Verify | None:
    """bcrypt's ``checkpw`` when the package is installed, else None."""
    try:
        import bcrypt  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    check: Verify = bcrypt.checkpw
    return check


def load_web_config(path: Path, verify: Verify | None = None) -> WebConfig:
    """Read and check a web configuration file; WebConfigError on any problem."""
    where = f"web config {path}"
    try:
        raw = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except OSError as err:
        raise WebConfigError(f"{where}: cannot read: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise WebConfigError(f"{where}: not UTF-8 text (byte {err.start})") from None
    except yaml.YAMLError as err:
        raise WebConfigError(f"{where}: not YAML: {str(err).splitlines()[0]}") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise WebConfigError(f"{where}: must be a mapping")
    unknown = sorted(set(raw) - {"tls_server_config", "basic_auth_users", "http_server_config"})
    if unknown:
        raise WebConfigError(f"{where}: {unknown[0]}: unknown field")
    context = None
    if raw.get("tls_server_config") is not None:
        context = _tls(raw["tls_server_config"], path.parent, where)
    users = _users(raw.get("basic_auth_users"), where)
    if users and (verify or bcrypt_verify()) is None:
        raise WebConfigError(
            f"{where}: basic_auth_users: needs the bcrypt package, which is not installed"
        )
    return WebConfig(context, users)


def _tls(raw: Any, base: Path, where: str) -> ssl.SSLContext:
    prefix = f"{where}: tls_server_config"
    if not isinstance(raw, dict):
        raise WebConfigError(f"{prefix}: must be a mapping")
    unknown = sorted(set(raw) - TLS_KEYS)
    if unknown:
        raise WebConfigError(f"{prefix}.{unknown[0]}: unknown field")
    for required in ("cert_file", "key_file"):
        if not isinstance(raw.get(required), str) or not raw[required]:
            raise WebConfigError(f"{prefix}.{required}: required")
    auth = raw.get("client_auth_type", "NoClientCert")
    if auth in UNVERIFIED_CLIENT_AUTH:
        raise WebConfigError(
            f"{prefix}.client_auth_type: {auth} (a certificate without verification) is not "
            "supported; use VerifyClientCertIfGiven or RequireAndVerifyClientCert"
        )
    if auth not in CLIENT_AUTH:
        raise WebConfigError(
            f"{prefix}.client_auth_type: must be one of {', '.join(CLIENT_AUTH)}, got {auth!r}"
        )
    version = raw.get("min_version", "TLS12")
    if version not in TLS_VERSIONS:
        raise WebConfigError(
            f"{prefix}.min_version: must be one of {', '.join(TLS_VERSIONS)}, got {version!r}"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = TLS_VERSIONS[version]
    cert, key = base / raw["cert_file"], base / raw["key_file"]
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as err:
        raise WebConfigError(f"{prefix}.cert_file/key_file: {_why(err)}") from None
    context.verify_mode = CLIENT_AUTH[auth]
    ca = raw.get("client_ca_file")
    if auth != "NoClientCert" and not ca:
        raise WebConfigError(f"{prefix}.client_ca_file: required by {auth}")
    if ca:
        try:
            context.load_verify_locations(cafile=base / ca)
        except (OSError, ssl.SSLError) as err:
            raise WebConfigError(f"{prefix}.client_ca_file: {_why(err)}") from None
    return context


def _why(err: Exception) -> str:
    if isinstance(err, ssl.SSLError):
        return str(err.reason or err)
    if isinstance(err, OSError):
        return f"{err.strerror or err}: {err.filename}" if err.filename else str(err.strerror)
    return str(err)


def _users(raw: Any, where: str) -> dict[str, bytes]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise WebConfigError(f"{where}: basic_auth_users: must be a mapping of user to hash")
    users = {}
    for user, hashed in raw.items():
        if not isinstance(user, str) or ":" in user or not user:
            raise WebConfigError(f"{where}: basic_auth_users: bad user name {user!r}")
        if not isinstance(hashed, str) or not hashed.startswith("$2"):
            raise WebConfigError(f"{where}: basic_auth_users.{user}: must be a bcrypt hash")
        users[user] = hashed.encode()
    return users


def require_basic_auth(
    app: Callable[..., Iterable[bytes]], users: Mapping[str, bytes], verify: Verify
) -> Callable[..., Iterable[bytes]]:
    """Wrap a WSGI app so that every request needs one of ``users``' passwords."""
    remembered: set[bytes] = set()
    lock = threading.Lock()

    def check(header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        hashed = users.get(user.decode("utf-8", errors="replace"))
        if not sep or hashed is None:
            return False
        token = hashlib.sha256(hashed + b"\0" + password).digest()
        with lock:
            if any(hmac.compare_digest(token, known) for known in remembered):
                return True
        if not verify(password, hashed):
            return False
        with lock:
            remembered.add(token)
        return True

    def protected(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if check(environ.get("HTTP_AUTHORIZATION", "")):
            return app(environ, start_response)
        body = b"unauthorized\n"
        start_response(
            "401 Unauthorized",
            [
                ("WWW-Authenticate", 'Basic realm="tuneloop-agent"'),
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]

    return protected
