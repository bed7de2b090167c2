"""GPM, NVLink, PCIe replay, memory temperature and video engine series, and workload labels."""

import json
from pathlib import Path

import pynvml
import pytest

from agent.collectors.gpu import GpuCollector
from agent.nvml import FakeNvml
from agent.nvml.fake_spec import parse_fake_system
from agent.podattr import ContainerDevices, ContainerResources, PodResolver, PodResources
from agent.podattr.podresources import encode_list_response
from tests.fakes.kubelet import FakeKubelet
from tuneloop import catalog
from tuneloop.catalog.gpu import WORKLOAD_LABELS

TESTS = Path(__file__).resolve().parents[1]
SYSFS = TESTS / "fixtures" / "node" / "sys"
PROCFS = TESTS / "fixtures" / "node" / "proc"
GPU0 = "GPU-5d7f3c8a-0b1e-4f2a-9c3d-000000000000"
GPU1 = "GPU-5d7f3c8a-0b1e-4f2a-9c3d-000000000001"
MIG_A = "MIG-11111111-2222-3333-4444-555555555555"
MIG_B = "MIG-66666666-7777-8888-9999-000000000000"
NO_POD = dict.fromkeys(WORKLOAD_LABELS, "")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def two_gpus() -> dict:
    return json.loads((TESTS / "fixtures" / "gpu" / "two_gpus.json").read_text())


def collector_for(doc: dict, clock: Clock | None = None, **kwargs) -> tuple[GpuCollector, FakeNvml]:
    nvml = FakeNvml(parse_fake_system(doc), clock=clock or Clock())
    nvml.nvmlInit()
    return GpuCollector(nvml, SYSFS, PROCFS, **kwargs), nvml


def series(collector: GpuCollector, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """{sorted labels: value} of one metric's samples."""
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in collector.collect()
        for s in family.samples
        if s.name == name
    }


def one(collector: GpuCollector, name: str, **labels: str) -> float:
    """One sample; a device metric's workload labels default to empty (no pod holds it)."""
    if catalog.get(name).scrape_meaning == WORKLOAD_LABELS:
        labels = {**NO_POD, **labels}
    return series(collector, name)[tuple(sorted(labels.items()))]


def refreshed(collector: GpuCollector, clock: Clock, times: int = 2) -> GpuCollector:
    for _ in range(times):
        collector.refresh()
        clock.now += 10
    return collector


def test_gpm_ratios_come_from_the_second_refresh_on():
    clock = Clock()
    c, _ = collector_for(two_gpus(), clock)
    c.refresh()
    assert one(c, "tuneloop_gpu_gpm_supported", gpu="0") == 1
    assert series(c, "tuneloop_gpu_sm_active_ratio") == {}  # one sample is no interval
    clock.now += 10
    c.refresh()
    assert one(c, "tuneloop_gpu_sm_active_ratio", gpu="0") == pytest.approx(0.625)
    assert one(c, "tuneloop_gpu_sm_active_ratio", gpu="1") == pytest.approx(0.635)
    assert one(c, "tuneloop_gpu_sm_occupancy_ratio", gpu="1") == pytest.approx(0.3125)
    assert one(c, "tuneloop_gpu_dram_active_ratio", gpu="0") == pytest.approx(0.455)
    pipes = {
        dict(labels)["pipe"]: v
        for labels, v in series(c, "tuneloop_gpu_pipe_active_ratio").items()
        if ("gpu", "0") in labels
    }
    assert pipes == pytest.approx({"tensor": 0.4, "fp64": 0.0, "fp32": 0.125, "fp16": 0.025})
    assert series(c, "tuneloop_gpu_field_errors_total") == {}


def test_gpm_averages_over_the_refresh_interval():
    clock = Clock()
    c, nvml = collector_for(two_gpus(), clock)
    c.refresh()
    clock.now += 5
    nvml.set_gpm(0, pynvml.NVML_GPM_METRIC_SM_UTIL, 82.5)  # 62.5 % for 5 s, 82.5 % for 5 s
    clock.now += 5
    c.refresh()
    assert one(c, "tuneloop_gpu_sm_active_ratio", gpu="0") == pytest.approx(0.725)
    clock.now += 10
    c.refresh()
    assert one(c, "tuneloop_gpu_sm_active_ratio", gpu="0") == pytest.approx(0.825)


def test_a_gpu_without_gpm_has_no_gpm_series_and_supported_zero():
    doc = two_gpus()
    doc["devices"][1]["name"] = "NVIDIA A100-SXM4-80GB"
    del doc["devices"][1]["gpm"]
    clock = Clock()
    c = refreshed(collector_for(doc, clock)[0], clock)
    assert one(c, "tuneloop_gpu_gpm_supported", gpu="1") == 0
    assert one(c, "tuneloop_gpu_gpm_supported", gpu="0") == 1
    for name in ("tuneloop_gpu_sm_active_ratio", "tuneloop_gpu_pipe_active_ratio"):
        assert {dict(labels)["gpu"] for labels in series(c, name)} == {"0"}
    assert series(c, "tuneloop_gpu_field_errors_total") == {}  # supported=0 says it


def test_an_error_on_one_gpm_metric_marks_that_metric_only():
    doc = two_gpus()
    doc["devices"][0]["gpm"]["fp64_util"] = "NVML_ERROR_UNKNOWN"
    del doc["devices"][0]["gpm"]["sm_occupancy"]  # a counter this GPU does not have
    clock = Clock()
    c = refreshed(collector_for(doc, clock)[0], clock, times=3)
    pipes = {
        dict(k)["pipe"] for k in series(c, "tuneloop_gpu_pipe_active_ratio") if ("gpu", "0") in k
    }
    assert pipes == {"tensor", "fp32", "fp16"}
    assert {dict(k)["gpu"] for k in series(c, "tuneloop_gpu_sm_occupancy_ratio")} == {"1"}
    assert one(c, "tuneloop_gpu_sm_active_ratio", gpu="0") == pytest.approx(0.625)
    errors = series(c, "tuneloop_gpu_field_errors_total")
    assert {(dict(k)["field"], dict(k)["error"]): v for k, v in errors.items()} == {
        ("gpm_pipe_fp64", "unknown"): 2,
        ("gpm_sm_occupancy", "not_supported"): 2,
    }


def test_a_failed_gpm_sample_restarts_the_interval():
    clock = Clock()
    c, nvml = collector_for(two_gpus(), clock)
    c.refresh()
    nvml.set_error(0, "nvmlGpmSampleGet", "NVML_ERROR_UNKNOWN")
    clock.now += 10
    c.refresh()
    assert {dict(k)["gpu"] for k in series(c, "tuneloop_gpu_sm_active_ratio")} == {"1"}
    nvml.set_error(0, "nvmlGpmSampleGet", None)
    clock.now += 10
    c.refresh()  # a fresh first sample: still no interval on GPU 0
    assert {dict(k)["gpu"] for k in series(c, "tuneloop_gpu_sm_active_ratio")} == {"1"}
    clock.now += 10
    c.refresh()
    assert one(c, "tuneloop_gpu_sm_active_ratio", gpu="0") == pytest.approx(0.625)
    c.close()


def test_nvlink_pcie_memory_temperature_and_engines():
    c, _ = collector_for(two_gpus())
    c.refresh()
    assert one(c, "tuneloop_gpu_nvlink_transmit_bytes_total", gpu="1") == 123456790 * 1024
    assert one(c, "tuneloop_gpu_nvlink_receive_bytes_total", gpu="0") == 987654321 * 1024
    errors = series(c, "tuneloop_gpu_nvlink_errors_total")
    assert len(errors) == 2 * 18 * 4  # every active link, four counters
    assert one(c, "tuneloop_gpu_nvlink_errors_total", gpu="0", link="3", error="crc_flit") == 2
    assert one(c, "tuneloop_gpu_nvlink_errors_total", gpu="0", link="3", error="replay") == 1
    assert one(c, "tuneloop_gpu_nvlink_errors_total", gpu="0", link="0", error="crc_data") == 0
    assert one(c, "tuneloop_gpu_pcie_replays_total", gpu="1") == 1
    assert one(c, "tuneloop_gpu_memory_temperature_celsius", gpu="1") == 49
    assert one(c, "tuneloop_gpu_encoder_utilization_ratio", gpu="0") == 0
    assert one(c, "tuneloop_gpu_decoder_utilization_ratio", gpu="0") == pytest.approx(0.05)


def test_field_and_counter_errors_skip_only_themselves():
    doc = two_gpus()
    gpu0 = doc["devices"][0]
    gpu0["field_errors"] = {"NVML_FI_DEV_MEMORY_TEMP": "NVML_ERROR_NOT_SUPPORTED"}
    gpu0["nvlink"]["down"] = [17]
    gpu0["nvlink"]["errors"]["5"] = {"recovery": "NVML_ERROR_NO_PERMISSION"}
    del doc["devices"][1]["nvlink"]  # a PCIe card: no NVLink at all
    del doc["devices"][1]["encoder_util"]
    c, _ = collector_for(doc)
    c.refresh()
    assert {dict(k)["gpu"] for k in series(c, "tuneloop_gpu_memory_temperature_celsius")} == {"1"}
    assert one(c, "tuneloop_gpu_nvlink_transmit_bytes_total", gpu="0") == 123456789 * 1024
    links = {
        (dict(k)["gpu"], dict(k)["link"], dict(k)["error"])
        for k in series(c, "tuneloop_gpu_nvlink_errors_total")
    }
    assert len(links) == 17 * 4 - 1
    assert ("0", "5", "recovery") not in links and ("0", "5", "replay") in links
    assert not any(link == "17" for _, link, _ in links)
    assert {dict(k)["gpu"] for k in series(c, "tuneloop_gpu_encoder_utilization_ratio")} == {"0"}
    errors = {
        (dict(k)["gpu"], dict(k)["field"], dict(k)["error"])
        for k in series(c, "tuneloop_gpu_field_errors_total")
    }
    assert errors == {
        ("0", "memory_temperature", "not_supported"),
        ("0", "nvlink_errors", "no_permission"),
        ("1", "nvlink", "not_supported"),
        ("1", "nvlink_tx", "not_supported"),
        ("1", "nvlink_rx", "not_supported"),
        ("1", "encoder", "not_supported"),
    }


def test_pid_is_only_on_the_opt_in_process_family():
    for opt_in in (False, True):
        c, _ = collector_for(two_gpus(), process_metrics=opt_in)
        c.refresh()
        with_pid = {s.name for f in c.collect() for s in f.samples if "pid" in s.labels}
        assert with_pid == ({"tuneloop_gpu_process_memory_used_bytes"} if opt_in else set())
        assert len(c.processes()) == 4  # still attributed for NUMA placement


def mig_doc() -> dict:
    doc = two_gpus()
    doc["devices"][0]["mig"] = {
        "enabled": True,
        "instances": [
            {"uuid": MIG_A, "memory": {"total": 10 << 30, "used": 3 << 30}},
            {"uuid": MIG_B, "memory": {"total": 20 << 30, "used": 1 << 30}},
        ],
    }
    return doc


def pods_holding(*held: tuple[str, str, str, tuple[str, ...]]) -> bytes:
    return encode_list_response(
        [
            PodResources(
                pod,
                namespace,
                (ContainerResources(container, (ContainerDevices("nvidia.com/gpu", ids),)),),
            )
            for namespace, pod, container, ids in held
        ]
    )


def test_device_series_carry_the_pod_holding_the_gpu_or_its_mig_device(tmp_path):
    sock = tmp_path / "kubelet.sock"
    answer = pods_holding(
        ("batch", "embed-0", "worker", (MIG_A,)),
        ("batch", "embed-1", "worker", (MIG_B,)),
        ("inference", "vllm-0", "vllm", (GPU1,)),
    )
    with FakeKubelet(sock, answer):
        resolver = PodResolver(PROCFS, sock, timeout=5)
        c, _ = collector_for(mig_doc(), pod_resolver=resolver)
        c.refresh()
        resolver.close()
    mig = series(c, "tuneloop_gpu_mig_memory_used_bytes")
    assert {(dict(k)["uuid"], dict(k)["pod"], dict(k)["namespace"]) for k in mig} == {
        (MIG_A, "embed-0", "batch"),
        (MIG_B, "embed-1", "batch"),
    }
    vllm = {"namespace": "inference", "pod": "vllm-0", "container": "vllm"}
    assert one(c, "tuneloop_gpu_power_watts", gpu="1", **vllm) == pytest.approx(513.345)
    assert one(c, "tuneloop_gpu_power_watts", gpu="0") == pytest.approx(512.345)  # MIG parent
    assert (
        one(c, "tuneloop_gpu_nvlink_errors_total", gpu="1", link="3", error="crc_flit", **vllm) == 2
    )
    # identity and health series carry no workload labels
    for name in ("tuneloop_gpu_info", "tuneloop_gpu_lost", "tuneloop_gpu_gpm_supported"):
        assert all("pod" not in dict(k) for k in series(c, name)), name


def test_a_gpu_shared_by_several_pods_is_not_attributed_to_any(tmp_path):
    sock = tmp_path / "kubelet.sock"
    answer = pods_holding(
        ("inference", "small-0", "vllm", (f"{GPU0}::0",)),
        ("inference", "small-1", "vllm", (f"{GPU0}::1",)),
        ("inference", "big-0", "vllm", (f"{GPU1}::0", f"{GPU1}::1")),
    )
    with FakeKubelet(sock, answer):
        resolver = PodResolver(PROCFS, sock, timeout=5)
        c, nvml = collector_for(two_gpus(), pod_resolver=resolver)
        nvml.inject_xid(0, 13)
        c.refresh()
        resolver.close()
    assert one(c, "tuneloop_gpu_temperature_celsius", gpu="0") == 61
    assert one(c, "tuneloop_gpu_xid_errors_total", gpu="0", xid="13") == 1
    big = {"namespace": "inference", "pod": "big-0", "container": "vllm"}
    assert one(c, "tuneloop_gpu_temperature_celsius", gpu="1", **big) == 62
