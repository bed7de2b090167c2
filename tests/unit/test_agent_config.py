from pathlib import Path

import pytest

from agent.cli import build_parser, overrides_from_flags
from agent.config import load_config, parse_config
from tuneloop.validation import ConfigError


def test_defaults_suit_a_gpu_node():
    config = parse_config({})
    assert config.listen == ":9450"
    assert config.sysfs == Path("/sys") and config.procfs == Path("/proc")
    assert config.collectors["gpu"].enabled and config.collectors["gpu"].interval == 5
    assert not config.collectors["nodetune"].enabled
    assert config.gpu.backend == "nvml"
    assert not config.gpu.process_metrics  # the pid family is opt-in


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"collectors": {"gpu": {"interval": -1}}}, "collectors.gpu.interval: must be"),
        ({"collectors": {"gpu": {"interval": 5, "deadline": 9}}}, "collectors.gpu.deadline"),
        ({"collectors": {"gpus": {}}}, "collectors.gpus: unknown field"),
        ({"gpu": {"backend": "fake"}}, "gpu.fake_gpus: required"),
        ({"gpu": {"backend": "cuda"}}, "gpu.backend: must be one of nvml, fake"),
        ({"listen": "9450"}, "listen: listen address must be HOST:PORT"),
        (
            {"inference": {"targets": [{"name": "a", "url": "ftp://x"}]}},
            r"inference.targets\[0\].url",
        ),
        (
            {
                "inference": {
                    "targets": [{"name": "a", "url": "http://x"}, {"name": "a", "url": "http://y"}]
                }
            },
            r"inference.targets\[1\].name: duplicate",
        ),
        ({"inference": {"discover_pods": True}}, "inference.node_name: required"),
        ({"bench": {"iperf3_port": 70000}}, "bench.iperf3_port: must be <= 65535"),
    ],
)
def test_errors_name_the_field(raw, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(raw)


def test_flags_override_the_file(tmp_path):
    config_file = tmp_path / "agent.yaml"
    config_file.write_text("listen: ':9000'\ncollectors:\n  gpu:\n    interval: 10\n")
    args = build_parser().parse_args(
        [
            "serve",
            "--config",
            str(config_file),
            "--listen",
            "127.0.0.1:9451",
            "--collectors",
            "net,numa",
            "--interval",
            "net=2",
            "--inference-target",
            "vllm-0=http://127.0.0.1:8000/metrics",
            "--gpu-process-metrics",
        ]
    )
    config = load_config(args.config, overrides_from_flags(args))
    assert config.listen == "127.0.0.1:9451"
    enabled = sorted(n for n, s in config.collectors.items() if s.enabled)
    assert enabled == ["net", "numa"]
    assert config.collectors["net"].interval == 2
    assert config.collectors["gpu"].interval == 10
    assert config.inference.targets[0].name == "vllm-0"
    assert config.gpu.process_metrics


def test_bad_flag_values_are_named():
    args = build_parser().parse_args(["serve", "--collectors", "gpu,disk"])
    with pytest.raises(ConfigError, match="--collectors: unknown collector 'disk'"):
        overrides_from_flags(args)


def test_unreadable_or_bad_yaml_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("listen: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_fabric_check_needs_a_host_name(monkeypatch, tmp_path):
    monkeypatch.delenv("NODE_NAME", raising=False)
    with pytest.raises(ConfigError, match=r"bench\.fabric_host: required"):
        parse_config({"bench": {"fabric_schedule": str(tmp_path / "s.json")}})
    monkeypatch.setenv("NODE_NAME", "gpu-7")
    config = parse_config({"bench": {"fabric_schedule": str(tmp_path / "s.json")}})
    assert config.bench.fabric_host == "gpu-7"


def test_derived_defaults_follow_state_dir_and_collector(monkeypatch):
    monkeypatch.setenv("NODE_NAME", "gpu-3")
    raw = {"state_dir": "/data/tl", "collectors": {"numa": {"interval": "10s"}}}
    config = parse_config(raw)
    assert config.bench.results == Path("/data/tl/bench.jsonl")
    assert config.nodetune.journal == Path("/data/tl/nodetune-journal.json")
    assert config.collectors["numa"].interval == 10 and config.collectors["numa"].deadline == 8
    assert config.collectors["bench"].interval == 15 and config.collectors["bench"].enabled
    assert list(config.collectors) == [
        "gpu",
        "numa",
        "rdma",
        "net",
        "inference",
        "bench",
        "nodetune",
    ]
    assert config.inference.node_name == "gpu-3" and config.source == raw
    assert config.nodetune.desired is None and config.gpu.fake_gpus is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"listn": ":9450"}, r"^listn: unknown field \(allowed: bench, collectors, gpu,"),
        ({"collectors": {"gpu": {"enabled": "yes"}}}, "collectors.gpu.enabled: must be true"),
        ({"gpu": {"backend": "fake", "fake_gpus": "/no/such.json"}}, "gpu.fake_gpus: no such"),
        ({"inference": {"targets": [{"url": "http://x"}]}}, r"targets\[0\]\.name: is required"),
        ({"inference": {"targets": {"a": "http://x"}}}, "inference.targets: must be a list"),
        ({"log_level": "loud"}, "log_level: must be one of debug, info, warning, error"),
        ({"nodetune": {"dry_run": 1}}, "nodetune.dry_run: must be true or false"),
    ],
)
def test_more_errors_name_the_field(raw, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(raw)
