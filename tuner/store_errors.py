"""The trial store's errors, in a module of their own so the schema and lock modules share them."""

from __future__ import annotations

RECOVERY_HINT = "restore it from a backup, or point --state at an empty directory to start afresh"


class StoreError(Exception):
    """The store refused an operation (an illegal state change, an unknown trial, a bad file)."""


class StoreDamagedError(StoreError):
    """The store file exists but is not a sound trial store; it is never re-initialised."""


class StoreVersionError(StoreError):
    """The store was written by a newer tuneloop; it is left untouched."""


class WriterLockedError(StoreError):
    """Another holder's live writer lock covers the experiment."""


class LockLostError(StoreError):
    """This store's writer lock was taken over (or released): it must stop writing."""
