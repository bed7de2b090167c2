"""Agent alerts: failing collectors, and agents that are absent or were never scheduled.

An absent agent is seen two ways. From the agent's own series: a node that reported within the
last hour, or that kube-state-metrics says runs an agent pod (``kube_pod_info``), and has no
``tuneloop_collector_success`` now; the pod check keeps a crash-looping agent firing past the
hour. From the DaemonSet: kube-state-metrics' desired against available pods, which also sees
an agent that was never scheduled or never started on a node, so never reported anything.
"""

# PromQL and promtool series stay on one line each, as they are queried.
# ruff: noqa: E501

from tuneloop.generate.model import Alert, Case, Group, Runbook

AGENT_POD = (
    "kubectl -n tuneloop-agent get pods -o wide -l app.kubernetes.io/name=tuneloop-agent "
    "--field-selector spec.nodeName=NODE"
)
AGENT_CONFIG = "--config /etc/tuneloop/agent.yaml"
AGENT_DAEMONSET = 'namespace="tuneloop-agent", daemonset="tuneloop-agent"'
AGENT_PODS = (
    'namespace="tuneloop-agent", created_by_kind="DaemonSet", created_by_name="tuneloop-agent"'
)

GROUPS = [
    Group(
        "tuneloop-agent",
        (
            Alert(
                name="TuneloopCollectorFailing",
                expr="tuneloop_collector_success == 0",
                severity="warning",
                for_="10m",
                summary="A tuneloop-agent collector has been failing for 10 minutes.",
                description="Collector {{ $labels.collector }} on {{ $labels.node }} has failed "
                "every collection for 10 minutes.",
                runbook=Runbook(
                    meaning="The collector's last collections failed or overran their deadline, "
                    "so its metrics are missing for this node; the other collectors still run.",
                    impact="Dashboards and alerts that use this collector's metrics are blind on "
                    "this node (a GPU alert cannot fire while the gpu collector fails).",
                    promql=(
                        "tuneloop_collector_success == 0",
                        "increase(tuneloop_collector_failures_total[30m])",
                        "tuneloop_collector_duration_seconds",
                        "time() - tuneloop_collector_last_success_timestamp_seconds",
                    ),
                    commands=(
                        AGENT_POD,
                        "kubectl -n tuneloop-agent logs POD --since=30m | grep -i COLLECTOR",
                        f"kubectl -n tuneloop-agent exec POD -- tuneloop-agent check-config {AGENT_CONFIG}",
                        f"kubectl -n tuneloop-agent exec POD -- tuneloop-agent scrape {AGENT_CONFIG}",
                    ),
                    mitigation=(
                        "Read the failure reason (tuneloop_collector_failures_total{reason}) and "
                        "the agent's log line for the collector; it names what could not be read.",
                        "deadline: the source is slow (NVML hung, an inference server not "
                        "answering); restart the agent pod: `kubectl -n tuneloop-agent delete pod POD`.",
                        "For a gpu collector failure with NVML errors, check the driver "
                        "(TuneloopGpuLost, XIDs) before restarting anything.",
                    ),
                ),
                fires=Case(
                    series=(('tuneloop_collector_success{node="n1",collector="gpu"}', "1 1 0x20"),),
                    eval_time="20m",
                    labels={"node": "n1", "collector": "gpu"},
                    description="Collector gpu on n1 has failed every collection for 10 minutes.",
                ),
                quiet=Case(
                    series=(('tuneloop_collector_success{node="n1",collector="gpu"}', "0x5 1x20"),),
                    eval_time="20m",
                ),
            ),
            Alert(
                name="TuneloopAgentAbsent",
                expr=f'(count by (cluster, node) (kube_pod_info{{{AGENT_PODS}, node!=""}}) or count by (cluster, node) (max_over_time(tuneloop_collector_success[1h]))) unless count by (cluster, node) (tuneloop_collector_success)',
                severity="warning",
                for_="5m",
                summary="A node's tuneloop-agent is not reporting.",
                description="No tuneloop-agent metrics from {{ $labels.node }} for 5 minutes, "
                "though an agent pod runs there or it reported within the last hour.",
                runbook=Runbook(
                    meaning="Prometheus gets no tuneloop_collector_success series from this "
                    "node, though kube-state-metrics lists an agent pod on it or the node "
                    "reported within the last hour: the agent is crash-looping, hung, or cannot "
                    "be scraped.",
                    impact="Every tuneloop metric of the node is missing, so its GPU, network and "
                    "serving alerts cannot fire. A node removed on purpose fires this for up to "
                    "an hour without kube-state-metrics, and not at all with it.",
                    promql=(
                        "count by (cluster, node) (tuneloop_collector_success)",
                        "count by (cluster, node) (max_over_time(tuneloop_collector_success[1h]))",
                        f"kube_pod_info{{{AGENT_PODS}}}",
                        'up{namespace="tuneloop-agent"} == 0',
                    ),
                    commands=(
                        "kubectl -n tuneloop-agent get ds tuneloop-agent",
                        AGENT_POD,
                        "kubectl -n tuneloop-agent describe pod POD",
                        "kubectl -n tuneloop-agent logs POD --previous",
                        "kubectl get node NODE",
                    ),
                    mitigation=(
                        "If the node is gone or cordoned for maintenance, silence the alert.",
                        "If the pod is crash-looping, read its previous log; a configuration "
                        "error is named with its field.",
                        "If the pod runs but is not scraped (up == 0 or no target), check the "
                        "ServiceMonitor and the tuneloop-agent-metrics NetworkPolicy.",
                    ),
                ),
                fires=Case(
                    series=(
                        (
                            'tuneloop_collector_success{cluster="c1",node="n1",collector="net"}',
                            "1x20",
                        ),
                        (
                            'tuneloop_collector_success{cluster="c1",node="n2",collector="net"}',
                            "1x40",
                        ),
                    ),
                    eval_time="40m",
                    labels={"cluster": "c1", "node": "n1"},
                    description="No tuneloop-agent metrics from n1 for 5 minutes, though an "
                    "agent pod runs there or it reported within the last hour.",
                ),
                quiet=Case(
                    series=(
                        (
                            'tuneloop_collector_success{cluster="c1",node="n1",collector="net"}',
                            "1x40",
                        ),
                        (
                            f'kube_pod_info{{cluster="c1",{AGENT_PODS},pod="tuneloop-agent-a",node="n1"}}',
                            "1x40",
                        ),
                    ),
                    eval_time="40m",
                ),
                more_cases=(
                    # a pod not yet scheduled has no node: TuneloopAgentUnavailable covers it
                    Case(
                        series=(
                            (
                                'tuneloop_collector_success{cluster="c1",node="n2",collector="net"}',
                                "1x40",
                            ),
                            (
                                f'kube_pod_info{{cluster="c1",{AGENT_PODS},pod="tuneloop-agent-c",node=""}}',
                                "1x40",
                            ),
                        ),
                        eval_time="40m",
                    ),
                    # an agent pod that has never reported (crash-looping since its start)
                    Case(
                        series=(
                            (
                                'tuneloop_collector_success{cluster="c1",node="n2",collector="net"}',
                                "1x40",
                            ),
                            (
                                f'kube_pod_info{{cluster="c1",{AGENT_PODS},pod="tuneloop-agent-b",node="n3"}}',
                                "1x40",
                            ),
                        ),
                        eval_time="40m",
                        labels={"cluster": "c1", "node": "n3"},
                        description="No tuneloop-agent metrics from n3 for 5 minutes, though an "
                        "agent pod runs there or it reported within the last hour.",
                    ),
                    # silent for three hours: still firing while the pod exists
                    Case(
                        series=(
                            (
                                'tuneloop_collector_success{cluster="c1",node="n1",collector="net"}',
                                "1x10",
                            ),
                            (
                                f'kube_pod_info{{cluster="c1",{AGENT_PODS},pod="tuneloop-agent-a",node="n1"}}',
                                "1x200",
                            ),
                        ),
                        eval_time="190m",
                        labels={"cluster": "c1", "node": "n1"},
                        description="No tuneloop-agent metrics from n1 for 5 minutes, though an "
                        "agent pod runs there or it reported within the last hour.",
                    ),
                ),
            ),
            Alert(
                name="TuneloopAgentUnavailable",
                expr=f"max by (cluster) (kube_daemonset_status_desired_number_scheduled{{{AGENT_DAEMONSET}}}) - max by (cluster) (kube_daemonset_status_number_available{{{AGENT_DAEMONSET}}}) > 0",
                severity="warning",
                for_="15m",
                summary="Nodes that should run a tuneloop-agent have none available.",
                description="{{ $value }} of the nodes the tuneloop-agent DaemonSet should run on "
                "have no available agent pod.",
                runbook=Runbook(
                    meaning="kube-state-metrics reports fewer available agent pods than the "
                    "DaemonSet wants, for 15 minutes (longer than a rolling update): pods are "
                    "pending (resources, taints, image pulls) or not ready. An agent that never "
                    "started has never reported, so only this alert sees it.",
                    impact="Those nodes export no tuneloop metrics; their GPU, network and serving "
                    "alerts cannot fire.",
                    promql=(
                        f"kube_daemonset_status_desired_number_scheduled{{{AGENT_DAEMONSET}}}",
                        f"kube_daemonset_status_number_available{{{AGENT_DAEMONSET}}}",
                        f"kube_pod_info{{{AGENT_PODS}}}",
                        "count by (cluster, node) (tuneloop_collector_success)",
                    ),
                    commands=(
                        "kubectl -n tuneloop-agent get ds tuneloop-agent",
                        "kubectl -n tuneloop-agent get pods -o wide -l app.kubernetes.io/name=tuneloop-agent "
                        "--field-selector status.phase!=Running",
                        "kubectl -n tuneloop-agent describe pod POD",
                        "kubectl -n tuneloop-agent get events --sort-by=.lastTimestamp | tail -20",
                    ),
                    mitigation=(
                        "Pending on resources: the agent's requests do not fit; free the node or "
                        "lower the requests in the DaemonSet.",
                        "Pending on taints: add the GPU nodes' taints to the DaemonSet's "
                        "tolerations.",
                        "Image pull or crash: read the pod's events and previous log.",
                    ),
                ),
                # four GPU nodes, one agent pending from the start (it never reported)
                fires=Case(
                    series=(
                        (
                            f'kube_daemonset_status_desired_number_scheduled{{cluster="c1",{AGENT_DAEMONSET}}}',
                            "4x40",
                        ),
                        (
                            f'kube_daemonset_status_number_available{{cluster="c1",{AGENT_DAEMONSET}}}',
                            "3x40",
                        ),
                        (
                            'tuneloop_collector_success{cluster="c1",node="n1",collector="net"}',
                            "1x40",
                        ),
                    ),
                    eval_time="30m",
                    labels={"cluster": "c1"},
                    description="1 of the nodes the tuneloop-agent DaemonSet should run on have "
                    "no available agent pod.",
                ),
                # a rolling update: one pod unavailable for ten minutes
                quiet=Case(
                    series=(
                        (
                            f'kube_daemonset_status_desired_number_scheduled{{cluster="c1",{AGENT_DAEMONSET}}}',
                            "4x40",
                        ),
                        (
                            f'kube_daemonset_status_number_available{{cluster="c1",{AGENT_DAEMONSET}}}',
                            "4x10 3x10 4x20",
                        ),
                    ),
                    eval_time="30m",
                ),
            ),
        ),
    ),
]
