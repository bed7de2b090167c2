import re

import pytest

from tuneloop import validation as v


def test_error_names_the_field_and_reason():
    with pytest.raises(v.ConfigError) as err:
        v.number(-1, "collectors.gpu.interval", positive=True)
    assert str(err.value) == "collectors.gpu.interval: must be a positive number, got -1"
    assert err.value.field == "collectors.gpu.interval"


@pytest.mark.parametrize(
    ("text", "seconds"), [("500ms", 0.5), ("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), (2, 2.0)]
)
def test_durations(text, seconds):
    assert v.duration(text, "x") == seconds


@pytest.mark.parametrize("bad", ["5 minutes", "", "-1s", True, float("nan")])
def test_bad_durations_are_rejected(bad):
    with pytest.raises(v.ConfigError):
        v.duration(bad, "measurement.window")


def test_booleans_are_not_numbers():
    with pytest.raises(v.ConfigError, match="finite number"):
        v.number(True, "x")
    with pytest.raises(v.ConfigError, match="integer"):
        v.integer(True, "x")
    assert v.integer(3.0, "x") == 3
    with pytest.raises(v.ConfigError, match="integer"):
        v.integer(3.5, "x")


def test_unknown_keys_are_named():
    with pytest.raises(v.ConfigError, match=r"^gpu\.backnd: unknown field"):
        v.no_unknown_keys({"backnd": "nvml"}, "gpu", {"backend", "fake_gpus"})


def test_paths_join():
    assert v.join("", "a") == "a"
    assert v.join("a", "b") == "a.b"
    assert v.join("knobs", 2) == "knobs[2]"


@pytest.mark.parametrize(
    "text", ["500ms", "30s", " 5m ", "1h", "2", "0.25s", "5 minutes", "-1s", "1d"]
)
def test_duration_pattern_in_json_schema_agrees_with_the_parser(text):
    accepted = True
    try:
        v.duration(text, "x", positive=False)
    except v.ConfigError:
        accepted = False
    assert (re.fullmatch(v.DURATION_PATTERN, text) is not None) == accepted
