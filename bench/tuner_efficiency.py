"""Tuner efficiency on the simulated fleet: trials to reach the optimum, regret, decision time.

For each problem in ``tuner.sim.problems`` a grid oracle evaluates every grid point to find the
feasible optimum of the (deterministic, common-random-numbers) objective, then each strategy runs
``--trials`` trials for ``--seeds`` seeds, all in the same run:

- ``tuneloop``: the default strategy (``tuner.strategy.skopt_gp.SkoptGP``, the registry's
  defaults) seeded, by design, with the problem's current configuration and the space's domain
  points (BDP for TCP windows, capacity-proportional balancer weights);
- ``gp_minimize``: plain ``skopt.gp_minimize`` with its own defaults, infeasible trials scored
  as a constant penalty;
- ``random``: ``tuner.strategy.random_search.RandomSearch``;
- ``optuna_tpe``: ``tuner.strategy.optuna_tpe.OptunaTPE`` (its defaults).

Every contender gets the same budget and sees the same objective; only ``tuneloop`` gets the
current configuration and the domain hints. The optimum is the better of the grid's best and the
best feasible value any contender found (a grid is finite; real knobs fall between its levels).
Reported per strategy and problem: the median number of trials until the best feasible value is
within 3% of the optimum (trials+1 when never), the median simple regret (relative to the optimum)
after 15 and 30 trials, and the median decision time per trial (strategy time, evaluations
excluded). Every worker limits BLAS to one thread, for every contender alike. Results are saved
as JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import statistics
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from tuner.appliers.base import KnobClass
from tuner.sim.problems import PROBLEMS, Problem, get_problem
from tuner.space import Space, initial_points
from tuner.spec import InitHint
from tuner.spec import Knob as SpecKnob
from tuner.strategy.base import TrialResult

PENALTY = 100.0
STRATEGIES = ("tuneloop", "gp_minimize", "random", "optuna_tpe")
_cache: dict[tuple[str, tuple[Any, ...]], tuple[float, bool]] = {}


def spec_knobs(problem: Problem) -> list[SpecKnob]:
    """The problem's knobs as experiment knobs (what the tuner's Space takes)."""
    out = []
    for k in problem.knobs:
        kind = {"int": "int", "real": "real", "cat": "categorical"}[k.kind]
        init = None
        if k.bdp is not None:
            init = InitHint(bdp_bandwidth_bps=k.bdp[0], bdp_rtt_s=k.bdp[1])
        elif k.capacity is not None:
            init = InitHint(capacity=k.capacity)
        out.append(
            SpecKnob(
                name=k.name,
                type=kind,  # type: ignore[arg-type]
                applier="sim",
                target=k.name,
                knob_class=KnobClass.HOT,
                low=None if kind == "categorical" else k.low,
                high=None if kind == "categorical" else k.high,
                categories=k.choices,
                log=k.log,
                current=problem.initial.get(k.name),
                init=init,
            )
        )
    return out


def evaluate(problem: Problem, params: Mapping[str, Any], seed: int) -> tuple[float, bool]:
    key = (problem.name, tuple(sorted(params.items())))
    if key not in _cache:
        value, feasible, _ = problem.evaluate(params, seed)
        _cache[key] = (value, feasible)
    return _cache[key]


def _grid_chunk(args: tuple[str, list[dict[str, Any]], int]) -> list[tuple[float, bool]]:
    name, points, seed = args
    problem = get_problem(name)
    return [evaluate(problem, p, seed) for p in points]


def oracle(pool: Any, problem: Problem, seed: int) -> tuple[float, dict[str, Any], float]:
    """Best feasible grid value, its params, and seconds spent."""
    start = time.perf_counter()
    grid = problem.grid()
    chunks = [(problem.name, grid[i : i + 64], seed) for i in range(0, len(grid), 64)]
    results = [r for chunk in pool.map(_grid_chunk, chunks) for r in chunk]
    best, best_p = math.inf, {}
    for params, (value, feasible) in zip(grid, results, strict=True):
        if feasible and value < best:
            best, best_p = value, params
    return best, best_p, time.perf_counter() - start


def run_strategy(args: tuple[str, str, int, int, int]) -> dict[str, Any]:
    """One strategy on one problem for one seed: the trace of (value, feasible)."""
    name, strategy, seed, trials, eval_seed = args
    problem = get_problem(name)
    knobs = spec_knobs(problem)
    space = Space(knobs)
    trace: list[tuple[float, bool]] = []
    decide = 0.0
    warnings.simplefilter("ignore")
    if strategy == "gp_minimize":
        from skopt import gp_minimize

        evals = 0.0

        def func(point: list[Any]) -> float:
            nonlocal evals
            t0 = time.perf_counter()
            value, feasible = evaluate(problem, space.to_params(point), eval_seed)
            evals += time.perf_counter() - t0
            trace.append((value, feasible))
            return value if feasible else PENALTY

        t0 = time.perf_counter()
        gp_minimize(func, space.dimensions(), n_calls=trials, random_state=seed)
        decide = time.perf_counter() - t0 - evals
    else:
        strat: Any
        if strategy == "tuneloop":
            from tuner.strategy.skopt_gp import SkoptGP

            current = {k.name: problem.initial[k.name] for k in problem.knobs}
            caps = {
                k.name: float(k.init.capacity)
                for k in knobs
                if k.init is not None and isinstance(k.init.capacity, float)
            }
            strat = SkoptGP(space, seed=seed, initial=initial_points(knobs, current, caps))
        elif strategy == "random":
            from tuner.strategy.random_search import RandomSearch

            strat = RandomSearch(space, seed=seed)
        else:
            from tuner.strategy.optuna_tpe import OptunaTPE

            strat = OptunaTPE(space, seed=seed)
        for _ in range(trials):
            t0 = time.perf_counter()
            params = strat.ask()
            decide += time.perf_counter() - t0
            value, feasible = evaluate(problem, params, eval_seed)
            trace.append((value, feasible))
            result = TrialResult(value if feasible else None, feasible=feasible)
            t0 = time.perf_counter()
            strat.tell(params, result)
            decide += time.perf_counter() - t0
    return {
        "problem": name,
        "strategy": strategy,
        "seed": seed,
        "trace": trace,
        "decision_s_per_trial": decide / max(1, len(trace)),
    }


def summarise(run: Mapping[str, Any], optimum: float, trials: int) -> dict[str, float]:
    """Trials to come within 3% of the optimum, and simple regret after 15 and 30 trials."""
    best = math.inf
    reach = trials + 1
    regret: dict[int, float] = {}
    for i, (value, feasible) in enumerate(run["trace"], start=1):
        if feasible and value < best:
            best = value
        if reach > trials and best <= optimum + 0.03 * abs(optimum):
            reach = i
        if i in (15, 30):
            regret[i] = max(0.0, (best - optimum) / abs(optimum)) if math.isfinite(best) else 1.0
    return {"reach": reach, "regret15": regret.get(15, 1.0), "regret30": regret.get(30, 1.0)}


def best_found(runs: list[dict[str, Any]]) -> float:
    """The best feasible value any run saw."""
    values = [v for r in runs for v, feasible in r["trace"] if feasible]
    return min(values, default=math.inf)


def _one_thread() -> None:
    """Pool initializer: BLAS on one thread in every worker, for every contender alike."""
    threadpool_limits(limits=1)
    warnings.simplefilter("ignore")


def goals(report: Mapping[str, Any]) -> dict[str, Any]:
    """The issue's goals: best on >= 4 problems, <= half random's trials, <= TPE's trials."""
    problems = report["problems"]
    wins = [n for n, e in problems.items() if e["tuneloop_best"]]
    half_random = [n for n, e in problems.items() if e["ratio_trials_vs_random"] <= 0.5]
    vs_tpe = [n for n, e in problems.items() if e["ratio_trials_vs_tpe"] <= 1.0]
    return {
        "best_on": wins,
        "best_on_at_least_4": len(wins) >= min(4, len(problems)),
        "half_of_random_on": half_random,
        "half_of_random_everywhere": len(half_random) == len(problems),
        "at_most_tpe_on": vs_tpe,
        "at_most_tpe_everywhere": len(vs_tpe) == len(problems),
    }


def print_problem(name: str, entry: Mapping[str, Any]) -> None:
    print(
        f"\n{name}: {entry['knobs']} knobs, grid {entry['grid_points']} points, optimum "
        f"{entry['optimum']:.4g} (grid best {entry['grid_optimum']:.4g} at "
        f"{entry['optimum_params']})"
    )
    head = ("strategy", "trials->3%", "regret@15", "regret@30", "ms/trial")
    print(f"{head[0]:<12} {head[1]:>10} {head[2]:>10} {head[3]:>10} {head[4]:>9}")
    for s, row in entry["strategies"].items():
        reach, ms = row["median_trials_to_3pct"], row["median_decision_ms"]
        r15, r30 = (
            "-" if row[k] is None else f"{row[k]:.3f}"
            for k in ("median_regret_15", "median_regret_30")
        )
        print(f"{s:<12} {reach:>10.1f} {r15:>10} {r30:>10} {ms:>9.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--problems", nargs="*", default=list(PROBLEMS))
    ap.add_argument("--strategies", nargs="*", default=list(STRATEGIES), choices=STRATEGIES)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--eval-seed", type=int, default=7)
    ap.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "tuner_efficiency.json")
    )
    args = ap.parse_args()
    started = time.perf_counter()
    report: dict[str, Any] = {"config": vars(args), "problems": {}}
    with mp.Pool(args.workers, initializer=_one_thread) as pool:
        grids = {name: oracle(pool, get_problem(name), args.eval_seed) for name in args.problems}
        print(f"grid oracles done in {time.perf_counter() - started:.0f} s", flush=True)
        tasks = [
            (name, s, seed, args.trials, args.eval_seed)
            for name in args.problems
            for s in args.strategies
            for seed in range(args.seeds)
        ]
        runs: list[dict[str, Any]] = []
        for run in pool.imap_unordered(run_strategy, tasks, chunksize=1):
            runs.append(run)
            if len(runs) % 20 == 0 or len(runs) == len(tasks):
                print(f"{len(runs)}/{len(tasks)} runs", flush=True)
    for name in args.problems:
        problem = get_problem(name)
        grid_best, best_p, oracle_s = grids[name]
        mine = [r for r in runs if r["problem"] == name]
        optimum = min(grid_best, best_found(mine))
        rows: dict[str, Any] = {}
        for s in args.strategies:
            of_s = sorted((r for r in mine if r["strategy"] == s), key=lambda r: r["seed"])
            summ = [summarise(r, optimum, args.trials) for r in of_s]
            rows[s] = {
                "median_trials_to_3pct": statistics.median(x["reach"] for x in summ),
                "median_regret_15": statistics.median(x["regret15"] for x in summ),
                "median_regret_30": statistics.median(x["regret30"] for x in summ),
                "median_decision_ms": 1000
                * statistics.median(r["decision_s_per_trial"] for r in of_s),
                "per_seed_trials_to_3pct": [x["reach"] for x in summ],
            }
        n_grid = len(problem.grid())
        rows["grid_oracle"] = {
            "median_trials_to_3pct": n_grid if grid_best <= optimum * 1.03 else n_grid + 1,
            "median_regret_15": None,
            "median_regret_30": max(0.0, (grid_best - optimum) / abs(optimum)),
            "median_decision_ms": 0.0,
        }
        entry: dict[str, Any] = {
            "knobs": len(problem.knobs),
            "grid_points": n_grid,
            "grid_optimum": grid_best,
            "optimum": optimum,
            "optimum_params": best_p,
            "oracle_seconds": oracle_s,
            "strategies": rows,
        }
        contenders = {
            s: (r["median_trials_to_3pct"], r["median_regret_30"])
            for s, r in rows.items()
            if s != "grid_oracle"
        }
        if "tuneloop" in contenders:
            entry["tuneloop_best"] = contenders["tuneloop"] <= min(contenders.values())
            for peer, key in (("random", "random"), ("optuna_tpe", "tpe")):
                if peer in rows:
                    entry[f"ratio_trials_vs_{key}"] = (
                        rows["tuneloop"]["median_trials_to_3pct"]
                        / rows[peer]["median_trials_to_3pct"]
                    )
        report["problems"][name] = entry
        print_problem(name, entry)
    if {"tuneloop", "random", "optuna_tpe"} <= set(args.strategies):
        report["goals"] = goals(report)
        g = report["goals"]
        print(
            f"\ntuneloop best (trials, then regret@30) on {len(g['best_on'])}/"
            f"{len(report['problems'])} problems; <= half of random's trials on "
            f"{len(g['half_of_random_on'])}; <= TPE's trials on {len(g['at_most_tpe_on'])}"
        )
    report["elapsed_s"] = time.perf_counter() - started
    print(f"elapsed {report['elapsed_s']:.0f} s")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, default=str))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
