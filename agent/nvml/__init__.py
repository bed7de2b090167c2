"""NVML access: the real pynvml module or a faithful fake, behind one loader."""

from agent.nvml.api import NvmlLike
from agent.nvml.fake import FakeNvml
from agent.nvml.loader import NvmlUnavailable, load_nvml

__all__ = ["FakeNvml", "NvmlLike", "NvmlUnavailable", "load_nvml"]
