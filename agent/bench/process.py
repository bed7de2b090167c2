"""Running benchmark programs: network-namespace prefix, binary lookup, bounded runs.

A benchmark process that outlives its deadline is killed with its whole process group (iperf3
ignores a blocked connect's own timeout on some versions), so a hung test never hangs the agent.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass


def netns_prefix(netns: str | None) -> list[str]:
    """The argv prefix that runs a program inside network namespace ``netns`` (none if None)."""
    if netns is None:
        return []
    if not netns or "/" in netns or netns.startswith("."):
        raise ValueError(f"netns: invalid network namespace name {netns!r}")
    return ["ip", "netns", "exec", netns]


def find_binary(binary: str) -> str | None:
    """The resolved path of ``binary`` (a name on PATH or a path), or None when it is missing."""
    return shutil.which(binary)


@dataclass(frozen=True)
class Completed:
    """The outcome of a bounded run: exit status and the captured output."""

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool


def run_bounded(argv: list[str], timeout_s: float) -> Completed:
    """Run ``argv`` to completion or until ``timeout_s``; on timeout kill its process group."""
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
        return Completed(proc.returncode, out, err, timed_out=False)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, err = proc.communicate()
        return Completed(proc.returncode, out, err, timed_out=True)


def kill_group(proc: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group of ``proc``, then SIGKILL it if it lingers; reap it."""
    for sig, wait_s in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue
