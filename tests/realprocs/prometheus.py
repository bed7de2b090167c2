"""Start a real Prometheus (the Debian package's binary) scraping given loopback targets."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from lab import programs, prometheus_conf
from lab.processes import free_port, wait_until

PROMETHEUS_BINARY = programs.PROMETHEUS_BINARY


@dataclass
class PrometheusProcess:
    """A running Prometheus: its base URL and process."""

    url: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path


def available() -> bool:
    """True when the Prometheus binary is installed."""
    return programs.available(PROMETHEUS_BINARY)


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
    config.write_text(prometheus_conf.render({job: targets}, _seconds(scrape_interval)))
    port = free_port()
    log = workdir / "prometheus.log"
    run = programs.start_prometheus(
        config, workdir / "data", port, log=log, die_with_parent=True, timeout_s=ready_timeout_s
    )
    try:
        yield PrometheusProcess(url=f"http://127.0.0.1:{port}", port=port, proc=run.proc, log=log)
    finally:
        run.stop()


def _seconds(text: str) -> float:
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    if text.endswith("s"):
        return float(text[:-1])
    raise ValueError(f"scrape_interval: want e.g. '1s' or '500ms', got {text!r}")


def wait_for_scrape(prom: PrometheusProcess, metric: str, timeout_s: float = 15.0) -> None:
    """Wait until Prometheus has stored at least one sample of ``metric``."""

    def has_sample() -> bool:
        reply = requests.get(f"{prom.url}/api/v1/query", params={"query": metric}, timeout=2)
        return bool(reply.json()["data"]["result"])

    wait_until(has_sample, timeout_s, f"a scraped sample of {metric}", step_s=0.2)


def query(url: str, promql: str) -> list[dict[str, Any]]:
    """The result vector of an instant query (an HTTP error raises)."""
    reply = requests.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5)
    reply.raise_for_status()
    result: list[dict[str, Any]] = reply.json()["data"]["result"]
    return result


def wait_for_result(url: str, promql: str, timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """Poll an instant query until it returns something; [] after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = query(url, promql)
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.25)
