"""The fake NVML answers GPM, field values, NVLink and engine calls as pynvml does."""

import json
from pathlib import Path

import pynvml
import pytest

from agent.nvml import FakeNvml
from agent.nvml.fake_spec import parse_fake_system
from tuneloop.validation import ConfigError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gpu"


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def fake(doc: dict | None = None, clock: Clock | None = None) -> FakeNvml:
    doc = doc or json.loads((FIXTURES / "two_gpus.json").read_text())
    nvml = FakeNvml(parse_fake_system(doc), clock=clock or Clock())
    nvml.nvmlInit()
    return nvml


def metrics_request(first, second, *metric_ids: int):
    request = pynvml.c_nvmlGpmMetricsGet_t()
    request.version = pynvml.NVML_GPM_METRICS_GET_VERSION
    request.numMetrics = len(metric_ids)
    request.sample1, request.sample2 = first, second
    for i, metric in enumerate(metric_ids):
        request.metrics[i].metricId = metric
    return request


def test_gpm_metrics_are_the_average_between_two_samples_of_one_gpu():
    clock = Clock()
    nvml = fake(clock=clock)
    h0, h1 = nvml.nvmlDeviceGetHandleByIndex(0), nvml.nvmlDeviceGetHandleByIndex(1)
    assert nvml.nvmlGpmQueryDeviceSupport(h0).isSupportedDevice == 1
    first, second = nvml.nvmlGpmSampleAlloc(), nvml.nvmlGpmSampleAlloc()
    assert isinstance(first, pynvml.c_nvmlGpmSample_t)
    nvml.nvmlGpmSampleGet(h0, first)
    clock.now += 2
    nvml.nvmlGpmSampleGet(h0, second)
    sm, nvdec = pynvml.NVML_GPM_METRIC_SM_UTIL, pynvml.NVML_GPM_METRIC_NVDEC_0_UTIL
    answer = nvml.nvmlGpmMetricsGet(metrics_request(first, second, sm, nvdec))
    assert answer.metrics[0].nvmlReturn == pynvml.NVML_SUCCESS
    assert answer.metrics[0].value == pytest.approx(62.5)
    assert answer.metrics[1].nvmlReturn == pynvml.NVML_ERROR_NOT_SUPPORTED
    # the same sample twice, samples of two GPUs, an unfilled or freed sample: invalid
    other = nvml.nvmlGpmSampleAlloc()
    for pair in ((second, second), (second, other)):
        with pytest.raises(pynvml.NVMLError_InvalidArgument):
            nvml.nvmlGpmMetricsGet(metrics_request(*pair, sm))
    nvml.nvmlGpmSampleGet(h1, other)
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        nvml.nvmlGpmMetricsGet(metrics_request(first, other, sm))
    old = metrics_request(first, second, sm)
    old.version = 2
    with pytest.raises(pynvml.NVMLError_ArgumentVersionMismatch):
        nvml.nvmlGpmMetricsGet(old)
    nvml.nvmlGpmSampleFree(first)
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        nvml.nvmlGpmSampleGet(h0, first)


def test_pre_hopper_gpus_have_no_gpm():
    doc = json.loads((FIXTURES / "two_gpus.json").read_text())
    del doc["devices"][0]["gpm"]
    nvml = fake(doc)
    h0 = nvml.nvmlDeviceGetHandleByIndex(0)
    assert nvml.nvmlGpmQueryDeviceSupport(h0).isSupportedDevice == 0
    with pytest.raises(pynvml.NVMLError_NotSupported):
        nvml.nvmlGpmSampleGet(h0, nvml.nvmlGpmSampleAlloc())


def test_field_values_answer_per_field():
    doc = json.loads((FIXTURES / "two_gpus.json").read_text())
    doc["devices"][0]["field_errors"] = {"NVML_FI_DEV_PCIE_REPLAY_COUNTER": "NVML_ERROR_UNKNOWN"}
    nvml = fake(doc)
    h0 = nvml.nvmlDeviceGetHandleByIndex(0)
    values = nvml.nvmlDeviceGetFieldValues(
        h0,
        [
            pynvml.NVML_FI_DEV_MEMORY_TEMP,
            (pynvml.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX, 0xFFFFFFFF),
            (pynvml.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX, 2),
            pynvml.NVML_FI_DEV_PCIE_REPLAY_COUNTER,
            pynvml.NVML_FI_DEV_POWER_INSTANT,
        ],
    )
    assert isinstance(values[0], pynvml.c_nvmlFieldValue_t)
    assert (values[0].nvmlReturn, values[0].value.uiVal) == (pynvml.NVML_SUCCESS, 48)
    assert values[1].valueType == pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG
    assert values[1].value.ullVal == 123456789
    assert (values[2].scopeId, values[2].value.ullVal) == (2, 987654321 // 18)
    assert values[3].nvmlReturn == pynvml.NVML_ERROR_UNKNOWN
    assert values[4].nvmlReturn == pynvml.NVML_ERROR_NOT_SUPPORTED


def test_nvlink_state_counters_and_engines():
    nvml = fake()
    h0 = nvml.nvmlDeviceGetHandleByIndex(0)
    assert nvml.nvmlDeviceGetNvLinkState(h0, 17) == pynvml.NVML_FEATURE_ENABLED
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        nvml.nvmlDeviceGetNvLinkState(h0, 18)
    crc = pynvml.NVML_NVLINK_ERROR_DL_CRC_FLIT
    assert nvml.nvmlDeviceGetNvLinkErrorCounter(h0, 3, crc) == 2
    assert nvml.nvmlDeviceGetPcieReplayCounter(h0) == 0
    assert nvml.nvmlDeviceGetDecoderUtilization(h0) == [5, 167000]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"gpm": {"sm_busy": 10}}, r"devices\[0\]\.gpm\.sm_busy: no NVML_GPM_METRIC_SM_BUSY"),
        ({"gpm": {"sm_util": 120}}, r"devices\[0\]\.gpm\.sm_util: must be <= 100"),
        ({"nvlink": {"links": 4, "down": [4]}}, r"nvlink\.down\[0\]: must be <= 3"),
        ({"nvlink": {"links": 4, "errors": {"9": {}}}}, r"nvlink\.errors\.9: must be a link"),
        ({"field_errors": {"MEMORY_TEMP": "NVML_ERROR_UNKNOWN"}}, r"must name an NVML field"),
    ],
)
def test_bad_signal_sections_name_the_field(section, message):
    doc = json.loads((FIXTURES / "two_gpus.json").read_text())
    doc["devices"][0].update(section)
    with pytest.raises(ConfigError, match=message):
        parse_fake_system(doc)
