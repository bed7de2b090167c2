"""Named points in node tuning where a crash is survivable, and a hook to stop at one of them.

The reconciler calls its ``checkpoint`` callable at every point where the journal and the node
could disagree after a crash: after each durable journal write and before and after each sysctl
write. In production the checkpoint does nothing.

Fault injection: with ``TUNELOOP_NODETUNE_STOP_AT=N`` in the environment, the CLI stops its own
process with SIGSTOP at the N-th checkpoint (counting from 1), after printing the point's name to
standard error. A test then kills it with SIGKILL, exactly as a node losing power or an OOM kill
would, and checks that the next entry recovers. A stopped process cannot run anything further,
so nothing after the point leaks into the result.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Mapping

STOP_AT_ENV = "TUNELOOP_NODETUNE_STOP_AT"

Checkpoint = Callable[[str], None]


def no_checkpoint(_: str) -> None:
    """The production checkpoint: nothing."""


class StopAt:
    """Counts checkpoints; stops the process (SIGSTOP) at the ``stop_at``-th one."""

    def __init__(self, stop_at: int) -> None:
        if stop_at < 1:
            raise ValueError(f"{STOP_AT_ENV}: must be a positive integer, got {stop_at}")
        self.stop_at = stop_at
        self.seen = 0

    def __call__(self, name: str) -> None:
        self.seen += 1
        if self.seen == self.stop_at:
            print(f"stopped at checkpoint {self.seen}: {name}", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGSTOP)


def checkpoint_from_env(environ: Mapping[str, str] = os.environ) -> Checkpoint:
    """The checkpoint the environment asks for (nothing unless ``STOP_AT_ENV`` is set)."""
    text = environ.get(STOP_AT_ENV, "")
    if not text:
        return no_checkpoint
    try:
        stop_at = int(text)
    except ValueError:
        raise ValueError(f"{STOP_AT_ENV}: must be a positive integer, got {text!r}") from None
    return StopAt(stop_at)
