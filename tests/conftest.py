"""Shared test set-up: markers by folder, fixture paths, the tuner's clock double.

``tests/unit`` is fast and free of real programs and sleeps; ``tests/integration`` runs the real
programs (Prometheus, promtool, HAProxy, nginx, iperf3, perf) and network namespaces;
``tests/deploy`` checks the manifests. Every test in ``integration`` gets the ``integration``
marker from its folder, so ``-m "not integration"`` is the fast path wherever it is run from.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.paths import FIXTURES, ROOT


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(ROOT / "tests" / "integration"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def fixtures_dir() -> Path:
    """The fixture trees (node sysfs/procfs, GPUs, inference expositions, bench output)."""
    return FIXTURES


@pytest.fixture
def fake_clock():
    """Simulated time for the tuner: ``sleep`` advances ``now`` and never waits."""
    from tests.unit.tuner_doubles import FakeClock

    return FakeClock()
