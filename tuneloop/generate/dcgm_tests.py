"""promtool unit tests of the dcgm-exporter compatibility rules: units, labels and the XID gauge.

The expected values are written out by hand (87 %, 74268 MiB, 1980 MHz, ...), not computed from
the mapping table, so a wrong scale in the table fails the test.
"""

from __future__ import annotations

from typing import Any

_SCRAPE = (
    'cluster="c1",instance="10.0.0.7:9400",job="tuneloop-agent",node="gpu-node-7",'
    'namespace="tuneloop-agent",pod="tuneloop-agent-x7k2p",container="agent"'
)
_WORKLOAD = (
    'cluster="c1",instance="10.0.0.7:9400",job="tuneloop-agent",node="gpu-node-7",'
    'namespace="serving",pod="vllm-0",container="vllm"'
)
_NO_NODE = 'instance="gpu-lab-1:9400",job="tuneloop-agent"'
_DCGM = (
    'UUID="GPU-5d7f3c8a-0000-4f2a-9c3d-000000000003",Hostname="gpu-node-7",device="nvidia3",'
    'modelName="NVIDIA H100 80GB HBM3",pci_bus_id="00000000:3B:00.0"'
)
_DCGM_4 = (
    'UUID="GPU-5d7f3c8a-0000-4f2a-9c3d-000000000004",Hostname="gpu-node-7",device="nvidia4",'
    'modelName="NVIDIA H100 80GB HBM3",pci_bus_id="00000000:9A:00.0"'
)
# A scrape with no ``node`` label: Hostname falls back to the scrape host.
_DCGM_NO_NODE = _DCGM.replace('Hostname="gpu-node-7"', 'Hostname="gpu-lab-1"')
_INFO_3 = (
    'gpu="3",uuid="GPU-5d7f3c8a-0000-4f2a-9c3d-000000000003",name="NVIDIA H100 80GB HBM3",'
    'pci_bus_id="00000000:3B:00.0",numa_node="0"'
)
_INFO_4 = (
    'gpu="4",uuid="GPU-5d7f3c8a-0000-4f2a-9c3d-000000000004",name="NVIDIA H100 80GB HBM3",'
    'pci_bus_id="00000000:9A:00.0",numa_node="1"'
)

INPUT_SERIES = (
    (f"tuneloop_gpu_info{{{_SCRAPE},{_INFO_3}}}", "1x10"),
    (f"tuneloop_gpu_info{{{_SCRAPE},{_INFO_4}}}", "1x10"),
    (f"tuneloop_gpu_info{{{_NO_NODE},{_INFO_3}}}", "1x10"),
    (f'tuneloop_gpu_utilization_ratio{{{_SCRAPE},gpu="3"}}', "0.87x10"),
    (f'tuneloop_gpu_utilization_ratio{{{_NO_NODE},gpu="3"}}', "0.5x10"),
    (f'tuneloop_gpu_memory_used_bytes{{{_SCRAPE},gpu="3"}}', "77875642368x10"),
    (f'tuneloop_gpu_memory_total_bytes{{{_SCRAPE},gpu="3"}}', "85520809984x10"),
    (f'tuneloop_gpu_sm_clock_hertz{{{_SCRAPE},gpu="3"}}', "1980000000x10"),
    (f'tuneloop_gpu_energy_joules_total{{{_SCRAPE},gpu="3"}}', "9876543.21x10"),
    (f'tuneloop_gpu_pipe_active_ratio{{{_WORKLOAD},gpu="3",pipe="tensor"}}', "0.42x10"),
    (f'tuneloop_gpu_pipe_active_ratio{{{_WORKLOAD},gpu="3",pipe="fp16"}}', "0.1x10"),
    (f'tuneloop_gpu_nvlink_transmit_bytes_total{{{_WORKLOAD},gpu="3"}}', "0+15000000000x10"),
    (f'tuneloop_gpu_nvlink_receive_bytes_total{{{_WORKLOAD},gpu="3"}}', "0+7500000000x10"),
    (f'tuneloop_gpu_xid_last_seen_timestamp_seconds{{{_SCRAPE},gpu="3",xid="13"}}', "1000x10"),
    (f'tuneloop_gpu_xid_last_seen_timestamp_seconds{{{_SCRAPE},gpu="3",xid="79"}}', "2000x10"),
)

# (expression, [(labels of the expected sample, value)])
EXPECTED: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = (
    ('DCGM_FI_DEV_GPU_UTIL{Hostname="gpu-node-7"}', ((f'{{{_SCRAPE},gpu="3",{_DCGM}}}', 87.0),)),
    (
        'DCGM_FI_DEV_GPU_UTIL{Hostname="gpu-lab-1"}',
        ((f'{{{_NO_NODE},gpu="3",{_DCGM_NO_NODE}}}', 50.0),),
    ),
    ("DCGM_FI_DEV_FB_USED", ((f'{{{_SCRAPE},gpu="3",{_DCGM}}}', 74268.0),)),
    ("DCGM_FI_DEV_FB_FREE", ((f'{{{_SCRAPE},gpu="3",{_DCGM}}}', 7291.0),)),
    ("DCGM_FI_DEV_SM_CLOCK", ((f'{{{_SCRAPE},gpu="3",{_DCGM}}}', 1980.0),)),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", ((f'{{{_SCRAPE},gpu="3",{_DCGM}}}', 9876543210.0),)),
    ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", ((f'{{{_WORKLOAD},gpu="3",{_DCGM}}}', 0.42),)),
    ("DCGM_FI_PROF_NVLINK_TX_BYTES", ((f'{{{_WORKLOAD},gpu="3",{_DCGM}}}', 1e9),)),
    ("DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", ((f'{{{_WORKLOAD},gpu="3",{_DCGM}}}', 1500.0),)),
    (
        'DCGM_FI_DEV_XID_ERRORS{Hostname="gpu-node-7"}',
        (
            (f'{{{_SCRAPE},gpu="3",{_DCGM}}}', 79.0),
            (f'{{{_SCRAPE},gpu="4",{_DCGM_4}}}', 0.0),
        ),
    ),
)


def _samples(name: str, expected: tuple[tuple[str, float], ...]) -> list[dict[str, Any]]:
    metric = name.split("{")[0]
    return [{"labels": f"{metric}{labels}", "value": value} for labels, value in expected]


def promtool_tests() -> dict[str, Any]:
    """The promtool test file for ``alerts/dcgm_compat_rules.yaml``."""
    checks = []
    for expr, expected in EXPECTED:
        checks.append({"expr": expr, "eval_time": "2m", "exp_samples": _samples(expr, expected)})
    return {
        "rule_files": ["../dcgm_compat_rules.yaml"],
        "evaluation_interval": "15s",
        "tests": [
            {
                "name": "dcgm-exporter names, units and labels from tuneloop series",
                "interval": "15s",
                "input_series": [{"series": s, "values": v} for s, v in INPUT_SERIES],
                "promql_expr_test": checks,
            }
        ],
    }
