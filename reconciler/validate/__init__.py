"""Validation: load → schema pass → typed desired state → semantic rules, every problem at once."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
    digests: dict[str, bytes] = field(default_factory=dict)  # each file's bytes, digested (reconciler.cache)
    cached: int = 0  # files whose results came from the cache

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
                   exclude: Sequence[str] = (), exclude_root: str = ".", use_cache: bool = True) -> ValidationResult:
    """Every problem in the manifests under `paths`, sorted by place.

    `jobs`: worker processes that load and schema-check a large input (default: one per CPU;
    1 does everything in this process). Workers take contiguous chunks of the sorted files and
    their results are joined in file order, so the outcome is the same for any `jobs`.
    `overlays`: an environment's overlay paths, merged onto the documents under `paths` before
    their schema pass (reconciler/manifest/overlay.py). `exclude`: globs of files not to read.

    A file whose bytes the cache knows (reconciler.cache) is not parsed again: its documents,
    their schema verdicts and its diagnostics come from the cache, identical to a cold run's.
    `use_cache` False: the cache is neither read nor written (commands that leave no state). With
    overlays the cache is not used either (the schema pass of patched documents is deferred).
    """
    from reconciler import cache
    from reconciler.manifest.loader import discover, paused_gc
    from reconciler.manifest.model import build_manifests
    from reconciler.manifest.overlay import Overlay
    from reconciler.validate.rules import check_rules

    files, problems = discover(paths, exclude, exclude_root)
    documents, valid, diagnostics = [], [], list(problems)
    overlay = _load_overlay(overlays, diagnostics) if overlays else Overlay()
    pack = cache.FilePack() if use_cache and not overlays and cache.enabled() and "-" not in files else None
    done: dict[str, FileResult] = {}
    todo = files
    with paused_gc():
        if pack is not None and not pack.empty:
            todo = [path for path in files if not _from_cache(path, pack, done)]
        for results in _load_and_check(todo, jobs, set(overlay.documents), keep=pack is not None):
            for result in results:
                done[result.path] = result
                if pack is not None and result.digest is not None:
                    pack.put((result.path, result.digest), result.entry)
        in_order = [done[path] for path in files]
        chunks = ((r.documents, [d for d, ok in zip(r.documents, r.valid, strict=True) if ok], r.problems)
                  for r in in_order)
        if overlay.documents:
            documents, valid = _overlaid(chunks, overlay, diagnostics)
        else:
            for loaded, passed, found in chunks:
                documents += loaded
                valid += passed
                diagnostics += found
    if pack is not None:
        pack.save()
    manifests = build_manifests(valid)
    invalid = {id(d) for d in documents} - {id(d) for d in valid}
    for doc in documents:
        if id(doc) in invalid and doc.name:
            manifests.invalid_names.setdefault(doc.kind, set()).add(doc.name)
    diagnostics += check_rules(manifests)
    result = ValidationResult(sort_diagnostics(diagnostics), manifests, documents, len(files), tuple(paths))
    result.digests = {r.path: r.digest for r in in_order if r.digest is not None}
    result.cached = pack.hits if pack is not None else 0
    return result


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


@dataclass
class FileResult:
    """What loading and the schema pass made of one file (`digest` of the bytes read, None when
    it could not be read; `entry`: those results for the cache, None when not to be cached)."""

    path: str
    digest: bytes | None
    documents: list[Document]
    valid: list[bool]
    problems: list[Diagnostic]
    entry: bytes | None = None


Shipped = tuple[str, bytes, "str | None", bytes, bool]  # path, digest, text, entry, cacheable


def _from_cache(path: str, pack: Any, done: dict[str, FileResult]) -> bool:
    from reconciler.cache import digest
    from reconciler.manifest.loader import BOM, read_file

    raw, _ = read_file(path)
    if raw is None:
        return False
    key = (path, digest(raw))
    entry = pack.get(key)
    if entry is None:
        return False
    text = (raw[len(BOM):] if raw.startswith(BOM) else raw).decode("utf-8") if entry[0] else None
    done[path] = _result(path, key[1], text, entry)
    return True


def _result(path: str, digest: bytes, text: str | None, entry: tuple[list[Any], list[Diagnostic]],
            blob: bytes | None = None) -> FileResult:
    """A file's results rebuilt from its cache entry; `text` is the file's, for positions."""
    from reconciler.manifest.loader import Document, Source

    docs, problems = entry
    source = Source(text) if text is not None else None
    documents = [Document(path, index, None, data, unsafe, source, line) for index, data, unsafe, _, line in docs]
    return FileResult(path, digest, documents, [ok for _, _, _, ok, _ in docs], problems, blob)


def _load_and_check(files: list[str], jobs: int | None, patched: Keys, keep: bool) -> Iterator[list[FileResult]]:
    """`keep`: each file's results also as a cache entry. Workers then send only the entries and
    the files' text, from which the documents are rebuilt here: the entries are pickled once."""
    if not files:
        return
    workers = min(jobs if jobs is not None else (os.cpu_count() or 1), MAX_JOBS)
    if workers > 1 and "-" not in files and len(files) >= PARALLEL_MIN_FILES and _size(files) >= PARALLEL_MIN_BYTES:
        import functools
        import multiprocessing

        if "fork" in multiprocessing.get_all_start_methods():
            size = max(1, len(files) // (workers * 4))
            chunks = [(files[i:i + size], patched) for i in range(0, len(files), size)]
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for results in pool.imap(functools.partial(_check_chunk, keep=keep, ship=keep), chunks):
                    yield [_landed(one) if isinstance(one, tuple) else one for one in results]
            return
    yield _check_chunk((files, patched), fast=None, keep=keep)  # type: ignore[misc]


def _landed(shipped: Shipped) -> FileResult:
    from reconciler.cache import loads

    path, digest, text, blob, cacheable = shipped
    entry = loads(blob)
    if entry is None:  # a value the cache does not admit: this file is checked here, and not cached
        result = _check_chunk(([path], set()), fast=None)[0]
        assert isinstance(result, FileResult)
        return result
    return _result(path, digest, text, entry, blob if cacheable else None)


def _check_chunk(work: tuple[list[str], Keys], fast: bool | None = True, keep: bool = False,
                 ship: bool = False) -> list[FileResult | Shipped]:
    """Load and schema-check some files (in a worker: the compiled validator pays off there too);
    documents an overlay patches are checked once merged, not here."""
    import gc

    from reconciler.cache import NEVER_CACHED, digest, dumps
    from reconciler.manifest.loader import load_bytes, read_file
    from reconciler.validate.schema import check_documents

    files, patched = work
    gc.disable()
    results: list[FileResult] = []
    documents: list[Document] = []
    for path in files:
        raw, problems = read_file(path)
        loaded: list[Document] = []
        if raw is not None:
            loaded, problems = load_bytes(raw, path)
        results.append(FileResult(path, digest(raw) if raw is not None and path != "-" else None, loaded, [],
                                  problems))
        documents += loaded
    unpatched = [d for d in documents if (d.kind, d.name) not in patched] if patched else documents
    valid, schema_problems = check_documents(unpatched, fast)
    passed = {id(doc) for doc in valid}
    by_file: dict[str, list[Diagnostic]] = {}
    for problem in schema_problems:
        by_file.setdefault(problem.file, []).append(problem)
    out: list[FileResult | Shipped] = []
    for result in results:
        result.valid = [id(doc) in passed for doc in result.documents]
        result.problems += by_file.get(result.path, [])
        if not keep or result.digest is None:
            out.append(result)
            continue
        blob = dumps(([(d.index, d.data, d.unsafe_text, ok, d.line)
                       for d, ok in zip(result.documents, result.valid, strict=True)], result.problems))
        cacheable = not any(d.code in NEVER_CACHED for d in result.problems)
        if ship:
            source = result.documents[0].source if result.documents else None
            out.append((result.path, result.digest, source.text if source else None, blob, cacheable))
        else:
            result.entry = blob if cacheable else None
            out.append(result)
    return out


def _size(files: list[str]) -> int:
    total = 0
    for path in files:
        with contextlib.suppress(OSError):
            total += os.stat(path).st_size
        if total >= PARALLEL_MIN_BYTES:
            break
    return total
