"""The nodetune CLI and status collector against a fixture procfs tree."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest
from prometheus_client.core import Metric

from agent.collectors.base import CollectorError
from agent.nodetune.cli import main, watch
from agent.nodetune.collector import NodetuneCollector
from agent.nodetune.desired import Desired, parse_desired
from agent.nodetune.reconciler import Reconciler

FIXTURES = Path(__file__).parent.parent / "fixtures" / "nodetune"


@pytest.fixture
def procfs(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / "proc", tmp_path / "proc"))


def rmem(procfs: Path) -> str:
    return " ".join((procfs / "sys/net/ipv4/tcp_rmem").read_text().split())


def run(*argv: str) -> int:
    return main(["nodetune", *argv])


def test_apply_dry_run_then_apply_then_rollback(procfs: Path, tmp_path: Path, capsys) -> None:
    common = ["--procfs", str(procfs), "--journal", str(tmp_path / "j.json")]
    desired = str(FIXTURES / "desired.yaml")
    assert run("apply", "--desired", desired, "--dry-run", *common) == 0
    out = capsys.readouterr().out
    assert "would change net.ipv4.tcp_rmem: '4096 131072 6291456' -> '4096 131072 16777216'" in out
    assert rmem(procfs) == "4096 131072 6291456" and not (tmp_path / "j.json").exists()

    assert run("apply", "--desired", desired, *common) == 0
    assert "done: generation 7" in capsys.readouterr().out
    assert rmem(procfs) == "4096 131072 16777216"

    assert run("status", *common) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["journal"]["applied_generation"] == 7
    assert status["current"]["net.ipv4.tcp_rmem"] == "4096 131072 16777216"

    assert run("rollback", *common) == 0
    assert "rolled back: values from before generation 7" in capsys.readouterr().out
    assert rmem(procfs) == "4096 131072 6291456"


def test_invalid_desired_exits_2_and_writes_nothing(procfs: Path, tmp_path: Path, capsys) -> None:
    code = run("apply", "--desired", str(FIXTURES / "bad.yaml"), "--procfs", str(procfs),
               "--journal", str(tmp_path / "j.json"))  # fmt: skip
    assert code == 2
    assert "sysctls.kernel.panic: not in the node-tuning allowlist" in capsys.readouterr().err
    assert rmem(procfs) == "4096 131072 6291456"


def write_projection(root: Path, version: str, generation: int, rmem_max: int) -> None:
    """Lay out a ConfigMap volume as the kubelet does: data dir, ..data symlink swap."""
    data = root / f"..{version}"
    data.mkdir()
    (data / "desired.yaml").write_text(
        f"generation: {generation}\nsysctls:\n  net.ipv4.tcp_rmem: 4096 131072 {rmem_max}\n"
    )
    tmp_link = root / "..data_tmp"
    tmp_link.symlink_to(data.name)
    os.replace(tmp_link, root / "..data")
    if not (root / "desired.yaml").is_symlink():
        (root / "desired.yaml").symlink_to("..data/desired.yaml")


def test_watch_follows_symlink_swaps(procfs: Path, tmp_path: Path) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    write_projection(volume, "v1", 1, 8388608)
    swaps = iter([lambda: write_projection(volume, "v2", 2, 16777216), lambda: None])
    seen: list[str] = []

    def sleep(_: float) -> None:
        seen.append(rmem(procfs))
        next(swaps)()

    out = io.StringIO()
    rec = Reconciler(procfs, tmp_path / "j.json")
    assert watch(rec, volume / "desired.yaml", 1.0, max_iterations=3, sleep=sleep, out=out) == 0
    assert seen == ["4096 131072 8388608", "4096 131072 16777216"]
    assert rmem(procfs) == "4096 131072 16777216"
    assert rec.journal().applied_generation == 2
    assert "done: generation 2" in out.getvalue()


def families(collector: NodetuneCollector) -> dict[str, Metric]:
    collector.refresh()
    return {f.name: f for f in collector.collect()}


def sample(fams: dict[str, Metric], name: str, **labels: str) -> float:
    family = fams[name.removesuffix("_total")]
    for s in family.samples:
        if s.labels == labels and s.name == name:
            return float(s.value)
    raise AssertionError(f"no {name} {labels} in {family.samples}")


def test_collector_reports_values_generations_and_failures(procfs: Path, tmp_path: Path) -> None:
    journal = tmp_path / "j.json"
    collector = NodetuneCollector(procfs, journal)
    fams = families(collector)
    assert (
        sample(fams, "tuneloop_nodetune_sysctl_value", key="net.ipv4.tcp_rmem", field="max")
        == 6291456
    )
    assert (
        sample(
            fams, "tuneloop_nodetune_congestion_control_info", state="current", algorithm="cubic"
        )
        == 1
    )
    assert sample(fams, "tuneloop_nodetune_in_sync") == 0
    assert "tuneloop_nodetune_applied_generation" not in fams

    rec = Reconciler(procfs, journal, clock=lambda: 99.0)
    assert rec.apply(rec_desired(7)).ok
    fams = families(collector)
    assert sample(fams, "tuneloop_nodetune_applied_generation") == 7
    assert sample(fams, "tuneloop_nodetune_desired_generation") == 7
    assert sample(fams, "tuneloop_nodetune_in_sync") == 1
    assert sample(fams, "tuneloop_nodetune_last_apply_timestamp_seconds") == 99.0
    assert (
        sample(fams, "tuneloop_nodetune_desired_value", key="net.ipv4.tcp_rmem", field="max")
        == 16777216
    )
    assert sample(fams, "tuneloop_nodetune_state", state="applied") == 1

    (procfs / "sys/net/ipv4/tcp_rmem").write_text("4096\t131072\t6291456\n")  # drift
    fams = families(collector)
    assert sample(fams, "tuneloop_nodetune_in_sync") == 0


def test_collector_counts_failures_and_fails_on_bad_journal(procfs: Path, tmp_path: Path) -> None:
    journal = tmp_path / "j.json"
    journal.write_text(json.dumps({"version": 1, "state": "failed", "failures": {"verify": 2}}))
    fams = families(NodetuneCollector(procfs, journal))
    assert sample(fams, "tuneloop_nodetune_failures_total", reason="verify") == 2
    journal.write_text("[")
    with pytest.raises(CollectorError, match=r"j\.json"):
        NodetuneCollector(procfs, journal).refresh()


def rec_desired(generation: int) -> Desired:
    return parse_desired(
        {"generation": generation, "sysctls": {"net.ipv4.tcp_rmem": "4096 131072 16777216"}}
    )
