"""Markdown report and convergence plot."""

from __future__ import annotations

from tests.unit.tuner_doubles import incumbent, measured
from tests.unit.tuner_doubles import make_loop as make
from tuner.report import best_so_far, write_report


def test_report_has_table_best_and_png(tmp_path):
    loop, _, _, store, _, _ = make(tmp_path / "state", start=(40, 60))
    loop.run()
    paths = write_report(store, tmp_path / "out")
    md, png = paths
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    text = md.read_text()
    inc, value = incumbent(store)
    assert f"Best: trial {inc.number}, objective {value:.4g}" in text
    assert "![convergence](weights-convergence.png)" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "kind" not in line]
    assert len(rows) == len(store.trials("weights"))


def test_best_so_far_is_monotone_in_loss(tmp_path):
    loop, _, _, store, _, _ = make(tmp_path, start=(40, 60))
    loop.run()
    line = best_so_far(store.trials("weights"))
    values = [v for _, v in line]
    assert values == sorted(values, reverse=True)  # minimising: never gets worse
    assert values[-1] == min(
        measured(t.objective) for t in store.trials("weights") if t.state == "done"
    )
