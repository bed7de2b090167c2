"""GPU activity (GPM), NVLink, PCIe replay, memory temperature and video engine metrics (NVML).

The GPM ratios are the profiling counters dcgm-exporter exports as ``DCGM_FI_PROF_*``, read
through NVML's GPU Performance Monitoring (Hopper and later): an average over the interval
between two of the agent's refreshes. A GPU or counter without GPM support has no series, never
a 0; ``tuneloop_gpu_gpm_supported`` says which GPUs have it.
"""

from tuneloop.catalog.base import gauge
from tuneloop.catalog.gpu import device

GPU_GPM_SUPPORTED = gauge(
    "tuneloop_gpu_gpm_supported",
    "1 when the GPU supports GPM profiling counters (Hopper and later), 0 when it does not.",
    "gpu",
)
GPU_SM_ACTIVE = device(
    "gauge",
    "tuneloop_gpu_sm_active_ratio",
    "Fraction of SMs busy (at least one warp resident), averaged over the refresh interval "
    "(GPM SM_UTIL).",
    "gpu",
    unit="ratio",
)
GPU_SM_OCCUPANCY = device(
    "gauge",
    "tuneloop_gpu_sm_occupancy_ratio",
    "Resident warps over the SMs' maximum, averaged over the refresh interval (GPM SM_OCCUPANCY).",
    "gpu",
    unit="ratio",
)
GPU_DRAM_ACTIVE = device(
    "gauge",
    "tuneloop_gpu_dram_active_ratio",
    "Device memory bandwidth used over its peak, averaged over the refresh interval "
    "(GPM DRAM_BW_UTIL).",
    "gpu",
    unit="ratio",
)
GPU_PIPE_ACTIVE = device(
    "gauge",
    "tuneloop_gpu_pipe_active_ratio",
    "Fraction of time the SMs' pipe was busy over the refresh interval: tensor (any tensor op), "
    "fp64, fp32, fp16 (non-tensor math).",
    "gpu",
    "pipe",
    unit="ratio",
)
GPU_NVLINK_TRANSMIT = device(
    "counter",
    "tuneloop_gpu_nvlink_transmit_bytes_total",
    "NVLink data bytes sent over all links (NVML field NVLINK_THROUGHPUT_DATA_TX, no protocol "
    "overhead).",
    "gpu",
    unit="bytes",
)
GPU_NVLINK_RECEIVE = device(
    "counter",
    "tuneloop_gpu_nvlink_receive_bytes_total",
    "NVLink data bytes received over all links (NVML field NVLINK_THROUGHPUT_DATA_RX, no "
    "protocol overhead).",
    "gpu",
    unit="bytes",
)
GPU_NVLINK_ERRORS = device(
    "counter",
    "tuneloop_gpu_nvlink_errors_total",
    "NVLink data-link errors on an active link: crc_flit, crc_data, replay, recovery.",
    "gpu",
    "link",
    "error",
)
GPU_PCIE_REPLAYS = device(
    "counter",
    "tuneloop_gpu_pcie_replays_total",
    "PCIe packets the GPU had to replay (link errors).",
    "gpu",
)
GPU_MEMORY_TEMPERATURE = device(
    "gauge",
    "tuneloop_gpu_memory_temperature_celsius",
    "HBM temperature (absent on GPUs that do not report it).",
    "gpu",
    unit="celsius",
)
GPU_ENCODER_UTILIZATION = device(
    "gauge",
    "tuneloop_gpu_encoder_utilization_ratio",
    "Video encoder (NVENC) busy fraction over NVML's sample period.",
    "gpu",
    unit="ratio",
)
GPU_DECODER_UTILIZATION = device(
    "gauge",
    "tuneloop_gpu_decoder_utilization_ratio",
    "Video decoder (NVDEC) busy fraction over NVML's sample period.",
    "gpu",
    unit="ratio",
)

SPECS = (
    GPU_GPM_SUPPORTED,
    GPU_SM_ACTIVE,
    GPU_SM_OCCUPANCY,
    GPU_DRAM_ACTIVE,
    GPU_PIPE_ACTIVE,
    GPU_NVLINK_TRANSMIT,
    GPU_NVLINK_RECEIVE,
    GPU_NVLINK_ERRORS,
    GPU_PCIE_REPLAYS,
    GPU_MEMORY_TEMPERATURE,
    GPU_ENCODER_UTILIZATION,
    GPU_DECODER_UTILIZATION,
)
