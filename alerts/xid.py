"""XID alerts, by class, as NVIDIA's XID catalogue and dcgm-exporter's users class them.

Fatal codes (the GPU needs a reset, a drain or a replacement: 48 double-bit ECC, 61/62 internal
micro-controller halt, 64 ECC page retirement failure, 74 NVLink, 79 fallen off the bus, 94/95
contained and uncontained ECC, 119/120 GSP, 140 unrecovered ECC) page at once; application codes
(13 graphics engine exception, 31 MMU fault, 43 GPU stopped processing, 45 preemptive cleanup)
are the process's fault, not the GPU's, and are info; every other code is hardware, a warning
that waits 5 minutes. Each alert carries ``xid_class`` for Alertmanager's grouping and routing,
and aggregates ``by (cluster, node, gpu, xid)`` so a restarted agent pod (a new ``pod`` label)
does not fire twice.
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
# dmesg needs CAP_SYSLOG where kernel.dmesg_restrict=1: the sysadmin profile grants it.
NODE_DMESG = "kubectl debug node/NODE -i --profile=sysadmin --image=busybox -- dmesg | grep -i xid"
DEBUG_CLEANUP = "kubectl get pods -o name | grep node-debugger- | xargs -r kubectl delete"
FATAL_XIDS = ("48", "61", "62", "64", "74", "79", "94", "95", "119", "120", "140")
APPLICATION_XIDS = ("13", "31", "43", "45")
XID_RECENT_SECONDS = 3600
_FATAL = "|".join(FATAL_XIDS)
_APPLICATION = "|".join(APPLICATION_XIDS)
_XID_AGE = 'min by (cluster, node, gpu, xid) (time() - tuneloop_gpu_xid_last_seen_timestamp_seconds{{xid{op}"{codes}"}})'
XID_PROMQL = (
    "tuneloop_gpu_xid_last_seen_timestamp_seconds",
    "increase(tuneloop_gpu_xid_errors_total[1h])",
    "tuneloop_gpu_info",
    "tuneloop_gpu_memory_used_bytes",
)
XID_COMMANDS = (
    AGENT_POD,
    AGENT_SCRAPE,
    "kubectl get pods -A -o wide --field-selector spec.nodeName=NODE",
    NODE_DMESG,
    DEBUG_CLEANUP,
)


def _xid_series(xid: str, values: str) -> tuple[tuple[str, str], ...]:
    labels = f'cluster="c1",node="n1",gpu="0",xid="{xid}"'
    return ((f'tuneloop_gpu_xid_last_seen_timestamp_seconds{{{labels},pod="agent-a"}}', values),)


def _xid_labels(xid: str) -> dict[str, str]:
    return {"cluster": "c1", "node": "n1", "gpu": "0", "xid": xid}


XID_ALERTS = (
    Alert(
        name="TuneloopGpuXidFatal",
        expr=_XID_AGE.format(op="=~", codes=_FATAL) + f" < {XID_RECENT_SECONDS}",
        severity="critical",
        for_="0m",
        labels={"xid_class": "fatal"},
        summary="A GPU reported a fatal XID: it needs a reset, a drain or a replacement.",
        description="GPU {{ $labels.gpu }} on {{ $labels.node }} reported fatal XID "
        "{{ $labels.xid }} {{ $value | humanizeDuration }} ago.",
        runbook=Runbook(
            meaning="The NVIDIA driver logged an XID the GPU does not recover from by itself: "
            "48 (double-bit ECC), 61/62 (internal micro-controller halt), 64 (ECC page "
            "retirement failure), 74 (NVLink error), 79 (the GPU fell off the bus), 94/95 "
            "(contained/uncontained ECC), 119/120 (GSP firmware), 140 (unrecovered ECC).",
            impact="Every process on the GPU is dead or computing on bad memory; replicas on it "
            "fail or hang. The GPU needs at least a reset; repeated codes mean replacement.",
            promql=XID_PROMQL,
            commands=XID_COMMANDS,
            mitigation=(
                "Cordon the node so nothing new lands on it: `kubectl cordon NODE`.",
                f"For 79, 119/120, 61/62: drain (`{DRAIN}`) and reboot the node.",
                "For 48, 64, 94, 95, 140: check TuneloopGpuUncorrectableEccErrors and "
                "TuneloopGpuRowRemapFailed; drain and reset the GPU (or reboot), which applies "
                "pending row remaps.",
                "For 74: check the NVLink topology (`nvidia-smi nvlink -s` in the driver "
                "container); open a hardware ticket if it repeats.",
            ),
        ),
        fires=Case(
            series=_xid_series("79", "60x10 1000x10"),
            eval_time="20m",
            labels=_xid_labels("79"),
            description="GPU 0 on n1 reported fatal XID 79 3m 20s ago.",
        ),
        quiet=Case(series=_xid_series("79", "-7200x20"), eval_time="20m"),
        more_cases=(
            # an application XID never pages
            Case(series=_xid_series("13", "60x10 1000x10"), eval_time="20m"),
        ),
    ),
    Alert(
        name="TuneloopGpuXidHardware",
        expr=_XID_AGE.format(op="!~", codes=f"{_FATAL}|{_APPLICATION}")
        + f" < {XID_RECENT_SECONDS}",
        severity="warning",
        for_="5m",
        labels={"xid_class": "hardware"},
        summary="A GPU reported a hardware XID in the last hour.",
        description="GPU {{ $labels.gpu }} on {{ $labels.node }} reported XID "
        "{{ $labels.xid }} {{ $value | humanizeDuration }} ago.",
        runbook=Runbook(
            meaning="The NVIDIA driver logged an XID that points at the hardware or the driver "
            "but is not fatal by itself (for example 63 row remap pending, 92 high single-bit "
            "ECC rate, 109 context switch timeout).",
            impact="Usually none yet; repeated codes precede fatal ones (ECC codes before 48 or "
            "95, timeouts before 79).",
            promql=XID_PROMQL,
            commands=XID_COMMANDS,
            mitigation=(
                "Look the code up in NVIDIA's XID catalogue; note the GPU's uuid and pci_bus_id "
                "from tuneloop_gpu_info.",
                "If the code repeats, cordon the node (`kubectl cordon NODE`) and reset the GPU "
                "when its pods are moved.",
            ),
        ),
        fires=Case(
            series=_xid_series("63", "60x10 1000x10"),
            eval_time="20m",
            labels=_xid_labels("63"),
            description="GPU 0 on n1 reported XID 63 3m 20s ago.",
        ),
        quiet=Case(series=_xid_series("79", "60x10 1000x10"), eval_time="20m"),
    ),
    Alert(
        name="TuneloopGpuXidApplication",
        expr=_XID_AGE.format(op="=~", codes=_APPLICATION) + f" < {XID_RECENT_SECONDS}",
        severity="info",
        for_="0m",
        labels={"xid_class": "application"},
        summary="A process on a GPU hit an application XID.",
        description="GPU {{ $labels.gpu }} on {{ $labels.node }} reported application XID "
        "{{ $labels.xid }} {{ $value | humanizeDuration }} ago.",
        runbook=Runbook(
            meaning="XIDs 13 (graphics engine exception), 31 (MMU fault: illegal memory access), "
            "43 (GPU stopped processing) and 45 (preemptive cleanup) come from the process: a "
            "bad kernel, an out-of-bounds access, a killed context. The GPU itself is fine.",
            impact="The CUDA context of one process is gone: the inference server on that GPU "
            "restarts or returns errors (see the serving SLO alerts for user impact).",
            promql=XID_PROMQL,
            commands=XID_COMMANDS,
            mitigation=(
                "Read the logs of the pod on that GPU (the namespace and pod labels of "
                "tuneloop_gpu_xid_errors_total name it); it is an application or model problem.",
                "If the same XID follows one GPU across different workloads, treat it as hardware.",
            ),
        ),
        fires=Case(
            series=_xid_series("31", "60x10 1000x10"),
            eval_time="20m",
            labels=_xid_labels("31"),
            description="GPU 0 on n1 reported application XID 31 3m 20s ago.",
        ),
        quiet=Case(series=_xid_series("63", "60x10 1000x10"), eval_time="20m"),
    ),
)

GROUPS = [Group("tuneloop-gpu-xid", XID_ALERTS)]
