"""Prometheus configuration for the lab: one scrape job per kind of target, on loopback.

Every target carries ``labels`` (the lab sets ``cluster`` and ``node``, as a cluster's service
discovery would), and the jobs named in ``honor_labels`` keep their own labels over the target's,
like the agent's ServiceMonitor (``honorLabels: true``). Rule files (the generated recording and
alert rules) are evaluated at the scrape interval.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import yaml


def render(
    jobs: Mapping[str, Sequence[str]],
    scrape_interval_s: float = 1.0,
    *,
    labels: Mapping[str, str] | None = None,
    honor_labels: Collection[str] = (),
    rule_files: Sequence[Path] = (),
) -> str:
    """prometheus.yml text scraping ``jobs`` = {job name: [host:port, ...]}."""
    if scrape_interval_s <= 0:
        raise ValueError(f"scrape_interval_s must be positive, got {scrape_interval_s!r}")
    interval = _duration(scrape_interval_s)
    scrape_configs = []
    for job, targets in jobs.items():
        if not targets:
            continue
        static: dict[str, object] = {"targets": list(targets)}
        if labels:
            static["labels"] = dict(labels)
        job_config: dict[str, object] = {
            "job_name": job,
            "scrape_interval": interval,
            "scrape_timeout": interval,
        }
        if job in honor_labels:
            job_config["honor_labels"] = True
        job_config["static_configs"] = [static]
        scrape_configs.append(job_config)
    config: dict[str, object] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
    }
    if rule_files:
        config["rule_files"] = [str(path) for path in rule_files]
    config["scrape_configs"] = scrape_configs
    return yaml.safe_dump(config, sort_keys=False)


def _duration(seconds: float) -> str:
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"
