"""``tuneloop sim``: run the replica server, or run a fleet from a YAML file and print stats."""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path
from typing import Any

import yaml

from tuner.sim.fleet import FleetConfig, SimFleet
from tuner.sim.profiles import PROFILES, profile


def add_sim_commands(subparsers: Any) -> None:
    """Register ``sim replica`` and ``sim run`` under a parent's subparsers."""
    sim = subparsers.add_parser("sim", help="the simulated LLM-serving fleet")
    sub = sim.add_subparsers(dest="sim_command", required=True)
    rep = sub.add_parser("replica", help="serve an OpenAI-compatible replica in real time")
    rep.add_argument("--profile", default="A100-80GB", choices=sorted(PROFILES))
    rep.add_argument("--port", type=int, default=8000)
    rep.add_argument("--host", default="127.0.0.1")
    rep.add_argument("--batch-limit", type=int, default=256)
    rep.add_argument("--seed", type=int, default=0, help="accepted for symmetry; timing is exact")
    rep.set_defaults(func=cmd_replica)
    run = sub.add_parser("run", help="simulate a fleet from a YAML file and print statistics")
    run.add_argument("--config", required=True, help="YAML: fleet fields, plus duration and warmup")
    run.add_argument("--seed", type=int, default=0)
    run.set_defaults(func=cmd_run)


def cmd_replica(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    from tuner.sim.replica_server import ReplicaServer

    server = ReplicaServer(profile(args.profile), args.host, args.port, args.batch_limit)
    print(f"replica {args.profile} on http://{args.host}:{server.port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


def load_run_config(path: Path) -> tuple[FleetConfig, float, float]:
    """Fleet config, duration and warm-up from a YAML file; errors name the file and field."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: must be a mapping of fleet fields")
    data = dict(data)
    try:
        duration = float(data.pop("duration_s", 120.0))
        warmup = float(data.pop("warmup_s", 20.0))
        if not 0 <= warmup < duration:
            raise ValueError("warmup_s: must be >= 0 and below duration_s")
        return FleetConfig.from_mapping(data), duration, warmup
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None


def cmd_run(args: argparse.Namespace) -> int:
    """Run the fleet and print its statistics as JSON."""
    cfg, duration, warmup = load_run_config(Path(args.config))
    fleet = SimFleet(cfg, args.seed)
    fleet.run_until(duration)
    print(json.dumps(fleet.stats(warmup), indent=2))
    return 0
