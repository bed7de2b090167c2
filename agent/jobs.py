"""The agent's background jobs beside collection: node tuning, the iperf3 server, fabric slots.

Each starts only when its configuration asks for it, runs on a daemon thread, and logs its own
failures; none of them can stop the metrics from being served.
"""

from __future__ import annotations

import logging
import threading

from agent.config import AgentConfig

log = logging.getLogger("tuneloop.agent")


def start_jobs(config: AgentConfig, stop: threading.Event) -> list[threading.Thread]:
    """Start the configured jobs; they end when ``stop`` is set (or with the process)."""
    threads: list[threading.Thread] = []
    tuning = config.nodetune
    if config.collectors["nodetune"].enabled and tuning.desired is not None:
        from agent.nodetune.background import start_node_tuning

        interval = config.collectors["nodetune"].interval
        threads.append(
            start_node_tuning(
                config.procfs, tuning.journal, tuning.desired, interval, dry_run=tuning.dry_run
            )
        )
        log.info("node tuning follows %s", tuning.desired)
    bench = config.bench
    if bench.iperf3_server:
        from agent.bench.iperf3_server import Iperf3Server

        server = Iperf3Server(bench.iperf3_port)
        thread = threading.Thread(
            target=server.supervise, args=(stop,), name="iperf3-server", daemon=True
        )
        thread.start()
        threads.append(thread)
        log.info("iperf3 server kept running on port %d", bench.iperf3_port)
    if bench.fabric_schedule is not None and bench.fabric_host is not None:
        from agent.bench.background import start_fabric_check

        try:
            threads.append(
                start_fabric_check(bench.fabric_schedule, bench.fabric_host, bench.results, stop)
            )
        except ValueError as exc:  # a broken schedule must not stop the metrics
            log.error("fabric check not started: %s", exc)
        else:
            log.info("fabric check: %s's slots of %s", bench.fabric_host, bench.fabric_schedule)
    return threads
