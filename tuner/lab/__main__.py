"""``python -m tuner.lab``: the lab and sim replica commands without the full ``tuneloop`` CLI."""

from __future__ import annotations

import argparse
import sys

from tuner.lab.cli import add_lab_commands
from tuner.sim.cli import add_sim_commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tuner.lab")
    sub = parser.add_subparsers(dest="command", required=True)
    add_lab_commands(sub)
    add_sim_commands(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
