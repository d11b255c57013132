"""The hostile-manifest corpus: every file under tests/hostile/ is refused, with a place, and nothing leaks.

A case is `tests/hostile/<category>/NNN-<what>.yaml` declaring what it expects in header comments,
`# expect: RC105 line 3` (one line per diagnostic). Bytes that cannot carry a comment (invalid
UTF-8, a byte-order mark, NUL, binary) declare it in a sidecar `<file>.expect`. Files too large to
commit are `NNN-<what>.gen`: its `generator:` line names a function below, the other lines are its
arguments, and the file is written to a temporary directory at run time.

For every case, in process: `validate_paths` reports each declared (code, line), no error it does
not declare, at least one error, and no secret canary in any message; `apply_manifests` refuses it
and the SQLite store it was pointed at is unchanged. Through the real CLI: `validate --format
json|text|github` over all the cases that cannot interact with each other, in one call each; the
others one by one; `apply` over a batch into a seeded and a fresh SQLite file. Every run: exit 1,
no traceback, no "internal error", no canary, nothing written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.diagnostics import ERROR
from reconciler.manifest.loader import MAX_FILE_BYTES
from reconciler.plan import PlanOptions
from reconciler.run import InvalidManifests, apply_manifests
from reconciler.secrets import ENCRYPTION_KEY_ENV, SecretResolver
from reconciler.stores import open_store
from reconciler.validate import ValidationResult, validate_paths
from tests.conftest import KEY_A, run_cli

HOSTILE = Path(__file__).parent / "hostile"
EXPECT = re.compile(r"#\s*expect:\s*(RC\d{3})\s+line\s+(\d+)\s*$")
CANARY = "CANARY"  # every plaintext secret in the corpus holds it, or is one of these numbers
NUMERIC_CANARIES = ("3141592653589793238", "27182818284590452", "1618033988749894848")
MIN_CASES = 200
SEED = """apiVersion: reconciler/v1
kind: Provider
metadata:
  name: seeded
spec:
  type: openai
  api_keys:
    - env: SEEDED_API_KEY
---
apiVersion: reconciler/v1
kind: Model
metadata:
  name: seeded-model
spec:
  provider: seeded
  model: gpt-5
  default: true
  context_limit: 400000
"""
SEED_ENV = {ENCRYPTION_KEY_ENV: KEY_A, "SEEDED_API_KEY": "sk-seeded-not-a-canary-000000"}

Expectation = tuple[str, int]  # (code, line)


# --- generators of the .gen cases ---------------------------------------------------------------

PROVIDER = "apiVersion: reconciler/v1\nkind: Provider\nmetadata:\n  name: {name}\nspec:\n  type: openai-compat\n"
SETTINGS = (b"apiVersion: reconciler/v1\nkind: Settings\nmetadata:\n  name: deployment\nspec:\n"
            b"  personal_model_overrides:\n    allow_users: true\n")


def pad_to_size(size: int) -> bytes:
    """A valid document padded with comment lines to exactly `size` bytes."""
    filler = b"# padding to make the file large\n"
    body = SETTINGS + filler * ((size - len(SETTINGS)) // len(filler))
    return body + b"#" * (size - len(body))


def long_value(field: str, chars: int) -> bytes:
    """A Provider whose `field` (metadata.name, or a spec key) holds `chars` characters."""
    text = PROVIDER.format(name="x" * chars if field == "name" else "huge")
    if field != "name":
        text += f"  {field}: " + "x" * chars + "\n"
    return text.encode()


def long_key(chars: int) -> bytes:
    """An explicit key of `chars` characters in spec (past libyaml's 1024-character implicit keys)."""
    return (PROVIDER.format(name="huge") + "  ? " + "k" * chars + "\n  : 1\n").encode()


def long_number(field: str, digits: int, suffix: str = "") -> bytes:
    text = PROVIDER.format(name="huge").replace("kind: Provider", "kind: Model").replace("  type: openai-compat\n", "")
    return (text + f"  provider: huge\n  model: m\n  {field}: 1" + "0" * digits + suffix + "\n").encode()


def many_providers(count: int) -> bytes:
    """`count` valid providers; the last one has an unknown type."""
    docs = [PROVIDER.format(name=f"p{i}") + f"  base_url: https://llm{i}.example.com/v1\n" for i in range(count)]
    docs[-1] = docs[-1].replace("type: openai-compat", "type: mistral")
    return "---\n".join(docs).encode()


def empty_documents(count: int) -> bytes:
    return b"---\n" * count + b"apiVersion: reconciler/v1\nkind: Nope\n"


def comment_lines(count: int) -> bytes:
    line = b"# a comment line of some ordinary length, repeated many times\n"
    return line * count + b"apiVersion: reconciler/v1\nkind: Nope\n"


def wide_list(items: int) -> bytes:
    """A model with a flow list of `items` entries, and a wrong type after it."""
    text = PROVIDER.format(name="huge") + "  base_url: https://llm.example.com/v1\n---\n"
    text += "apiVersion: reconciler/v1\nkind: Model\nmetadata:\n  name: wide\nspec:\n  provider: huge\n  model: m\n"
    text += "  default: true\n  context_limit: 1000\n  config:\n    provider_options:\n      openai:\n"
    text += "        include: [" + ", ".join(["item"] * items) + "]\n  enabled: \"no\"\n"
    return text.encode()


def many_labels(count: int) -> bytes:
    """`count` labels; the last one's value is a number."""
    lines = "".join(f"    k{i}: v\n" for i in range(count))
    return (f"apiVersion: reconciler/v1\nkind: Provider\nmetadata:\n  name: huge\n  labels:\n{lines}    last: 1\n"
            "spec:\n  type: openai\n").encode()


def deep_block(levels: int) -> bytes:
    """Block mappings nested `levels` deep, two spaces each."""
    return b"".join(b"  " * i + b"k%d:\n" % i for i in range(levels)) + b"  " * levels + b"leaf: 1\n"


def brackets(count: int) -> bytes:
    return b"apiVersion: reconciler/v1\nkind: Settings\nmetadata: " + b"[" * count + b"\n"


GENERATORS: dict[str, Callable[..., bytes]] = {
    f.__name__: f for f in (pad_to_size, long_value, long_key, long_number, many_providers, empty_documents,
                            comment_lines, wide_list, many_labels, deep_block, brackets)
}


# --- the corpus -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    source: Path  # the .yaml or .gen file in the repository
    expected: frozenset[Expectation]
    generator: tuple[str, dict[str, str]] | None = None

    @property
    def id(self) -> str:
        return str(self.source.relative_to(HOSTILE))

    @property
    def category(self) -> str:
        return self.source.parent.name

    def materialize(self, directory: Path) -> Path:
        """The file to feed the tools: the committed one, or the generated one under `directory`."""
        if self.generator is None:
            return self.source
        name, args = self.generator
        target = directory / self.category / self.source.with_suffix(".yaml").name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(GENERATORS[name](**{k: int(v) if v.isdigit() else v for k, v in args.items()}))
        return target


def _expectations(text: str) -> frozenset[Expectation]:
    return frozenset((m[1], int(m[2])) for line in text.splitlines() if (m := EXPECT.match(line)))


def _load(path: Path) -> Case:
    if path.suffix == ".gen":
        text = path.read_text(encoding="utf-8")
        args = dict(line.split(": ", 1) for line in text.splitlines() if line and not line.startswith("#"))
        return Case(path, _expectations(text), (args.pop("generator"), args))
    sidecar = path.with_name(path.name + ".expect")
    header = sidecar.read_text(encoding="utf-8") if sidecar.exists() else path.read_text(encoding="utf-8")
    return Case(path, _expectations(header))


def corpus() -> list[Case]:
    files = sorted(p for p in HOSTILE.rglob("*") if p.suffix in (".yaml", ".gen"))
    return [_load(p) for p in files]


CASES = corpus()


def _diagnostics_text(result: ValidationResult) -> str:
    return "\n".join(f"  {d.line}:{d.column} {d.severity} {d.code} {d.message[:200]}" for d in result.diagnostics)


def _canaries_absent(text: bytes | str, where: str) -> None:
    data = text.encode() if isinstance(text, str) else text
    for canary in (CANARY, *NUMERIC_CANARIES):
        assert canary.encode() not in data, f"a secret canary appears in {where}"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("generated")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A SQLite store holding a provider and a model, applied through the CLI."""
    work = tmp_path_factory.mktemp("seeded")
    (work / "seed.yaml").write_text(SEED, encoding="utf-8")
    db = work / "store.db"
    done = run_cli("apply", str(work / "seed.yaml"), "--store", f"sqlite:///{db}", env=SEED_ENV)
    assert done.returncode == 0, done.stderr
    yield db


# --- the corpus itself ----------------------------------------------------------------------------


def test_the_corpus_is_large_and_every_case_declares_what_it_expects() -> None:
    assert len(CASES) >= MIN_CASES
    categories = {c.category for c in CASES}
    assert {"syntax", "duplicates", "aliases", "nesting", "huge", "numbers", "types", "encoding", "unicode",
            "urls", "secrets"} <= categories
    undeclared = [c.id for c in CASES if not c.expected]
    assert not undeclared, f"cases without `# expect:` lines: {undeclared}"
    names = [c.source.name for c in CASES]
    assert all(re.fullmatch(r"\d{3}-[a-z0-9-]+\.(yaml|gen)", n) for n in names), "name cases NNN-what.yaml"
    strays = [p.name for p in HOSTILE.rglob("*.expect") if not p.with_suffix("").exists()]
    assert not strays, f"sidecars without their file: {strays}"
    secrets = b"".join(p.read_bytes() for p in (HOSTILE / "secrets").iterdir())
    assert all(n.encode() in secrets for n in NUMERIC_CANARIES) and secrets.count(CANARY.encode()) >= 20


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_each_hostile_file_is_refused_with_its_diagnostics(
    case: Case, generated: Path, seeded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = case.materialize(generated)
    result = validate_paths([str(path)])
    found = {(d.code, d.line) for d in result.diagnostics}
    errors = {(d.code, d.line) for d in result.diagnostics if d.severity == ERROR}
    missing = sorted(case.expected - found)
    assert not missing, f"expected {missing}, got:\n{_diagnostics_text(result)}"
    undeclared = sorted(errors - case.expected)
    assert not undeclared, f"errors the case does not declare {undeclared}:\n{_diagnostics_text(result)}"
    assert errors, "a hostile file must fail validation"
    for d in result.diagnostics:
        assert d.file == str(path) and d.line >= 1 and d.column >= 1 and d.message
        assert len(d.message) < 1000, "messages stay short whatever the input"
        _canaries_absent(d.message, f"the message of {d.code}")
    # apply refuses it before writing anything
    monkeypatch.setenv(ENCRYPTION_KEY_ENV, KEY_A)
    store = open_store(f"sqlite:///{seeded}")
    try:
        before = store.read().fingerprint()
        with pytest.raises(InvalidManifests):
            apply_manifests([str(path)], store, PlanOptions(), SecretResolver(SEED_ENV), lock_timeout=5)
        assert store.read().fingerprint() == before
    finally:
        store.close()


# --- through the real CLI -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def split(generated: Path) -> tuple[list[Path], list[Case]]:
    """(files no document of which survives validation, the other cases): files of the first kind
    cannot interact with each other, so one CLI call can check them all."""
    alone, others = [], []
    for case in CASES:
        path = case.materialize(generated)
        m = validate_paths([str(path)]).manifests
        if any((m.providers, m.models, m.prices, m.overrides, m.settings, m.catalogs)):
            others.append(case)
        else:
            alone.append(path)
    return alone, others


def _assert_clean_failure(done: object, what: str) -> None:
    stdout, stderr = done.stdout, done.stderr  # type: ignore[attr-defined]
    assert done.returncode == 1, f"{what}: exit {done.returncode}\n{stderr[-2000:]}"  # type: ignore[attr-defined]
    assert "Traceback" not in stderr and "internal error" not in stderr, f"{what}:\n{stderr[-2000:]}"
    _canaries_absent(stdout, f"the stdout of {what}")
    _canaries_absent(stderr, f"the stderr of {what}")


def test_the_cli_refuses_every_independent_file_in_every_format(
    generated: Path, split: tuple[list[Path], list[Case]]
) -> None:
    files, _ = split
    assert len(files) >= MIN_CASES // 2
    by_file = {str(c.materialize(generated)): c for c in CASES}
    done = run_cli("validate", *map(str, files), "--format", "json")
    _assert_clean_failure(done, "validate --format json")
    report = json.loads(done.stdout)
    assert report["files"] == len(files) and report["valid"] is False
    found: dict[str, set[Expectation]] = {}
    for d in report["diagnostics"]:
        found.setdefault(d["file"], set()).add((d["code"], d["line"]))
    for path in files:
        case = by_file[str(path)]
        assert case.expected <= found.get(str(path), set()), f"{case.id}: {sorted(found.get(str(path), set()))}"
    for fmt in ("text", "github"):
        _assert_clean_failure(run_cli("validate", *map(str, files), "--format", fmt), f"validate --format {fmt}")


def test_the_cli_refuses_files_with_valid_documents_one_by_one(
    generated: Path, split: tuple[list[Path], list[Case]]
) -> None:
    _, others = split
    sample = others[:: max(1, len(others) // 12)]  # a dozen, spread over the categories
    for case in sample:
        path = case.materialize(generated)
        done = run_cli("validate", str(path), "--format", "json")
        _assert_clean_failure(done, f"validate {case.id}")
        found = {(d["code"], d["line"]) for d in json.loads(done.stdout)["diagnostics"]}
        assert case.expected <= found, f"{case.id}: {sorted(found)}"


def _store_files(db: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(db.parent.iterdir()) if p.name.startswith(db.name)
            and not p.name.endswith(".lock")}


def test_apply_through_the_cli_writes_nothing(generated: Path, seeded: Path, tmp_path: Path) -> None:
    batch = [str(c.materialize(generated)) for c in CASES[::4]]  # a quarter of the corpus, every category
    before = _store_files(seeded)
    done = run_cli("apply", *batch, "--store", f"sqlite:///{seeded}", "--report", str(tmp_path / "r.json"),
                   env=SEED_ENV)
    _assert_clean_failure(done, "apply into the seeded store")
    assert _store_files(seeded) == before, "the seeded store changed"
    assert not (tmp_path / "r.json").exists(), "no report for a run that planned nothing"
    fresh = tmp_path / "fresh" / "store.db"
    done = run_cli("apply", *batch, "--store", f"sqlite:///{fresh}", env=SEED_ENV)
    _assert_clean_failure(done, "apply into a fresh store")
    assert not fresh.exists(), "a refused apply created the database"


def test_the_largest_generated_file_is_refused_unread(generated: Path) -> None:
    (case,) = [c for c in CASES if c.generator and c.generator[0] == "pad_to_size"
               and int(c.generator[1]["size"]) > MAX_FILE_BYTES * 2]
    path = case.materialize(generated)
    done = run_cli("validate", str(path), "--format", "json")
    _assert_clean_failure(done, "validate of a file over the size cap")
    assert [d["code"] for d in json.loads(done.stdout)["diagnostics"]] == ["RC102"]


def test_messages_name_each_field_and_never_a_whole_value(tmp_path: Path) -> None:
    """What the (code, line) checks above cannot see: which field a message names, and its length."""
    path = tmp_path / "m.yaml"
    path.write_text("apiVersion: reconciler/v1\nkind: Provider\n", encoding="utf-8")
    messages = [d.message for d in validate_paths([str(path)]).diagnostics]
    assert sorted(messages) == ["the document is missing required field 'metadata'",
                                "the document is missing required field 'spec'"]
    path.write_bytes(long_key(200_000))
    (message,) = [d.message for d in validate_paths([str(path)]).diagnostics]
    assert message.startswith("unknown field 'kkkk") and "(200000 characters)" in message and len(message) < 200
