"""Per-model SLO files: parsing with named errors, and the burn-rate rules they give."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuneloop.generate import slos

ROOT = Path(__file__).resolve().parents[2]


def _doc(*entries: dict[str, object]) -> dict[str, object]:
    return {"slos": list(entries)}


def _entry(model: str = "*", availability: object = 0.99, **ttft: object) -> dict[str, object]:
    return {
        "model": model,
        "availability": availability,
        "ttft": ttft or {"objective": 0.99, "threshold_seconds": 1},
    }


def test_the_shipped_file_names_a_default_and_a_model_of_its_own() -> None:
    entries = slos.load(ROOT / slos.SLO_FILE)
    models = {e.model: e for e in entries}
    assert models["*"].availability == 0.99 and models["*"].le == "1.0"
    big = models["meta-llama/Llama-3.1-405B-Instruct"]
    assert (big.availability, big.ttft_objective, big.le) == (0.995, 0.95, "2.5")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"slo": []}, "list under 'slos'"),
        (_doc(), "slos is empty"),
        (_doc(_entry(availability=1.5)), r"slos\[0\].availability: must lie strictly"),
        (_doc(_entry(availability=0.9)), r"slos\[0\].availability: 0.9 leaves a budget"),
        (_doc(_entry(availability="high")), r"slos\[0\].availability: must be a number"),
        (_doc(_entry(model='a"b')), r"slos\[0\].model"),
        (_doc(_entry(), _entry()), r"slos\[1\].model: '\*' is listed twice"),
        (_doc(_entry(objective=0.99)), r"slos\[0\].ttft: want objective and threshold"),
        (
            _doc(_entry(objective=0.99, threshold_seconds=0)),
            r"slos\[0\].ttft.threshold_seconds",
        ),
        (_doc({**_entry(), "latency": 1}), r"slos\[0\]: unknown keys latency"),
    ],
)
def test_bad_files_are_refused_naming_the_field(document: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        slos.parse(document, "slos.yaml")


def test_each_entry_selects_its_models_and_the_default_the_rest() -> None:
    entries = slos.parse(
        _doc(_entry(), _entry("a", 0.999, objective=0.95, threshold_seconds=2.5), _entry("b"))
    )
    assert slos.selector(entries[0], entries) == 'model!="a", model!="b"'
    assert slos.selector(entries[1], entries) == 'model="a"'
    records = slos.recordings(entries)
    ttft = [r for r in records if r.record.endswith("ratio_rate1h") and "ttft" in r.record]
    assert [r.labels["slo_model"] for r in ttft] == ["*", "a", "b"]
    assert 'model="a", le="2.5"' in ttft[1].expr and "by (cluster, model)" in ttft[1].expr
    page = slos.burn_expr(slos.ERROR_RECORD, entries, slos.PAGE, "availability")
    assert 'ratio_rate1h{model="a"} > 0.0144 and' in page
    assert '"slo_objective", "99.9% succeed"' in page
    assert 'ratio_rate6h{model!="a", model!="b"} > 0.06 and' in page


def test_a_file_with_only_a_default_selects_every_model() -> None:
    entries = slos.parse(_doc(_entry()))
    assert slos.selector(entries[0], entries) == ""
    ttft = slos.recordings(entries)[-1]
    assert 'bucket{le="1.0"}' in ttft.expr and "_count[3d]" in ttft.expr
