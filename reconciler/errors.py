"""The small exception tree for expected failures, caught at the CLI edge."""

from __future__ import annotations


class ReconcilerError(Exception):
    """An expected failure with a message fit for the user; never a bug."""


class UsageError(ReconcilerError):
    """The command line or its environment is wrong (bad flag value, bad URL)."""


class SecretError(ReconcilerError):
    """A secret reference cannot be resolved, or at-rest crypto failed."""


class StoreError(ReconcilerError):
    """The store is unreachable, refused a request, or holds unreadable data."""


class LockError(StoreError):
    """The apply lock could not be taken in time."""


class PlanFileError(ReconcilerError):
    """A saved plan is unreadable, altered, or stale."""


class OutputError(ReconcilerError):
    """A file the user asked for cannot be written where they asked (a directory, a special file)."""


class ApplyCancelled(ReconcilerError):
    """The person at the terminal did not approve the plan: nothing was written."""
