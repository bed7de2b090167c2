"""GPU profiles for the simulated replicas, and where their constants come from.

Each profile is one replica serving a Llama-3-8B-class model (16 GB of bf16 weights, 128 KiB of
KV cache per token: 2 x 32 layers x 8 KV heads x 128 dims x 2 bytes) on one GPU under vLLM.
The engine's step time follows the shape of published vLLM throughput-versus-batch measurements:
decode is memory-bandwidth bound, so one step reads the weights once (a fixed cost), plus a small
per-sequence cost (sampling, scheduling) and a cost per KV token read; prefill is compute bound,
a cost per prompt token::

    step_seconds = (a + b * batch + c * kv_tokens + p * prefill_tokens) / speed

Constants for the A100-80GB reference (speed 1.0):
- ``a`` = 8 ms: 16 GB of weights / ~2 TB/s HBM bandwidth;
- ``b`` = 0.06 ms per sequence: sampler and scheduler overhead seen in vLLM profiles;
- ``c`` = 64 ns per KV token: 128 KiB per token / ~2 TB/s;
- ``p`` = 0.06 ms per prompt token: ~16 GFLOP per token at ~0.85 of 312 TFLOP/s.
This gives ~120 tokens/s at batch 1 and a throughput that rises and saturates near 5-6k tokens/s
at batch 256 with ~1.3k tokens per sequence, which is the curve vLLM reports for 8B models on
A100. ``speed`` scales by HBM bandwidth relative to the A100-80GB (H100 SXM 3.35 TB/s, L40S
0.86 TB/s, A100-40GB 1.56 TB/s). KV capacity is the memory left for the cache at vLLM's default
``gpu_memory_utilization`` of 0.9 after weights and activations, divided by 128 KiB per token.
"""

from __future__ import annotations

from dataclasses import dataclass

STEP_FIXED_S = 8e-3
STEP_PER_SEQ_S = 6e-5
STEP_PER_KV_TOKEN_S = 6.4e-8
STEP_PER_PREFILL_TOKEN_S = 6e-5


@dataclass(frozen=True)
class GpuProfile:
    """A replica's hardware: relative speed, KV-cache capacity and an hourly price."""

    name: str
    speed: float
    kv_capacity_tokens: int
    cost_per_hour: float

    def step_seconds(self, batch: int, kv_tokens: int, prefill_tokens: int = 0) -> float:
        """Duration of one engine step."""
        raw = (
            STEP_FIXED_S
            + STEP_PER_SEQ_S * batch
            + STEP_PER_KV_TOKEN_S * kv_tokens
            + STEP_PER_PREFILL_TOKEN_S * prefill_tokens
        )
        return raw / self.speed


# KV capacity: (80 GB x 0.9 - 16 GB weights - ~2 GB activations) / 128 KiB ~= 410k tokens;
# (40 GB x 0.9 - 18 GB) / 128 KiB ~= 135k; L40S (48 GB x 0.9 - 18 GB) / 128 KiB ~= 190k.
# Prices are typical on-demand cloud rates per GPU-hour.
PROFILES: dict[str, GpuProfile] = {
    p.name: p
    for p in (
        GpuProfile("H100", speed=1.65, kv_capacity_tokens=410_000, cost_per_hour=4.0),
        GpuProfile("A100-80GB", speed=1.0, kv_capacity_tokens=410_000, cost_per_hour=2.5),
        GpuProfile("A100-40GB", speed=0.76, kv_capacity_tokens=135_000, cost_per_hour=1.8),
        GpuProfile("L40S", speed=0.42, kv_capacity_tokens=190_000, cost_per_hour=1.2),
    )
}


def profile(name: str) -> GpuProfile:
    """The profile called ``name``; the error lists the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown GPU profile {name!r} (known: {known})") from None
