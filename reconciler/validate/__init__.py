"""Validation: load → schema pass → typed desired state → semantic rules, every problem at once."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reconciler.diagnostics import ERROR, Diagnostic, sort_diagnostics

if TYPE_CHECKING:  # the loader imports validate.codes: keep this package's import light
    from reconciler.manifest.loader import Document
    from reconciler.manifest.model import Manifests
    from reconciler.manifest.overlay import Overlay


@dataclass
class ValidationResult:
    diagnostics: list[Diagnostic]
    manifests: Manifests
    documents: list[Document] = field(default_factory=list)
    files: int = 0
    paths: tuple[str, ...] = ()  # the paths given (for provenance: the repository they are in)

    @property
    def errors(self) -> int:
        return sum(d.severity == ERROR for d in self.diagnostics)

    @property
    def warnings(self) -> int:
        return len(self.diagnostics) - self.errors

    def ok(self, strict: bool = False) -> bool:
        return not self.diagnostics if strict else self.errors == 0

    def source_lookup(self) -> Callable[[str], str | None]:
        """A file's text by name, for the source lines under text diagnostics."""
        from reconciler.files import text_lookup

        return text_lookup({d.file: d.source.text for d in self.documents if d.source is not None})


PARALLEL_MIN_FILES = 400  # below this, starting worker processes costs more than they save
PARALLEL_MIN_BYTES = 512 * 1024
MAX_JOBS = 8


def validate_paths(paths: Sequence[str], jobs: int | None = None, overlays: Sequence[str] = (),
                   exclude: Sequence[str] = (), exclude_root: str = ".") -> ValidationResult:
    """Every problem in the manifests under `paths`, sorted by place.

    `jobs`: worker processes that load and schema-check a large input (default: one per CPU;
    1 does everything in this process). Workers take contiguous chunks of the sorted files and
    their results are joined in file order, so the outcome is the same for any `jobs`.
    `overlays`: an environment's overlay paths, merged onto the documents under `paths` before
    their schema pass (reconciler/manifest/overlay.py). `exclude`: globs of files not to read.
    """
    from reconciler.manifest.loader import discover, paused_gc
    from reconciler.manifest.model import build_manifests
    from reconciler.manifest.overlay import Overlay
    from reconciler.validate.rules import check_rules

    files, problems = discover(paths, exclude, exclude_root)
    documents, valid, diagnostics = [], [], list(problems)
    overlay = _load_overlay(overlays, diagnostics) if overlays else Overlay()
    with paused_gc():
        chunks = _load_and_check(files, jobs, set(overlay.documents))
        if overlay.documents:
            documents, valid = _overlaid(chunks, overlay, diagnostics)
        else:
            for loaded, passed, found in chunks:
                documents += loaded
                valid += passed
                diagnostics += found
    manifests = build_manifests(valid)
    invalid = {id(d) for d in documents} - {id(d) for d in valid}
    for doc in documents:
        if id(doc) in invalid and doc.name:
            manifests.invalid_names.setdefault(doc.kind, set()).add(doc.name)
    diagnostics += check_rules(manifests)
    return ValidationResult(sort_diagnostics(diagnostics), manifests, documents, len(files), tuple(paths))


def _overlaid(chunks: Iterator[Checked], overlay: Overlay,
              diagnostics: list[Diagnostic]) -> tuple[list[Document], list[Document]]:
    """(documents, schema-valid documents) with the overlay applied, in file order, then those it adds.

    The workers left the documents it patches unchecked: they are merged and checked here, so that
    only the base documents travel back from the workers (merged ones would carry both sources)."""
    from reconciler.validate.schema import check_documents

    ordered: list[tuple[Document, bool]] = []  # (document, schema-valid; False for a merged one, for now)
    merged: list[Document] = []
    used: set[tuple[str, str]] = set()
    base_names: dict[str, set[str]] = {}
    for loaded, passed, found in chunks:
        diagnostics += found
        ok = {id(d) for d in passed}
        for doc in loaded:
            key = (doc.kind, doc.name)
            base_names.setdefault(key[0], set()).add(key[1])
            patch = overlay.documents.get(key)
            if patch is None:
                ordered.append((doc, id(doc) in ok))
                continue
            used.add(key)
            result = overlay.merge(doc, patch)
            if result is not None:
                merged.append(result)
                ordered.append((result, False))
    added, found = overlay.finish(base_names, used)
    diagnostics += found
    passed_merged, problems = check_documents(merged + added)
    diagnostics += problems
    ok_merged = {id(d) for d in passed_merged}
    documents = [d for d, _ in ordered] + added
    valid = [d for d, ok in ordered if ok or id(d) in ok_merged] + [d for d in added if id(d) in ok_merged]
    return documents, valid


def _load_overlay(overlays: Sequence[str], diagnostics: list[Diagnostic]) -> Overlay:
    from reconciler.manifest.loader import discover, load_file
    from reconciler.manifest.overlay import Overlay

    files, problems = discover(overlays)
    diagnostics += problems
    documents: list[Document] = []
    for path in files:
        loaded, found = load_file(path)
        documents += loaded
        diagnostics += found
    return Overlay.of(documents)


Checked = tuple[list["Document"], list["Document"], list[Diagnostic]]  # loaded, schema-valid, problems
Keys = set[tuple[str, str]]  # (kind, name) of the documents an overlay patches: not checked in workers


def _load_and_check(files: list[str], jobs: int | None, patched: Keys) -> Iterator[Checked]:
    workers = min(jobs if jobs is not None else (os.cpu_count() or 1), MAX_JOBS)
    if workers > 1 and "-" not in files and len(files) >= PARALLEL_MIN_FILES and _size(files) >= PARALLEL_MIN_BYTES:
        import multiprocessing

        if "fork" in multiprocessing.get_all_start_methods():
            size = max(1, len(files) // (workers * 4))
            chunks = [(files[i:i + size], patched) for i in range(0, len(files), size)]
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                yield from pool.imap(_check_chunk, chunks)
            return
    yield _check_chunk((files, patched), fast=None)


def _check_chunk(work: tuple[list[str], Keys], fast: bool | None = True) -> Checked:
    """Load and schema-check some files (in a worker: the compiled validator pays off there too);
    documents an overlay patches are checked once merged, not here."""
    import gc

    from reconciler.manifest.loader import load_file
    from reconciler.validate.schema import check_documents

    files, patched = work
    gc.disable()
    documents: list[Document] = []
    problems: list[Diagnostic] = []
    for path in files:
        loaded, found = load_file(path)
        documents += loaded
        problems += found
    unpatched = [d for d in documents if (d.kind, d.name) not in patched] if patched else documents
    valid, schema_problems = check_documents(unpatched, fast)
    return documents, valid, problems + schema_problems


def _size(files: list[str]) -> int:
    total = 0
    for path in files:
        with contextlib.suppress(OSError):
            total += os.stat(path).st_size
        if total >= PARALLEL_MIN_BYTES:
            break
    return total
