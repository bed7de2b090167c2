import json
import shutil
import threading
from pathlib import Path

import pytest

from agent.collectors.base import CollectorError
from agent.collectors.gpu import GpuCollector
from agent.nvml import FakeNvml
from agent.nvml.fake_spec import parse_fake_system
from agent.placement import GpuProcess
from tuneloop import catalog
from tuneloop.catalog.gpu import WORKLOAD_LABELS

TESTS = Path(__file__).resolve().parents[1]
GPU_FIXTURES = TESTS / "fixtures" / "gpu"
SYSFS = TESTS / "fixtures" / "node" / "sys"
PROCFS = TESTS / "fixtures" / "node" / "proc"


def load_doc(name: str) -> dict:
    return json.loads((GPU_FIXTURES / f"{name}.json").read_text())


def fake(doc: dict) -> FakeNvml:
    nvml = FakeNvml(parse_fake_system(doc))
    nvml.nvmlInit()
    return nvml


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def samples(collector: GpuCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of the collector's snapshot."""
    out = {}
    for family in collector.collect():
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(snap, metric, /, **labels):
    """The sample; a device metric's workload labels default to empty (no pod holds the GPU)."""
    if catalog.get(metric).scrape_meaning == WORKLOAD_LABELS:
        labels = {**dict.fromkeys(WORKLOAD_LABELS, ""), **labels}
    return snap[(metric, tuple(sorted(labels.items())))]


def names_for_gpu(snap, gpu):
    return {name for name, labels in snap if ("gpu", gpu) in labels}


def collector_for(doc: dict, **kwargs) -> tuple[GpuCollector, FakeNvml]:
    nvml = fake(doc)
    return GpuCollector(nvml, SYSFS, PROCFS, **kwargs), nvml


def test_values_are_in_base_units():
    c, _ = collector_for(load_doc("two_gpus"), process_metrics=True)
    c.refresh()
    snap = samples(c)
    g1 = {"gpu": "1"}
    assert value(snap, "tuneloop_gpu_utilization_ratio", **g1) == pytest.approx(0.86)
    assert value(snap, "tuneloop_gpu_memory_utilization_ratio", **g1) == pytest.approx(0.42)
    assert value(snap, "tuneloop_gpu_power_watts", **g1) == pytest.approx(513.345)
    assert value(snap, "tuneloop_gpu_energy_joules_total", **g1) == pytest.approx(9876543.211)
    assert value(snap, "tuneloop_gpu_temperature_celsius", **g1) == 62
    assert value(snap, "tuneloop_gpu_sm_clock_hertz", **g1) == 1_980_000_000
    assert value(snap, "tuneloop_gpu_memory_clock_hertz", **g1) == 2_619_000_000
    assert value(snap, "tuneloop_gpu_pcie_transmit_bytes_per_second", **g1) == 1201 * 1024
    assert value(snap, "tuneloop_gpu_pcie_receive_bytes_per_second", **g1) == 3401 * 1024
    assert value(snap, "tuneloop_gpu_memory_total_bytes", **g1) == 85520809984
    assert value(snap, "tuneloop_gpu_memory_used_bytes", **g1) == 77309411328
    assert (
        value(snap, "tuneloop_gpu_ecc_errors_total", gpu="1", type="corrected", scope="aggregate")
        == 3
    )
    assert value(snap, "tuneloop_gpu_remapped_rows", gpu="1", cause="uncorrectable") == 0
    assert value(snap, "tuneloop_gpu_row_remap_pending", **g1) == 0
    assert value(snap, "tuneloop_gpu_mig_enabled", **g1) == 0
    assert value(snap, "tuneloop_gpu_lost", **g1) == 0
    # throttle bitmask 0x5: gpu_idle and sw_power_cap, one 0/1 series per known reason
    reasons = {
        dict(labels)["reason"]: v
        for (name, labels), v in snap.items()
        if name == "tuneloop_gpu_throttle_reason_active" and ("gpu", "1") in labels
    }
    assert {r for r, v in reasons.items() if v == 1} == {"gpu_idle", "sw_power_cap"}
    assert len(reasons) == 9
    assert (
        value(
            snap,
            "tuneloop_gpu_info",
            gpu="1",
            uuid="GPU-5d7f3c8a-0b1e-4f2a-9c3d-000000000001",
            name="NVIDIA H100 80GB HBM3",
            pci_bus_id="00000000:9A:00.0",
            numa_node="1",
        )
        == 1
    )
    assert value(snap, "tuneloop_gpu_processes", **g1) == 2
    assert (
        value(
            snap,
            "tuneloop_gpu_process_memory_used_bytes",
            gpu="1",
            pid="2102",
            pod="",
            namespace="",
            container="",
        )
        == 71 << 30
    )


def test_not_supported_fields_are_skipped_and_counted_never_zero():
    c, _ = collector_for(load_doc("faulty_gpus"))
    c.refresh()
    c.refresh()
    snap = samples(c)
    gpu0 = names_for_gpu(snap, "0")
    assert "tuneloop_gpu_power_watts" not in gpu0
    assert "tuneloop_gpu_ecc_errors_total" not in gpu0
    assert "tuneloop_gpu_temperature_celsius" in gpu0
    assert (
        value(
            snap, "tuneloop_gpu_field_errors_total", gpu="0", field="power", error="not_supported"
        )
        == 2
    )
    assert (
        value(snap, "tuneloop_gpu_field_errors_total", gpu="0", field="ecc", error="not_supported")
        == 2
    )
    assert (
        value(snap, "tuneloop_gpu_field_errors_total", gpu="3", field="mig", error="no_permission")
        == 2
    )
    assert "tuneloop_gpu_mig_enabled" not in names_for_gpu(snap, "3")


def test_lost_gpu_is_marked_and_the_others_keep_reporting():
    c, _ = collector_for(load_doc("faulty_gpus"))
    c.refresh()
    snap = samples(c)
    assert value(snap, "tuneloop_gpu_lost", gpu="1") == 1
    assert names_for_gpu(snap, "1") == {"tuneloop_gpu_lost", "tuneloop_gpu_info"}
    for gpu in ("0", "2", "3"):
        assert value(snap, "tuneloop_gpu_lost", gpu=gpu) == 0
        assert "tuneloop_gpu_utilization_ratio" in names_for_gpu(snap, gpu)


def test_gpu_lost_after_start_keeps_its_identity_and_drops_its_processes():
    c, nvml = collector_for(load_doc("two_gpus"))
    c.refresh()
    nvml.set_lost(1)
    c.refresh()
    snap = samples(c)
    assert value(snap, "tuneloop_gpu_lost", gpu="1") == 1
    assert (
        value(
            snap,
            "tuneloop_gpu_info",
            gpu="1",
            uuid="GPU-5d7f3c8a-0b1e-4f2a-9c3d-000000000001",
            name="NVIDIA H100 80GB HBM3",
            pci_bus_id="00000000:9A:00.0",
            numa_node="1",
        )
        == 1
    )
    assert names_for_gpu(snap, "1") == {"tuneloop_gpu_lost", "tuneloop_gpu_info"}
    assert {p.gpu for p in c.processes()} == {"0"}
    assert value(snap, "tuneloop_gpu_power_watts", gpu="0") == pytest.approx(512.345)


def test_gpu_lost_in_the_middle_of_a_read_leaves_no_partial_series():
    doc = load_doc("two_gpus")
    doc["devices"][0]["errors"] = {"nvmlDeviceGetRemappedRows": "NVML_ERROR_GPU_IS_LOST"}
    c, _ = collector_for(doc)
    c.refresh()
    snap = samples(c)
    assert names_for_gpu(snap, "0") == {"tuneloop_gpu_lost", "tuneloop_gpu_info"}
    assert value(snap, "tuneloop_gpu_lost", gpu="0") == 1


def test_xids_are_counted_across_refreshes():
    clock = Clock()
    c, nvml = collector_for(load_doc("faulty_gpus"), clock=clock)
    c.refresh()
    snap = samples(c)
    assert value(snap, "tuneloop_gpu_xid_errors_total", gpu="0", xid="13") == 1
    assert value(snap, "tuneloop_gpu_xid_errors_total", gpu="0", xid="31") == 2
    assert not any(
        name.startswith("tuneloop_gpu_xid") and ("gpu", "1") in labels for name, labels in snap
    )  # the lost GPU never registered
    clock.now += 60
    nvml.inject_xid(0, 31)
    nvml.inject_xid(2, 94)
    c.refresh()
    c.refresh()  # nothing new: counters hold
    snap = samples(c)
    assert value(snap, "tuneloop_gpu_xid_errors_total", gpu="0", xid="31") == 3
    assert value(snap, "tuneloop_gpu_xid_errors_total", gpu="0", xid="13") == 1
    assert value(snap, "tuneloop_gpu_xid_errors_total", gpu="2", xid="94") == 1
    assert (
        value(snap, "tuneloop_gpu_xid_last_seen_timestamp_seconds", gpu="0", xid="31") == clock.now
    )
    assert (
        value(snap, "tuneloop_gpu_xid_last_seen_timestamp_seconds", gpu="0", xid="13")
        == clock.now - 60
    )


def test_an_xid_storm_is_drained_in_bounded_batches():
    c, nvml = collector_for(load_doc("two_gpus"))
    c.refresh()
    for _ in range(300):
        nvml.inject_xid(1, 119)
    c.refresh()
    assert value(samples(c), "tuneloop_gpu_xid_errors_total", gpu="1", xid="119") == 256
    c.refresh()
    assert value(samples(c), "tuneloop_gpu_xid_errors_total", gpu="1", xid="119") == 300


def test_no_gpus_or_no_answer_is_one_clear_error():
    c, _ = collector_for({"devices": []})
    with pytest.raises(CollectorError, match=r"^NVML reports no GPUs on this node$"):
        c.refresh()
    c, _ = collector_for({"devices": [], "errors": {"nvmlDeviceGetCount": "NVML_ERROR_UNKNOWN"}})
    with pytest.raises(CollectorError, match=r"^NVML cannot count GPUs: Unknown Error$"):
        c.refresh()


def test_processes_carry_the_gpu_numa_node():
    c, _ = collector_for(load_doc("two_gpus"))
    assert c.processes() == []
    c.refresh()
    assert c.processes() == [
        GpuProcess(gpu="0", pid=2101, gpu_numa_node=0),
        GpuProcess(gpu="0", pid=2104, gpu_numa_node=0),
        GpuProcess(gpu="1", pid=2102, gpu_numa_node=1),
        GpuProcess(gpu="1", pid=2103, gpu_numa_node=1),
    ]


def test_eight_gpu_node_reports_64_processes_on_two_nodes():
    c, _ = collector_for(load_doc("eight_gpus"))
    c.refresh()
    procs = c.processes()
    assert len(procs) == 64
    assert {p.gpu: p.gpu_numa_node for p in procs} == {str(i): i // 4 for i in range(8)}


def test_process_without_memory_figure_is_counted_without_a_memory_series():
    doc = load_doc("two_gpus")
    doc["devices"][0]["processes"] = [{"pid": 2101, "used_memory": None}]
    c, _ = collector_for(doc, process_metrics=True)
    c.refresh()
    snap = samples(c)
    assert value(snap, "tuneloop_gpu_processes", gpu="0") == 1
    assert not any(
        n == "tuneloop_gpu_process_memory_used_bytes" and ("gpu", "0") in labels
        for n, labels in snap
    )


def test_mig_instances_and_their_memory():
    doc = load_doc("two_gpus")
    doc["devices"][0]["mig"] = {
        "enabled": True,
        "instances": [
            {
                "uuid": "MIG-11111111-2222-3333-4444-555555555555",
                "memory": {"total": 10 << 30, "used": 3 << 30},
            },
            {"uuid": "MIG-66666666-7777-8888-9999-000000000000", "memory": {"total": 20 << 30}},
        ],
    }
    c, _ = collector_for(doc)
    c.refresh()
    snap = samples(c)
    assert value(snap, "tuneloop_gpu_mig_enabled", gpu="0") == 1
    assert value(snap, "tuneloop_gpu_mig_instances", gpu="0") == 2
    assert (
        value(
            snap,
            "tuneloop_gpu_mig_memory_used_bytes",
            gpu="0",
            mig_instance="0",
            uuid="MIG-11111111-2222-3333-4444-555555555555",
        )
        == 3 << 30
    )
    assert (
        value(
            snap,
            "tuneloop_gpu_mig_memory_total_bytes",
            gpu="0",
            mig_instance="1",
            uuid="MIG-66666666-7777-8888-9999-000000000000",
        )
        == 20 << 30
    )
    assert "tuneloop_gpu_mig_instances" not in names_for_gpu(snap, "1")


def test_older_drivers_fall_back_to_throttle_reasons():
    doc = load_doc("two_gpus")
    doc["devices"][1]["errors"] = {
        "nvmlDeviceGetCurrentClocksEventReasons": "NVML_ERROR_FUNCTION_NOT_FOUND"
    }
    c, _ = collector_for(doc)
    c.refresh()
    snap = samples(c)
    assert value(snap, "tuneloop_gpu_throttle_reason_active", gpu="1", reason="sw_power_cap") == 1
    assert not any(n == "tuneloop_gpu_field_errors_total" for n, _ in snap)


def test_numa_node_falls_back_to_nvml_cpu_affinity(tmp_path):
    sysfs = tmp_path / "sys"
    shutil.copytree(SYSFS / "bus", sysfs / "bus")
    for node, cpus in ((0, "0-15,32-47"), (1, "16-31,48-63")):
        (sysfs / "devices" / "system" / "node" / f"node{node}").mkdir(parents=True)
        (sysfs / "devices" / "system" / "node" / f"node{node}" / "cpulist").write_text(cpus + "\n")
    nvml = fake(load_doc("faulty_gpus"))
    c = GpuCollector(nvml, sysfs, PROCFS)
    c.refresh()
    snap = samples(c)
    numa = {
        dict(labels)["gpu"]: dict(labels)["numa_node"]
        for name, labels in snap
        if name == "tuneloop_gpu_info"
    }
    # 0: sysfs says 0; 1: lost before identity was read; 2: sysfs -1, affinity on node 1;
    # 3: no sysfs entry, affinity spans both nodes
    assert numa == {"0": "0", "1": "-1", "2": "1", "3": "-1"}
    # without node cpulists there is nothing to map the affinity onto
    shutil.rmtree(sysfs / "devices")
    c = GpuCollector(fake(load_doc("faulty_gpus")), sysfs, PROCFS)
    c.refresh()
    assert (
        value(
            samples(c),
            "tuneloop_gpu_info",
            gpu="2",
            uuid="GPU-5d7f3c8a-0b1e-4f2a-9c3d-000000000002",
            name="NVIDIA H100 80GB HBM3",
            pci_bus_id="00000000:C1:00.0",
            numa_node="-1",
        )
        == 1
    )


def test_processes_stay_readable_while_a_refresh_hangs_in_nvml():
    doc = load_doc("two_gpus")
    c, nvml = collector_for(doc)
    c.refresh()
    before = c.processes()
    nvml.system.devices[1].hang["nvmlDeviceGetComputeRunningProcesses"] = 0.5
    refresh = threading.Thread(target=c.refresh)
    refresh.start()
    seen: list[list] = []
    reader = threading.Thread(target=lambda: seen.append(c.processes()))
    reader.start()
    reader.join(0.3)
    assert refresh.is_alive()  # NVML still hanging
    assert seen == [before]  # yet the last refresh's processes were served
    refresh.join(5)


def test_cross_numa_is_left_to_the_numa_collector():
    c, _ = collector_for(load_doc("two_gpus"))
    c.refresh()
    assert not any(n == "tuneloop_gpu_process_cross_numa" for n, _ in samples(c))
