"""The web configuration file: TLS (with and without client certificates) and basic auth."""

from __future__ import annotations

import base64
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.exporter import Exporter, make_app
from agent.webconfig import (
    WebConfigError,
    bcrypt_verify,
    load_web_config,
    require_basic_auth,
)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all self-made."""
    d = tmp_path_factory.mktemp("pki")
    subj = ["-subj"]
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"), "-days", "2",
            *subj, "/CN=test-ca")  # fmt: skip
    extensions = {"server": "subjectAltName=IP:127.0.0.1", "client": "extendedKeyUsage=clientAuth"}
    for name, ext in extensions.items():
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"),
                *subj, f"/CN={name}")  # fmt: skip
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.crt"),
                "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-out", str(d / f"{name}.crt"),
                "-days", "2", "-extfile", str(d / f"{name}.ext"))  # fmt: skip
    return d


def ok_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\n"]


@pytest.fixture
def serve() -> Iterator:
    exporters: list[Exporter] = []

    def start(app, context) -> str:
        exporter = Exporter(app, "127.0.0.1:0", ssl_context=context)
        exporter.start()
        exporters.append(exporter)
        return f"https://127.0.0.1:{exporter.port}/metrics"

    yield start
    for exporter in exporters:
        exporter.stop()


def client_context(pki: Path, with_cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if with_cert:
        context.load_cert_chain(pki / "client.crt", pki / "client.key")
    return context


def fetch(url: str, context: ssl.SSLContext, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code


def test_tls_serves_with_the_configured_certificate(pki, serve) -> None:
    config = pki / "web.yml"
    config.write_text("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n")
    url = serve(ok_app, load_web_config(config).ssl_context)
    assert fetch(url, client_context(pki, with_cert=False)) == 200
    with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP gets nothing
        urllib.request.urlopen(url.replace("https", "http"), timeout=5)


def test_required_client_certificates_are_verified(pki, serve) -> None:
    config = pki / "mtls.yml"
    config.write_text(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        "  client_ca_file: ca.crt\n  client_auth_type: RequireAndVerifyClientCert\n"
    )
    url = serve(ok_app, load_web_config(config).ssl_context)
    assert fetch(url, client_context(pki, with_cert=True)) == 200
    with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
        fetch(url, client_context(pki, with_cert=False))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tls_server_config:\n  cert_file: server.crt\n", r"tls_server_config\.key_file: required"),
        ("tls_server_config:\n  cert_file: nope.crt\n  key_file: server.key\n", "No such file"),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
            "  client_auth_type: RequireAnyClientCert\n",
            "not supported",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
            "  client_auth_type: VerifyClientCertIfGiven\n",
            r"client_ca_file: required",
        ),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  ciphers: x\n", "ciphers: unknown"),
        ("basic_auth_users:\n  prometheus: plaintext\n", "must be a bcrypt hash"),
        ("listen: x\n", "listen: unknown field"),
    ],
)
def test_bad_web_configs_name_the_field(pki, tmp_path, text, message) -> None:
    for name in ("server.crt", "server.key"):
        shutil.copy(pki / name, tmp_path / name)
    (tmp_path / "web.yml").write_text(text)
    with pytest.raises(WebConfigError, match=message):
        load_web_config(tmp_path / "web.yml", verify=lambda p, h: True)


def test_non_utf8_web_config_is_one_clear_error(tmp_path) -> None:
    (tmp_path / "web.yml").write_bytes(b"basic_auth_users:\n  \xff: x\n")
    with pytest.raises(WebConfigError, match="not UTF-8"):
        load_web_config(tmp_path / "web.yml")


def test_basic_auth_users_without_bcrypt_are_refused_not_ignored(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("agent.webconfig.bcrypt_verify", lambda: None)
    (tmp_path / "web.yml").write_text("basic_auth_users:\n  prom: $2y$10$abcdefghijklmnopqrstuv\n")
    with pytest.raises(WebConfigError, match="needs the bcrypt package"):
        load_web_config(tmp_path / "web.yml")


def test_basic_auth_checks_each_request_and_remembers_a_verified_password() -> None:
    calls: list[bytes] = []

    def verify(password: bytes, hashed: bytes) -> bool:
        calls.append(password)
        return password == b"s3cret" and hashed == b"$2y$hash"

    app = require_basic_auth(ok_app, {"prom": b"$2y$hash"}, verify)

    def status(header: str | None) -> str:
        seen: list[str] = []
        environ = {} if header is None else {"HTTP_AUTHORIZATION": header}
        app(environ, lambda s, h: seen.append(s))
        return seen[0]

    def basic(user_password: bytes) -> str:
        return "Basic " + base64.b64encode(user_password).decode()

    assert status(None).startswith("401")
    assert status(basic(b"prom:wrong")).startswith("401")
    assert status(basic(b"other:s3cret")).startswith("401")
    assert status("Basic !!notbase64").startswith("401")
    assert status(basic(b"prom:s3cret")).startswith("200")
    assert status(basic(b"prom:s3cret")).startswith("200")
    assert calls == [b"wrong", b"s3cret"]  # the second good request was remembered


def test_make_app_answers_405_itself() -> None:
    app = make_app(None, lambda: True)  # type: ignore[arg-type]
    seen: list[tuple[str, list[tuple[str, str]]]] = []
    app({"REQUEST_METHOD": "POST"}, lambda s, h: seen.append((s, h)))
    status, headers = seen[0]
    assert status.startswith("405") and ("Allow", "GET, HEAD") in headers


def test_tls_with_basic_auth_checks_real_bcrypt_hashes(pki, serve) -> None:
    bcrypt = pytest.importorskip("bcrypt")
    # htpasswd and Prometheus' own docs write the $2y$ variant; accept it as the exporters do.
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode().replace("$2b$", "$2y$")
    config = pki / "auth.yml"
    config.write_text(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        f"basic_auth_users:\n  prometheus: '{hashed}'\n"
    )
    web = load_web_config(config)
    verify = bcrypt_verify()
    assert verify is not None
    url = serve(require_basic_auth(ok_app, web.users, verify), web.ssl_context)
    context = client_context(pki, with_cert=False)

    def basic(user_password: bytes) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(user_password).decode()}

    assert fetch(url, context) == 401
    assert fetch(url, context, basic(b"prometheus:wrong")) == 401
    assert fetch(url, context, basic(b"prometheus:s3cret")) == 200
