"""Allowlist parsers and the desired-state file: validated, bounded, fuzzed."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.nodetune.allowlist import (
    ALLOWLIST,
    BUFFER_MAX,
    BUFFER_MIN,
    SysctlValueError,
    normalise,
    numeric_fields,
    read_back_equal,
)
from agent.nodetune.desired import DesiredStateError, load_desired, parse_desired

FIXTURES = Path(__file__).parent.parent / "fixtures" / "nodetune"
buffer = st.integers(BUFFER_MIN, BUFFER_MAX)
whitespace = st.sampled_from([" ", "\t", "  ", " \t"])


def test_unknown_key_names_key_and_allowlist() -> None:
    with pytest.raises(SysctlValueError) as err:
        normalise("kernel.panic", "1")
    assert "kernel.panic" in str(err.value)
    for key in ALLOWLIST:
        assert key in str(err.value)


@pytest.mark.parametrize(
    ("key", "text", "canonical"),
    [
        ("net.ipv4.tcp_rmem", "4096\t131072\t6291456", "4096 131072 6291456"),
        ("net.ipv4.tcp_wmem", " 4096 4096 4096 ", "4096 4096 4096"),
        ("net.core.rmem_max", 16777216, "16777216"),
        ("net.core.wmem_max", str(BUFFER_MAX), str(BUFFER_MAX)),
        ("net.core.netdev_max_backlog", "1", "1"),
        ("net.ipv4.tcp_mtu_probing", 2, "2"),
        ("net.ipv4.tcp_congestion_control", "bbr", "bbr"),
    ],
)
def test_valid_values_normalise(key: str, text: object, canonical: str) -> None:
    assert normalise(key, text) == canonical


@pytest.mark.parametrize(
    ("key", "text", "reason"),
    [
        ("net.ipv4.tcp_rmem", "131072 4096 6291456", "min <= default <= max"),
        ("net.ipv4.tcp_rmem", "4096 131072", "3 integer"),
        ("net.ipv4.tcp_rmem", "4096 131072 2147483648", "max 2147483648 is outside"),
        ("net.ipv4.tcp_wmem", "1024 4096 8192", "min 1024 is outside"),
        ("net.ipv4.tcp_wmem", "4096 -1 8192", "'-1' is not a non-negative integer"),
        ("net.core.rmem_max", "4095", "outside 4096"),
        ("net.core.rmem_max", True, "integer"),
        ("net.core.rmem_max", 1.5e6, "string or integer"),
        ("net.ipv4.tcp_mtu_probing", "3", "outside 0..2"),
        ("net.core.netdev_max_backlog", "0", "outside 1.."),
        ("net.ipv4.tcp_congestion_control", "cubic; reboot", "algorithm name"),
    ],
)
def test_bad_values_name_key_and_reason(key: str, text: object, reason: str) -> None:
    with pytest.raises(SysctlValueError) as err:
        normalise(key, text)
    assert str(err.value).startswith(f"{key}: ")
    assert reason in str(err.value)


@given(st.sampled_from(sorted(ALLOWLIST)), st.one_of(st.text(max_size=40), st.integers()))
def test_fuzz_parsers_error_or_canonical(key: str, text: object) -> None:
    """Any input: a clear error naming the key, or a canonical value that is a fixed point."""
    try:
        value = normalise(key, text)
    except SysctlValueError as exc:
        assert str(exc).startswith(f"{key}: ")
        return
    assert normalise(key, value) == value
    assert value == " ".join(value.split())
    if ALLOWLIST[key].fields:  # the numbers are exactly the ones given
        given_ints = [int(t) for t in str(text).split()]
        assert [int(v) for _, v in numeric_fields(key, value)] == given_ints


@given(st.lists(buffer, min_size=3, max_size=3), st.lists(whitespace, min_size=4, max_size=4))
def test_fuzz_triples_roundtrip_any_whitespace(values: list[int], spaces: list[str]) -> None:
    low, default, high = sorted(values)
    text = f"{spaces[0]}{low}{spaces[1]}{default}{spaces[2]}{high}{spaces[3]}"
    canonical = normalise("net.ipv4.tcp_rmem", text)
    assert canonical == f"{low} {default} {high}"
    assert read_back_equal("net.ipv4.tcp_rmem", canonical, f"{low}\t{default}\t{high}\n")
    assert numeric_fields("net.ipv4.tcp_rmem", canonical) == [
        ("min", float(low)),
        ("default", float(default)),
        ("max", float(high)),
    ]


def test_load_yaml_and_json_fixtures() -> None:
    yaml_state = load_desired(FIXTURES / "desired.yaml")
    assert yaml_state.generation == 7
    assert yaml_state.sysctls["net.ipv4.tcp_rmem"] == "4096 131072 16777216"
    assert yaml_state.sysctls["net.core.rmem_max"] == "16777216"
    json_state = load_desired(FIXTURES / "desired.json")
    assert json_state.generation == 3
    assert json_state.sysctls == {
        "net.ipv4.tcp_congestion_control": "reno",
        "net.core.netdev_max_backlog": "5000",
    }


def test_bad_file_reports_every_problem_with_file_name() -> None:
    with pytest.raises(DesiredStateError) as err:
        load_desired(FIXTURES / "bad.yaml")
    message = str(err.value)
    assert str(FIXTURES / "bad.yaml") in message
    for part in (
        "colour: unknown field",
        "generation: must be a non-negative integer",
        "sysctls.net.ipv4.tcp_rmem: needs min <= default <= max",
        "sysctls.kernel.panic: not in the node-tuning allowlist",
        "sysctls.net.ipv4.tcp_mtu_probing: value 3 is outside 0..2",
    ):
        assert part in message


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ([], "must be a mapping"),
        ({"generation": 1}, "sysctls: must be a mapping"),
        ({"generation": 1, "sysctls": ["net.core.rmem_max"]}, "sysctls: must be a mapping"),
        ({"generation": True, "sysctls": {"net.ipv4.tcp_mtu_probing": 1}}, "generation"),
    ],
)
def test_parse_desired_rejects_shapes(data: object, reason: str) -> None:
    with pytest.raises(DesiredStateError, match=reason):
        parse_desired(data, "cm")


def test_empty_desired_state_changes_nothing() -> None:
    assert parse_desired({"generation": 0, "sysctls": {}}, "cm").sysctls == {}


def test_unparseable_file_names_file(tmp_path: Path) -> None:
    path = tmp_path / "desired.yaml"
    path.write_text("generation: [1\n")
    with pytest.raises(DesiredStateError, match=r"desired\.yaml: not valid YAML or JSON"):
        load_desired(path)
    with pytest.raises(DesiredStateError, match="cannot read"):
        load_desired(tmp_path / "missing.yaml")
