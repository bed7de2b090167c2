import ctypes.util

import pynvml
import pytest

from agent.collectors.base import CollectorError
from agent.nvml import FakeNvml, NvmlUnavailable, load_nvml
from tests.paths import FIXTURES as ALL_FIXTURES

FIXTURES = ALL_FIXTURES / "gpu"


def test_fake_backend_is_initialised():
    nvml = load_nvml("fake", FIXTURES / "eight_gpus.json")
    assert isinstance(nvml, FakeNvml)
    assert nvml.nvmlDeviceGetCount() == 8


def test_fake_backend_needs_a_file_and_backends_are_checked():
    with pytest.raises(NvmlUnavailable, match="needs a fake GPU file"):
        load_nvml("fake", None)
    with pytest.raises(NvmlUnavailable, match="unknown NVML backend 'dcgm'"):
        load_nvml("dcgm", None)


def test_init_errors_become_one_line(tmp_path):
    path = tmp_path / "gpus.json"
    path.write_text('{"devices": [], "errors": {"nvmlInit": "NVML_ERROR_DRIVER_NOT_LOADED"}}')
    with pytest.raises(NvmlUnavailable, match=r"^NVIDIA driver not loaded"):
        load_nvml("fake", path)


@pytest.fixture
def no_nvml_library(monkeypatch):
    """Make pynvml's dlopen of libnvidia-ml.so.1 fail, as on a node without the driver."""

    def missing(name, *args, **kwargs):
        raise OSError(f"{name}: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(pynvml, "nvmlLib", None)
    monkeypatch.setattr(pynvml, "CDLL", missing)


def test_missing_library_is_a_collector_error_not_a_traceback(no_nvml_library):
    with pytest.raises(NvmlUnavailable) as err:
        load_nvml("nvml", None)
    assert isinstance(err.value, CollectorError)
    assert str(err.value).startswith("NVML library libnvidia-ml.so.1 not found")
    assert err.value.__cause__ is None and "\n" not in str(err.value)


@pytest.mark.skipif(
    ctypes.util.find_library("nvidia-ml") is not None, reason="this machine has NVML"
)
def test_missing_library_on_this_machine():
    with pytest.raises(NvmlUnavailable, match=r"libnvidia-ml\.so\.1 not found"):
        load_nvml("nvml", None)
