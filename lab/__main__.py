"""``tuneloop-lab`` (or ``python -m lab``): the local lab and the sim replica server."""

from __future__ import annotations

import argparse
import sys

from lab.cli import add_lab_commands
from tuner.sim.cli import add_sim_commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tuneloop-lab")
    sub = parser.add_subparsers(dest="command", required=True)
    add_lab_commands(sub)
    add_sim_commands(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
