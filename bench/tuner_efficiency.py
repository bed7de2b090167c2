"""Tuner efficiency on the simulated fleet: the true regret of what each strategy leaves applied.

Noise comes from the simulator itself: every trial measures a finite window (``MEASURE_S`` after
the warm-up) of random arrivals drawn for that trial, so two trials of one configuration differ
as two real measurement windows do. Trial ``i`` of seed ``s`` uses the same window seed for every
contender (common random numbers); windows never reuse the truth's seed.

After 10, 20 and 30 trials each strategy is scored on the *true* value of the configuration it
would leave applied: its ``recommend()`` (for peers without one, the best feasible value
observed; with nothing feasible yet, the problem's current configuration stays applied). The
truth is one long, independent simulator run (``TRUTH_S`` seconds, its own seed), and the
optimum is the grid oracle's true feasible optimum (or the best true feasible value any applied
configuration reached, when a real-valued knob falls between grid levels). A configuration that
violates an SLO in truth is a failure: its regret counts as infinite in the median and failures
are reported as a rate.

Contenders, same budget, in the same run, peers at their defaults:

- ``tuneloop``: ``SkoptGP`` (the registry's defaults) with the current configuration and the
  space's domain points first (BDP for TCP windows, capacity-proportional balancer weights);
- ``gp_minimize``: plain ``skopt.gp_minimize``, infeasible trials scored as a constant penalty;
- ``random``: ``RandomSearch``;
- ``optuna_tpe``: Optuna's ``TPESampler`` (its default 10 start-up trials);
- ``optuna_gp``: Optuna's ``GPSampler``, when its dependency (torch) is installed; otherwise the
  table says why it is absent.

Reported per problem, strategy and checkpoint: the median relative regret with a bootstrap 95%
interval of the median, the SLO-violation rate, and the median decision time per trial. Every
worker limits BLAS to one thread, for every contender alike. Saved as JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import statistics
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from bench.tuner_efficiency_peers import make_strategy, optuna_gp_missing, spec_knobs
from tuner.sim.problems import PROBLEMS, Problem, get_problem
from tuner.space import Space

PENALTY = 100.0
STRATEGIES = ("tuneloop", "gp_minimize", "random", "optuna_tpe", "optuna_gp")
CHECKPOINTS = (10, 20, 30)
TRUTH_S = 600.0
TRUTH_SEED = 1_000_003
_truth_cache: dict[tuple[str, tuple[Any, ...]], tuple[float, bool]] = {}


def truth(problem: Problem, params: Mapping[str, Any]) -> tuple[float, bool]:
    """The configuration's true (value, feasible): one long independent run."""
    key = (problem.name, tuple(sorted(params.items())))
    if key not in _truth_cache:
        value, feasible, _ = problem.evaluate(params, TRUTH_SEED, TRUTH_S)
        _truth_cache[key] = (value, feasible)
    return _truth_cache[key]


def window_seed(seed: int, trial: int) -> int:
    """The arrivals of trial ``trial`` of run ``seed``: the same for every contender."""
    return 1000 * seed + trial + 1


def _grid_chunk(args: tuple[str, list[dict[str, Any]]]) -> list[tuple[float, bool]]:
    name, points = args
    problem = get_problem(name)
    return [truth(problem, p) for p in points]


def oracle(pool: Any, problem: Problem) -> tuple[float, dict[str, Any], float]:
    """The grid's best true feasible value, its params, and seconds spent."""
    start = time.perf_counter()
    grid = problem.grid()
    chunks = [(problem.name, grid[i : i + 32]) for i in range(0, len(grid), 32)]
    results = [r for chunk in pool.imap(_grid_chunk, chunks) for r in chunk]
    best, best_p = math.inf, {}
    for params, (value, feasible) in zip(grid, results, strict=True):
        if feasible and value < best:
            best, best_p = value, params
    if not best_p:
        raise SystemExit(f"{problem.name}: no grid point is feasible in truth; regret is undefined")
    return best, best_p, time.perf_counter() - start


def best_observed(trace: Sequence[tuple[dict[str, Any], float, bool]]) -> dict[str, Any] | None:
    """The feasible configuration with the best measured value in ``trace``."""
    feasible = [(v, p) for p, v, ok in trace if ok and math.isfinite(v)]
    return min(feasible, key=lambda vp: vp[0])[1] if feasible else None


def _gp_minimize_run(problem: Problem, space: Space, seed: int, trials: int) -> tuple[Any, float]:
    from skopt import gp_minimize

    trace: list[tuple[dict[str, Any], float, bool]] = []
    evals = 0.0

    def func(point: list[Any]) -> float:
        nonlocal evals
        t0 = time.perf_counter()
        params = space.to_params(point)
        value, feasible, _ = problem.evaluate(params, window_seed(seed, len(trace)))
        evals += time.perf_counter() - t0
        trace.append((params, value, feasible))
        return value if feasible else PENALTY

    t0 = time.perf_counter()
    gp_minimize(func, space.dimensions(), n_calls=trials, random_state=seed)
    applied = {k: best_observed(trace[:k]) for k in CHECKPOINTS if k <= trials}
    return applied, time.perf_counter() - t0 - evals


def run_strategy(args: tuple[str, str, int, int]) -> dict[str, Any]:
    """One strategy on one problem for one seed: what it leaves applied at each checkpoint."""
    name, strategy, seed, trials = args
    problem = get_problem(name)
    space = Space(spec_knobs(problem))
    warnings.simplefilter("ignore")
    if strategy == "gp_minimize":
        applied, decide = _gp_minimize_run(problem, space, seed, trials)
    else:
        strat = make_strategy(strategy, problem, space, seed)
        applied, decide = {}, 0.0
        for i in range(trials):
            t0 = time.perf_counter()
            params = strat.ask()
            decide += time.perf_counter() - t0
            value, feasible, _ = problem.evaluate(params, window_seed(seed, i))
            result = _result(value, feasible)
            t0 = time.perf_counter()
            strat.tell(params, result)
            if i + 1 in CHECKPOINTS:
                applied[i + 1] = strat.recommend()
            decide += time.perf_counter() - t0
    scored = {}
    for k, params in applied.items():
        chosen = dict(problem.initial) if params is None else dict(params)
        value, feasible = truth(problem, chosen)
        scored[k] = {"params": chosen, "true_value": value, "true_feasible": feasible}
    return {
        "problem": name,
        "strategy": strategy,
        "seed": seed,
        "applied": scored,
        "decision_s_per_trial": decide / max(1, trials),
    }


def _result(value: float, feasible: bool) -> Any:
    from tuner.strategy.base import TrialResult

    ok = feasible and math.isfinite(value)
    return TrialResult(value if ok else None, feasible=ok)


def median_ci(values: Sequence[float], rng: np.random.RandomState) -> tuple[float, float, float]:
    """The median and a bootstrap 95% interval of the median (2,000 resamples)."""
    data = np.asarray(values, dtype=float)
    draws = rng.randint(0, len(data), size=(2000, len(data)))
    medians = np.sort(np.median(data[draws], axis=1))  # order statistics: inf stays inf
    low, high = medians[int(0.025 * len(medians))], medians[int(0.975 * len(medians)) - 1]
    return float(np.median(data)), float(low), float(high)


def score(runs: list[dict[str, Any]], optimum: float, k: int) -> list[float]:
    """Relative true regret per run at checkpoint ``k``; an SLO violation is +inf."""
    out = []
    for r in runs:
        a = r["applied"][k]
        if not a["true_feasible"]:
            out.append(math.inf)
        else:
            out.append(max(0.0, (a["true_value"] - optimum) / abs(optimum)))
    return out


def goals(problems: Mapping[str, Any]) -> dict[str, Any]:
    """Regret@20 lowest or inside the best peer's interval; <= half of random's; no violations."""
    best_or_tied, half_random, violations = [], [], {}
    for name, entry in problems.items():
        rows = entry["strategies"]
        mine = rows["tuneloop"]["at"]["20"]
        peers = {s: r["at"]["20"] for s, r in rows.items() if s != "tuneloop"}
        best_peer = min(peers.values(), key=lambda row: row["median_regret"])
        if mine["median_regret"] <= best_peer["median_regret"] or (
            mine["median_regret"] <= best_peer["ci95"][1]
        ):
            best_or_tied.append(name)
        if "random" in peers and mine["median_regret"] <= 0.5 * peers["random"]["median_regret"]:
            half_random.append(name)
        violations[name] = max(r["slo_violation_rate"] for r in rows["tuneloop"]["at"].values())
    return {
        "best_or_within_ci_at_20": best_or_tied,
        "best_everywhere": len(best_or_tied) == len(problems),
        "half_of_random_at_20": half_random,
        "half_of_random_on_4": len(half_random) >= min(4, len(problems)),
        "tuneloop_slo_violation_rate": violations,
        "no_violations": all(v == 0 for v in violations.values()),
    }


def _fmt(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.3f}"


def print_problem(name: str, entry: Mapping[str, Any]) -> None:
    print(
        f"\n{name}: {entry['knobs']} knobs, grid {entry['grid_points']}, true optimum "
        f"{entry['optimum']:.4g} (grid {entry['grid_optimum']:.4g} at {entry['optimum_params']})"
    )
    cols = "".join(f"{'regret@' + str(k) + ' [95% CI]':>26}" for k in CHECKPOINTS)
    print(f"{'strategy':<12}{cols}{'SLO viol':>10}{'ms/trial':>10}")
    for s, row in entry["strategies"].items():
        cells = ""
        for k in CHECKPOINTS:
            at = row["at"].get(str(k))
            if at is None:
                cells += f"{'-':>26}"
                continue
            lo, hi = at["ci95"]
            cells += f"{_fmt(at['median_regret']) + ' [' + _fmt(lo) + ', ' + _fmt(hi) + ']':>26}"
        viol = max(a["slo_violation_rate"] for a in row["at"].values())
        print(f"{s:<12}{cells}{viol:>10.2f}{row['median_decision_ms']:>10.1f}")
    for s, why in entry.get("absent", {}).items():
        print(f"{s:<12}absent: {why}")


def _one_thread() -> None:
    threadpool_limits(limits=1)
    warnings.simplefilter("ignore")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--problems", nargs="*", default=list(PROBLEMS))
    ap.add_argument("--strategies", nargs="*", default=list(STRATEGIES), choices=STRATEGIES)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "tuner_efficiency.json")
    )
    ap.add_argument(
        "--update",
        action="store_true",
        help="replace only these problems in --out's earlier results, keeping the others",
    )
    args = ap.parse_args()
    started = time.perf_counter()
    absent: dict[str, str] = {}
    missing = optuna_gp_missing()
    strategies = list(args.strategies)
    if "optuna_gp" in strategies and missing:
        strategies.remove("optuna_gp")
        absent["optuna_gp"] = missing
    report: dict[str, Any] = {
        "config": {**vars(args), "truth_s": TRUTH_S, "checkpoints": list(CHECKPOINTS)},
        "absent": absent,
        "problems": {},
    }
    if args.update and Path(args.out).exists():
        earlier = json.loads(Path(args.out).read_text())
        kept = {k: v for k, v in earlier["problems"].items() if k not in args.problems}
        report["problems"] = kept
        report["config"]["updated"] = list(args.problems)
    with mp.Pool(args.workers, initializer=_one_thread) as pool:
        grids = {name: oracle(pool, get_problem(name)) for name in args.problems}
        print(f"grid oracles (true values) done in {time.perf_counter() - started:.0f} s")
        tasks = [
            (name, s, seed, args.trials)
            for seed in range(args.seeds)
            for name in args.problems
            for s in strategies
        ]
        runs: list[dict[str, Any]] = []
        for run in pool.imap_unordered(run_strategy, tasks, chunksize=1):
            runs.append(run)
            if len(runs) % 25 == 0 or len(runs) == len(tasks):
                print(f"{len(runs)}/{len(tasks)} runs, {time.perf_counter() - started:.0f} s")
    rng = np.random.RandomState(0)
    for name in args.problems:
        problem = get_problem(name)
        grid_best, best_p, oracle_s = grids[name]
        mine = [r for r in runs if r["problem"] == name]
        reached = [
            a["true_value"] for r in mine for a in r["applied"].values() if a["true_feasible"]
        ]
        optimum = min([grid_best, *reached])
        rows: dict[str, Any] = {}
        for s in strategies:
            of_s = sorted((r for r in mine if r["strategy"] == s), key=lambda r: r["seed"])
            at = {}
            for k in CHECKPOINTS:
                if k > args.trials:
                    continue
                regrets = score(of_s, optimum, k)
                med, lo, hi = median_ci(regrets, rng)
                viol = sum(not r["applied"][k]["true_feasible"] for r in of_s) / len(of_s)
                at[str(k)] = {
                    "median_regret": med,
                    "ci95": [lo, hi],
                    "slo_violation_rate": viol,
                    "per_seed_regret": regrets,
                }
            rows[s] = {
                "at": at,
                "median_decision_ms": 1000
                * statistics.median(r["decision_s_per_trial"] for r in of_s),
            }
        entry = {
            "knobs": len(problem.knobs),
            "grid_points": len(problem.grid()),
            "grid_optimum": grid_best,
            "optimum": optimum,
            "optimum_params": best_p,
            "oracle_seconds": oracle_s,
            "strategies": rows,
            "absent": absent,
        }
        report["problems"][name] = entry
        print_problem(name, entry)
    if {"tuneloop", "random"} <= set(strategies) and args.trials >= 20:
        g = report["goals"] = goals(report["problems"])
        n = len(report["problems"])
        print(
            f"\ntuneloop regret@20 lowest or inside the best peer's 95% CI on "
            f"{len(g['best_or_within_ci_at_20'])}/{n}; <= half of random's on "
            f"{len(g['half_of_random_at_20'])}/{n}; "
            f"SLO violations {g['tuneloop_slo_violation_rate']}"
        )
    report["elapsed_s"] = time.perf_counter() - started
    print(f"elapsed {report['elapsed_s']:.0f} s")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, default=str))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
