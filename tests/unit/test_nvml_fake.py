import copy
import ctypes
import json
import threading
from pathlib import Path

import pynvml
import pytest

from agent.nvml import FakeNvml, load_nvml
from agent.nvml.fake_spec import parse_fake_system
from tuneloop.validation import ConfigError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gpu"


def two_gpus_doc() -> dict:
    return json.loads((FIXTURES / "two_gpus.json").read_text())


def fake_from(doc: dict) -> FakeNvml:
    fake = FakeNvml(parse_fake_system(doc))
    fake.nvmlInit()
    return fake


@pytest.fixture
def nvml() -> FakeNvml:
    return fake_from(two_gpus_doc())


def test_returns_pynvml_types_and_values(nvml):
    h = nvml.nvmlDeviceGetHandleByIndex(1)
    assert isinstance(h, pynvml.c_nvmlDevice_t)
    mem = nvml.nvmlDeviceGetMemoryInfo(h)
    assert isinstance(mem, pynvml.c_nvmlMemory_t)
    assert (mem.total, mem.used, mem.free) == (85520809984, 77309411328, 85520809984 - 77309411328)
    util = nvml.nvmlDeviceGetUtilizationRates(h)
    assert isinstance(util, pynvml.c_nvmlUtilization_t) and (util.gpu, util.memory) == (86, 42)
    pci = nvml.nvmlDeviceGetPciInfo(h)
    assert isinstance(pci, pynvml.nvmlPciInfo_t)
    assert pci.busId == "00000000:9A:00.0" and isinstance(pci.busId, str)
    assert (pci.domain, pci.bus, pci.device) == (0, 0x9A, 0)
    assert nvml.nvmlDeviceGetUUID(h) == "GPU-5d7f3c8a-0b1e-4f2a-9c3d-000000000001"
    assert nvml.nvmlDeviceGetPowerUsage(h) == 513345
    assert nvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_MEM) == 2619
    assert nvml.nvmlDeviceGetPcieThroughput(h, pynvml.NVML_PCIE_UTIL_RX_BYTES) == 3401
    assert nvml.nvmlDeviceGetRemappedRows(h) == (0, 0, 0, 0)
    assert nvml.nvmlDeviceGetMigMode(h) == [0, 0]
    counts = nvml.nvmlDeviceGetTotalEccErrors(
        h, pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, pynvml.NVML_AGGREGATE_ECC
    )
    assert counts == 3
    procs = nvml.nvmlDeviceGetComputeRunningProcesses(h)
    assert [(p.pid, p.usedGpuMemory) for p in procs] == [(2102, 71 << 30), (2103, 512 << 20)]


def test_calls_before_init_and_bad_handles_fail_like_nvml():
    fake = FakeNvml(parse_fake_system(two_gpus_doc()))
    with pytest.raises(pynvml.NVMLError_Uninitialized):
        fake.nvmlDeviceGetCount()
    fake.nvmlInit()
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        fake.nvmlDeviceGetHandleByIndex(2)
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        fake.nvmlDeviceGetName(ctypes.cast(ctypes.c_void_p(0x1234), pynvml.c_nvmlDevice_t))
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        fake.nvmlDeviceGetName("not a handle")


def test_missing_field_is_not_supported_and_errors_are_pynvml_subclasses():
    doc = two_gpus_doc()
    del doc["devices"][0]["power_mw"]
    doc["devices"][1]["errors"] = {"nvmlDeviceGetTemperature": "NVML_ERROR_NO_PERMISSION"}
    nvml = fake_from(doc)
    h0, h1 = nvml.nvmlDeviceGetHandleByIndex(0), nvml.nvmlDeviceGetHandleByIndex(1)
    with pytest.raises(pynvml.NVMLError_NotSupported) as err:
        nvml.nvmlDeviceGetPowerUsage(h0)
    assert err.value.value == pynvml.NVML_ERROR_NOT_SUPPORTED
    assert str(err.value) == "Not Supported"
    with pytest.raises(pynvml.NVMLError_NoPermission):
        nvml.nvmlDeviceGetTemperature(h1, pynvml.NVML_TEMPERATURE_GPU)
    assert nvml.nvmlDeviceGetPowerUsage(h1) == 513345


def test_lost_gpu_fails_every_call_including_the_handle(nvml):
    h = nvml.nvmlDeviceGetHandleByIndex(0)
    nvml.set_lost(0)
    for call in (nvml.nvmlDeviceGetUUID, nvml.nvmlDeviceGetMemoryInfo, nvml.nvmlDeviceGetPciInfo):
        with pytest.raises(pynvml.NVMLError_GpuIsLost):
            call(h)
    with pytest.raises(pynvml.NVMLError_GpuIsLost):
        nvml.nvmlDeviceGetHandleByIndex(0)
    assert nvml.nvmlDeviceGetName(nvml.nvmlDeviceGetHandleByIndex(1)) == "NVIDIA H100 80GB HBM3"


def test_xid_events_are_delivered_once_then_timeout(nvml):
    nvml.inject_xid(1, 79)
    nvml.inject_xid(1, 48)
    event_set = nvml.nvmlEventSetCreate()
    with pytest.raises(pynvml.NVMLError_Timeout):
        nvml.nvmlEventSetWait_v2(event_set, 0)  # nothing registered yet
    h1 = nvml.nvmlDeviceGetHandleByIndex(1)
    nvml.nvmlDeviceRegisterEvents(h1, pynvml.nvmlEventTypeXidCriticalError, event_set)
    first = nvml.nvmlEventSetWait_v2(event_set, 0)
    assert isinstance(first, pynvml.c_nvmlEventData_t)
    assert (first.eventType, first.eventData) == (pynvml.nvmlEventTypeXidCriticalError, 79)
    assert (
        ctypes.cast(first.device, ctypes.c_void_p).value == ctypes.cast(h1, ctypes.c_void_p).value
    )
    assert nvml.nvmlEventSetWait_v2(event_set, 0).eventData == 48
    with pytest.raises(pynvml.NVMLError_Timeout):
        nvml.nvmlEventSetWait_v2(event_set, 0)
    nvml.nvmlEventSetFree(event_set)
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        nvml.nvmlEventSetWait_v2(event_set, 0)


def test_hang_blocks_the_call_for_the_configured_time():
    doc = two_gpus_doc()
    doc["devices"][0]["hang"] = {"nvmlDeviceGetPowerUsage": 0.4}
    nvml = fake_from(doc)
    h = nvml.nvmlDeviceGetHandleByIndex(0)
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(nvml.nvmlDeviceGetPowerUsage(h)))
    worker.start()
    worker.join(0.05)
    assert worker.is_alive() and result == []  # still hanging: a deadline has to cut it off
    worker.join(5)
    assert result == [512345]


def test_cpu_affinity_is_a_bitmask_array(nvml):
    mask = nvml.nvmlDeviceGetCpuAffinity(nvml.nvmlDeviceGetHandleByIndex(1), 1)
    assert len(mask) == 1
    assert mask[0] == sum(1 << c for c in [*range(16, 32), *range(48, 64)])


def test_mig_devices_have_handles_uuid_and_memory():
    doc = two_gpus_doc()
    doc["devices"][0]["mig"] = {
        "enabled": True,
        "instances": [
            {"uuid": "MIG-aaaa", "memory": {"total": 10 << 30, "used": 1 << 30}},
            {"uuid": "MIG-bbbb", "memory": {"total": 20 << 30}},
        ],
    }
    nvml = fake_from(doc)
    h = nvml.nvmlDeviceGetHandleByIndex(0)
    assert nvml.nvmlDeviceGetMigMode(h) == [1, 1]
    assert nvml.nvmlDeviceGetMaxMigDeviceCount(h) == 7
    mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(h, 1)
    assert nvml.nvmlDeviceGetUUID(mig) == "MIG-bbbb"
    assert nvml.nvmlDeviceGetMemoryInfo(mig).total == 20 << 30
    with pytest.raises(pynvml.NVMLError_NotFound):
        nvml.nvmlDeviceGetMigDeviceHandleByIndex(h, 2)
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        nvml.nvmlDeviceGetMigDeviceHandleByIndex(nvml.nvmlDeviceGetHandleByIndex(1), 0)


@pytest.mark.parametrize(
    ("edit", "field", "reason"),
    [
        (lambda d: d["devices"][0].pop("uuid"), "devices[0].uuid", "is required"),
        (lambda d: d["devices"][1].update(colour="red"), "devices[1].colour", "unknown field"),
        (
            lambda d: d["devices"][0].update(errors={"nvmlDeviceGetName": "NVML_ERROR_OOPS"}),
            "devices[0].errors.nvmlDeviceGetName",
            "must name an NVML error",
        ),
        (
            lambda d: d["devices"][0]["utilization"].update(gpu=101),
            "devices[0].utilization.gpu",
            "must be <= 100",
        ),
        (
            lambda d: d["devices"][0]["memory"].update(used=1 << 40),
            "devices[0].memory.used",
            "must not exceed",
        ),
    ],
)
def test_bad_fake_files_name_the_file_and_field(tmp_path, edit, field, reason):
    doc = copy.deepcopy(two_gpus_doc())
    edit(doc)
    path = tmp_path / "gpus.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError) as err:
        load_nvml("fake", path)
    assert err.value.field == f"{path}: {field}"
    assert reason in err.value.reason


def test_unreadable_fake_files_name_the_file(tmp_path):
    path = tmp_path / "gpus.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=f"{path}: not valid JSON"):
        load_nvml("fake", path)
    with pytest.raises(ConfigError, match="cannot read fake GPU file"):
        load_nvml("fake", tmp_path / "absent.json")
