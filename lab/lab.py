"""The local lab: replicas, HAProxy and nginx, the agent, Prometheus, and load, on loopback.

Decisions:
- One directory per lab holds every config, log and data directory, and ``lab.json``, the state
  file listing every process (pid, start time, argv, log, ports). The state file is rewritten
  after each process starts, so a crash half-way through ``up()`` still leaves a complete list;
  ``down()`` stops every listed process that is still the same process, and ``up()`` first cleans
  up whatever a previous run in the same directory left behind (a crashed test, a forgotten lab).
- Ports are consecutive from ``base_port`` when one is given (documented order below, so a user
  can predict them), else free ports picked at start.
- HAProxy serves two frontends over the same replicas: ``llm`` (weighted round robin, the one the
  tuner changes) and ``llm_leastconn`` (least connections, the baseline users have today).
- Replica servers are named ``r0``, ``r1``, ... in the order of ``replicas``; the experiment
  templates under ``examples/lab-*.yaml`` use those names and ``${...}`` placeholders that
  :meth:`Lab.render_experiment` fills with this lab's addresses.
- Prometheus sees the lab as one node of one cluster: every target carries ``cluster`` (the
  config's) and ``node`` (this host's name) labels, the agent's own labels win (as with the
  ServiceMonitor's ``honorLabels``), and the generated rules (``alerts/rules.yaml``) are loaded so
  recording rules exist. The tuner's metrics reach it the way a CronJob's do: ``tuneloop tune
  --metrics-file ${metrics_file}`` writes a textfile that node_exporter's textfile collector serves.
- The agent runs every read-only collector; ``sysfs``/``procfs`` point it at a fixture node (RDMA
  ports, NUMA nodes, GPU processes) instead of this machine's, and ``pod_resources_socket`` at a
  kubelet pod-resources socket that names the GPU processes' pods.
"""

from __future__ import annotations

import json
import os
import socket
import string
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lab import haproxy_conf, nginx_conf, programs, prometheus_conf
from lab.config import (
    BALANCERS,
    FAKE_GPUS,
    PORT_NAMES,
    STATE_FILE,
    TEXTFILE,
    LabConfig,
    LabError,
    LabState,
)
from lab.processes import ProcRecord, free_port, port_free, stop_record
from tuner.appliers.nginx import render as render_upstream
from tuner.sim.profiles import PROFILES

__all__ = ["BALANCERS", "FAKE_GPUS", "Lab", "LabConfig", "LabError", "LabState", "running_lab"]


class Lab:
    """Start, stop and describe one lab living in ``config.directory``."""

    def __init__(self, config: LabConfig) -> None:
        self.config = config
        self.dir = Path(config.directory).resolve()
        self.state_path = self.dir / STATE_FILE
        self.state = LabState(balancer=config.balancer)
        self.running: dict[str, programs.Running] = {}

    # addresses ------------------------------------------------------------------------------
    def port(self, name: str) -> int:
        return self.state.ports[name]

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port(name)}"

    @property
    def servers(self) -> dict[str, str]:
        """Replica server name -> ``127.0.0.1:port``."""
        return {n: f"127.0.0.1:{self.port(n)}" for n in self.state.replicas}

    @property
    def metrics_file(self) -> Path:
        """Where ``tuneloop tune --metrics-file`` writes for the lab's Prometheus to see it."""
        return self.dir / "textfile" / TEXTFILE

    def values(self) -> dict[str, str]:
        """Placeholders for experiment templates."""
        nginx = nginx_conf.NginxPaths(self.dir / "nginx")
        out = {f"{name}_port": str(port) for name, port in self.state.ports.items()}
        out.update(
            prometheus=self.url("prometheus") if "prometheus" in self.state.ports else "",
            haproxy_admin=f"127.0.0.1:{self.state.ports.get('haproxy_admin', 0)}",
            nginx_dir=str(nginx.prefix),
            nginx_conf=str(nginx.conf),
            nginx_pid=str(nginx.pid_file),
            nginx_error_log=str(nginx.error_log),
            nginx_upstream=str(nginx.upstream_file),
            nginx_binary=programs.NGINX_BINARY,
            nginx_verify=f"http://127.0.0.1:{self.state.ports.get('nginx', 0)}/tuneloop/upstream",
            metrics_file=str(self.metrics_file),
        )
        for name, address in self.servers.items():
            out[f"{name}_address"] = address
            out[f"{name}_speed"] = f"{PROFILES[self.state.replicas[name]].speed:g}"
        return out

    def render_experiment(self, template: Path, out: Path | None = None) -> Path:
        """Fill a template's ``${...}`` placeholders; KeyError-free: unknown ones are an error."""
        try:
            # ``$schema`` is the editor's schema line (``# yaml-language-server: $schema=...``).
            text = string.Template(template.read_text()).substitute(self.values(), schema="$schema")
        except KeyError as exc:
            raise LabError(f"{template}: unknown placeholder ${{{exc.args[0]}}}") from None
        except ValueError as exc:
            raise LabError(f"{template}: bad placeholder: {exc}") from None
        out = out or self.dir / "experiments" / template.name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        return out

    # state ----------------------------------------------------------------------------------
    def _save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state.to_json(), indent=2) + "\n")
        os.replace(tmp, self.state_path)

    def _track(self, run: programs.Running) -> programs.Running:
        self.running[run.record.name] = run
        self.state.processes.append(run.record)
        self._save()
        return run

    def _allocate(self) -> None:
        names = [f"r{i}" for i in range(len(self.config.replicas))] + list(PORT_NAMES)
        base = self.config.base_port
        ports = {n: (base + i if base is not None else free_port()) for i, n in enumerate(names)}
        busy = [f"{n}={p}" for n, p in ports.items() if not port_free(p)]
        if busy:
            raise LabError(f"base_port: ports already in use: {', '.join(busy)}")
        self.state.ports = ports
        self.state.replicas = {f"r{i}": p for i, p in enumerate(self.config.replicas)}

    # lifecycle ------------------------------------------------------------------------------
    def up(self) -> LabState:
        """Clean up any previous lab in the directory, then start everything; down() on failure."""
        self.config.validate()
        self.down()
        self.state = LabState(balancer=self.config.balancer)
        self._allocate()
        self._save()
        try:
            self._start_all()
        except BaseException:
            self.down()
            raise
        return self.state

    def _start_all(self) -> None:
        cfg, logs, dwp = self.config, self.dir / "logs", self.config.die_with_parent
        for name, prof in self.state.replicas.items():
            self._track(
                programs.start_replica(
                    name,
                    prof,
                    self.port(name),
                    log=logs / f"{name}.log",
                    batch_limit=cfg.batch_limit,
                    die_with_parent=dwp,
                )
            )
        if cfg.balancer in ("haproxy", "both"):
            self._start_haproxy()
        if cfg.balancer in ("nginx", "both"):
            self._start_nginx()
        jobs: dict[str, list[str]] = {
            "replicas": list(self.servers.values()),
            "haproxy": [f"127.0.0.1:{self.port('haproxy_exporter')}"]
            if cfg.balancer in ("haproxy", "both")
            else [],
            "loadgen": [f"127.0.0.1:{self.port('loadgen')}"],
        }
        if cfg.agent:
            targets = {n: f"http://{a}/metrics" for n, a in self.servers.items()}
            self._track(
                programs.start_agent(
                    self.port("agent"),
                    Path(cfg.fake_gpus),
                    targets,
                    self.dir / "agent",
                    log=logs / "agent.log",
                    die_with_parent=dwp,
                    sysfs=cfg.sysfs,
                    procfs=cfg.procfs,
                    pod_resources_socket=cfg.pod_resources_socket,
                )
            )
            jobs["agent"] = [f"127.0.0.1:{self.port('agent')}"]
        if cfg.tuner_metrics:
            self.metrics_file.parent.mkdir(parents=True, exist_ok=True)
            self._track(
                programs.start_node_exporter(
                    self.metrics_file.parent,
                    self.port("tuner_metrics"),
                    log=logs / "node_exporter.log",
                    die_with_parent=dwp,
                )
            )
            jobs["tuner"] = [f"127.0.0.1:{self.port('tuner_metrics')}"]
        prom = self.dir / "prometheus"
        prom.mkdir(parents=True, exist_ok=True)
        conf = prometheus_conf.render(
            jobs,
            cfg.scrape_interval_s,
            labels={"cluster": cfg.cluster, "node": socket.gethostname()},
            honor_labels=("agent",),
            rule_files=cfg.rule_files,
        )
        (prom / "prometheus.yml").write_text(conf)
        self._track(
            programs.start_prometheus(
                prom / "prometheus.yml",
                prom / "data",
                self.port("prometheus"),
                log=logs / "prometheus.log",
                die_with_parent=dwp,
            )
        )

    def _start_haproxy(self) -> None:
        servers = tuple(haproxy_conf.Server(n, a, 16) for n, a in self.servers.items())
        text = haproxy_conf.render(
            [
                haproxy_conf.Frontend("fe_llm", self.port("haproxy"), "llm"),
                haproxy_conf.Frontend(
                    "fe_llm_leastconn", self.port("haproxy_leastconn"), "llm_leastconn"
                ),
            ],
            [
                haproxy_conf.Backend("llm", servers, "roundrobin"),
                haproxy_conf.Backend("llm_leastconn", servers, "leastconn"),
            ],
            haproxy_conf.RuntimeApi(self.port("haproxy_admin"), self.port("haproxy_user")),
            exporter_port=self.port("haproxy_exporter"),
            timeout_server_s=60,
            timeout_client_s=60,
        )
        conf = self.dir / "haproxy" / "haproxy.cfg"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(text)
        programs.check_haproxy_config(conf)
        self._track(
            programs.start_haproxy(
                conf,
                self.port("haproxy_admin"),
                log=self.dir / "logs" / "haproxy.log",
                die_with_parent=self.config.die_with_parent,
            )
        )

    def _start_nginx(self) -> None:
        paths = nginx_conf.NginxPaths(self.dir / "nginx")
        paths.make_dirs()
        paths.upstream_file.write_text(
            render_upstream("llm", self.servers, dict.fromkeys(self.servers, 16))
        )
        paths.conf.write_text(nginx_conf.render(paths, self.port("nginx"), "llm"))
        self._track(
            programs.start_nginx(
                paths.conf,
                paths.prefix,
                self.port("nginx"),
                paths.pid_file,
                paths.error_log,
                log=self.dir / "logs" / "nginx.log",
                die_with_parent=self.config.die_with_parent,
            )
        )

    def start_load(self, args: Sequence[str], name: str = "loadgen") -> programs.Running:
        """Start the load generator (``lab.loadgen`` options) with /metrics on the lab's
        loadgen port; tracked in the state file like every other process."""
        self.stop(name)
        return self._track(
            programs.start_loadgen(
                list(args),
                self.port("loadgen"),
                log=self.dir / "logs" / f"{name}.log",
                name=name,
                die_with_parent=self.config.die_with_parent,
            )
        )

    def record(self, name: str) -> ProcRecord:
        for rec in self.state.processes:
            if rec.name == name:
                return rec
        raise LabError(f"no process called {name!r} in this lab")

    def stop(self, name: str) -> bool:
        """Stop one named process if it runs; True when it did."""
        for rec in list(self.state.processes):
            if rec.name == name:
                stop_record(rec)
                self.state.processes.remove(rec)
                run = self.running.pop(name, None)
                if run is not None and run.proc.poll() is None:
                    run.proc.wait(5)
                self._save()
                return True
        return False

    def down(self) -> list[str]:
        """Stop every recorded process (newest first), remove the state file; names stopped."""
        if self.state_path.exists():
            self.state = LabState.load(self.state_path)
        stopped = []
        for rec in reversed(self.state.processes):
            if stop_record(rec):
                stopped.append(rec.name)
        for run in self.running.values():
            if run.proc.poll() is None:
                run.stop()
        self.running.clear()
        self.state.processes = []
        if self.state_path.exists():
            self.state_path.unlink()
        return stopped

    def status(self) -> dict[str, Any]:
        """Each recorded process with whether it still runs, and the lab's ports."""
        state = LabState.load(self.state_path) if self.state_path.exists() else self.state
        return {
            "directory": str(self.dir),
            "up": self.state_path.exists(),
            "ports": dict(state.ports),
            "replicas": dict(state.replicas),
            "processes": [
                {"name": p.name, "pid": p.pid, "alive": p.alive(), "log": p.log, "ports": p.ports}
                for p in state.processes
            ],
        }


@contextmanager
def running_lab(config: LabConfig) -> Iterator[Lab]:
    """A lab for the length of a ``with`` block (the pytest fixture's body); always torn down."""
    lab = Lab(config)
    lab.up()
    try:
        yield lab
    finally:
        lab.down()
