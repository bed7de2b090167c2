"""Prometheus configuration for the lab: one scrape job per kind of target, on loopback."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import yaml


def render(jobs: Mapping[str, Sequence[str]], scrape_interval_s: float = 1.0) -> str:
    """prometheus.yml text scraping ``jobs`` = {job name: [host:port, ...]}."""
    if scrape_interval_s <= 0:
        raise ValueError(f"scrape_interval_s must be positive, got {scrape_interval_s!r}")
    interval = _duration(scrape_interval_s)
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": job,
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "static_configs": [{"targets": list(targets)}],
            }
            for job, targets in jobs.items()
            if targets
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


def _duration(seconds: float) -> str:
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"
