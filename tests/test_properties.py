"""Property-based tests (hypothesis) over the loader, the validator and the planner.

1. For arbitrary bytes, for the example manifests mutated byte by byte, line by line and token by
   token, and for their parsed documents with a node replaced by an arbitrary value, validation
   ends in diagnostics: no exception escapes, and every diagnostic is well formed.
2. For arbitrary valid desired states applied over arbitrary actual states (a SQLite store seeded
   by applying another random manifest set), applying the plan and planning again gives an empty plan.
3. A plan (JSON, text, Markdown, saved plan file) and the apply report never hold a secret value.

Example counts come from the hypothesis profile tests/conftest.py loads: "ci" by default
(deterministic), "long" with RECONCILER_LONG_TESTS=1. Store-backed properties run a fraction of them.
"""

from __future__ import annotations

import json
import re
import string
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.diagnostics import ERROR
from reconciler.manifest.model import CONTEXTS, EFFORTS, OPTION_FAMILIES
from reconciler.plan import Plan, PlanOptions
from reconciler.planfile import save_plan
from reconciler.prices import PRICE_FIELDS
from reconciler.render import Style
from reconciler.render.markdown import render_plan_markdown
from reconciler.render.text import render_plan, render_report
from reconciler.run import apply_manifests, make_plan
from reconciler.secrets import ENCRYPTION_KEY_ENV, SecretResolver
from reconciler.stores import open_store
from reconciler.stores.sql import SqlStore
from reconciler.validate import ValidationResult, validate_paths
from reconciler.validate.codes import CODES
from tests.conftest import EXAMPLES, KEY_A

FUZZ = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
STORE_EXAMPLES = max(10, settings().max_examples // 4)  # each example applies twice to SQLite
STORE = settings(FUZZ, max_examples=STORE_EXAMPLES)
SECRET_PREFIX = "sk-PROPSECRET-"
ALL_PRUNE = 1_000_000  # --max-deletes that never refuses


# --- 1. arbitrary and mutated input ---------------------------------------------------------------

WORK = Path(tempfile.mkdtemp(prefix="reconciler-properties-"))
EXAMPLE_FILES = sorted(EXAMPLES.rglob("*.yaml"))
EXAMPLE_BYTES = [p.read_bytes() for p in EXAMPLE_FILES]
TOKENS = [
    b": ", b"- ", b"[", b"]", b"{", b"}", b",", b"&a ", b"*a", b"<<: *a", b"!!int ", b"!!binary ", b"!tag ",
    b"!!python/object:os.system ", b".nan", b".inf", b"-.inf", b"1e400", b"1.0e+400", b"9" * 30, b"0x_",
    b'"', b"'", b"\t", b"\r", b"\r\n", b"\x00", b"\xff", b"\xc0\xaf", b"\xef\xbb\xbf", b"\n---\n", b"\n...\n",
    b"%YAML 1.1\n", b"? ", b"|", b">-", b"#", "а".encode(), "\u202e".encode(), b"\\e", b'"\\x1b"', b"~",
    b"null", b"true", b"on", b"env: X", b"file: /x", b"value: sk-x", b"https://u:p@h/v1", b"/api/v2/aibridge/",
    b"%2F", b"/../", b"kind: Model", b"apiVersion: reconciler/v1", b"Provider", b"spec:", b"metadata:",
    b"name: x", b"  ", b"\n  ", b"default: true", b"context_limit: 0", b"type: bedrock", b"-" * 3,
]
_TOKEN = re.compile(rb"[A-Za-z_][A-Za-z0-9_.-]*|[0-9]+|\S")


def _check_outcome(result: ValidationResult, path: Path) -> None:
    """What validating anything must give: well-formed diagnostics, never an exception."""
    for d in result.diagnostics:
        assert d.code in CODES and d.severity == CODES[d.code].severity, d
        assert d.file == str(path) and d.line >= 1 and d.column >= 1, d
        assert d.message.strip() and len(d.message) < 2000, d


def _validate_bytes(raw: bytes) -> ValidationResult:
    path = WORK / "fuzz.yaml"
    path.write_bytes(raw)
    result = validate_paths([str(path)])
    _check_outcome(result, path)
    return result


@st.composite
def mutated_example(draw: st.DrawFn) -> bytes:
    """An example manifest file after 1-6 byte-, line- or token-level mutations."""
    raw = bytearray(draw(st.sampled_from(EXAMPLE_BYTES)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "token", "line", "indent"]))
        at = draw(st.integers(0, max(0, len(raw) - 1)))
        if op == "flip" and raw:
            raw[at] = draw(st.integers(0, 255))
        elif op == "insert":
            raw[at:at] = draw(st.sampled_from(TOKENS) | st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del raw[at: at + draw(st.integers(1, 40))]
        elif op == "token":
            tokens = list(_TOKEN.finditer(raw))
            if tokens:
                match = tokens[draw(st.integers(0, len(tokens) - 1))]
                raw[match.start(): match.end()] = draw(st.sampled_from(TOKENS))
        else:
            lines = bytes(raw).split(b"\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            if op == "line":
                action = draw(st.sampled_from(["drop", "duplicate", "swap"]))
                if action == "drop":
                    del lines[i]
                elif action == "duplicate":
                    lines.insert(j, lines[i])
                else:
                    lines[i], lines[j] = lines[j], lines[i]
            else:
                lines[i] = draw(st.sampled_from([b"", b" ", b"  ", b"\t", b"    "])) + lines[i].lstrip(b" ")
            raw = bytearray(b"\n".join(lines))
    return bytes(raw)


JSON_LEAVES = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
               | st.floats() | st.text(max_size=30) | st.sampled_from(["", "openai", "bedrock", "sk-x", "1.25"]))


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)


JSON_VALUES = st.recursive(JSON_LEAVES, _containers, max_leaves=12)
EXAMPLE_DOCUMENTS = [doc for raw in EXAMPLE_BYTES for doc in yaml.safe_load_all(raw) if isinstance(doc, dict)]


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _paths(value, (*prefix, index))


@st.composite
def mutated_documents(draw: st.DrawFn) -> bytes:
    """1-3 example documents, each with a node replaced, deleted or given a sibling, dumped as YAML."""
    picked = draw(st.lists(st.sampled_from(EXAMPLE_DOCUMENTS), min_size=1, max_size=3))
    docs = [json.loads(json.dumps(d)) for d in picked]
    for doc in docs:
        for _ in range(draw(st.integers(1, 3))):
            path = draw(st.sampled_from(list(_paths(doc))[1:]))
            parent = doc
            for part in path[:-1]:
                parent = parent[part]
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "replace":
                parent[path[-1]] = draw(JSON_VALUES)
            elif action == "delete":
                del parent[path[-1]]
            elif isinstance(parent, dict):
                parent[draw(st.text(max_size=12))] = draw(JSON_VALUES)
            else:
                parent.append(draw(JSON_VALUES))
            if action == "delete" and not parent:
                break
    return "---\n".join(yaml.safe_dump(d, allow_unicode=True) for d in docs).encode()


@FUZZ
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_end_in_diagnostics(raw: bytes) -> None:
    _validate_bytes(raw)


@FUZZ
@given(st.text(alphabet=st.sampled_from(list(" \n\t:-[]{},&*!?|>'\"#%@`~.0123456789abcxyz")), max_size=400))
def test_arbitrary_yaml_punctuation_ends_in_diagnostics(text: str) -> None:
    _validate_bytes(text.encode())


@FUZZ
@given(mutated_example())
def test_mutated_examples_end_in_diagnostics(raw: bytes) -> None:
    _validate_bytes(raw)


@FUZZ
@given(mutated_documents())
def test_mutated_documents_end_in_diagnostics(raw: bytes) -> None:
    _validate_bytes(raw)


def test_the_examples_themselves_are_valid() -> None:
    """The mutations start from valid files: a failure above is the mutation's doing."""
    result = validate_paths([str(EXAMPLES)])
    assert result.errors == 0, [d for d in result.diagnostics if d.severity == ERROR]


# --- 2 and 3. valid desired and actual states -----------------------------------------------------

NAME = st.from_regex(r"[a-z][a-z0-9]{0,5}(-[a-z0-9]{1,3})?", fullmatch=True)
MODEL_ID = st.from_regex(r"[a-z][a-z0-9]{0,6}([.-][a-z0-9]{1,4}){0,2}", fullmatch=True)
SAFE_TEXT = st.text(alphabet=st.characters(categories=["L", "N", "Zs"], exclude_characters="\x85\xa0"),
                    min_size=1, max_size=20).filter(lambda s: s.strip() == s)
SECRET = st.text(alphabet=string.ascii_letters + string.digits, min_size=6, max_size=24).map(SECRET_PREFIX.__add__)
ORGANIZATIONS = st.sampled_from([None, "acme", "research"])
BASE_URLS: dict[str, st.SearchStrategy[str | None]] = {
    "openai": st.sampled_from([None, "https://api.openai.com/v1", "https://API.OpenAI.com/v1/"]),
    "anthropic": st.sampled_from([None, "https://api.anthropic.com", "https://claude-proxy.example.com/"]),
    "azure": NAME.map(lambda n: f"https://{n}.openai.azure.com/openai/v1"),
    "google": st.sampled_from([None, "https://generativelanguage.googleapis.com/v1beta/openai/"]),
    "openai-compat": st.sampled_from(["https://llm.example.com/v1", "http://localhost:8000/v1",
                                      "https://[::1]:8443/openai/v1", "http://127.0.0.1:11434/v1/"]),
    "openrouter": st.sampled_from([None, "https://openrouter.ai/api/v1"]),
    "vercel": st.sampled_from([None, "https://ai-gateway.vercel.sh/v1"]),
    "bedrock": st.none(),
    "copilot": st.none(),
}
OPTIONS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "openai": st.fixed_dictionaries({}, optional={"store": st.booleans(), "parallel_tool_calls": st.booleans(),
                                                  "text_verbosity": st.sampled_from(["low", "medium", "high"]),
                                                  "user": SAFE_TEXT}),
    "anthropic": st.fixed_dictionaries({}, optional={"send_reasoning": st.booleans(),
                                                     "thinking_display": st.sampled_from(["summarized", "omitted"])}),
    "google": st.fixed_dictionaries({}, optional={"web_search_enabled": st.booleans()}),
    "openaicompat": st.fixed_dictionaries({}, optional={"user": SAFE_TEXT}),
    "openrouter": st.fixed_dictionaries({}, optional={"include_usage": st.booleans(), "user": SAFE_TEXT}),
    "vercel": st.fixed_dictionaries({}, optional={"parallel_tool_calls": st.booleans()}),
}
DECIMAL_PRICE = st.decimals(min_value=0, max_value=1000, places=6, allow_nan=False)
PRICE = st.none() | st.integers(0, 500) | DECIMAL_PRICE.map(lambda d: format(d.normalize(), "f"))


@dataclass
class ManifestSet:
    """Documents that validate without errors, and the secret values their references name."""

    documents: list[dict[str, Any]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def yaml(self) -> str:
        return "---\n".join(yaml.safe_dump(d, allow_unicode=True, sort_keys=False) for d in self.documents)


def _doc(kind: str, name: str, spec: dict[str, Any], labels: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": "reconciler/v1", "kind": kind, "metadata": metadata, "spec": spec}


def _secret_ref(draw: st.DrawFn, out: ManifestSet, hint: str) -> dict[str, str]:
    name = f"PROP_{hint.upper().replace('-', '_')}_{len(out.env)}"
    out.env[name] = draw(SECRET)
    return {"env": name}


def _provider(draw: st.DrawFn, out: ManifestSet, name: str, ptype: str) -> None:
    spec: dict[str, Any] = {"type": ptype}
    url = draw(BASE_URLS[ptype])
    if url is not None:
        spec["base_url"] = url
    optionals = (("display_name", SAFE_TEXT), ("icon", st.just("/icon/x.svg")), ("enabled", st.booleans()))
    for optional, strategy in optionals:
        if draw(st.booleans()):
            spec[optional] = draw(strategy)
    variants = ["none", "headers", "wif", "claude_platform"] if ptype == "anthropic" else ["none", "headers"]
    variant = draw(st.sampled_from(variants))
    if ptype == "bedrock":
        bedrock: dict[str, Any] = {"region": draw(st.sampled_from(["us-east-1", "eu-west-1"])),
                                   "model": "anthropic.claude-sonnet", "small_fast_model": "anthropic.claude-haiku"}
        if draw(st.booleans()):
            bedrock["access_key"] = _secret_ref(draw, out, name)
            bedrock["access_key_secret"] = _secret_ref(draw, out, name)
        spec["settings"] = {"bedrock": bedrock}
    elif variant == "headers":
        headers = draw(st.dictionaries(st.sampled_from(["X-Team", "X-Cost-Center", "X-Env"]), SAFE_TEXT, max_size=2))
        if headers:
            spec["settings"] = {"upstream_headers": headers}
    elif variant == "wif":
        spec["base_url"] = "https://api.anthropic.com"
        spec["settings"] = {"wif": {"federation_rule_id": "fdrl_prop", "organization_id": "org-1",
                                    "identity_token_file": "/var/run/secrets/token"}}
    elif variant == "claude_platform":
        region = draw(st.sampled_from(["us-east-1", "eu-west-1"]))
        spec.pop("base_url", None)  # the region's endpoint by default
        spec["settings"] = {"claude_platform_aws": {"region": region, "workspace_id": "wrkspc_prop"}}
    if ptype not in ("bedrock", "copilot") and variant != "wif":
        keys = [_secret_ref(draw, out, name) for _ in range(draw(st.integers(0, 3)))]
        if keys:
            spec["api_keys"] = keys
    out.documents.append(_doc("Provider", name, spec, draw(st.sampled_from([None, {"team": "platform"}]))))


def _effort(draw: st.DrawFn) -> dict[str, str]:
    low, high = sorted(draw(st.lists(st.sampled_from(EFFORTS), min_size=2, max_size=2)), key=EFFORTS.index)
    return {"default": low, "max": high}


def _model(draw: st.DrawFn, name: str, provider: str, ptype: str, organization: str | None,
           model_id: str, default: bool, pricing: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"provider": provider, "model": model_id, "context_limit": draw(st.integers(1, 2_000_000))}
    if organization is not None:
        spec["organization"] = organization
    if default:
        spec["default"] = True
    for optional, strategy in (("display_name", SAFE_TEXT), ("enabled", st.booleans()),
                               ("compression_threshold", st.integers(0, 100))):
        if draw(st.booleans()):
            spec[optional] = draw(strategy)
    config: dict[str, Any] = draw(st.fixed_dictionaries({}, optional={
        "max_output_tokens": st.integers(1, 200_000), "temperature": st.floats(0, 2),
        "top_p": st.floats(0, 1), "top_k": st.integers(0, 100)}))
    if draw(st.booleans()):
        config["reasoning_effort"] = _effort(draw)
    family = next(f for f, types in OPTION_FAMILIES.items() if ptype in types)
    options = draw(OPTIONS[family])
    if options:
        config["provider_options"] = {family: options}
    if config:
        spec["config"] = config
    if pricing:
        spec["pricing"] = pricing
    return _doc("Model", name, spec)


@st.composite
def manifest_sets(draw: st.DrawFn) -> ManifestSet:
    """A valid manifest set: providers of random types, models on them, prices, overrides, settings."""
    out = ManifestSet()
    names = draw(st.lists(NAME, min_size=1, max_size=4, unique=True))
    types = {n: draw(st.sampled_from(list(BASE_URLS))) for n in names}
    for name in names:
        _provider(draw, out, name, types[name])
    hosts = [n for n in names if types[n] != "copilot"]
    models: list[dict[str, Any]] = []
    if hosts:
        seen: set[tuple[Any, ...]] = set()
        defaults: set[str | None] = set()
        pricing: dict[tuple[str, str], dict[str, Any]] = {}  # models of one price key must agree
        for handle in draw(st.lists(NAME, min_size=1, max_size=5, unique=True)):
            provider, organization = draw(st.sampled_from(hosts)), draw(ORGANIZATIONS)
            model_id = draw(MODEL_ID)
            if (organization, provider, model_id) in seen:
                continue
            seen.add((organization, provider, model_id))
            default = organization not in defaults and draw(st.booleans())
            if default:
                defaults.add(organization)
            key = (types[provider], model_id)
            if key not in pricing:
                pricing[key] = draw(st.fixed_dictionaries({}, optional={f: PRICE for f in PRICE_FIELDS}))
            models.append(_model(draw, handle, provider, key[0], organization, model_id, default, pricing[key]))
    out.documents += models
    priced = {(types[m["spec"]["provider"]], m["spec"]["model"]) for m in models}
    entries = []
    for model_id in draw(st.lists(MODEL_ID.map(lambda s: "cat-" + s), max_size=3, unique=True)):
        ptype = draw(st.sampled_from(list(BASE_URLS)))
        if (ptype, model_id) not in priced:
            prices = draw(st.fixed_dictionaries({}, optional={f: PRICE for f in ("input", "output")}))
            entries.append({"provider": ptype, "model": model_id, **prices})
    if entries:
        out.documents.append(_doc("PriceCatalog", "catalog", {"prices": entries}))
    out.documents += _overrides(draw, models)
    if draw(st.booleans()):
        allow = {"allow_users": draw(st.booleans())}
        out.documents.append(_doc("Settings", "deployment", {"personal_model_overrides": allow}))
    return out


def _overrides(draw: st.DrawFn, models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    docs = []
    by_org: dict[str | None, list[dict[str, Any]]] = {}
    for m in models:
        if m["spec"].get("enabled", True):
            by_org.setdefault(m["spec"].get("organization"), []).append(m)
    for organization, candidates in sorted(by_org.items(), key=lambda kv: str(kv[0])):
        contexts = {}
        for context in draw(st.lists(st.sampled_from(CONTEXTS), max_size=3, unique=True)):
            target = draw(st.sampled_from(candidates))
            value: dict[str, Any] = {"model": target["metadata"]["name"]}
            effort = target["spec"].get("config", {}).get("reasoning_effort")
            if effort and draw(st.booleans()):
                value["reasoning_effort"] = draw(st.sampled_from(EFFORTS[: EFFORTS.index(effort["max"]) + 1]))
            contexts[context] = value
        if contexts:
            spec: dict[str, Any] = {"contexts": contexts}
            if organization is not None:
                spec["organization"] = organization
            docs.append(_doc("Overrides", f"overrides-{organization or 'default'}", spec))
    return docs


def _write(directory: Path, manifests: ManifestSet) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "manifests.yaml").write_text(manifests.yaml(), encoding="utf-8")
    result = validate_paths([str(directory)])
    errors = [f"{d.line}: {d.code} {d.message}" for d in result.diagnostics if d.severity == ERROR]
    assert not errors, "the strategy made invalid manifests:\n" + "\n".join(errors) + "\n" + manifests.yaml()
    return [str(directory)]


@contextmanager
def _sqlite_store() -> Iterator[tuple[SqlStore, Path]]:
    with tempfile.TemporaryDirectory(dir=WORK) as work:
        store = open_store(f"sqlite:///{work}/store.db", environ={ENCRYPTION_KEY_ENV: KEY_A})
        assert isinstance(store, SqlStore)
        try:
            yield store, Path(work)
        finally:
            store.close()


def _apply(paths: list[str], store: SqlStore, options: PlanOptions, env: dict[str, str]) -> Plan:
    outcome, report = apply_manifests(paths, store, options, SecretResolver(env), lock_timeout=5)
    assert report.ok, f"{report.error} {[(r.change.id, r.error) for r in report.results if r.error]}"
    return outcome.plan


def _changes(plan: Plan) -> str:
    return render_plan(plan, Style(False))


@STORE
@given(actual=manifest_sets(), desired=manifest_sets(), prune=st.booleans(), rotate=st.booleans())
def test_applying_a_plan_then_planning_again_gives_an_empty_plan(
    actual: ManifestSet, desired: ManifestSet, prune: bool, rotate: bool
) -> None:
    with _sqlite_store() as (store, work):
        _apply(_write(work / "actual", actual), store, PlanOptions(prune=True, max_deletes=ALL_PRUNE), actual.env)
        paths = _write(work / "desired", desired)
        options = PlanOptions(prune=prune, max_deletes=ALL_PRUNE)
        _apply(paths, store, PlanOptions(prune=prune, max_deletes=ALL_PRUNE, rotate_secrets=rotate), desired.env)
        again = make_plan(paths, store, options, SecretResolver(desired.env)).plan
        assert again.empty, "a second plan still has changes:\n" + _changes(again)
        assert not again.refusal


PROVIDER_A = _doc("Provider", "a", {"type": "openai"})


def test_prune_deletes_an_unlisted_default_model_in_one_apply() -> None:
    actual = ManifestSet([PROVIDER_A, _doc("Model", "a", {"provider": "a", "model": "a", "context_limit": 1,
                                                           "default": True})])
    desired = ManifestSet([PROVIDER_A, _doc("Model", "b", {"provider": "a", "model": "b", "context_limit": 1,
                                                            "default": True})])
    options = PlanOptions(prune=True, max_deletes=ALL_PRUNE)
    with _sqlite_store() as (store, work):
        _apply(_write(work / "actual", actual), store, options, {})
        paths = _write(work / "desired", desired)
        _apply(paths, store, options, {})
        again = make_plan(paths, store, options, SecretResolver({})).plan
        assert again.empty, _changes(again)


def _renderings(plan: Plan, store_url: str, work: Path) -> dict[str, str]:
    saved = work / "plan.json"
    save_plan(plan, store_url, str(saved), {"RECONCILER_PLAN_KEY": "k" * 32})
    return {
        "json": json.dumps(plan.to_dict(), ensure_ascii=False),
        "text": render_plan(plan, Style(False)),
        "markdown": render_plan_markdown(plan),
        "saved plan": saved.read_text(encoding="utf-8"),
    }


def _assert_no_secret(outputs: dict[str, str], values: list[str]) -> None:
    for where, text in outputs.items():
        assert SECRET_PREFIX not in text, f"a secret value appears in the {where}"
        assert not [v for v in values if v in text], f"a secret value appears in the {where}"


@STORE
@given(actual=manifest_sets(), desired=manifest_sets(), rotate=st.booleans(), reuse_names=st.booleans())
def test_no_plan_or_report_ever_holds_a_secret_value(
    actual: ManifestSet, desired: ManifestSet, rotate: bool, reuse_names: bool
) -> None:
    if reuse_names:  # the same documents, other secret values: plans show "(sensitive value changed)"
        desired = ManifestSet(actual.documents, {k: v + "x" for k, v in actual.env.items()})
    with _sqlite_store() as (store, work):
        options = PlanOptions(prune=True, max_deletes=ALL_PRUNE, rotate_secrets=rotate)
        first = make_plan(_write(work / "actual", actual), store, options, SecretResolver(actual.env)).plan
        _assert_no_secret(_renderings(first, store.url, work), list(actual.env.values()))
        _apply([str(work / "actual")], store, options, actual.env)
        paths = _write(work / "desired", desired)
        second = make_plan(paths, store, options, SecretResolver(desired.env)).plan
        both = [*actual.env.values(), *desired.env.values()]
        _assert_no_secret(_renderings(second, store.url, work), both)
        outcome, report = apply_manifests(paths, store, options, SecretResolver(desired.env), lock_timeout=5)
        assert report.ok, report.error
        _assert_no_secret({"report": json.dumps(report.to_dict()), "report text": render_report(report, Style(False)),
                           "applied plan": render_plan(outcome.plan, Style(False))}, both)


def test_the_strategies_reach_the_interesting_cases() -> None:
    """The generated sets are not trivially small: counted over a fixed sample (of 100, so that the
    thresholds hold whichever sequence a Hypothesis release derives from the fixed seed)."""
    kinds: dict[str, int] = {}
    secrets = 0

    @settings(max_examples=100, derandomize=True, database=None)
    @given(manifest_sets())
    def count(m: ManifestSet) -> None:
        nonlocal secrets
        secrets += len(m.env)
        for d in m.documents:
            kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1

    count()
    assert {"Provider", "Model", "PriceCatalog", "Overrides", "Settings"} <= set(kinds), kinds
    assert kinds["Model"] >= 40 and secrets >= 40, (kinds, secrets)
