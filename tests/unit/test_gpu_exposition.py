import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from agent.collectors.gpu import GpuCollector
from agent.nvml import load_nvml

TESTS = Path(__file__).resolve().parents[1]
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


@pytest.mark.integration
@pytest.mark.parametrize("fixture", ["two_gpus", "faulty_gpus", "eight_gpus"])
def test_exposition_passes_promtool_check_metrics(fixture):
    nvml = load_nvml("fake", TESTS / "fixtures" / "gpu" / f"{fixture}.json")
    collector = GpuCollector(
        nvml, TESTS / "fixtures" / "node" / "sys", TESTS / "fixtures" / "node" / "proc"
    )
    collector.refresh()
    collector.refresh()
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry)
    assert b"tuneloop_gpu_info{" in text
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert result.stdout.strip() == b"" and result.stderr.strip() == b""  # no lint findings


@pytest.mark.integration
def test_promtool_does_flag_a_bad_exposition():
    """The check above can fail: promtool rejects a counter without the _total suffix."""
    bad = b"# HELP x_bytes Some bytes.\n# TYPE x_bytes counter\nx_bytes 1\n"
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=bad, capture_output=True, timeout=30, check=False
    )
    assert result.returncode != 0
