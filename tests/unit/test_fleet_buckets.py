"""Replicas of one model that bucket differently: the fleet panels sum only the shared
boundaries, checked by evaluating the dashboard's PromQL with promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tuneloop.generate.panels import bucket_rate

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
METRIC = "tuneloop_inference_request_prompt_tokens"

# Two replicas of model m: "a" has boundaries 10, 100; "b" (a shorter context) 10, 50.
# Every bucket grows by 60 a minute per observation that falls in it, so rates are whole.
SERIES = [
    ("a", "10", 1),
    ("a", "100", 2),
    ("a", "+Inf", 3),
    ("b", "10", 1),
    ("b", "50", 1),
    ("b", "+Inf", 2),
]


def evaluate(tmp_path: Path, expr: str, expected: list[tuple[str, float]]) -> str:
    """Run one promtool expression test; returns promtool's output when it fails, else ''."""
    series = [
        {
            "series": f'{METRIC}_bucket{{model="m",target="{t}",engine="vllm",le="{le}"}}',
            "values": f"0+{60 * per_minute}x20",
        }
        for t, le, per_minute in SERIES
    ] + [
        {
            "series": f'{METRIC}_count{{model="m",target="{t}",engine="vllm"}}',
            "values": f"0+{60 * total}x20",
        }
        for t, total in (("a", 3), ("b", 2))
    ]
    test = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {
                        "expr": expr.replace("$__rate_interval", "5m"),
                        "eval_time": "10m",
                        "exp_samples": [
                            {"labels": f'{{le="{le}",model="m"}}', "value": value}
                            for le, value in expected
                        ],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "buckets_test.yaml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    result = subprocess.run(
        [PROMTOOL, "test", "rules", str(path)],
        capture_output=True,
        timeout=60,
        check=False,
        text=True,
    )
    return "" if result.returncode == 0 else result.stdout + result.stderr


@pytest.mark.integration
def test_only_boundaries_every_replica_reports_are_summed(tmp_path: Path) -> None:
    expr = bucket_rate(METRIC, 'model="m"', "model", common=True)
    assert evaluate(tmp_path, expr, [("10", 2.0), ("+Inf", 5.0)]) == ""


@pytest.mark.integration
def test_without_it_a_boundary_some_replicas_lack_breaks_the_cumulative_sum(
    tmp_path: Path,
) -> None:
    expr = bucket_rate(METRIC, 'model="m"', "model")
    # le=50 holds b's rate only (1), less than le=10's 2: the sum is not cumulative.
    expected = [("10", 2.0), ("50", 1.0), ("100", 2.0), ("+Inf", 5.0)]
    assert evaluate(tmp_path, expr, expected) == ""
