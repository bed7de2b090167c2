"""Start a real Prometheus (the Debian package's binary) scraping given loopback targets."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.realprocs.common import free_port, stop_process, wait_until

PROMETHEUS_BINARY = "/usr/bin/prometheus"


@dataclass
class PrometheusProcess:
    """A running Prometheus: its base URL and process."""

    url: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path


def available() -> bool:
    """True when the Prometheus binary is installed."""
    return shutil.which(PROMETHEUS_BINARY) is not None


@contextmanager
def running_prometheus(
    workdir: Path,
    targets: list[str],
    *,
    scrape_interval: str = "1s",
    job: str = "test",
    ready_timeout_s: float = 30.0,
) -> Iterator[PrometheusProcess]:
    """Run Prometheus in ``workdir`` scraping ``targets`` (``host:port``); stop it on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    listed = ", ".join(f"'{t}'" for t in targets)
    config.write_text(
        "global:\n"
        f"  scrape_interval: {scrape_interval}\n"
        f"  evaluation_interval: {scrape_interval}\n"
        "scrape_configs:\n"
        f"  - job_name: {job}\n"
        f"    scrape_interval: {scrape_interval}\n"
        f"    static_configs:\n      - targets: [{listed}]\n"
    )
    port = free_port()
    log = workdir / "prometheus.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [
                PROMETHEUS_BINARY,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {log.read_text()[-2000:]}")
            return requests.get(f"{url}/-/ready", timeout=1).status_code == 200

        wait_until(ready, ready_timeout_s, "prometheus")
        yield PrometheusProcess(url=url, port=port, proc=proc, log=log)
    finally:
        stop_process(proc)


def wait_for_scrape(prom: PrometheusProcess, metric: str, timeout_s: float = 15.0) -> None:
    """Wait until Prometheus has stored at least one sample of ``metric``."""

    def has_sample() -> bool:
        reply = requests.get(f"{prom.url}/api/v1/query", params={"query": metric}, timeout=2)
        return bool(reply.json()["data"]["result"])

    wait_until(has_sample, timeout_s, f"a scraped sample of {metric}", step_s=0.2)
