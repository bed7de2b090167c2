"""``tuneloop-agent``: the node agent's command line.

Design decisions:

- Logging is configured once, here in ``main``: ``--log-format text|json`` and ``--log-level``
  before or after the command; the level falls back to the config file's ``log_level``.
- ``serve`` binds its port before anything starts, and every start-up failure (a port in use,
  a config or web config file that cannot be read, is not UTF-8 or is invalid) is one line,
  ``error: ...``, and a non-zero exit: never a traceback.
- ``--web-config-file`` takes the Prometheus exporter-toolkit format (``agent.webconfig``):
  TLS, client certificates and basic auth for the agent's endpoints.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.assemble import build_runners
from agent.config import COLLECTORS, AgentConfig, load_config
from agent.exporter import Exporter, build_exposition, make_app
from agent.jobs import start_jobs
from agent.scheduler import Scheduler
from agent.webconfig import WebConfigError, bcrypt_verify, load_web_config, require_basic_auth
from tuneloop import __version__
from tuneloop.logs import FORMATS, LEVELS, add_logging_arguments, configure_logging
from tuneloop.validation import ConfigError

EXIT_USAGE = 2
SHUTDOWN_BUDGET_S = 4.0  # every thread is a daemon: what is still running then is dropped

log = logging.getLogger("tuneloop.agent")


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML configuration file (flags override it)")
    parser.add_argument("--listen", help="address to serve on, HOST:PORT (default :9450)")
    parser.add_argument("--sysfs", help="sysfs root (default /sys; /host/sys in a pod)")
    parser.add_argument("--procfs", help="procfs root (default /proc; /host/proc in a pod)")
    parser.add_argument("--state-dir", help="where results and journals live (/var/lib/tuneloop)")
    parser.add_argument(
        "--collectors",
        help=f"comma-separated collectors to enable, others off (from: {', '.join(COLLECTORS)})",
    )
    parser.add_argument(
        "--interval",
        action="append",
        default=[],
        metavar="NAME=SECONDS",
        help="a collector's interval, e.g. gpu=5 (repeatable)",
    )
    parser.add_argument("--gpu-backend", choices=("nvml", "fake"), help="GPU source (default nvml)")
    parser.add_argument(
        "--fake-gpus", help="JSON file describing fake GPUs (with --gpu-backend fake)"
    )
    parser.add_argument("--pod-resources-socket", help="kubelet pod-resources socket, if mounted")
    parser.add_argument(
        "--gpu-process-metrics",
        action="store_const",
        const=True,
        help="export per-process GPU memory with a pid label (off by default)",
    )
    parser.add_argument(
        "--inference-target",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="an inference server /metrics URL to normalise (repeatable; engine auto-detected)",
    )
    parser.add_argument(
        "--log-level",
        dest="command_log_level",
        choices=LEVELS,
        help="least severe level logged (default: the config's log_level, else info)",
    )
    parser.add_argument(
        "--log-format", dest="command_log_format", choices=FORMATS, help="log line format"
    )


def overrides_from_flags(args: argparse.Namespace) -> dict[str, Any]:
    """Flag values as dotted config paths; the validator then checks them like file values."""
    out: dict[str, Any] = {}
    simple = {
        "listen": args.listen,
        "sysfs": args.sysfs,
        "procfs": args.procfs,
        "state_dir": args.state_dir,
        "log_level": getattr(args, "command_log_level", None),
        "gpu.backend": args.gpu_backend,
        "gpu.fake_gpus": args.fake_gpus,
        "gpu.pod_resources_socket": args.pod_resources_socket,
        "gpu.process_metrics": args.gpu_process_metrics,
    }
    out.update({k: val for k, val in simple.items() if val is not None})
    if args.collectors is not None:
        wanted = {c.strip() for c in args.collectors.split(",") if c.strip()}
        unknown = sorted(wanted - set(COLLECTORS))
        if unknown:
            raise ConfigError("--collectors", f"unknown collector {unknown[0]!r}")
        for name in COLLECTORS:
            out[f"collectors.{name}.enabled"] = name in wanted
    for item in args.interval:
        name, sep, seconds = item.partition("=")
        if not sep or name not in COLLECTORS:
            raise ConfigError(
                "--interval", f"expected NAME=SECONDS with a collector name: {item!r}"
            )
        out[f"collectors.{name}.interval"] = seconds
    if args.inference_target:
        targets = []
        for item in args.inference_target:
            name, sep, url = item.partition("=")
            if not sep:
                raise ConfigError("--inference-target", f"expected NAME=URL, got {item!r}")
            targets.append({"name": name, "url": url})
        out["inference.targets"] = targets
    return out


def config_from_args(args: argparse.Namespace) -> AgentConfig:
    """The configuration from the file and the flags; ConfigError names what is wrong."""
    path: Path | None = args.config
    if path is not None:
        try:
            path.read_bytes().decode("utf-8")
        except OSError as err:
            raise ConfigError("--config", f"cannot read {path}: {err.strerror or err}") from None
        except UnicodeDecodeError as err:
            raise ConfigError("--config", f"{path} is not UTF-8 text (byte {err.start})") from None
    return load_config(path, overrides_from_flags(args))


def setup_logging(args: argparse.Namespace, config: AgentConfig | None = None) -> None:
    """Configure logging once: flags first, then the config's level, then info."""
    level = getattr(args, "command_log_level", None) or args.log_level
    level = level or (config.log_level if config is not None else None) or "info"
    fmt = getattr(args, "command_log_format", None) or args.log_format or "text"
    configure_logging(fmt, level)


def build_exporter(config: AgentConfig, app: Any, web_config: Path | None) -> Exporter:
    """The exporter, bound now (WebConfigError or OSError when it cannot be)."""
    context = None
    if web_config is not None:
        web = load_web_config(web_config)
        context = web.ssl_context
        if web.users:
            verify = bcrypt_verify()
            assert verify is not None  # load_web_config refuses users without bcrypt
            app = require_basic_auth(app, web.users, verify)
    try:
        return Exporter(app, config.listen, ssl_context=context)
    except OSError as err:
        raise OSError(f"cannot listen on {config.listen}: {err.strerror or err}") from None


def serve(config: AgentConfig, web_config: Path | None = None) -> int:
    """Run collectors in the background and serve until SIGTERM or SIGINT."""
    runners = build_runners(config)
    scheduler = Scheduler(runners)
    exposition = build_exposition([r.collector for r in runners], scheduler)
    exporter = build_exporter(config, make_app(exposition, scheduler.ready), web_config)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    scheduler.start()
    exporter.start()
    jobs = start_jobs(config, stop)
    enabled = ", ".join(r.name for r in runners) or "none"
    log.info("serving on %s (port %d); collectors: %s", config.listen, exporter.port, enabled)
    stop.wait()
    log.info("stopping")
    end = time.monotonic() + SHUTDOWN_BUDGET_S  # one budget for all, not one each

    def left() -> float:
        return max(end - time.monotonic(), 0.0)

    exporter.stop(min(left(), 1.5))
    scheduler.stop(min(left(), 1.0))
    for job in jobs:  # the iperf3 supervisor stops its server once `stop` is set
        if job.name == "iperf3-server":
            job.join(left())
    return 0


def scrape_once(config: AgentConfig) -> str:
    """Run every enabled collector once and return the exposition text."""
    runners = build_runners(config)
    for runner in runners:
        runner.run_once()
    scheduler = Scheduler(runners)
    return build_exposition([r.collector for r in runners], scheduler).render().decode()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tuneloop-agent",
        description="tuneloop node agent: exports GPU, NUMA, RDMA, TCP and inference-queue "
        "metrics to Prometheus, runs node benchmarks and applies node tuning.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_logging_arguments(parser)
    parser.set_defaults(log_level=None, log_format=None)  # None: not given, see setup_logging
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve_parser = sub.add_parser(
        "serve",
        help="collect in the background and serve /metrics, /healthz, /readyz",
        description="Collect on each collector's interval and serve the last snapshot.",
    )
    _add_config_flags(serve_parser)
    serve_parser.add_argument(
        "--web-config-file",
        type=Path,
        help="Prometheus-style web config (tls_server_config, basic_auth_users) for /metrics",
    )
    scrape_parser = sub.add_parser(
        "scrape",
        help="collect once and print the /metrics text (a quick look at a node)",
        description="Run every enabled collector once and print what /metrics would serve.",
    )
    _add_config_flags(scrape_parser)
    check = sub.add_parser("check-config", help="validate a configuration and print it resolved")
    _add_config_flags(check)
    _add_optional_commands(sub)
    return parser


def _add_optional_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Benchmark and node-tuning commands live with their packages."""
    from agent.bench.cli import add_bench_commands
    from agent.nodetune.cli import add_nodetune_commands

    add_bench_commands(sub)
    add_nodetune_commands(sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command not in ("serve", "scrape", "check-config"):
        setup_logging(args)
        return int(args.func(args))
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "check-config":
        for name, settings in config.collectors.items():
            state = "on" if settings.enabled else "off"
            timing = f"every {settings.interval:g}s, deadline {settings.deadline:g}s"
            print(f"{name:10} {state:3}  {timing}")
        return 0
    if args.command == "scrape":
        if args.log_level is None and args.command_log_level is None:
            args.log_level = "warning"  # the exposition is the output; only problems beside it
        setup_logging(args)
        sys.stdout.write(scrape_once(config))
        return 0
    setup_logging(args, config)
    try:
        return serve(config, args.web_config_file)
    except (WebConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
