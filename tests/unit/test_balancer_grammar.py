"""Fuzzing the HAProxy and nginx renderers and parsers: no generated name injects a line or command.

Every generated name is either rejected with a ConfigError naming its field, or renders to exactly
the expected statements (nginx, read with nginx's own lexical rules) or the expected single
command of exactly the expected words (HAProxy runtime API).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuneloop.validation import ConfigError
from tuner.appliers.base import ApplierError
from tuner.appliers.grammar import haproxy_target, nginx_server_address
from tuner.appliers.haproxy import parse_show_stat, parse_target, runtime_command
from tuner.appliers.nginx import parse, render
from tuner.appliers.registry import build_applier

SAFE = "abcxyzABZ0189-_.:"
# Characters that mean something to nginx's or HAProxy's parser, and some that look harmless.
NASTY = [*"/;\n\r\t #{}\"'\\$[]@%,=", "\x00", "\u00e9", "\u2028", "\x85", "\u0660"]
safe_text = st.text(alphabet=SAFE, min_size=1, max_size=12)


@st.composite
def spiked(draw: st.DrawFn) -> str:
    """A mostly valid name with one or two characters a parser gives meaning to."""
    text = draw(safe_text)
    for _ in range(draw(st.integers(min_value=1, max_value=2))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        text = text[:at] + draw(st.sampled_from(NASTY) | st.characters()) + text[at:]
    return text


names = st.one_of(safe_text, spiked(), st.text(max_size=12))
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HAPROXY_RULE = re.compile(r"[A-Za-z0-9_.:-]+")


def nginx_statements(text: str) -> list[list[str]]:
    """Directives of an nginx config as token lists, by nginx's lexer (quotes, escapes, #)."""
    statements, tokens, word, i = [], [], "", 0
    quote = None
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\" and i + 1 < len(text):
                word += text[i + 1]
                i += 2
                continue
            if char == quote:
                quote = None
                tokens.append(word)
                word = ""
            else:
                word += char
        elif char in "\"'" and not word:
            quote = char
        elif char == "#" and not word:
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        elif char.isspace() or char in ";{}":
            if word:
                tokens.append(word)
                word = ""
            if char in ";{":
                statements.append(tokens)
                tokens = []
            elif char == "}":
                assert not tokens, f"unterminated directive before }}: {tokens}"
        else:
            word += char
        i += 1
    assert quote is None and not word and not tokens, "text ends inside a directive"
    return statements


def nginx_options(upstream: str, servers: dict[str, str]) -> dict[str, object]:
    return {
        "upstream_file": "/tmp/up.conf",
        "upstream": upstream,
        "servers": servers,
        "conf": "/tmp/nginx.conf",
        "pid_file": "/tmp/nginx.pid",
    }


def check_rendered(upstream: str, servers: dict[str, str]) -> None:
    weights = {name: index % 3 for index, name in enumerate(servers)}
    text = render(upstream, servers, weights)
    assert text.count("\n") == len(servers) + 6
    statements = nginx_statements(text)
    assert len(statements) == len(servers) + 3
    assert statements[0] == ["upstream", upstream]
    for statement, (name, address) in zip(statements[1:], servers.items(), strict=False):
        setting = "down" if weights[name] == 0 else f"weight={weights[name]}"
        assert statement == ["server", address, setting]
    assert statements[-2][0] == "map" and statements[-1][0] == "default"
    assert parse(text, servers, "fuzz") == weights


@FUZZ
@given(name=names)
def test_nginx_server_names_render_one_line_or_are_refused(name):
    servers = {"r0": "127.0.0.1:8000", name: "127.0.0.1:8001"}
    try:
        build_applier("nginx", nginx_options("llm", servers), "appliers.ng")
    except ConfigError as err:
        assert err.field.startswith("appliers.ng.servers.")
        assert not HAPROXY_RULE.fullmatch(name) or len(name) > 255
        with pytest.raises(ApplierError):
            render("llm", servers, dict.fromkeys(servers, 1))
        return
    assert HAPROXY_RULE.fullmatch(name)
    check_rendered("llm", servers)


@FUZZ
@given(host=names, port=st.integers(min_value=-5, max_value=70000) | st.just(80))
def test_nginx_addresses_render_one_statement_or_are_refused(host, port):
    for address in (f"{host}:{port}", f"[{host}]:{port}", f"unix:{host}", host):
        servers = {"r0": "127.0.0.1:8000", "r1": address}
        try:
            build_applier("nginx", nginx_options("llm", servers), "appliers.ng")
        except ConfigError as err:
            assert err.field == "appliers.ng.servers.r1"
            continue
        check_rendered("llm", servers)


@FUZZ
@given(upstream=names)
def test_nginx_upstream_names_render_one_block_or_are_refused(upstream):
    servers = {"r0": "127.0.0.1:8000"}
    try:
        build_applier("nginx", nginx_options(upstream, servers), "appliers.ng")
    except ConfigError as err:
        assert err.field == "appliers.ng.upstream"
        return
    check_rendered(upstream, servers)


@FUZZ
@given(backend=names, server=names, weight=st.integers(min_value=0, max_value=256))
def test_haproxy_targets_make_one_command_or_are_refused(backend, server, weight):
    target = f"{backend}/{server}"
    try:
        haproxy_target(target, "knobs[0].target")
    except ConfigError as err:
        assert err.field == "knobs[0].target"
        valid = HAPROXY_RULE.fullmatch(backend) and HAPROXY_RULE.fullmatch(server)
        assert not valid or max(len(backend), len(server)) > 255
        with pytest.raises(ApplierError):
            runtime_command("set", "server", target, "weight", weight)
        return
    assert parse_target(target) == (backend, server)
    line = runtime_command("set", "server", target, "weight", weight)
    # The runtime API splits commands on ';' and lines on newlines; words on blanks.
    assert ";" not in line and "\n" not in line and "\r" not in line
    assert line.split() == ["set", "server", target, "weight", str(weight)]
    assert line.split(" ") == line.split()


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1:8000",
        "replica-0.llm.svc.cluster.local:8000",
        "[::1]:8000",
        "[2001:db8::7]:443",
        "unix:/run/vllm/sock",
        "LOCALHOST:1",
    ],
)
def test_addresses_nginx_takes(address):
    assert nginx_server_address(address, "f") == address


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "host:port"),
        ("127.0.0.1:0", "port must be 1..65535"),
        ("127.0.0.1:65536", "port must be 1..65535"),
        ("127.0.0.1:+80", "port must be"),
        ("256.1.1.1:80", "not an IPv4 address"),
        ("::1:80", "IPv6 address must be written"),
        ("[::1%eth0]:80", "IPv6"),
        ("[not-v6]:80", "not an IPv6 address"),
        ("unix:relative/sock", "absolute"),
        ("unix:/run/a b", "absolute"),
        ("host_name:80", "not a host name"),
        ("-lead.example:80", "not a host name"),
        ("a..b:80", "not a host name"),
        ("127.0.0.1:80\n", "port must be"),
    ],
)
def test_addresses_nginx_refuses(address, why):
    with pytest.raises(ConfigError, match=re.escape(why)) as caught:
        nginx_server_address(address, "appliers.ng.servers.r1")
    assert caught.value.field == "appliers.ng.servers.r1"


def test_runtime_command_refuses_anything_but_plain_words():
    assert runtime_command("get", "weight", "llm/r0") == "get weight llm/r0"
    assert runtime_command("show", "stat") == "show stat"
    for word in ("llm/r0;help", "help;", "a b", "x\n", "a/b/c"):
        with pytest.raises(ApplierError, match=r"refusing to send|not a valid HAProxy name"):
            runtime_command("get", "weight", word)
    with pytest.raises(ApplierError, match=r"refusing to send True"):
        runtime_command("set", "server", "llm/r0", "weight", True)


def test_parse_reads_files_written_before_values_were_quoted():
    servers = {"r0": "127.0.0.1:8000", "r1": "127.0.0.1:8001"}
    old = (
        "upstream llm {\n"
        "    server 127.0.0.1:8000 weight=4;  # r0\n"
        "    server 127.0.0.1:8001 down;  # r1\n"
        "}\n"
    )
    assert parse(old, servers, "old") == {"r0": 4, "r1": 0}


SERVERS = {"r0": "127.0.0.1:8000", "r1": "[::1]:8001"}
server_lines = st.sampled_from(
    [
        'server "127.0.0.1:8000" weight=3;  # r0',
        "server 127.0.0.1:8000 down;",
        'server "[::1]:8001" weight=x;',
        "server [::1]:8001 weight=7 max_fails=2;",
        "server 127.0.0.1:8000",
        '    server "127.0.0.1:8000 weight=2;',
    ]
)


@FUZZ
@given(lines=st.lists(server_lines | st.text(max_size=40), max_size=6))
def test_nginx_parse_reads_known_servers_or_names_the_bad_line(lines):
    try:
        weights = parse("\n".join(lines), SERVERS, "up.conf")
    except ApplierError as err:
        assert re.match(r"nginx: up\.conf:\d+: bad weight", str(err))
        return
    assert set(weights) <= set(SERVERS)
    assert all(isinstance(w, int) and w >= 0 for w in weights.values())


stat_rows = st.lists(
    st.tuples(names, names, st.sampled_from(["UP", "DOWN", ""]), st.text(max_size=4)),
    max_size=4,
)


@FUZZ
@given(rows=stat_rows, junk=st.text(max_size=20))
def test_haproxy_show_stat_parses_or_raises_applier_error(rows, junk):
    body = "# pxname,svname,status,weight\n" + "".join(
        f"{b},{s},{st_},{w}\n" for b, s, st_, w in rows
    )
    for text in (body, junk, body + junk):
        try:
            servers = parse_show_stat(text)
        except ApplierError:
            continue
        assert all(isinstance(s.weight, int) for s in servers)
