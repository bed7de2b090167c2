"""Shared pieces for starting real programs in tests: the lab's own helpers, re-exported."""

from __future__ import annotations

from lab.processes import free_port, port_open, stop_pid, stop_process, wait_until

__all__ = ["free_port", "port_open", "stop_pid", "stop_process", "wait_until"]
