"""Traffic-shift alerts: a replica held off its baseline weight for too long.

A shift is meant to last through a transient (a throttling GPU, a noisy neighbour): the shifter
restores the replica once its P99 has stayed under the clear line for the hold time. A replica
still shifted after 30 minutes is not a transient: it serves little traffic, the fleet runs on
less capacity than planned, and the tuner holds every trial on that balancer meanwhile.
"""

from tuneloop.generate.model import Alert, Case, Group, Runbook

GROUPS = [
    Group(
        "tuneloop-shift",
        (
            Alert(
                name="TuneloopShiftActiveTooLong",
                expr="max by (cluster, shift, target) (tuneloop_shift_active) == 1",
                severity="warning",
                for_="30m",
                summary="A replica has been shifted off its baseline weight for 30 minutes.",
                description="Replica {{ $labels.target }} behind {{ $labels.shift }} has run "
                "below its baseline weight for 30 minutes because its P99 stayed high.",
                runbook=Runbook(
                    meaning="The shifter lowered this replica's balancer weight because its "
                    "smoothed P99 passed the threshold, and it has not recovered since: its "
                    "latency has not stayed under the clear line for the hold time.",
                    impact="The replica takes little traffic, so the fleet serves on less "
                    "capacity than planned; the tuner starts no trial on this balancer while the "
                    "shift lasts.",
                    promql=(
                        "tuneloop_shift_active == 1",
                        "tuneloop_shift_p99_smoothed_seconds",
                        "tuneloop_shift_weight / tuneloop_shift_baseline_weight",
                        "increase(tuneloop_shift_events_total[1h])",
                    ),
                    commands=(
                        "tuneloop audit ./tuneloop-state --experiment SHIFT",
                        "kubectl get pods -A -o wide | grep REPLICA",
                    ),
                    mitigation=(
                        "Find why the replica is slow: GPU throttling or XIDs on its node "
                        "(the GPU dashboard), preemptions and KV-cache use (the fleet dashboard), "
                        "a saturated NIC (the network dashboard).",
                        "Replace or restart the replica if its node is at fault; the shifter "
                        "restores its weight once its P99 recovers.",
                        "To end the shift by hand: `tuneloop shift CONFIG --restore` puts every "
                        "baseline back.",
                    ),
                ),
                fires=Case(
                    series=(('tuneloop_shift_active{shift="llm",target="llm/r0"}', "1x40"),),
                    eval_time="35m",
                    labels={"shift": "llm", "target": "llm/r0"},
                    description="Replica llm/r0 behind llm has run below its baseline weight "
                    "for 30 minutes because its P99 stayed high.",
                ),
                quiet=Case(
                    series=(('tuneloop_shift_active{shift="llm",target="llm/r0"}', "1x20 0x20"),),
                    eval_time="35m",
                ),
            ),
        ),
    )
]
