"""Validation: load → schema pass → typed desired state → semantic rules, every problem at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reconciler.diagnostics import ERROR, Diagnostic, sort_diagnostics

if TYPE_CHECKING:  # the loader imports validate.codes: keep this package's import light
    from reconciler.manifest.loader import Document
    from reconciler.manifest.model import Manifests


@dataclass
class ValidationResult:
    diagnostics: list[Diagnostic]
    manifests: Manifests
    documents: list[Document] = field(default_factory=list)
    files: int = 0

    @property
    def errors(self) -> int:
        return sum(d.severity == ERROR for d in self.diagnostics)

    @property
    def warnings(self) -> int:
        return len(self.diagnostics) - self.errors

    def ok(self, strict: bool = False) -> bool:
        return not self.diagnostics if strict else self.errors == 0


def validate_paths(paths: Sequence[str]) -> ValidationResult:
    """Every problem in the manifests under `paths`, sorted by place."""
    from reconciler.manifest.loader import load_paths
    from reconciler.manifest.model import build_manifests
    from reconciler.validate.rules import check_rules
    from reconciler.validate.schema import check_documents

    loaded = load_paths(paths)
    valid, schema_problems = check_documents(loaded.documents)
    manifests = build_manifests(valid)
    invalid = {id(d) for d in loaded.documents} - {id(d) for d in valid}
    for doc in loaded.documents:
        if id(doc) in invalid and doc.name:
            manifests.invalid_names.setdefault(doc.kind, set()).add(doc.name)
    diagnostics = loaded.diagnostics + schema_problems + check_rules(manifests)
    return ValidationResult(sort_diagnostics(diagnostics), manifests, loaded.documents, len(loaded.files))
