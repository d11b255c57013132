"""Overlays: an environment's documents merged onto the base documents (RFC 7386 JSON merge patch).

An overlay document with the kind and `metadata.name` of a base document patches it: mappings
merge, lists and scalars replace, `null` removes. One that names nothing in the base is added as
it is. One annotated `reconciler/remove: "true"` removes the base document of its kind and name.

A merged document keeps both sources: every diagnostic about one of its values points at the file
and line the value came from, the overlay's where the overlay set it, else the base's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from reconciler.diagnostics import Diagnostic
from reconciler.manifest.loader import Document, Path

REMOVE = "reconciler/remove"  # the annotation that removes a base document in an environment


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: the result of applying `patch` to `target` (neither is changed)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _has(data: Any, path: Path) -> bool:
    for part in path:
        within = part in data if isinstance(data, dict) else (
            isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data))
        if not within:
            return False
        data = data[part]
    return True


class MergedDocument(Document):
    """A base document with an overlay merged onto it; positions come from whichever set the value."""

    def __init__(self, base: Document, overlay: Document, data: Any) -> None:
        super().__init__(base.file, base.index, None, data, base.unsafe_text or overlay.unsafe_text, base.source)
        self.base = base
        self.overlay = overlay

    def origin(self, path: Path) -> Document:
        patch = self.overlay.data
        for part in path:
            if not isinstance(patch, dict):
                return self.overlay  # inside a list or value the overlay replaced whole
            if part not in patch:
                return self.base
            patch = patch[part]
        if isinstance(patch, dict) and _has(self.base.data, path):
            return self.base  # a mapping both give: its place in the base
        return self.overlay

    def locate(self, path: Path, key: bool = False) -> tuple[int, int]:
        return self.origin(path).locate(path, key)

    def diagnostic(self, code: str, message: str, path: Path = (), key: bool = False) -> Diagnostic:
        return self.origin(path).diagnostic(code, message, path, key)


def removes(doc: Document) -> bool:
    meta = doc.data.get("metadata") if isinstance(doc.data, dict) else None
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    return isinstance(annotations, dict) and str(annotations.get(REMOVE, "")).lower() == "true"


@dataclass
class Overlay:
    """An environment's overlay documents, by (kind, name)."""

    documents: dict[tuple[str, str], Document] = field(default_factory=dict)
    problems: list[Diagnostic] = field(default_factory=list)

    @classmethod
    def of(cls, documents: Iterable[Document]) -> Overlay:
        out = cls()
        for doc in documents:
            key = (doc.kind, doc.name)
            first = out.documents.get(key)
            if first is not None:
                line = first.locate(("metadata", "name"))[0]
                out.problems.append(doc.diagnostic(
                    "RC120", f"the overlays give {doc.kind} {doc.name!r} twice (first at {first.file}:{line}); "
                    "one overlay document per object", ("metadata", "name")))
                continue
            out.documents[key] = doc
        return out

    def merge(self, doc: Document, patch: Document) -> Document | None:
        """The base document `doc` with its overlay document `patch` applied; None when it removes it."""
        if removes(patch):
            return None
        return MergedDocument(doc, patch, merge_patch(doc.data, _without_identity(patch.data)))

    def finish(self, base_names: dict[str, set[str]], used: set[tuple[str, str]]) -> tuple[
            list[Document], list[Diagnostic]]:
        """The documents the overlay adds, and the problems of those that name nothing to patch."""
        added: list[Document] = []
        problems = list(self.problems)
        for (kind, name), doc in self.documents.items():
            if (kind, name) in used:
                continue
            if removes(doc):
                problems.append(doc.diagnostic(
                    "RC119", f"{REMOVE} names {kind} {name!r}, which no base document defines", ("metadata", "name")))
                continue
            others = sorted(k for k, names in base_names.items() if name in names and k != kind)
            if others:
                problems.append(doc.diagnostic(
                    "RC118", f"the base defines {name!r} as a {' and a '.join(others)}, not a {kind}: an overlay "
                    "patches a document of the same kind (or give the new object another name)", ("kind",)))
                continue
            added.append(doc)
        return added, problems


def _without_identity(data: dict[str, Any]) -> dict[str, Any]:
    """The patch an overlay document makes: all of it but apiVersion and kind (which must match)."""
    return {k: v for k, v in data.items() if k not in ("apiVersion", "kind")}
