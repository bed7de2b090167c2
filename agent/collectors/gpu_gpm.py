"""GPM (GPU Performance Monitoring): SM activity and occupancy, DRAM and pipe activity.

Hopper and later GPUs keep profiling counters that NVML reads as samples: ``nvmlGpmMetricsGet``
turns two samples of one GPU into each metric's average over the time between them. The agent
takes one sample per GPU at each refresh and reports the metrics between that sample and the
previous refresh's, so the refresh interval is the averaging window and no refresh waits. The
first refresh (and the one after a failed or lost sample) has only ``tuneloop_gpu_gpm_supported``.

Support is asked once per GPU (``nvmlGpmQueryDeviceSupport``): ``isSupportedDevice = 0``,
NOT_SUPPORTED or FUNCTION_NOT_FOUND (a driver older than GPM) mean supported = 0 and no GPM
series, never a 0; any other error is counted and asked again next refresh. A metric answering an
error in its own ``nvmlReturn`` is skipped and counted under its own field (``gpm_sm_active``,
``gpm_pipe_fp64``...); the other metrics of the GPU stand.

The metrics (and their dcgm-exporter counterparts): SM_UTIL (``DCGM_FI_PROF_SM_ACTIVE``),
SM_OCCUPANCY (``_SM_OCCUPANCY``), DRAM_BW_UTIL (``_DRAM_ACTIVE``), ANY_TENSOR_UTIL
(``_PIPE_TENSOR_ACTIVE``), FP64/FP32/FP16_UTIL (``_PIPE_FP64/FP32/FP16_ACTIVE``).
"""

from __future__ import annotations

import contextlib
from typing import Any

import pynvml

from agent.collectors.gpu_device import GpuLost, OnSkip, Samples, call, code_name, error_name
from agent.nvml.api import NvmlLike
from tuneloop.catalog import gpu_signals as cat
from tuneloop.catalog.base import MetricSpec

# (NVML_GPM_METRIC_*, spec, extra labels, field name for skips)
GPM_METRICS: tuple[tuple[int, MetricSpec, tuple[str, ...], str], ...] = (
    (pynvml.NVML_GPM_METRIC_SM_UTIL, cat.GPU_SM_ACTIVE, (), "gpm_sm_active"),
    (pynvml.NVML_GPM_METRIC_SM_OCCUPANCY, cat.GPU_SM_OCCUPANCY, (), "gpm_sm_occupancy"),
    (pynvml.NVML_GPM_METRIC_DRAM_BW_UTIL, cat.GPU_DRAM_ACTIVE, (), "gpm_dram_active"),
    (pynvml.NVML_GPM_METRIC_ANY_TENSOR_UTIL, cat.GPU_PIPE_ACTIVE, ("tensor",), "gpm_pipe_tensor"),
    (pynvml.NVML_GPM_METRIC_FP64_UTIL, cat.GPU_PIPE_ACTIVE, ("fp64",), "gpm_pipe_fp64"),
    (pynvml.NVML_GPM_METRIC_FP32_UTIL, cat.GPU_PIPE_ACTIVE, ("fp32",), "gpm_pipe_fp32"),
    (pynvml.NVML_GPM_METRIC_FP16_UTIL, cat.GPU_PIPE_ACTIVE, ("fp16",), "gpm_pipe_fp16"),
)


class GpmReader:
    """Keeps two GPM samples per GPU and reads the metrics between refreshes."""

    def __init__(self, nvml: NvmlLike) -> None:
        self.nvml = nvml
        self._supported: dict[str, bool] = {}
        self._samples: dict[str, tuple[Any, Any]] = {}  # gpu -> (previous, next to fill)
        self._ready: set[str] = set()  # GPUs whose previous sample holds a reading

    def read(self, gpu: str, handle: Any, out: Samples, on_skip: OnSkip) -> None:
        """Sample one GPU; add its supported flag and, from the second sample on, its metrics."""
        supported = self._support(gpu, handle, on_skip)
        if supported is None:
            return
        out.setdefault(cat.GPU_GPM_SUPPORTED, []).append(([gpu], 1.0 if supported else 0.0))
        if not supported:
            return
        pair = self._samples.get(gpu) or self._allocate(gpu, on_skip)
        if pair is None:
            return
        previous, current = pair
        if call(on_skip, "gpm", self.nvml.nvmlGpmSampleGet, handle, current) is None:
            self._ready.discard(gpu)
            return
        if gpu in self._ready:
            self._metrics(gpu, previous, current, out, on_skip)
        self._samples[gpu] = (current, previous)
        self._ready.add(gpu)

    def forget(self, gpu: str) -> None:
        """The GPU was lost: its next reading starts from a fresh sample."""
        self._ready.discard(gpu)

    def close(self) -> None:
        """Free every sample."""
        for pair in self._samples.values():
            for sample in pair:
                with contextlib.suppress(pynvml.NVMLError):
                    self.nvml.nvmlGpmSampleFree(sample)
        self._samples.clear()
        self._ready.clear()

    def _support(self, gpu: str, handle: Any, on_skip: OnSkip) -> bool | None:
        if gpu in self._supported:
            return self._supported[gpu]
        try:
            answer = self.nvml.nvmlGpmQueryDeviceSupport(handle)
        except (pynvml.NVMLError_NotSupported, pynvml.NVMLError_FunctionNotFound):
            supported = False
        except pynvml.NVMLError_GpuIsLost:
            raise GpuLost from None
        except pynvml.NVMLError as err:
            on_skip("gpm", error_name(err))
            return None
        else:
            supported = bool(answer.isSupportedDevice)
        self._supported[gpu] = supported
        return supported

    def _allocate(self, gpu: str, on_skip: OnSkip) -> tuple[Any, Any] | None:
        first = call(on_skip, "gpm", self.nvml.nvmlGpmSampleAlloc)
        second = call(on_skip, "gpm", self.nvml.nvmlGpmSampleAlloc) if first is not None else None
        if second is None:
            if first is not None:
                self.nvml.nvmlGpmSampleFree(first)
            return None
        self._samples[gpu] = (first, second)
        return first, second

    def _metrics(self, gpu: str, first: Any, second: Any, out: Samples, on_skip: OnSkip) -> None:
        request = pynvml.c_nvmlGpmMetricsGet_t()
        request.version = pynvml.NVML_GPM_METRICS_GET_VERSION
        request.numMetrics = len(GPM_METRICS)
        request.sample1, request.sample2 = first, second
        for i, (metric_id, *_) in enumerate(GPM_METRICS):
            request.metrics[i].metricId = metric_id
        if call(on_skip, "gpm", self.nvml.nvmlGpmMetricsGet, request) is None:
            return
        for i, (_, spec, extra, field) in enumerate(GPM_METRICS):
            metric = request.metrics[i]
            if metric.nvmlReturn != pynvml.NVML_SUCCESS:
                on_skip(field, code_name(metric.nvmlReturn))
                continue
            out.setdefault(spec, []).append(([gpu, *extra], float(metric.value) / 100))
