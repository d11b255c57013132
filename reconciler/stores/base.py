"""The Store protocol: what the planner, the apply engine and the CLI know of any store.

A store speaks only reconciler's own types (`State`, `Change`, `ChangeResult`);
no driver row or HTTP response escapes it. Differences between stores are
capability flags, not branches on the store's type elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from reconciler.changes import Change, ChangeResult
from reconciler.state import KIND_ORDER, Key, State


@dataclass(frozen=True)
class Capabilities:
    transactional: bool  # a whole plan applies or nothing does
    secret_view: str  # "fingerprint" (SQL), "masked" (Coder), "none"
    # secret groups whose value the store never shows, so a changed value cannot be seen
    write_only_secrets: frozenset[str] = frozenset()
    deletable: frozenset[str] = frozenset(KIND_ORDER)  # kinds the store can delete
    keeps_metadata: bool = False  # labels and annotations (reconciler/protect) persist in the store


@dataclass(frozen=True)
class RunInfo:
    """Who runs an apply, recorded in a store's history where it keeps one."""

    who: str
    tool_version: str
    plan: dict[str, Any] = field(default_factory=dict)
    source: dict[str, str] = field(default_factory=dict)  # the manifests' git commit, the CI run's URL


ProgressCallback = Callable[[ChangeResult], None]


class Store(Protocol):
    url: str  # for messages: never carries a password or token
    capabilities: Capabilities

    def read(self) -> State:
        """The actual state, normalised like desired state (see state.py)."""
        ...

    def secret_view(self, plaintext: str, group: str) -> str | None:
        """The store's view of a plaintext in a secret group; None when it cannot tell."""
        ...

    def lock(self, timeout: float, holder: str) -> AbstractContextManager[None]:
        """Exclusive apply lock; waits up to `timeout` s, then LockError naming the holder."""
        ...

    def apply(
        self,
        changes: Sequence[Change],
        secrets: Mapping[str, str],
        run: RunInfo,
        progress: ProgressCallback | None = None,
    ) -> list[ChangeResult]:
        """Apply `changes` in order; `secrets` maps each reference the changes need to its value.

        A transactional store applies all or nothing and records `run` in its history.
        """
        ...

    def read_access(self, state: State, models: Sequence[Key]) -> None:
        """Fill in `state` what a plain read leaves out because it costs a request per object: the
        access lists of the stored models `models` names (and of their move candidates, the same
        organization and model id), and the names their organizations know (`state.principals`)."""
        ...

    def refusals(self, changes: Sequence[Change]) -> dict[str, list[str]]:
        """Cause -> ids of the changes the store would refuse, known before any write (what the
        server cannot do or the credentials may not); empty when it would take them all."""
        ...

    def close(self) -> None: ...
