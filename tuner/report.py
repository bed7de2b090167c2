"""Markdown report of an experiment with a convergence plot (PNG, matplotlib's Agg backend).

The plot shows every measured objective by trial number and the best-so-far line, chosen by the
stored loss (the value the strategy minimised), so it is right for either objective direction.
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from tuner.store import Trial, TrialStore
from tuner.trial_state import TrialState

log = logging.getLogger(__name__)


def best_so_far(trials: list[Trial]) -> list[tuple[int, float]]:
    """(trial number, objective of the best trial up to it) for each measured trial."""
    out: list[tuple[int, float]] = []
    best: tuple[float, float] | None = None  # (loss, objective)
    for t in trials:
        if t.state != TrialState.DONE or t.loss is None or t.objective is None:
            continue
        if best is None or t.loss < best[0]:
            best = (t.loss, t.objective)
        out.append((t.number, best[1]))
    return out


def plot_convergence(trials: list[Trial], path: Path, title: str) -> None:
    measured = [
        (t.number, t.objective)
        for t in trials
        if t.state == TrialState.DONE and t.objective is not None
    ]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.scatter([n for n, _ in measured], [v for _, v in measured], s=18, label="measured")
    bad = [
        t for t in trials if t.state == TrialState.INFEASIBLE and t.measurements.get("objective")
    ]
    if bad:
        ax.scatter(
            [t.number for t in bad],
            [t.measurements["objective"] for t in bad],
            marker="x",
            color="tab:red",
            label="infeasible",
        )
    line = best_so_far(trials)
    if line:
        ax.step(
            [n for n, _ in line],
            [v for _, v in line],
            where="post",
            color="tab:green",
            label="best so far",
        )
    ax.set_xlabel("trial")
    ax.set_ylabel("objective")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def render_markdown(store: TrialStore, experiment: str, image: str | None) -> str:
    trials = store.trials(experiment)
    lines = [f"# Experiment {experiment}", ""]
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state] = counts.get(t.state, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no trials"
    lines += [f"Trials: {len(trials)} ({summary}).", ""]
    inc = store.incumbent(experiment)
    if inc is not None:
        params = ", ".join(f"`{k}={_cell(v)}`" for k, v in inc[0].params.items())
        lines += [f"Best: trial {inc[0].number}, objective {_cell(inc[1])}: {params}.", ""]
    else:
        lines += ["No valid, feasible trial yet.", ""]
    if image:
        lines += [f"![convergence]({image})", ""]
    knobs = list(trials[0].params) if trials else []
    head = ["#", "kind", "state", *knobs, "objective", "rolled back", "reason"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for t in trials:
        row = [
            t.number,
            t.kind,
            t.state,
            *(t.params.get(k) for k in knobs),
            t.objective,
            "yes" if t.rolled_back else "",
            t.reason,
        ]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


def write_report(
    store: TrialStore, out_dir: str | Path, experiment: str | None = None
) -> list[Path]:
    """Write ``<experiment>.md`` and ``<experiment>-convergence.png`` per experiment."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = [experiment] if experiment else [e["name"] for e in store.experiments()]
    written: list[Path] = []
    for name in names:
        trials = store.trials(name)
        image = f"{name}-convergence.png"
        plot_convergence(trials, out / image, f"{name}: convergence")
        md = out / f"{name}.md"
        md.write_text(render_markdown(store, name, image), encoding="utf-8")
        written += [md, out / image]
        log.info("report for %s written to %s", name, md, extra={"experiment": name})
    return written
