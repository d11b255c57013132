"""Plain data passed between the planner, the apply engine, the stores and the renderers."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from reconciler.state import Key, Record, from_json, key_text, to_json

CREATE, UPDATE, DELETE, REPLACE = "create", "update", "delete", "replace"
APPLIED, FAILED, SKIPPED = "applied", "failed", "skipped"

SENSITIVE_CHANGED = "(sensitive value changed)"
NOT_VERIFIABLE = "(write-only, not verifiable)"


@dataclass(frozen=True)
class FieldDiff:
    """One field's change; a sensitive field carries a note instead of values."""

    path: str
    before: Any = None
    after: Any = None
    sensitive: bool = False
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path}
        if self.sensitive:
            out["sensitive"] = True
            out["note"] = self.note
        else:
            out["before"] = to_json(self.before)
            out["after"] = to_json(self.after)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FieldDiff:
        return cls(
            path=data["path"],
            before=from_json(data.get("before")),
            after=from_json(data.get("after")),
            sensitive=bool(data.get("sensitive", False)),
            note=data.get("note", ""),
        )


@dataclass(frozen=True)
class Change:
    """One object to create, update, delete or replace, in the order the plan gives."""

    action: str
    kind: str
    key: Key
    before: Record | None = None
    after: Record | None = None
    diff: tuple[FieldDiff, ...] = ()
    reason: str = ""
    send_secrets: tuple[str, ...] = ()  # secret groups the write carries ("api_keys", "settings")
    needs: tuple[str, ...] = ()  # secret references the write needs at apply time
    depends_on: tuple[str, ...] = ()  # ids of changes that must succeed first
    meta: dict[str, Any] | None = None  # labels and annotations, for stores that keep them
    moved_from: Key | None = None  # a Model updated in place under a new key: the key it had

    @cached_property
    def id(self) -> str:
        return f"{self.kind}/{key_text(self.key)}"

    def depending_on(self, ids: tuple[str, ...]) -> Change:
        """This change, needing the changes `ids` first (`dataclasses.replace` at a third of the cost:
        a plan of 10,000 models makes 10,000 of these)."""
        return Change(self.action, self.kind, self.key, self.before, self.after, self.diff, self.reason,
                      self.send_secrets, self.needs, ids, self.meta, self.moved_from)

    def check_shape(self) -> None:
        """ValueError unless the change is one this tool could have planned (a saved plan's)."""
        from reconciler.state import KIND_ORDER

        if self.action not in (CREATE, UPDATE, DELETE, REPLACE):
            raise ValueError(f"unknown action {self.action!r}")
        if self.kind not in KIND_ORDER:
            raise ValueError(f"unknown kind {self.kind!r}")
        if not self.key or not all(isinstance(part, str) for part in self.key):
            raise ValueError(f"{self.kind}: a key is a list of strings")
        for record in (self.before, self.after):
            if record is not None and not isinstance(record, dict):
                raise ValueError(f"{self.id}: a record is a mapping")
        if self.action != DELETE and self.after is None:
            raise ValueError(f"{self.id}: a {self.action} needs the record it writes")
        for name in (*self.send_secrets, *self.needs, *self.depends_on):
            if not isinstance(name, str):
                raise ValueError(f"{self.id}: names are strings")
        if self.meta is not None and not isinstance(self.meta, dict):
            raise ValueError(f"{self.id}: meta is a mapping")
        if self.moved_from is not None:
            from reconciler.state import MODEL

            old = self.moved_from
            if self.kind != MODEL or self.action != UPDATE:
                raise ValueError(f"{self.id}: only a Model update moves")
            if len(old) != 3 or not all(isinstance(part, str) for part in old) or old[0] != self.key[0]:
                raise ValueError(f"{self.id}: moved_from is a model key in the same organization")

    def field_diffs(self) -> tuple[FieldDiff, ...]:
        """The per-field diff. A create's is its new record, listed only when something reads it:
        an apply of thousands of new objects never needs it."""
        if self.diff or self.action != CREATE or self.after is None:
            return self.diff
        from reconciler.plan import creation_diff  # plan.py builds on this module

        return creation_diff(self.after)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action": self.action,
            "kind": self.kind,
            "key": key_text(self.key),
            "key_fields": list(self.key),
            "diff": [d.to_dict() for d in self.field_diffs()],
        }
        if self.reason:
            out["reason"] = self.reason
        if self.needs:
            out["needs"] = list(self.needs)
        if self.depends_on:
            out["depends_on"] = list(self.depends_on)
        if self.moved_from is not None:
            out["moved_from"] = key_text(self.moved_from)
            out["moved_from_fields"] = list(self.moved_from)
        return out

    def to_saved(self) -> dict[str, Any]:
        """The full change, as a saved plan keeps it (records with references, never values)."""
        out = self.to_dict()
        out["before"] = to_json(self.before)
        out["after"] = to_json(self.after)
        out["send_secrets"] = list(self.send_secrets)
        if self.meta is not None:
            out["meta"] = self.meta
        return out

    @classmethod
    def from_saved(cls, data: dict[str, Any]) -> Change:
        return cls(
            action=data["action"],
            kind=data["kind"],
            key=tuple(data["key_fields"]),
            before=from_json(data.get("before")),
            after=from_json(data.get("after")),
            diff=tuple(FieldDiff.from_dict(d) for d in data.get("diff", [])),
            reason=data.get("reason", ""),
            send_secrets=tuple(data.get("send_secrets", [])),
            needs=tuple(data.get("needs", [])),
            depends_on=tuple(data.get("depends_on", [])),
            meta=data.get("meta"),
            moved_from=tuple(data["moved_from_fields"]) if data.get("moved_from_fields") is not None else None,
        )


@dataclass(frozen=True)
class ChangeResult:
    """What happened to one change during apply."""

    change: Change
    status: str  # applied | failed | skipped
    error: str = ""
    details: tuple[str, ...] = field(default=())  # e.g. a server's validation messages

    def to_dict(self) -> dict[str, Any]:
        out = self.change.to_dict()
        out["status"] = self.status
        if self.error:
            out["error"] = self.error
        if self.details:
            out["details"] = list(self.details)
        return out
