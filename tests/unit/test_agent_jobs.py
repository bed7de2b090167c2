import shutil
import threading
import time
from pathlib import Path

from agent.config import parse_config
from agent.jobs import start_jobs

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nodetune"


def test_serve_reconciles_the_desired_sysctls_in_the_background(tmp_path):
    procfs = tmp_path / "proc"
    shutil.copytree(FIXTURES / "proc", procfs)
    config = parse_config(
        {
            "procfs": str(procfs),
            "state_dir": str(tmp_path),
            "collectors": {"nodetune": {"enabled": True, "interval": 0.2}},
            "nodetune": {"desired": str(FIXTURES / "desired.yaml")},
        }
    )
    stop = threading.Event()
    (job,) = start_jobs(config, stop)
    rmem = procfs / "sys" / "net" / "ipv4" / "tcp_rmem"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and rmem.read_text().split() != [
        "4096",
        "131072",
        "16777216",
    ]:
        time.sleep(0.05)
    stop.set()
    assert rmem.read_text().split() == ["4096", "131072", "16777216"]
    assert (tmp_path / "nodetune-journal.json").exists()
    assert job.name == "nodetune" and job.daemon


def test_no_jobs_unless_configured(tmp_path):
    config = parse_config({"state_dir": str(tmp_path)})
    assert start_jobs(config, threading.Event()) == []


def test_a_broken_fabric_schedule_is_logged_not_fatal(tmp_path, caplog):
    schedule = tmp_path / "schedule.json"
    schedule.write_text("[]")
    config = parse_config(
        {
            "state_dir": str(tmp_path),
            "bench": {"fabric_schedule": str(schedule), "fabric_host": "n1"},
        }
    )
    assert start_jobs(config, threading.Event()) == []
    assert "fabric check not started" in caplog.text
