"""The loader's defences: every broken input becomes a diagnostic with a place, never an exception."""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest

from reconciler.manifest.loader import (
    ALIAS_BUDGET,
    MAX_FILE_BYTES,
    discover,
    load_bytes,
    load_paths,
)

GOOD = b"""apiVersion: reconciler/v1
kind: Settings
metadata:
  name: settings
spec:
  personal_model_overrides:
    allow_users: true
"""


def codes(raw: bytes) -> list[tuple[str, int, int]]:
    _, problems = load_bytes(raw, "f.yaml")
    return [(d.code, d.line, d.column) for d in problems]


def test_good_document_loads_with_positions() -> None:
    docs, problems = load_bytes(GOOD, "f.yaml")
    assert problems == []
    (doc,) = docs
    assert doc.kind == "Settings" and doc.name == "settings"
    assert doc.data["spec"]["personal_model_overrides"]["allow_users"] is True
    assert doc.locate(("spec", "personal_model_overrides", "allow_users")) == (7, 18)
    assert doc.locate(("spec", "personal_model_overrides", "allow_users"), key=True) == (7, 5)
    # a missing field points at the mapping where it belongs
    assert doc.locate(("spec", "nothing", "here")) == (6, 3)


def test_multi_document_file_keeps_indexes_and_skips_empty_documents() -> None:
    raw = GOOD + b"---\n---\n" + GOOD.replace(b"name: settings", b"name: other")
    docs, problems = load_bytes(raw, "f.yaml")
    assert problems == []
    assert [d.name for d in docs] == ["settings", "other"]
    assert docs[1].locate(("metadata", "name")) == (13, 9)


def test_duplicate_keys_at_any_depth() -> None:
    raw = b"apiVersion: reconciler/v1\nkind: Settings\nmetadata:\n  name: a\n  name: b\nspec: {}\n"
    assert codes(raw) == [("RC107", 5, 3)]
    deep = b"apiVersion: reconciler/v1\nkind: Settings\nmetadata: {name: a}\nspec:\n  x:\n    y: 1\n    y: 2\n"
    assert codes(deep) == [("RC107", 7, 5)]


def test_duplicate_key_message_names_first_line() -> None:
    _, problems = load_bytes(b"a: 1\nb: 2\na: 3\n", "f.yaml")
    assert "first defined at line 1" in problems[0].message


def test_billion_laughs_is_refused_fast_and_small() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    raw = ("\n".join(lines) + "\n").encode()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    found = codes(raw)
    elapsed = time.perf_counter() - started
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert [c for c, _, _ in found] == ["RC108"]
    assert elapsed < 1.0
    assert grown_kib < 50_000


def test_aliases_within_budget_are_fine() -> None:
    raw = (
        b"apiVersion: reconciler/v1\nkind: Settings\nmetadata: &m {name: s}\n"
        b"spec:\n  personal_model_overrides: {allow_users: true}\n  copy: *m\n"
    )
    docs, problems = load_bytes(raw, "f.yaml")
    assert problems == [] and docs[0].data["spec"]["copy"] == {"name": "s"}
    assert ALIAS_BUDGET >= 1000


def test_recursive_alias_is_refused() -> None:
    assert [c for c, _, _ in codes(b"a: &a [*a]\n")] == ["RC108"]


def test_merge_keys_merge_and_explicit_keys_win() -> None:
    raw = GOOD + b"  base: &b {x: 1, y: 2}\n  child:\n    <<: *b\n    y: 3\n"
    docs, problems = load_bytes(raw, "f.yaml")
    assert problems == []
    assert docs[0].data["spec"]["child"] == {"x": 1, "y": 3}
    assert docs[0].locate(("spec", "child", "x")) == (8, 16)


def test_file_size_cap() -> None:
    assert codes(b"#" * (MAX_FILE_BYTES + 1)) == [("RC102", 1, 1)]


def test_invalid_utf8_points_at_the_byte() -> None:
    assert codes(b"a: 1\nb: caf\xe9\n") == [("RC103", 2, 7)]


def test_bom_is_a_warning_and_the_file_still_loads() -> None:
    docs, problems = load_bytes(b"\xef\xbb\xbf" + GOOD, "f.yaml")
    assert [p.code for p in problems] == ["RC104"] and problems[0].severity == "warning"
    assert len(docs) == 1


def test_crlf_line_endings_load_with_the_same_lines() -> None:
    docs, problems = load_bytes(GOOD.replace(b"\n", b"\r\n"), "f.yaml")
    assert problems == [] and docs[0].locate(("spec",)) == (6, 3)


def test_tabs_for_indentation() -> None:
    assert codes(b"a:\n\tb: 1\n") == [("RC106", 2, 1)]


def test_syntax_error_has_a_place() -> None:
    assert codes(b"a: [1, 2\nb: 3\n")[0][0] == "RC105"


@pytest.mark.parametrize("raw", [b"", b"   \n\n", b"# only a comment\n", b"---\n...\n"])
def test_empty_files_warn(raw: bytes) -> None:
    assert [c for c, _, _ in codes(raw)] == ["RC114"]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"- a\n- b\n", "RC111"),
        (b"just a string\n", "RC111"),
        (b"kind: Provider\nmetadata: {name: a}\n", "RC112"),
        (b"apiVersion: v1\nkind: Provider\n", "RC112"),
        (b"apiVersion: reconciler/v1\nkind: Deployment\n", "RC113"),
        (b"apiVersion: reconciler/v1\n", "RC113"),
        (b"a: !!python/object:os.system 1\n", "RC110"),
        (b"a: !!set {x, y}\n", "RC110"),
        (b"? [1, 2]\n: x\n", "RC116"),
        (b"1: x\n", "RC116"),
        (b"a: .nan\n", "RC203"),
        (b"a: -.inf\n", "RC203"),
    ],
)
def test_rejected_documents(raw: bytes, code: str) -> None:
    assert code in [c for c, _, _ in codes(raw)]


def test_deep_nesting_is_refused_before_libyaml_sees_it() -> None:
    # libyaml's composer recurses in C and crashes the process near 40,000 levels
    raw = b"a: " + b"[" * 100_000 + b"]" * 100_000 + b"\n"
    assert [c for c, _, _ in codes(raw)] == ["RC109"]
    block = b"".join(b" " * i + b"k:\n" for i in range(0, 1200))
    assert [c for c, _, _ in codes(block)] == ["RC109"]


def test_moderate_nesting_is_refused_by_the_builder() -> None:
    raw = b"a: " + b"[" * 100 + b"]" * 100 + b"\n"
    assert [c for c, _, _ in codes(raw)] == ["RC109"]


def test_unknown_api_version_message_does_not_crash_on_non_strings() -> None:
    _, problems = load_bytes(b"apiVersion: [1]\nkind: Provider\n", "f.yaml")
    assert problems[0].code == "RC112" and "missing" in problems[0].message


def test_one_broken_file_does_not_hide_the_others(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_bytes(b"a: [\n")
    (tmp_path / "b.yaml").write_bytes(GOOD)
    (tmp_path / "c.yml").write_bytes(b"\xff\xfe")
    result = load_paths([str(tmp_path)])
    assert len(result.documents) == 1
    assert sorted(d.code for d in result.diagnostics) == ["RC103", "RC105"]


def test_discover_skips_hidden_and_other_files(tmp_path: Path) -> None:
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.yaml").write_bytes(GOOD)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "y.yml").write_bytes(GOOD)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "z.yaml").write_bytes(GOOD)
    files, problems = discover([str(tmp_path)])
    assert problems == []
    assert [Path(f).name for f in files] == ["y.yml", "z.yaml"]


def test_missing_path_and_empty_directory(tmp_path: Path) -> None:
    _, problems = discover([str(tmp_path / "nope")])
    assert [p.code for p in problems] == ["RC101"]
    _, problems = discover([str(tmp_path)])
    assert [p.code for p in problems] == ["RC115"]
