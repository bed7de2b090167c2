"""Launchers for each real program the lab runs, with the readiness check that fits it.

Each ``start_*`` renders nothing itself (the ``*_conf`` modules do); it starts the program through
:func:`lab.processes.spawn` and waits until it serves: HAProxy's runtime API port, nginx's
listening port and pid file, Prometheus's ``/-/ready``, an HTTP 200 on a replica's ``/health``,
the agent's or load generator's ``/metrics``. A program that exits while starting raises at once
with the tail of its log.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from lab.processes import ProcRecord, exited, port_open, spawn, stop_group, wait_until

HAPROXY_BINARY = "/usr/sbin/haproxy"
NGINX_BINARY = "/usr/sbin/nginx"
PROMETHEUS_BINARY = "/usr/bin/prometheus"
NODE_EXPORTER_BINARY = "/usr/bin/prometheus-node-exporter"
AGENT_COLLECTORS = ("gpu", "numa", "rdma", "net", "inference", "bench")


@dataclass
class Running:
    """A started program: its Popen (when it is our child) and its record."""

    proc: subprocess.Popen[bytes]
    record: ProcRecord

    def stop(self, timeout_s: float = 5.0) -> None:
        stop_group(self.record.pid, timeout_s)
        if self.proc.poll() is None:
            self.proc.wait(timeout=timeout_s)


def available(binary: str) -> bool:
    """True when ``binary`` is installed."""
    return shutil.which(binary) is not None


def _wait(
    run: Running,
    check: Callable[[], bool],
    timeout_s: float,
    what: str,
    *,
    may_finish: bool = False,
) -> Running:
    """Wait for ``check``; a program that exits first is an error (unless ``may_finish`` and it
    exited with status 0: a bounded program that already did its work)."""

    def ready() -> bool:
        if may_finish and run.proc.poll() == 0:
            return True
        err = exited(run.proc, run.record)
        if err is not None:
            raise err
        return check()

    try:
        wait_until(ready, timeout_s, what)
    except BaseException:
        run.stop()
        raise
    return run


def _http_ok(url: str) -> bool:
    return requests.get(url, timeout=1).status_code == 200


def start_haproxy(
    config: Path,
    admin_port: int,
    *,
    log: Path,
    die_with_parent: bool = False,
    socket_path: Path | None = None,
    timeout_s: float = 10.0,
) -> Running:
    """HAProxy in the foreground (``-db``) with ``config``; ready when the runtime API answers."""
    run = Running(
        *spawn(
            "haproxy",
            [HAPROXY_BINARY, "-db", "-f", str(config)],
            log,
            die_with_parent=die_with_parent,
            ports={"admin": admin_port},
        )
    )

    def ready() -> bool:
        return port_open(admin_port) and (socket_path is None or socket_path.exists())

    return _wait(run, ready, timeout_s, "haproxy")


def check_haproxy_config(config: Path) -> None:
    """``haproxy -c``; ValueError with HAProxy's message when the file is invalid."""
    out = subprocess.run(
        [HAPROXY_BINARY, "-c", "-f", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if out.returncode != 0:
        raise ValueError(f"{config}: haproxy -c failed: {(out.stdout + out.stderr).strip()}")


def start_nginx(
    conf: Path,
    prefix: Path,
    port: int,
    pid_file: Path,
    error_log: Path,
    *,
    log: Path,
    die_with_parent: bool = False,
    timeout_s: float = 10.0,
) -> Running:
    """nginx (``daemon off``) from ``conf``; ready when it listens and wrote its pid file."""
    argv = [NGINX_BINARY, "-c", str(conf), "-p", str(prefix), "-e", str(error_log)]
    run = Running(*spawn("nginx", argv, log, die_with_parent=die_with_parent, ports={"http": port}))
    return _wait(run, lambda: port_open(port) and pid_file.exists(), timeout_s, "nginx")


def start_prometheus(
    config: Path,
    data_dir: Path,
    port: int,
    *,
    log: Path,
    die_with_parent: bool = False,
    timeout_s: float = 30.0,
) -> Running:
    """Prometheus on ``127.0.0.1:port``; ready when ``/-/ready`` answers 200."""
    argv = [
        PROMETHEUS_BINARY,
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1h",
    ]
    run = Running(
        *spawn("prometheus", argv, log, die_with_parent=die_with_parent, ports={"http": port})
    )
    return _wait(run, lambda: _http_ok(f"http://127.0.0.1:{port}/-/ready"), timeout_s, "prometheus")


def python_module(module: str, *args: str) -> list[str]:
    """argv running ``python -m module args`` with this interpreter (no PATH lookup)."""
    return [sys.executable, "-m", module, *args]


def start_replica(
    name: str,
    profile: str,
    port: int,
    *,
    batch_limit: int,
    log: Path,
    die_with_parent: bool = False,
    timeout_s: float = 20.0,
) -> Running:
    """A ``tuneloop sim replica`` process; ready when ``/health`` answers."""
    argv = python_module(
        "lab",
        "sim",
        "replica",
        "--profile",
        profile,
        "--port",
        str(port),
        "--batch-limit",
        str(batch_limit),
    )
    run = Running(*spawn(name, argv, log, die_with_parent=die_with_parent, ports={"http": port}))
    return _wait(run, lambda: _http_ok(f"http://127.0.0.1:{port}/health"), timeout_s, name)


def start_agent(
    port: int,
    fake_gpus: Path,
    targets: dict[str, str],
    state_dir: Path,
    *,
    log: Path,
    die_with_parent: bool = False,
    timeout_s: float = 30.0,
    sysfs: Path | None = None,
    procfs: Path | None = None,
    pod_resources_socket: Path | None = None,
    collectors: tuple[str, ...] = AGENT_COLLECTORS,
) -> Running:
    """``tuneloop-agent serve`` with fake GPUs and the replicas as inference targets; host trees
    from ``sysfs``/``procfs`` when given (a fixture node), else the agent's defaults. The
    inference collector runs every second, as often as Prometheus scrapes the lab: the lab's
    short measurement windows and SLO checks (a few seconds) then always see a fresh counter,
    where the agent's 5 s default would leave a rate over a 4 s check at zero, read as no data."""
    argv = python_module(
        "agent.cli",
        "serve",
        "--listen",
        f"127.0.0.1:{port}",
        "--gpu-backend",
        "fake",
        "--fake-gpus",
        str(fake_gpus),
        "--state-dir",
        str(state_dir),
        "--collectors",
        ",".join(collectors),
        "--interval",
        "inference=1",
    )
    if sysfs is not None:
        argv += ["--sysfs", str(sysfs)]
    if procfs is not None:
        argv += ["--procfs", str(procfs)]
    argv.append("--gpu-process-metrics")  # the lab shows the opt-in per-process family too
    if pod_resources_socket is not None:
        argv += ["--pod-resources-socket", str(pod_resources_socket)]
    for name, url in targets.items():
        argv += ["--inference-target", f"{name}={url}"]
    run = Running(*spawn("agent", argv, log, die_with_parent=die_with_parent, ports={"http": port}))
    return _wait(run, lambda: _http_ok(f"http://127.0.0.1:{port}/metrics"), timeout_s, "agent")


def start_node_exporter(
    textfile_dir: Path,
    port: int,
    *,
    log: Path,
    die_with_parent: bool = False,
    timeout_s: float = 20.0,
) -> Running:
    """node_exporter serving only its textfile collector over ``textfile_dir``, where a one-shot
    ``tuneloop tune --metrics-file`` writes the tuner's metrics; ready when /metrics answers."""
    argv = [
        NODE_EXPORTER_BINARY,
        f"--web.listen-address=127.0.0.1:{port}",
        "--collector.disable-defaults",
        "--collector.textfile",
        f"--collector.textfile.directory={textfile_dir}",
    ]
    run = Running(
        *spawn("node_exporter", argv, log, die_with_parent=die_with_parent, ports={"http": port})
    )
    url = f"http://127.0.0.1:{port}/metrics"
    return _wait(run, lambda: _http_ok(url), timeout_s, "node_exporter")


def start_loadgen(
    argv_tail: list[str],
    metrics_port: int,
    *,
    log: Path,
    die_with_parent: bool = False,
    timeout_s: float = 20.0,
    name: str = "loadgen",
) -> Running:
    """The load generator process; ready when its ``/metrics`` answers."""
    argv = python_module("lab.loadgen", "--metrics-port", str(metrics_port), *argv_tail)
    run = Running(
        *spawn(name, argv, log, die_with_parent=die_with_parent, ports={"metrics": metrics_port})
    )
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    return _wait(run, lambda: _http_ok(url), timeout_s, name, may_finish=True)
