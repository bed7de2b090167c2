"""GPU alerts: lost GPUs, memory errors, throttling, memory pressure (XIDs: alerts/xid.py).

ECC and row-remap alerts aggregate ``by (cluster, node, gpu)`` (a restarted agent pod brings a
new ``pod`` label) and wait 5 minutes (``for``) so one odd scrape does not page.
"""

# PromQL and promtool series stay on one line each, as they are queried.
# ruff: noqa: E501

from tuneloop.generate.model import Alert, Case, Group, Runbook

AGENT_POD = (
    "kubectl -n tuneloop-agent get pods -o wide -l app.kubernetes.io/name=tuneloop-agent "
    "--field-selector spec.nodeName=NODE"
)
AGENT_SCRAPE = (
    "kubectl -n tuneloop-agent exec POD -- tuneloop-agent scrape --config /etc/tuneloop/agent.yaml "
    "| grep tuneloop_gpu_"
)
DRAIN = "kubectl drain NODE --ignore-daemonsets --delete-emptydir-data"
GPU_MEMORY_FULL_RATIO = 0.98

GROUPS = [
    Group(
        "tuneloop-gpu",
        (
            Alert(
                name="TuneloopGpuLost",
                expr="tuneloop_gpu_lost == 1",
                severity="critical",
                for_="1m",
                summary="A GPU is lost: it fell off the bus.",
                description="GPU {{ $labels.gpu }} on {{ $labels.node }} is lost; NVML cannot "
                "reach it and its other series have stopped.",
                runbook=Runbook(
                    meaning="NVML answers GPU_IS_LOST for this GPU: the driver lost contact with "
                    "the device (usually XID 79). The agent keeps reporting the other GPUs.",
                    impact="Every process on the GPU is dead or hung; replicas using it serve "
                    "nothing. The GPU does not come back without a reset or a reboot.",
                    promql=(
                        "tuneloop_gpu_lost",
                        "tuneloop_gpu_info",
                        "time() - tuneloop_gpu_xid_last_seen_timestamp_seconds",
                    ),
                    commands=(
                        AGENT_POD,
                        AGENT_SCRAPE,
                        "kubectl get pods -A -o wide --field-selector spec.nodeName=NODE",
                    ),
                    mitigation=(
                        "Cordon the node so nothing new lands on it: `kubectl cordon NODE`.",
                        f"Move its workloads off: `{DRAIN}`.",
                        "Reboot the node; if the GPU is lost again, open a hardware ticket with "
                        "the GPU's uuid and pci_bus_id from tuneloop_gpu_info.",
                    ),
                ),
                fires=Case(
                    series=(('tuneloop_gpu_lost{node="n1",gpu="3"}', "0 0 1x8"),),
                    eval_time="8m",
                    labels={"node": "n1", "gpu": "3"},
                    description="GPU 3 on n1 is lost; NVML cannot reach it and its other series "
                    "have stopped.",
                ),
                quiet=Case(
                    series=(('tuneloop_gpu_lost{node="n1",gpu="3"}', "0x10"),), eval_time="8m"
                ),
            ),
            Alert(
                name="TuneloopGpuUncorrectableEccErrors",
                expr='max by (cluster, node, gpu) (increase(tuneloop_gpu_ecc_errors_total{type="uncorrected",scope="volatile"}[30m])) > 0',
                severity="critical",
                for_="5m",
                summary="A GPU had uncorrectable ECC memory errors.",
                description="GPU {{ $labels.gpu }} on {{ $labels.node }} had uncorrectable ECC "
                "errors in the last 30 minutes.",
                runbook=Runbook(
                    meaning="The GPU's memory returned data ECC could not correct. The driver "
                    "killed the affected contexts and, on A100/H100, marked a row for remapping.",
                    impact="Processes on the GPU crashed or will; results computed since may be "
                    "wrong. The row is remapped at the next GPU reset.",
                    promql=(
                        "increase(tuneloop_gpu_ecc_errors_total[1h])",
                        "tuneloop_gpu_row_remap_pending",
                        "tuneloop_gpu_row_remap_failed",
                        "tuneloop_gpu_remapped_rows",
                    ),
                    commands=(AGENT_POD, AGENT_SCRAPE),
                    mitigation=(
                        "Cordon the node: `kubectl cordon NODE`.",
                        f"Drain it (`{DRAIN}`) and reset the GPU or reboot, which applies "
                        "the pending row remap.",
                        "If tuneloop_gpu_row_remap_failed is 1 afterwards, the GPU needs "
                        "replacing (see TuneloopGpuRowRemapFailed).",
                    ),
                ),
                fires=Case(
                    series=(
                        (
                            'tuneloop_gpu_ecc_errors_total{cluster="c1",node="n1",gpu="1",type="uncorrected",scope="volatile"}',
                            "0 0 1x12",
                        ),
                    ),
                    eval_time="10m",
                    labels={"cluster": "c1", "node": "n1", "gpu": "1"},
                    description="GPU 1 on n1 had uncorrectable ECC errors in the last 30 minutes.",
                ),
                quiet=Case(
                    series=(
                        (
                            'tuneloop_gpu_ecc_errors_total{node="n1",gpu="1",type="uncorrected",scope="volatile"}',
                            "2x12",
                        ),
                        (
                            'tuneloop_gpu_ecc_errors_total{node="n1",gpu="1",type="corrected",scope="volatile"}',
                            "0+5x12",
                        ),
                    ),
                    eval_time="10m",
                ),
            ),
            Alert(
                name="TuneloopGpuRowRemapFailed",
                expr="max by (cluster, node, gpu) (tuneloop_gpu_row_remap_failed) == 1",
                severity="critical",
                for_="5m",
                summary="A GPU failed to remap a faulty memory row.",
                description="GPU {{ $labels.gpu }} on {{ $labels.node }} reports a failed row "
                "remap; it has run out of spare rows.",
                runbook=Runbook(
                    meaning="The GPU tried to retire a faulty memory row and had no spare left.",
                    impact="The GPU keeps producing uncorrectable errors; it must be replaced.",
                    promql=(
                        "tuneloop_gpu_row_remap_failed",
                        "tuneloop_gpu_remapped_rows",
                        "increase(tuneloop_gpu_ecc_errors_total[1d])",
                    ),
                    commands=(AGENT_POD, AGENT_SCRAPE),
                    mitigation=(
                        f"Cordon and drain the node: `kubectl cordon NODE`, then `{DRAIN}`.",
                        "Open a hardware replacement ticket with the uuid from tuneloop_gpu_info.",
                    ),
                ),
                fires=Case(
                    series=(('tuneloop_gpu_row_remap_failed{node="n2",gpu="5"}', "1x10"),),
                    eval_time="10m",
                    labels={"node": "n2", "gpu": "5"},
                    description="GPU 5 on n2 reports a failed row remap; it has run out of spare rows.",
                ),
                quiet=Case(
                    # one odd reading does not page
                    series=(('tuneloop_gpu_row_remap_failed{node="n2",gpu="5"}', "0x3 1 0x6"),),
                    eval_time="10m",
                ),
            ),
            Alert(
                name="TuneloopGpuThermalThrottling",
                expr='max by (cluster, node, gpu) (tuneloop_gpu_throttle_reason_active{reason=~"hw_thermal_slowdown|sw_thermal_slowdown|hw_slowdown"}) == 1',
                severity="warning",
                for_="10m",
                summary="A GPU is held down by thermal slowdown.",
                description="GPU {{ $labels.gpu }} on {{ $labels.node }} has been thermally "
                "throttled for 10 minutes.",
                runbook=Runbook(
                    meaning="The GPU lowered its clocks because it is too hot (software or "
                    "hardware thermal slowdown, or the hardware slowdown line).",
                    impact="Lower clocks mean slower tokens: inter-token latency rises and the "
                    "replica serves fewer requests.",
                    promql=(
                        "tuneloop_gpu_temperature_celsius",
                        "tuneloop_gpu_sm_clock_hertz",
                        "tuneloop_gpu_throttle_reason_active == 1",
                        "tuneloop_gpu_power_watts",
                    ),
                    commands=(AGENT_POD, AGENT_SCRAPE),
                    mitigation=(
                        "Compare with the other GPUs of the node: one hot GPU points to a fan or "
                        "heatsink, all of them to the chassis or the room's cooling.",
                        "Ask the data-centre team to check airflow; drain the node if "
                        "temperatures keep rising.",
                    ),
                ),
                fires=Case(
                    series=(
                        (
                            'tuneloop_gpu_throttle_reason_active{node="n1",gpu="2",reason="sw_thermal_slowdown"}',
                            "1x20",
                        ),
                        (
                            'tuneloop_gpu_throttle_reason_active{node="n1",gpu="2",reason="sw_power_cap"}',
                            "0x20",
                        ),
                    ),
                    eval_time="15m",
                    labels={"node": "n1", "gpu": "2"},
                    description="GPU 2 on n1 has been thermally throttled for 10 minutes.",
                ),
                quiet=Case(
                    series=(
                        (
                            'tuneloop_gpu_throttle_reason_active{node="n1",gpu="2",reason="sw_thermal_slowdown"}',
                            "0x20",
                        ),
                        (
                            'tuneloop_gpu_throttle_reason_active{node="n1",gpu="2",reason="sw_power_cap"}',
                            "1x20",
                        ),
                    ),
                    eval_time="15m",
                ),
            ),
            Alert(
                name="TuneloopGpuPowerThrottling",
                expr='max by (cluster, node, gpu) (tuneloop_gpu_throttle_reason_active{reason=~"sw_power_cap|hw_power_brake_slowdown"}) == 1',
                severity="info",
                for_="30m",
                summary="A GPU has been held at its power limit for 30 minutes.",
                description="GPU {{ $labels.gpu }} on {{ $labels.node }} has been power "
                "throttled for 30 minutes.",
                runbook=Runbook(
                    meaning="The GPU caps its clocks to stay within its power limit (software "
                    "power cap) or the board asserted the power brake.",
                    impact="Under full load a power cap is normal; a power brake, or a cap at low "
                    "utilization, means lower throughput than the hardware can give.",
                    promql=(
                        "tuneloop_gpu_power_watts",
                        "tuneloop_gpu_utilization_ratio",
                        "tuneloop_gpu_sm_clock_hertz",
                        "tuneloop_gpu_throttle_reason_active == 1",
                    ),
                    commands=(AGENT_POD, AGENT_SCRAPE),
                    mitigation=(
                        "If the reason is hw_power_brake_slowdown, check the node's power "
                        "supplies with the data-centre team.",
                        "If it is sw_power_cap at high utilization, nothing is wrong; compare "
                        "the power limit with the GPU model's default if throughput is short.",
                    ),
                ),
                fires=Case(
                    series=(
                        (
                            'tuneloop_gpu_throttle_reason_active{node="n1",gpu="0",reason="sw_power_cap"}',
                            "1x40",
                        ),
                    ),
                    eval_time="35m",
                    labels={"node": "n1", "gpu": "0"},
                    description="GPU 0 on n1 has been power throttled for 30 minutes.",
                ),
                quiet=Case(
                    series=(
                        (
                            'tuneloop_gpu_throttle_reason_active{node="n1",gpu="0",reason="sw_power_cap"}',
                            "1x20 0x20",
                        ),
                    ),
                    eval_time="35m",
                ),
            ),
            Alert(
                name="TuneloopGpuMemoryNearFull",
                expr=f"tuneloop_gpu_memory_used_bytes / tuneloop_gpu_memory_total_bytes > {GPU_MEMORY_FULL_RATIO}",
                severity="warning",
                for_="15m",
                summary="A GPU's memory is almost full.",
                description="GPU {{ $labels.gpu }} on {{ $labels.node }} has used "
                "{{ $value | humanizePercentage }} of its memory for 15 minutes.",
                runbook=Runbook(
                    meaning=f"More than {GPU_MEMORY_FULL_RATIO:.0%} of the GPU's framebuffer is in "
                    "use. vLLM reserves a fixed share (gpu-memory-utilization, 0.9 by default) "
                    "for weights and KV cache, so this means something beyond that.",
                    impact="The next allocation fails with CUDA out of memory: a new replica does "
                    "not start, or a running one crashes.",
                    promql=(
                        "tuneloop_gpu_memory_used_bytes / tuneloop_gpu_memory_total_bytes",
                        "tuneloop_gpu_process_memory_used_bytes",
                        "tuneloop_gpu_processes",
                    ),
                    commands=(
                        AGENT_POD,
                        AGENT_SCRAPE,
                        "kubectl get pods -A -o wide --field-selector spec.nodeName=NODE",
                    ),
                    mitigation=(
                        "Find the pod holding the GPU (the namespace and pod labels of "
                        "tuneloop_gpu_memory_used_bytes; by pid with gpu.process_metrics on); two "
                        "servers sharing one GPU is the usual cause.",
                        "Lower the server's memory share (vLLM --gpu-memory-utilization) or move "
                        "one workload to another GPU.",
                    ),
                ),
                fires=Case(
                    series=(
                        ('tuneloop_gpu_memory_used_bytes{node="n1",gpu="0"}', "79000000000x20"),
                        ('tuneloop_gpu_memory_total_bytes{node="n1",gpu="0"}', "80000000000x20"),
                    ),
                    eval_time="20m",
                    labels={"node": "n1", "gpu": "0"},
                    description="GPU 0 on n1 has used 98.75% of its memory for 15 minutes.",
                ),
                quiet=Case(
                    series=(
                        ('tuneloop_gpu_memory_used_bytes{node="n1",gpu="0"}', "72000000000x20"),
                        ('tuneloop_gpu_memory_total_bytes{node="n1",gpu="0"}', "80000000000x20"),
                    ),
                    eval_time="20m",
                ),
            ),
        ),
    )
]
