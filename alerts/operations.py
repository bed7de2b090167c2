"""Placement and tuner alerts: cross-NUMA GPU processes, the tuner's health (agent: agent.py)."""

# PromQL and promtool series stay on one line each, as they are queried.
# ruff: noqa: E501

from tuneloop.generate.model import Alert, Case, Group, Runbook

AGENT_POD = (
    "kubectl -n tuneloop-agent get pods -o wide -l app.kubernetes.io/name=tuneloop-agent "
    "--field-selector spec.nodeName=NODE"
)
TUNER_STALL_SECONDS = 2 * 86400
TUNER_INVALID_SHARE = 0.5
# Labels that change when the tuner's pod is replaced.
_TUNER_POD = "pod, instance"
_TUNER_SHELL = "kubectl -n tuneloop exec tuneloop-tuner-shell --"
_TUNER_COMMANDS = (
    "kubectl -n tuneloop get cronjob tuneloop-tuner",
    "kubectl -n tuneloop get jobs,pods -l app.kubernetes.io/name=tuneloop-tuner",
    "kubectl -n tuneloop logs job/JOB",
    "# The shell pod with the trial store mounted: see the last section.",
    f"{_TUNER_SHELL} tuneloop status --state /var/lib/tuneloop",
    f"{_TUNER_SHELL} tuneloop report --state /var/lib/tuneloop --experiment EXPERIMENT",
)

GROUPS = [
    Group(
        "tuneloop-placement",
        (
            Alert(
                name="TuneloopGpuProcessCrossNuma",
                expr="tuneloop_gpu_process_cross_numa == 1",
                severity="warning",
                for_="15m",
                summary="A GPU process runs on CPUs of another NUMA node than its GPU.",
                description="Pod {{ $labels.namespace }}/{{ $labels.pod }} (pid {{ $labels.pid }}) "
                "uses GPU {{ $labels.gpu }} on {{ $labels.node }} from CPUs off the GPU's NUMA node.",
                runbook=Runbook(
                    meaning="The process's allowed CPUs lie on a NUMA node other than the one the "
                    "GPU hangs off: every host-device copy crosses the inter-socket link.",
                    impact="Lower host-to-device bandwidth and higher latency for tokenization, "
                    "sampling and KV offload; typically a few percent to tens of percent of "
                    "throughput.",
                    promql=(
                        "tuneloop_gpu_process_cross_numa == 1",
                        "tuneloop_gpu_process_off_node_cpus_ratio",
                        "tuneloop_gpu_info",
                        "rate(tuneloop_numa_events_total[5m])",
                    ),
                    commands=(
                        AGENT_POD,
                        "kubectl -n NAMESPACE get pod POD -o jsonpath='{.spec.containers[*].resources}'",
                        "kubectl get node NODE -o jsonpath='{.metadata.annotations}'",
                    ),
                    mitigation=(
                        "Give the pod Guaranteed QoS (integer CPU requests equal to limits) so the "
                        "kubelet's static CPU manager pins it.",
                        "Enable the kubelet's Topology Manager with policy single-numa-node or "
                        "restricted on GPU nodes, then restart the pod.",
                    ),
                ),
                fires=Case(
                    series=(
                        (
                            'tuneloop_gpu_process_cross_numa{node="n1",gpu="0",pid="4242",pod="vllm-0",namespace="llm"}',
                            "1x20",
                        ),
                    ),
                    eval_time="20m",
                    labels={
                        "node": "n1",
                        "gpu": "0",
                        "pid": "4242",
                        "pod": "vllm-0",
                        "namespace": "llm",
                    },
                    description="Pod llm/vllm-0 (pid 4242) uses GPU 0 on n1 from CPUs off the "
                    "GPU's NUMA node.",
                ),
                quiet=Case(
                    series=(
                        (
                            'tuneloop_gpu_process_cross_numa{node="n1",gpu="0",pid="4242",pod="vllm-0",namespace="llm"}',
                            "0x20",
                        ),
                    ),
                    eval_time="20m",
                ),
            ),
        ),
    ),
    Group(
        "tuneloop-tuner",
        (
            Alert(
                name="TuneloopTunerRolledBack",
                # The tuner seeds its counters from the trial store when it starts, so a new
                # pod's series appear already counted: compare across pods, not per series.
                expr=f"sum without ({_TUNER_POD}) (increase(tuneloop_tuner_rollbacks_total[1h])) > 0 or (sum without ({_TUNER_POD}) (tuneloop_tuner_rollbacks_total) unless sum without ({_TUNER_POD}) (tuneloop_tuner_rollbacks_total offset 1h))",
                severity="info",
                for_="0m",
                summary="The tuner rolled back a change.",
                description="Experiment {{ $labels.experiment }} rolled back a trial "
                "(reason {{ $labels.reason }}) in the last hour.",
                runbook=Runbook(
                    meaning="A trial breached a guard (an SLO constraint, an invalid measurement, "
                    "a failed verify) and the tuner restored the incumbent configuration. This is "
                    "the tuner protecting production, working as designed.",
                    impact="None by itself: the bad configuration was live only for the trial's "
                    "measurement window. Repeated rollbacks mean the search space reaches unsafe "
                    "values.",
                    promql=(
                        "increase(tuneloop_tuner_rollbacks_total[6h])",
                        "tuneloop_tuner_knob_value",
                        "increase(tuneloop_tuner_trials_total[6h])",
                        "tuneloop_tuner_best_objective",
                    ),
                    commands=_TUNER_COMMANDS,
                    mitigation=(
                        "Check that the incumbent is back: tuneloop_tuner_knob_value should show "
                        "the values from before the trial.",
                        "If rollbacks repeat with the same reason, narrow the experiment's bounds "
                        "or max step for the knob involved.",
                    ),
                ),
                fires=Case(
                    series=(
                        (
                            'tuneloop_tuner_rollbacks_total{experiment="tcp",reason="slo_breach"}',
                            "_x30 1x30",
                        ),
                    ),
                    eval_time="40m",
                    labels={"experiment": "tcp", "reason": "slo_breach"},
                    description="Experiment tcp rolled back a trial (reason slo_breach) in the "
                    "last hour.",
                ),
                quiet=Case(
                    series=(
                        (
                            'tuneloop_tuner_rollbacks_total{experiment="tcp",reason="slo_breach"}',
                            "1x100",
                        ),
                    ),
                    eval_time="90m",
                ),
                more_cases=(
                    # a restarted tuner's pod exports the counts it read back from its store
                    Case(
                        series=(
                            (
                                'tuneloop_tuner_rollbacks_total{experiment="tcp",reason="slo_breach",pod="tuner-a",instance="10.0.0.1:9110"}',
                                "1x60",
                            ),
                            (
                                'tuneloop_tuner_rollbacks_total{experiment="tcp",reason="slo_breach",pod="tuner-b",instance="10.0.0.2:9110"}',
                                "_x60 1x60",
                            ),
                        ),
                        eval_time="90m",
                    ),
                ),
            ),
            Alert(
                name="TuneloopTunerFailing",
                expr=f'sum by (cluster, experiment) (increase(tuneloop_tuner_trials_total{{outcome="invalid"}}[6h])) / sum by (cluster, experiment) (increase(tuneloop_tuner_trials_total[6h])) > {TUNER_INVALID_SHARE}',
                severity="warning",
                for_="0m",
                summary="Most of the tuner's recent trials were invalid.",
                description="{{ $value | humanizePercentage }} of the trials of experiment "
                "{{ $labels.experiment }} in the last 6 hours were invalid.",
                runbook=Runbook(
                    meaning="The tuner's measurements come back invalid: Prometheus returned "
                    "nothing or NaN for its signals (no traffic, a renamed metric, Prometheus "
                    "down), or the warm-up never settled.",
                    impact="The tuner learns nothing and spends its budget; configurations stay "
                    "as they are.",
                    promql=(
                        "increase(tuneloop_tuner_trials_total[6h])",
                        "sum by (cluster, model) (rate(tuneloop_inference_requests_total[5m]))",
                        "tuneloop_tuner_last_trial_timestamp_seconds",
                    ),
                    commands=_TUNER_COMMANDS,
                    mitigation=(
                        "Run the experiment's signal queries in Prometheus; an empty answer names "
                        "the missing metric or label.",
                        "If there is no traffic (a quiet period), pause the tuner (below) until "
                        "there is.",
                    ),
                ),
                fires=Case(
                    series=(
                        (
                            'tuneloop_tuner_trials_total{experiment="tcp",outcome="invalid"}',
                            "0+1x60",
                        ),
                        ('tuneloop_tuner_trials_total{experiment="tcp",outcome="done"}', "0x60"),
                    ),
                    eval_time="60m",
                    labels={"experiment": "tcp"},
                    description="100% of the trials of experiment tcp in the last 6 hours were "
                    "invalid.",
                ),
                quiet=Case(
                    series=(
                        (
                            'tuneloop_tuner_trials_total{experiment="tcp",outcome="invalid"}',
                            "0+1x10 10x50",
                        ),
                        ('tuneloop_tuner_trials_total{experiment="tcp",outcome="done"}', "0+1x60"),
                    ),
                    eval_time="60m",
                ),
            ),
            Alert(
                name="TuneloopTunerStalled",
                expr=f"time() - tuneloop_tuner_last_trial_timestamp_seconds > {TUNER_STALL_SECONDS}",
                severity="warning",
                for_="1h",
                summary="The tuner has finished no trial for two days.",
                description="Experiment {{ $labels.experiment }} last finished a trial "
                "{{ $value | humanizeDuration }} ago.",
                runbook=Runbook(
                    meaning="No trial of this experiment finished in two days, though the CronJob "
                    "runs daily: the job fails before its first trial, is suspended, or hangs.",
                    impact="Configurations stop adapting to load; no harm to serving by itself.",
                    promql=(
                        "time() - tuneloop_tuner_last_trial_timestamp_seconds",
                        "increase(tuneloop_tuner_trials_total[2d])",
                    ),
                    commands=_TUNER_COMMANDS,
                    mitigation=(
                        "If the CronJob is suspended on purpose, silence the alert.",
                        "Read the last job's log; an experiment file error names the field.",
                        "Start a run by hand: `kubectl -n tuneloop create job --from=cronjob/tuneloop-tuner tuneloop-tuner-manual`.",
                    ),
                ),
                fires=Case(
                    # the last trial finished two days before the test's time zero
                    series=(
                        (
                            'tuneloop_tuner_last_trial_timestamp_seconds{experiment="tcp"}',
                            "-172800x80",
                        ),
                    ),
                    eval_time="70m",
                    labels={"experiment": "tcp"},
                    description="Experiment tcp last finished a trial 2d 1h 10m 0s ago.",
                ),
                quiet=Case(
                    series=(
                        (
                            'tuneloop_tuner_last_trial_timestamp_seconds{experiment="tcp"}',
                            "-86400x80",
                        ),
                    ),
                    eval_time="70m",
                ),
            ),
        ),
    ),
]
