"""Decision time per trial (tell one observation + ask the next) at 10, 50 and 100 observations.

For each strategy (random search, scikit-optimize GP, Optuna TPE) a fresh strategy is given ``n``
observations of a smooth 4-knob problem, then the time of one ``tell`` + ``ask`` is measured
(median of ``--repeats``). Random search is the in-run baseline: the ratio column divides by its
time at the same ``n``. The goal is at most 2 s at 100 observations on 2 cores.
Prints a table and writes ``bench/results/tuner_overhead.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from tuner.space import Space
from tuner.spec import StrategyConfig, loads_experiment
from tuner.strategy.base import Params, TrialResult, replay
from tuner.strategy.registry import build_strategy

TEXT = """
name: bench
appliers: {lb: {kind: x}}
knobs:
  - {name: wa, type: int, applier: lb, target: a, class: hot, bounds: [1, 256]}
  - {name: wb, type: int, applier: lb, target: b, class: hot, bounds: [1, 256]}
  - {name: buf, type: real, applier: lb, target: c, class: cold, bounds: [4096, 67108864],
     log: true}
  - {name: frac, type: real, applier: lb, target: d, class: warm, bounds: [0.1, 0.95]}
objective: {signal: p99_ttft_seconds}
"""
STRATEGIES = ("random", "skopt-gp", "optuna-tpe")
GOAL_S = 2.0


def loss(p: dict) -> float:
    return (
        ((p["wa"] - 180) / 256) ** 2
        + ((p["wb"] - 60) / 256) ** 2
        + (np.log(p["buf"]) - np.log(4e6)) ** 2 / 30
        + (p["frac"] - 0.7) ** 2
    )


def decision_time(name: str, n: int, seed: int) -> float:
    space = Space(loads_experiment(TEXT).knobs)
    rng = np.random.RandomState(seed)
    history: list[tuple[Params, TrialResult]] = []
    for _ in range(n):
        p: Params = {
            "wa": int(rng.randint(1, 257)),
            "wb": int(rng.randint(1, 257)),
            "buf": float(np.exp(rng.uniform(np.log(4096), np.log(67108864)))),
            "frac": float(rng.uniform(0.1, 0.95)),
        }
        history.append((p, TrialResult(loss(p))))
    strategy = build_strategy(StrategyConfig(name=name, seed=seed), space)
    replay(strategy, history[:-1])
    last_params, last_result = history[-1]
    start = time.perf_counter()
    strategy.tell(last_params, last_result)
    strategy.ask()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "tuner_overhead.json")
    )
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        base = None
        for name in STRATEGIES:
            times = [decision_time(name, n, seed) for seed in range(args.repeats)]
            med = statistics.median(times)
            base = med if name == "random" else base
            rows.append(
                {
                    "strategy": name,
                    "observations": n,
                    "median_s": med,
                    "max_s": max(times),
                    "ratio_vs_random": med / base if base else None,
                    "within_goal": med <= GOAL_S,
                }
            )
    print(f"{'strategy':<11} {'obs':>4} {'median s':>9} {'max s':>8} {'x random':>9}  goal<=2s")
    for r in rows:
        ratio = "-" if r["ratio_vs_random"] is None else f"{r['ratio_vs_random']:.0f}"
        print(
            f"{r['strategy']:<11} {r['observations']:>4} {r['median_s']:>9.4f} "
            f"{r['max_s']:>8.4f} {ratio:>9}  {'yes' if r['within_goal'] else 'NO'}"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg_1m": os.getloadavg()[0],
        "repeats": args.repeats,
        "goal_s": GOAL_S,
    }
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
