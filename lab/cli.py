"""``tuneloop-lab up|down|status|load|experiment``: the local lab from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lab.lab import BALANCERS, Lab, LabConfig, LabError

DEFAULT_DIR = "./tuneloop-lab"


def _lab(args: argparse.Namespace) -> Lab:
    return Lab(LabConfig(Path(args.dir)))


def cmd_up(args: argparse.Namespace) -> int:
    replicas = tuple(p.strip() for p in args.replicas.split(",") if p.strip())
    config = LabConfig(
        Path(args.dir),
        replicas=replicas,
        batch_limit=args.batch_limit,
        base_port=args.base_port,
        balancer=args.balancer,
        agent=not args.no_agent,
    )
    lab = Lab(config)
    lab.up()
    print(f"lab up in {lab.dir}")
    for name, port in lab.state.ports.items():
        print(f"  {name:18} 127.0.0.1:{port}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    stopped = _lab(args).down()
    print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    status = _lab(args).status()
    if args.json:
        print(json.dumps(status, indent=2))
        return 0 if status["up"] else 1
    if not status["up"]:
        print(f"no lab in {status['directory']}")
        return 1
    for proc in status["processes"]:
        state = "running" if proc["alive"] else "GONE"
        ports = " ".join(f"{k}={v}" for k, v in proc["ports"].items())
        print(f"  {proc['name']:12} pid {proc['pid']:>7}  {state:8} {ports}")
    return 0 if all(p["alive"] for p in status["processes"]) else 1


def cmd_load(args: argparse.Namespace) -> int:
    from lab.loadgen import run_from_args

    lab = _lab(args)
    status = lab.status()
    if not status["up"]:
        raise LabError(f"no lab in {lab.dir}: run 'tuneloop-lab up' first")
    if args.target is None:
        port = status["ports"].get(args.balancer)
        if port is None:
            raise LabError(f"--balancer: this lab has no {args.balancer}")
        args.target = f"127.0.0.1:{port}"
    result = run_from_args(args, status["ports"]["loadgen"])
    print(json.dumps(result, indent=2))
    return 0


def cmd_experiment(args: argparse.Namespace) -> int:
    lab = _lab(args)
    if not lab.state_path.exists():
        raise LabError(f"no lab in {lab.dir}: run 'tuneloop-lab up' first")
    from lab.lab import LabState

    lab.state = LabState.load(lab.state_path)
    out = lab.render_experiment(Path(args.template), Path(args.output) if args.output else None)
    print(out)
    return 0


def _guard(func: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(func(args))
        except (LabError, ValueError, TimeoutError, RuntimeError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return run


def add_lab_commands(subparsers: Any) -> None:
    """Register ``up|down|status|load|experiment`` under a parent's subparsers."""
    from lab.loadgen import add_load_arguments

    sub = subparsers

    def with_dir(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--dir", default=DEFAULT_DIR, help="the lab's directory (state, logs)")
        return p

    up = with_dir(sub.add_parser("up", help="start replicas, balancers, agent, Prometheus"))
    up.add_argument("--replicas", default="H100,A100-80GB,L40S", help="GPU profiles, in order")
    up.add_argument("--base-port", type=int, default=None, help="consecutive ports from here")
    up.add_argument("--balancer", choices=BALANCERS, default="both")
    up.add_argument("--batch-limit", type=int, default=2, help="each replica's batch limit")
    up.add_argument("--no-agent", action="store_true", help="do not start the node agent")
    up.set_defaults(func=_guard(cmd_up))
    down = with_dir(sub.add_parser("down", help="stop everything the lab started"))
    down.set_defaults(func=_guard(cmd_down))
    st = with_dir(sub.add_parser("status", help="the lab's processes and ports"))
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=_guard(cmd_status))
    load = with_dir(sub.add_parser("load", help="run the bounded load generator"))
    add_load_arguments(load)
    load.add_argument(
        "--balancer", default="haproxy", choices=("haproxy", "haproxy_leastconn", "nginx")
    )
    load.set_defaults(func=_guard(cmd_load))
    exp = with_dir(sub.add_parser("experiment", help="fill an experiment template's addresses"))
    exp.add_argument("template", help="an examples/lab-*.yaml file")
    exp.add_argument("-o", "--output", default=None)
    exp.set_defaults(func=_guard(cmd_experiment))
