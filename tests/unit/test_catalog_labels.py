"""The catalog keeps clear of the labels a Kubernetes scrape owns, and says so where it does not."""

from __future__ import annotations

import pytest

from tuneloop import catalog
from tuneloop.catalog.base import SCRAPE_LABELS, gauge, scrape_label_problems
from tuneloop.catalog.gpu import WORKLOAD_LABELS


def test_no_catalog_metric_uses_a_scrape_label_it_does_not_declare() -> None:
    assert scrape_label_problems(catalog.ALL.values()) == []


def test_numa_series_label_their_numa_node_and_never_node() -> None:
    for spec in catalog.AREAS["numa"]:
        assert "node" not in spec.labels, spec.name
    assert "numa_node" in catalog.get("tuneloop_numa_memory_free_bytes").labels
    assert "numa_node" in catalog.get("tuneloop_gpu_info").labels


def test_declared_scrape_labels_are_the_pods_of_gpu_processes_and_devices() -> None:
    declared = {s.name: set(s.scrape_meaning) for s in catalog.ALL.values() if s.scrape_meaning}
    workload = set(WORKLOAD_LABELS)
    processes = {
        "tuneloop_gpu_process_cross_numa": {"pod", "namespace"},
        "tuneloop_gpu_process_off_node_cpus_ratio": {"pod", "namespace"},
        "tuneloop_gpu_process_memory_used_bytes": {"pod", "namespace", "container"},
    }
    devices = {name: labels for name, labels in declared.items() if name not in processes}
    assert {name: declared[name] for name in processes} == processes
    assert all(labels == workload for labels in devices.values()), devices
    gpu_specs = (*catalog.AREAS["gpu"], *catalog.AREAS["gpu_signals"])
    assert {s.name for s in gpu_specs if s.scrape_meaning == WORKLOAD_LABELS} == set(devices)
    for name in (
        "tuneloop_gpu_utilization_ratio",
        "tuneloop_gpu_memory_used_bytes",
        "tuneloop_gpu_power_watts",
        "tuneloop_gpu_temperature_celsius",
        "tuneloop_gpu_sm_clock_hertz",
        "tuneloop_gpu_pcie_transmit_bytes_per_second",
        "tuneloop_gpu_energy_joules_total",
        "tuneloop_gpu_xid_errors_total",
        "tuneloop_gpu_mig_memory_used_bytes",
        "tuneloop_gpu_sm_active_ratio",
        "tuneloop_gpu_pipe_active_ratio",
        "tuneloop_gpu_nvlink_errors_total",
        "tuneloop_gpu_pcie_replays_total",
        "tuneloop_gpu_memory_temperature_celsius",
        "tuneloop_gpu_decoder_utilization_ratio",
    ):
        assert name in devices, name
    # pid only on the opt-in per-process GPU family (and the NUMA placement diagnosis)
    with_pid = {s.name for s in catalog.ALL.values() if "pid" in s.labels}
    assert with_pid == set(processes)


def test_the_rule_names_an_undeclared_scrape_label() -> None:
    bad = gauge("tuneloop_x_bytes", "x", "node", "instance", unit="bytes")
    problems = scrape_label_problems([bad])
    assert len(problems) == 2
    assert "tuneloop_x_bytes: label 'node' belongs to the scrape" in problems[0]
    ok = gauge("tuneloop_y", "y", "pod", scrape_meaning=("pod",))
    assert scrape_label_problems([ok]) == []
    assert {"node", "cluster", "instance", "job"} <= SCRAPE_LABELS


def test_a_declaration_must_name_a_scrape_label_the_metric_has() -> None:
    with pytest.raises(ValueError, match="scrape_meaning 'gpu'"):
        gauge("tuneloop_z", "z", "gpu", scrape_meaning=("gpu",))
    with pytest.raises(ValueError, match="scrape_meaning 'pod'"):
        gauge("tuneloop_z", "z", "gpu", scrape_meaning=("pod",))


def test_iperf3_throughput_is_in_bytes_per_second() -> None:
    names = {s.name for s in catalog.AREAS["bench"]}
    assert "tuneloop_iperf3_throughput_bytes_per_second" in names
    assert "tuneloop_iperf3_receive_throughput_bytes_per_second" in names
    assert not any("bits" in n for n in names)
