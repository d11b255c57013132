"""Several `reconciler apply` processes at once against one store: serialised, nothing lost.

Each applier gets its own variant of examples/ (display names tagged with the variant, the
settings switch alternating) or all get the same set. Four appliers by default, eight with
RECONCILER_LONG_TESTS=1.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests import storefixtures
from tests.cliharness import LONG, Manifests, apply_argv, child_env, example_manifests, history
from tests.conftest import run_cli
from tests.storefixtures import Backend

backend = storefixtures.backend  # both SQL stores

APPLIERS = 8 if LONG else 4
TAGGED = {  # file -> the display_name each variant tags
    "providers/openai.yaml": "OpenAI",
    "providers/anthropic.yaml": "Anthropic",
    "models/openai.yaml": "GPT-5",
}


def tag(k: int) -> str:
    return f"(variant {k})"


def make_variants(manifests: Manifests, n: int) -> list[Path]:
    out = []
    for k in range(n):
        path = manifests.path.parent / f"variant-{k}"
        shutil.copytree(manifests.path, path)
        for relative, name in TAGGED.items():
            file = path / relative
            line = f"  display_name: {name}\n"
            assert line in file.read_text(), (relative, line)
            file.write_text(file.read_text().replace(line, f"  display_name: {name} {tag(k)}\n", 1))
        settings = path / "settings.yaml"
        allow = "true" if k % 2 == 0 else "false"
        settings.write_text(settings.read_text().replace("allow_users: true", f"allow_users: {allow}"))
        out.append(path)
    return out


def run_at_once(url: str, manifests: Manifests, sets: list[Path]) -> tuple[dict[int, int], float]:
    """Start one apply per set, all at once; {pid: set index} and when the last one was started."""
    processes = [
        subprocess.Popen(apply_argv(path, url, "--lock-timeout", "120"), env=child_env(manifests.env),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for path in sets
    ]
    launched = time.time()
    for process in processes:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
    return {p.pid: k for k, p in enumerate(processes)}, launched


def pid_of(row: dict[str, Any]) -> int:
    return int(row["who"].rsplit(" pid ", 1)[1])


def timestamp(text: str) -> float:
    return datetime.fromisoformat(text).astimezone(UTC).timestamp()


def display_names(row: dict[str, Any]) -> list[tuple[Any, Any]]:
    """(before, after) of every display_name the row's plan changed."""
    return [(d.get("before"), d.get("after")) for c in row["plan"]["changes"] for d in c["diff"]
            if d["path"] == "display_name"]


def assert_serialised(rows: list[dict[str, Any]], launched: float) -> None:
    """No two applies overlap in time, and the first finished after every applier was running."""
    assert timestamp(rows[0]["finished_at"]) >= launched - 0.01  # timestamps: to the ms, same clock
    for earlier, later in zip(rows, rows[1:], strict=False):
        assert timestamp(later["started_at"]) >= timestamp(earlier["finished_at"]), (earlier, later)


def matches(backend: Backend, manifests: Manifests, path: Path) -> int:
    """Exit code of a --prune --detailed-exitcode plan of `path`: 0 when the store is exactly it."""
    done = run_cli("plan", str(path), "--store", backend.url, "--prune", "--detailed-exitcode",
                   env=manifests.env)
    assert done.returncode in (0, 2), done.stderr
    return done.returncode


@pytest.fixture
def manifests(tmp_path: Path) -> Manifests:
    return example_manifests(tmp_path)


def test_applies_of_different_variants_are_serialised(backend: Backend, manifests: Manifests) -> None:
    variants = make_variants(manifests, APPLIERS)
    variant_of, launched = run_at_once(backend.url, manifests, variants)
    rows = history(backend.url)
    assert sorted(pid_of(r) for r in rows) == sorted(variant_of)  # every applier wrote, once
    assert_serialised(rows, launched)
    order = [variant_of[pid_of(r)] for r in rows]
    # each plan was made against the state the previous apply left: no lost or interleaved writes
    # (the first apply creates; what it wrote shows as the second one's "before")
    for previous, k, row in zip(order, order[1:], rows[1:], strict=False):
        names = display_names(row)
        assert len(names) == len(TAGGED), names
        for before, after in names:
            assert before.endswith(tag(previous)) and after.endswith(tag(k)), (before, after)
    assert matches(backend, manifests, variants[order[-1]]) == 0
    assert matches(backend, manifests, variants[order[-2]]) == 2


def test_applies_of_the_same_set_write_once(backend: Backend, manifests: Manifests) -> None:
    variant_of, launched = run_at_once(backend.url, manifests, [manifests.path] * APPLIERS)
    rows = history(backend.url)
    assert len(rows) == 1 and pid_of(rows[0]) in variant_of  # the others found nothing to do
    assert timestamp(rows[0]["finished_at"]) >= launched - 0.01
    assert matches(backend, manifests, manifests.path) == 0
