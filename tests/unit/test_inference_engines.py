"""Normalisation tables: each engine's own metrics map to exact normalised values."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from agent.collectors.inference_engines import (
    ParseError,
    detect_engine,
    has_engine_metrics,
    normalise,
    parse_samples,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inference"


def load(name: str):
    return parse_samples((FIXTURES / f"{name}.metrics").read_text())


def test_vllm_current_names() -> None:
    index = load("vllm")
    model = "meta-llama/Llama-3.1-8B-Instruct"
    assert detect_engine(index) == "vllm"
    assert normalise(index, "vllm") == {
        "waiting": {model: 3.0},
        "running": {model: 14.0},
        "kv_cache": {model: 0.4375},
        "preemptions": {model: 2.0},
        "prompt_tokens": {model: 182734.0},
        "generation_tokens": {model: 96512.0},
        "completed": {model: 448.0},  # stop 411 + length 37; the 5 aborts are left out
    }


def test_vllm_legacy_gpu_cache_usage_name() -> None:
    index = load("vllm_legacy")
    assert "vllm:kv_cache_usage_perc" not in index
    values = normalise(index, "vllm")
    assert values["kv_cache"] == {"mistralai/Mistral-7B-Instruct-v0.3": 0.9125}
    assert values["waiting"] == {"mistralai/Mistral-7B-Instruct-v0.3": 11.0}
    assert values["completed"] == {"mistralai/Mistral-7B-Instruct-v0.3": 129.0}


def test_vllm_prefers_new_kv_name_when_both_present() -> None:
    text = (
        "# TYPE vllm:gpu_cache_usage_perc gauge\n"
        'vllm:gpu_cache_usage_perc{model_name="m"} 0.9\n'
        "# TYPE vllm:kv_cache_usage_perc gauge\n"
        'vllm:kv_cache_usage_perc{model_name="m"} 0.25\n'
    )
    assert normalise(parse_samples(text), "vllm")["kv_cache"] == {"m": 0.25}


def test_vllm_data_parallel_engines_sum_counts_and_take_worst_kv() -> None:
    text = "".join(
        f'vllm:num_requests_waiting{{engine="{e}",model_name="m"}} {w}\n'
        f'vllm:kv_cache_usage_perc{{engine="{e}",model_name="m"}} {kv}\n'
        for e, w, kv in ((0, 2, 0.5), (1, 5, 0.8), (2, 0, 0.1))
    )
    values = normalise(parse_samples(text), "vllm")
    assert values["waiting"] == {"m": 7.0}
    assert values["kv_cache"] == {"m": 0.8}


def test_sglang() -> None:
    index = load("sglang")
    model = "Qwen/Qwen2.5-7B-Instruct"
    assert detect_engine(index) == "sglang"
    assert normalise(index, "sglang") == {
        "waiting": {model: 5.0},
        "running": {model: 21.0},
        "kv_cache": {model: 0.28},
        "preemptions": {model: 4.0},
        "prompt_tokens": {model: 8128902.0},
        "generation_tokens": {model: 7557572.0},
        "completed": {model: 20341.0},
    }


def test_tgi_has_no_kv_ratio_and_takes_the_configured_model() -> None:
    index = load("tgi")
    assert detect_engine(index) == "tgi"
    values = normalise(index, "tgi", model="bigcode/starcoder2-15b")
    assert "kv_cache" not in values
    assert "preemptions" not in values
    assert values == {
        "waiting": {"bigcode/starcoder2-15b": 7.0},
        "running": {"bigcode/starcoder2-15b": 32.0},
        "prompt_tokens": {"bigcode/starcoder2-15b": 402716.0},
        "generation_tokens": {"bigcode/starcoder2-15b": 184610.0},
        "completed": {"bigcode/starcoder2-15b": 1521.0},
    }
    assert normalise(index, "tgi")["waiting"] == {"unknown": 7.0}


def test_triton_two_models() -> None:
    index = load("triton")
    assert detect_engine(index) == "triton"
    values = normalise(index, "triton")
    # pending (0) + the TensorRT-LLM batcher's own queue (4); resnet50: versions 1 and 2 summed.
    assert values["waiting"] == {"tensorrt_llm": 4.0, "resnet50": 9.0}
    # Only the TensorRT-LLM model has a faithful running count; resnet50 has none, not 0.
    assert values["running"] == {"tensorrt_llm": 28.0}
    assert values["kv_cache"] == {"tensorrt_llm": 4680 / 6240}
    assert values["completed"] == {"tensorrt_llm": 2310.0, "resnet50": 100000.0}
    assert "prompt_tokens" not in values


def test_triton_kv_fraction_used_when_block_counts_absent_and_zero_max_skipped() -> None:
    text = (
        "# TYPE nv_trt_llm_kv_cache_block_metrics gauge\n"
        'nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="fraction",model="a"} 0.6\n'
        'nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="used",model="b"} 0\n'
        'nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="max",model="b"} 0\n'
        'nv_inference_pending_request_count{model="a",version="1"} 1\n'
    )
    values = normalise(parse_samples(text), "triton")
    assert values["kv_cache"] == {"a": 0.6}


def test_detection_ignores_process_metrics_and_finds_nothing_without_engine() -> None:
    index = parse_samples('process_open_fds 12\npython_info{version="3.12"} 1\n')
    assert detect_engine(index) is None
    assert not has_engine_metrics(index, "vllm")
    assert detect_engine(parse_samples("")) is None


def test_non_finite_values_are_dropped() -> None:
    text = (
        'vllm:num_requests_waiting{model_name="m"} NaN\n'
        'vllm:num_requests_running{model_name="m"} 2\n'
    )
    values = normalise(parse_samples(text), "vllm")
    assert "waiting" not in values
    assert values["running"] == {"m": 2.0}
    assert all(math.isfinite(v) for q in values.values() for v in q.values())


@pytest.mark.parametrize(
    "body",
    ["<html><body>502 Bad Gateway</body></html>", "hello world", '{"status": "ok"}', 'x{a="b" 1'],
)
def test_garbage_raises_parse_error_naming_the_start(body: str) -> None:
    with pytest.raises(ParseError, match="not Prometheus text exposition"):
        parse_samples(body)
