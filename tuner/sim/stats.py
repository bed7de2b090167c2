"""Windowed statistics of a simulated fleet, named as the built-in signals are.

Latencies are what the client sees (network legs included). Inter-token latency is the
distribution of step durations weighted by the sequences in each step, since every running
sequence emits one token per step. Queue, prefill and decode times of finished requests are the
engine's own (replica clock, no network legs), as vLLM's request histograms measure them. Queue
depth and the number in system are the means of the samples taken at each send (time averages
for Poisson arrivals). Empty windows give None, never 0.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from tuner.sim.network import NetworkConfig
from tuner.sim.replica import DONE, ERROR, Replica, RequestTable


class SimFleet(Protocol):
    """What the statistics read of a fleet (:class:`tuner.sim.fleet.SimFleet` has it); a
    protocol, so this module does not import the fleet that imports it."""

    replicas: list[Replica]
    table: RequestTable
    network: NetworkConfig
    active: int
    send_t: list[float]
    deliver_t: list[float]
    first_client_t: list[float]
    samples: list[tuple[float, int, int]]


def _quantile(values: np.ndarray, q: float) -> float | None:
    return float(np.quantile(values, q)) if values.size else None


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float | None:
    if values.size == 0 or weights.sum() <= 0:
        return None
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    idx = int(np.searchsorted(cum, q * cum[-1], side="left"))
    return float(values[order][min(idx, values.size - 1)])


def step_arrays(fleet: SimFleet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start time, duration and batch of every engine step of every replica."""
    segs = [s for rep in fleet.replicas for s in rep.segments]
    if not segs:
        empty = np.zeros(0)
        return empty, empty, empty
    arr = np.asarray(segs, dtype=float)
    t0, d0, g, k, n = arr.T
    counts = k.astype(np.int64)
    seg_of = np.repeat(np.arange(len(segs)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    j = offsets.astype(float)
    start = t0[seg_of] + j * d0[seg_of] + g[seg_of] * j * (j - 1.0) / 2.0
    dur = d0[seg_of] + g[seg_of] * j
    return start, dur, n[seg_of]


def window_stats(fleet: SimFleet, start: float, end: float) -> dict[str, float | None]:
    """Signals over ``[start, end)``."""
    width = end - start
    if width <= 0:
        raise ValueError(f"empty window [{start}, {end})")
    send = np.asarray(fleet.send_t)
    deliver = np.asarray(fleet.deliver_t)
    first = np.asarray(fleet.first_client_t)
    status = np.asarray(fleet.table.status)
    finish = np.asarray(fleet.table.finish_t)
    out_tokens = np.asarray(fleet.table.output)
    with np.errstate(invalid="ignore"):
        done = (status == DONE) & (deliver >= start) & (deliver < end)
        errors = (status == ERROR) & (finish >= start) & (finish < end)
    ttft = first[done] - send[done]
    e2e = deliver[done] - send[done]
    tab = fleet.table
    scheduled = np.asarray(tab.scheduled_t)[done]
    first_token = np.asarray(tab.first_t)[done]
    queue = scheduled - np.asarray(tab.queued_t)[done]
    prefill = first_token - scheduled
    decode = finish[done] - first_token
    n_done, n_err = int(done.sum()), int(errors.sum())
    sent = int(((send >= start) & (send < end)).sum())
    st, dur, batch = step_arrays(fleet)
    in_win = (st >= start) & (st < end)
    tokens = float(batch[in_win].sum())
    busy = float(np.clip(np.minimum(st + dur, end) - np.maximum(st, start), 0.0, None).sum())
    samples = np.asarray([s for s in fleet.samples if start <= s[0] < end], dtype=float)
    preempt = sum(rep.preemptions for rep in fleet.replicas)
    return {
        "p50_ttft_seconds": _quantile(ttft, 0.5),
        "p99_ttft_seconds": _quantile(ttft, 0.99),
        "p50_itl_seconds": _weighted_quantile(dur[in_win], batch[in_win], 0.5),
        "p99_itl_seconds": _weighted_quantile(dur[in_win], batch[in_win], 0.99),
        "mean_itl_seconds": (
            float((dur[in_win] * batch[in_win]).sum() / tokens) if tokens else None
        ),
        "p50_e2e_latency_seconds": _quantile(e2e, 0.5),
        "p99_e2e_latency_seconds": _quantile(e2e, 0.99),
        "p50_queue_seconds": _quantile(queue, 0.5),
        "p99_queue_seconds": _quantile(queue, 0.99),
        "p50_prefill_seconds": _quantile(prefill, 0.5),
        "p99_prefill_seconds": _quantile(prefill, 0.99),
        "p50_decode_seconds": _quantile(decode, 0.5),
        "p99_decode_seconds": _quantile(decode, 0.99),
        "mean_e2e_latency_seconds": float(e2e.mean()) if n_done else None,
        "throughput_tokens_per_second": tokens / width if tokens else None,
        "completed_tokens_per_second": float(out_tokens[done].sum()) / width if n_done else None,
        "request_rate": sent / width if sent else None,
        "error_ratio": n_err / (n_done + n_err) if n_done + n_err else None,
        "queue_depth": float(samples[:, 2].mean()) if samples.size else None,
        "mean_in_system": float(samples[:, 1].mean()) if samples.size else None,
        "gpu_busy_ratio": busy / (width * fleet.active),
        "iperf3_throughput_bytes_per_second": fleet.network.throughput_bps() / 8,
        "completed": float(n_done),
        "errors": float(n_err),
        "preemptions": float(preempt),
    }
