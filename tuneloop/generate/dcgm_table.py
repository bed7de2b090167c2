"""The dcgm-exporter mapping: which ``tuneloop_gpu_*`` series publish which ``DCGM_FI_*`` name.

This table is the one source of the compatibility layer: the recording rules
(``alerts/dcgm_compat_rules.yaml``), their PrometheusRule and the page ``docs/dcgm-compat.md`` are
generated from it. Each row names the DCGM field, the unit dcgm-exporter publishes it in, the
PromQL over tuneloop series that yields the value in tuneloop's base unit, the scale that turns
that into dcgm-exporter's unit, and a note. A row without a source is a name SREs meet in
dcgm-exporter's stock dashboard or in common alert rules that tuneloop cannot publish; its note
says why. ``stock`` says where the name is used: ``dashboard`` (dcgm-exporter's own Grafana
dashboard), ``alerts`` (alert rules commonly written against dcgm-exporter), or empty.

Decisions recorded here:

- ``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` comes from NVML's busy fraction, the same quantity sampled
  more coarsely, so the stock dashboard's "GPU Utilization" panel shows data.
- ``DCGM_FI_DEV_XID_ERRORS`` is a gauge in dcgm-exporter: the code of the last XID the GPU
  raised, 0 before any. tuneloop counts XIDs by code and stamps when each code was last seen;
  the rule takes the code with the latest stamp on each GPU and turns its ``xid`` label into the
  value (PromQL cannot read a label as a number, so the rule lists the codes 1-255 as
  alternatives), and publishes 0 for GPUs that raised none. Like dcgm-exporter's, the value
  holds until the agent restarts.
- ``DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL`` has no documented unit; measured against nvidia-smi it
  reads as MB/s summed over both directions, which is what the rule publishes.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024
XID_CODES = range(1, 256)
RATE_WINDOW = "1m"


@dataclass(frozen=True)
class DcgmMapping:
    """One DCGM field: its unit, its tuneloop source (PromQL) and the scale between them."""

    dcgm: str
    unit: str
    tuneloop: str = ""
    source: str = ""
    scale: float = 1.0
    note: str = ""
    stock: str = ""

    @property
    def mapped(self) -> bool:
        """True when tuneloop publishes this name."""
        return bool(self.source)


def pick(metric: str, **labels: str) -> str:
    """``metric`` narrowed to ``labels``, with those labels dropped (each DCGM name is one)."""
    matchers = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"max without ({', '.join(labels)}) ({metric}{{{matchers}}})"


def _rate(metric: str) -> str:
    return f"sum without (link) (rate({metric}[{RATE_WINDOW}]))"


_NVLINK_TX = "tuneloop_gpu_nvlink_transmit_bytes_total"
_NVLINK_RX = "tuneloop_gpu_nvlink_receive_bytes_total"
_PIPES = {"TENSOR": "tensor", "FP64": "fp64", "FP32": "fp32", "FP16": "fp16"}
_ECC = {"SBE": "corrected", "DBE": "uncorrected"}
_ECC_SCOPE = {"VOL": "volatile", "AGG": "aggregate"}
_VIOLATIONS = ("POWER", "THERMAL", "SYNC_BOOST", "BOARD_LIMIT", "LOW_UTIL", "RELIABILITY")

MAPPINGS: tuple[DcgmMapping, ...] = (
    DcgmMapping(
        "DCGM_FI_DEV_GPU_UTIL",
        "%",
        "tuneloop_gpu_utilization_ratio",
        "tuneloop_gpu_utilization_ratio",
        100,
        "NVML's busy fraction over its sample period; earlier versions of the stock dashboard "
        "plot it.",
        "alerts",
    ),
    DcgmMapping(
        "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
        "ratio",
        "tuneloop_gpu_utilization_ratio",
        "tuneloop_gpu_utilization_ratio",
        1,
        "NVML's busy fraction stands in for DCGM's profiling counter (same meaning, coarser "
        "sampling).",
        "dashboard",
    ),
    DcgmMapping(
        "DCGM_FI_DEV_MEM_COPY_UTIL",
        "%",
        "tuneloop_gpu_memory_utilization_ratio",
        "tuneloop_gpu_memory_utilization_ratio",
        100,
    ),
    DcgmMapping(
        "DCGM_FI_DEV_FB_USED",
        "MiB",
        "tuneloop_gpu_memory_used_bytes",
        "tuneloop_gpu_memory_used_bytes",
        1 / MIB,
        stock="dashboard, alerts",
    ),
    DcgmMapping(
        "DCGM_FI_DEV_FB_FREE",
        "MiB",
        "tuneloop_gpu_memory_total_bytes - tuneloop_gpu_memory_used_bytes",
        "tuneloop_gpu_memory_total_bytes - tuneloop_gpu_memory_used_bytes",
        1 / MIB,
        "Total less used: NVML's reserved memory counts as free here.",
        "dashboard, alerts",
    ),
    DcgmMapping(
        "DCGM_FI_DEV_FB_TOTAL",
        "MiB",
        "tuneloop_gpu_memory_total_bytes",
        "tuneloop_gpu_memory_total_bytes",
        1 / MIB,
    ),
    DcgmMapping(
        "DCGM_FI_DEV_GPU_TEMP",
        "C",
        "tuneloop_gpu_temperature_celsius",
        "tuneloop_gpu_temperature_celsius",
        stock="dashboard, alerts",
    ),
    DcgmMapping(
        "DCGM_FI_DEV_MEMORY_TEMP",
        "C",
        "tuneloop_gpu_memory_temperature_celsius",
        "tuneloop_gpu_memory_temperature_celsius",
        stock="alerts",
    ),
    DcgmMapping(
        "DCGM_FI_DEV_POWER_USAGE",
        "W",
        "tuneloop_gpu_power_watts",
        "tuneloop_gpu_power_watts",
        stock="dashboard, alerts",
    ),
    DcgmMapping(
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
        "mJ",
        "tuneloop_gpu_energy_joules_total",
        "tuneloop_gpu_energy_joules_total",
        1000,
        "A counter since the driver was loaded, as in dcgm-exporter.",
    ),
    DcgmMapping(
        "DCGM_FI_DEV_SM_CLOCK",
        "MHz",
        "tuneloop_gpu_sm_clock_hertz",
        "tuneloop_gpu_sm_clock_hertz",
        1e-6,
        stock="dashboard",
    ),
    DcgmMapping(
        "DCGM_FI_DEV_MEM_CLOCK",
        "MHz",
        "tuneloop_gpu_memory_clock_hertz",
        "tuneloop_gpu_memory_clock_hertz",
        1e-6,
    ),
    DcgmMapping(
        "DCGM_FI_PROF_PCIE_TX_BYTES",
        "B/s",
        "tuneloop_gpu_pcie_transmit_bytes_per_second",
        "tuneloop_gpu_pcie_transmit_bytes_per_second",
        note="NVML's 20 ms sample rather than DCGM's averaged profiling counter.",
    ),
    DcgmMapping(
        "DCGM_FI_PROF_PCIE_RX_BYTES",
        "B/s",
        "tuneloop_gpu_pcie_receive_bytes_per_second",
        "tuneloop_gpu_pcie_receive_bytes_per_second",
        note="NVML's 20 ms sample rather than DCGM's averaged profiling counter.",
    ),
    DcgmMapping(
        "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
        "count",
        "tuneloop_gpu_pcie_replays_total",
        "tuneloop_gpu_pcie_replays_total",
        stock="alerts",
    ),
    DcgmMapping(
        "DCGM_FI_DEV_ENC_UTIL",
        "%",
        "tuneloop_gpu_encoder_utilization_ratio",
        "tuneloop_gpu_encoder_utilization_ratio",
        100,
    ),
    DcgmMapping(
        "DCGM_FI_DEV_DEC_UTIL",
        "%",
        "tuneloop_gpu_decoder_utilization_ratio",
        "tuneloop_gpu_decoder_utilization_ratio",
        100,
    ),
    DcgmMapping(
        "DCGM_FI_PROF_SM_ACTIVE",
        "ratio",
        "tuneloop_gpu_sm_active_ratio",
        "tuneloop_gpu_sm_active_ratio",
    ),
    DcgmMapping(
        "DCGM_FI_PROF_SM_OCCUPANCY",
        "ratio",
        "tuneloop_gpu_sm_occupancy_ratio",
        "tuneloop_gpu_sm_occupancy_ratio",
    ),
    DcgmMapping(
        "DCGM_FI_PROF_DRAM_ACTIVE",
        "ratio",
        "tuneloop_gpu_dram_active_ratio",
        "tuneloop_gpu_dram_active_ratio",
    ),
    *(
        DcgmMapping(
            f"DCGM_FI_PROF_PIPE_{pipe}_ACTIVE",
            "ratio",
            f'tuneloop_gpu_pipe_active_ratio{{pipe="{label}"}}',
            pick("tuneloop_gpu_pipe_active_ratio", pipe=label),
            stock="dashboard" if pipe == "TENSOR" else "",
        )
        for pipe, label in _PIPES.items()
    ),
    DcgmMapping(
        "DCGM_FI_PROF_NVLINK_TX_BYTES",
        "B/s",
        f"rate({_NVLINK_TX})",
        _rate(_NVLINK_TX),
        note=f"A rate over {RATE_WINDOW} of tuneloop's byte counter, summed over links.",
    ),
    DcgmMapping(
        "DCGM_FI_PROF_NVLINK_RX_BYTES",
        "B/s",
        f"rate({_NVLINK_RX})",
        _rate(_NVLINK_RX),
        note=f"A rate over {RATE_WINDOW} of tuneloop's byte counter, summed over links.",
    ),
    DcgmMapping(
        "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
        "MB/s",
        f"rate({_NVLINK_TX}) + rate({_NVLINK_RX})",
        f"{_rate(_NVLINK_TX)} + {_rate(_NVLINK_RX)}",
        1e-6,
        "dcgm-exporter documents no unit; it reads as MB/s over both directions.",
    ),
    DcgmMapping(
        "DCGM_FI_DEV_XID_ERRORS",
        "XID code",
        "tuneloop_gpu_xid_last_seen_timestamp_seconds",
        "xid",
        note="The code of the XID seen last on the GPU (latest last-seen stamp), 0 before any; "
        "held until the agent restarts, as dcgm-exporter holds its gauge.",
        stock="alerts",
    ),
    *(
        DcgmMapping(
            f"DCGM_FI_DEV_ECC_{kind}_{scope}_TOTAL",
            "count",
            f'tuneloop_gpu_ecc_errors_total{{type="{kind_label}",scope="{scope_label}"}}',
            pick("tuneloop_gpu_ecc_errors_total", type=kind_label, scope=scope_label),
            stock="alerts" if kind == "DBE" else "",
        )
        for kind, kind_label in _ECC.items()
        for scope, scope_label in _ECC_SCOPE.items()
    ),
    DcgmMapping(
        "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
        "count",
        'tuneloop_gpu_remapped_rows{cause="correctable"}',
        pick("tuneloop_gpu_remapped_rows", cause="correctable"),
    ),
    DcgmMapping(
        "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
        "count",
        'tuneloop_gpu_remapped_rows{cause="uncorrectable"}',
        pick("tuneloop_gpu_remapped_rows", cause="uncorrectable"),
        stock="alerts",
    ),
    DcgmMapping(
        "DCGM_FI_DEV_ROW_REMAP_FAILURE",
        "bool",
        "tuneloop_gpu_row_remap_failed",
        "tuneloop_gpu_row_remap_failed",
        stock="alerts",
    ),
    DcgmMapping(
        "DCGM_FI_DEV_ROW_REMAP_PENDING",
        "bool",
        "tuneloop_gpu_row_remap_pending",
        "tuneloop_gpu_row_remap_pending",
    ),
    *(
        DcgmMapping(
            f"DCGM_FI_DEV_{what}_VIOLATION",
            "us",
            note="dcgm-exporter counts time spent throttled; tuneloop exports which reason holds "
            "the clocks now (tuneloop_gpu_throttle_reason_active), not an accumulated duration.",
            stock="alerts" if what in ("POWER", "THERMAL") else "",
        )
        for what in _VIOLATIONS
    ),
    DcgmMapping(
        "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
        "bitmask",
        note="Published per reason instead: tuneloop_gpu_throttle_reason_active{reason}.",
    ),
    DcgmMapping(
        "DCGM_FI_DEV_PCIE_TX_THROUGHPUT",
        "KB",
        note="Deprecated in dcgm-exporter for DCGM_FI_PROF_PCIE_TX_BYTES, which is published.",
    ),
    DcgmMapping(
        "DCGM_FI_DEV_PCIE_RX_THROUGHPUT",
        "KB",
        note="Deprecated in dcgm-exporter for DCGM_FI_PROF_PCIE_RX_BYTES, which is published.",
    ),
    DcgmMapping(
        "DCGM_FI_DEV_RETIRED_DBE",
        "count",
        note="Page retirement is pre-Ampere; Ampere and later remap rows "
        "(DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS is published).",
    ),
    DcgmMapping(
        "DCGM_FI_DEV_VGPU_LICENSE_STATUS",
        "enum",
        note="vGPU licensing is out of scope for bare-metal inference nodes.",
    ),
    DcgmMapping(
        "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL",
        "count",
        note="tuneloop does not read NVLink error counters yet.",
    ),
    DcgmMapping(
        "DCGM_FI_DRIVER_VERSION",
        "label",
        note="A label in dcgm-exporter; tuneloop has no driver-version series to join from.",
    ),
)

JOIN_KEYS = ("cluster", "instance", "job", "gpu")
DCGM_LABELS = ("UUID", "Hostname", "device", "modelName", "pci_bus_id")


def by_name() -> dict[str, DcgmMapping]:
    """The table keyed by DCGM name; names are unique."""
    table = {m.dcgm: m for m in MAPPINGS}
    if len(table) != len(MAPPINGS):
        raise ValueError("a DCGM name appears twice in the mapping table")
    return table
