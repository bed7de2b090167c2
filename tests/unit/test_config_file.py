"""The one YAML loader: every failure is one line naming the file."""

from __future__ import annotations

import pytest

from agent.config import load_config
from agent.nodetune.desired import DesiredStateError, load_desired
from tuneloop.config_file import parse_mapping, read_mapping
from tuneloop.validation import ConfigError
from tuner.controller_config import load_controller_config
from tuner.spec import load_experiment

LOADERS = [load_experiment, load_controller_config, load_config]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"name: [unclosed\n", "not valid YAML"),
        (b"- a\n- b\n", "must hold a mapping at the top level, got list"),
        (b"just text\n", "must hold a mapping at the top level, got str"),
        (b"name: caf\xe9\n", "cannot read: not UTF-8 text"),
    ],
)
@pytest.mark.parametrize("load", LOADERS)
def test_bad_files_are_one_line_errors_naming_the_file(tmp_path, load, content, reason):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load(path)
    assert err.value.field == str(path)
    assert reason in err.value.reason
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("load", LOADERS)
def test_missing_file_names_the_file(tmp_path, load):
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot read: No such file"):
        load(tmp_path / "missing.yaml")


def test_empty_document_reads_as_empty_mapping(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n")
    assert read_mapping(path) == {}
    assert load_config(path).listen == ":9450"
    with pytest.raises(ConfigError, match=r"^name: is required"):
        load_experiment(path)


def test_desired_state_keeps_its_own_error_type(tmp_path):
    path = tmp_path / "desired.yaml"
    path.write_bytes(b"generation: 1\nsysctls: {net.core.rmem_max: \xff}\n")
    with pytest.raises(DesiredStateError, match=r"desired\.yaml: cannot read: not UTF-8"):
        load_desired(path)
    path.write_text("[1, 2]\n")
    with pytest.raises(DesiredStateError, match="must hold a mapping at the top level"):
        load_desired(path)


def test_parse_mapping_names_its_origin():
    with pytest.raises(ConfigError) as err:
        parse_mapping("a: [1\n", "<flags>", syntax="YAML or JSON")
    assert str(err.value).startswith("<flags>: not valid YAML or JSON: ")
