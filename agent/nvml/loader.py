"""Pick the NVML backend: the real library through pynvml, or the fake for tests and labs.

A node without the NVIDIA driver has no ``libnvidia-ml.so.1``; pynvml then raises
``NVMLError_LibraryNotFound`` from ``nvmlInit``. That becomes one :class:`NvmlUnavailable` line
saying what is missing, never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import pynvml

from agent.collectors.base import CollectorError
from agent.nvml.api import NvmlLike
from agent.nvml.fake import FakeNvml

BACKENDS = ("nvml", "fake")


class NvmlUnavailable(CollectorError):
    """NVML cannot be used on this node; the message says why, in one line."""


def load_nvml(backend: str, fake_gpus: Path | None) -> NvmlLike:
    """An initialised NVML: ``"nvml"`` gives the pynvml module, ``"fake"`` a FakeNvml."""
    if backend == "fake":
        if fake_gpus is None:
            raise NvmlUnavailable("the fake NVML backend needs a fake GPU file (fake_gpus)")
        fake = FakeNvml.from_file(fake_gpus)
        _init(fake)
        return fake
    if backend == "nvml":
        _init(pynvml)
        return pynvml
    raise NvmlUnavailable(f"unknown NVML backend {backend!r} (choose {' or '.join(BACKENDS)})")


def _init(nvml: NvmlLike) -> None:
    try:
        nvml.nvmlInit()
    except pynvml.NVMLError_LibraryNotFound:
        raise NvmlUnavailable(
            "NVML library libnvidia-ml.so.1 not found: is the NVIDIA driver installed and the "
            "agent running with the NVIDIA container runtime?"
        ) from None
    except pynvml.NVMLError_DriverNotLoaded:
        raise NvmlUnavailable("NVIDIA driver not loaded: NVML cannot reach any GPU") from None
    except pynvml.NVMLError as err:
        raise NvmlUnavailable(f"NVML initialisation failed: {err}") from None
