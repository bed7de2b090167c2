"""Request arrivals and lengths, drawn in fixed blocks of time from a seeded numpy Generator.

Arrivals are a Poisson process whose rate is multiplied by ``burst_factor`` for ``burst_s``
seconds out of every ``burst_period_s`` (a modulated Poisson process, drawn by thinning).
Prompt and output lengths are log-normal with the given means, clipped to ``[1, max]``, the shape
seen in chat traces such as ShareGPT. Each block of ``BLOCK_S`` seconds has its own generator
spawned from the seed, so ``run_until(30); run_until(60)`` draws exactly what ``run_until(60)``
does, and two fleets with the same seed see the same requests (common random numbers) whatever
their capacity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tuneloop.validation import mapping, no_unknown_keys, number

BLOCK_S = 10.0


@dataclass(frozen=True)
class WorkloadConfig:
    """Arrival process and length distributions."""

    rate: float = 10.0
    burst_factor: float = 1.0
    burst_period_s: float = 60.0
    burst_s: float = 0.0
    prompt_mean: float = 600.0
    prompt_sigma: float = 0.8
    prompt_max: int = 8192
    output_mean: float = 250.0
    output_sigma: float = 0.7
    output_max: int = 2048
    bytes_per_prompt_token: float = 4.0
    bytes_per_output_chunk: float = 200.0

    @classmethod
    def from_mapping(cls, data: Any, field: str = "workload") -> WorkloadConfig:
        """Build from a YAML mapping; errors name the field."""
        raw = mapping(data, field)
        names = set(cls.__dataclass_fields__)
        no_unknown_keys(raw, field, names)
        values: dict[str, Any] = {}
        for key, value in raw.items():
            num = number(value, f"{field}.{key}", minimum=0.0)
            values[key] = int(num) if key.endswith("_max") else num
        cfg = cls(**values)
        if cfg.rate <= 0:
            raise ValueError(f"{field}.rate: must be a positive number, got {cfg.rate!r}")
        return cfg

    def rate_at(self, t: np.ndarray) -> np.ndarray:
        """Arrival rate at times ``t``."""
        if self.burst_s <= 0 or self.burst_factor == 1.0:
            return np.full(t.shape, self.rate)
        in_burst = np.mod(t, self.burst_period_s) < self.burst_s
        return np.where(in_burst, self.rate * self.burst_factor, self.rate)


@dataclass(frozen=True)
class Block:
    """Requests sent in one block of time, sorted by send time."""

    times: np.ndarray
    prompts: np.ndarray
    outputs: np.ndarray


def _lognormal(rng: np.random.Generator, mean: float, sigma: float, n: int) -> np.ndarray:
    mu = np.log(mean) - sigma * sigma / 2.0
    return rng.lognormal(mu, sigma, n)


def draw_block(cfg: WorkloadConfig, seed: int, index: int) -> Block:
    """The requests sent in ``[index * BLOCK_S, (index + 1) * BLOCK_S)``."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
    peak = cfg.rate * max(1.0, cfg.burst_factor)
    n = rng.poisson(peak * BLOCK_S)
    times = np.sort(rng.uniform(0.0, BLOCK_S, n)) + index * BLOCK_S
    keep = rng.uniform(0.0, peak, n) < cfg.rate_at(times)
    prompts = np.clip(_lognormal(rng, cfg.prompt_mean, cfg.prompt_sigma, n), 1, cfg.prompt_max)
    outputs = np.clip(_lognormal(rng, cfg.output_mean, cfg.output_sigma, n), 1, cfg.output_max)
    return Block(times[keep], prompts[keep].astype(np.int64), outputs[keep].astype(np.int64))
