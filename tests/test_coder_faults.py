"""Every fault the fake Coder can inject, at random points of an apply, and what the report says.

A scenario (one seed) starts the fake either empty or holding an older version of
the manifests (then the apply creates, updates, deletes under --prune, moves the
default model and, in half of them, replaces a provider), and arms 1-4 faults at
random request numbers: 429 with and without Retry-After, 500, 502, 503, 504, 400
with validations, a dropped connection, an answer later than the request timeout,
each on a random method and route, once or several times. The manifest set is
examples/ plus generated providers and models: 150+ changes, ~100 write requests.

After the apply under faults: the report agrees with what the server holds (an
`applied` change is there as planned, a `skipped` one untouched, a `failed` one
untouched unless Coder may have acted on it: an answer that came too late, or a
write whose read-back failed), nothing outside the plan changed, the exit code is
1 exactly when a change did not apply, no traceback; when every fault was
transient (retryable within the deadline) everything applied. A re-run without
faults converges and the next plan is empty.

40 scenarios by default (every tenth through the CLI), 400 more with
RECONCILER_LONG_TESTS=1. Figures per scenario are recorded as junit properties.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from benchmarks.generate import generate
from reconciler.changes import APPLIED, DELETE, FAILED, REPLACE, SKIPPED, Change
from reconciler.errors import ReconcilerError
from reconciler.plan import PlanOptions
from reconciler.run import apply_manifests, make_plan
from reconciler.secrets import SecretResolver
from reconciler.state import MODEL, OVERRIDE, PRICE, PROVIDER, Key, Record, State
from reconciler.stores import open_store
from reconciler.stores.coder import CoderStore
from tests.cliharness import LONG, Manifests, example_manifests, generated_secrets, long_only
from tests.conftest import run_cli
from tests.fakecoder import FakeCoder
from tests.fakecoder.fixtures import DEFAULT_ORGANIZATION, DEFAULT_PRICE_BOOK
from tests.fakecoder.server import Fault

GENERATED_PROVIDERS, GENERATED_MODELS = 6, 50
READS = 10  # organizations, providers, prices, the toggle, build info, experiments, entitlements, the
# authcheck, the organization's models and overrides
REQUEST_TIMEOUT = 0.3
LATE = 2 * REQUEST_TIMEOUT  # how late a delayed answer comes
RETRIES = 5  # the store's default attempts per request
OPTIONS = PlanOptions(prune=True, max_deletes=100)
SCENARIOS = 40
LONG_SCENARIOS = 400
CLI_EVERY = 10  # every tenth scenario runs through `python -m reconciler`

PROVIDERS = "/api/v2/ai/providers"
ORGS = "/api/v2/organizations/"
PRICES = "/api/experimental/ai/model-prices"
TOGGLE = "/api/v2/chats/config/personal-model-overrides"
# (method, path prefix) a fault is armed for; None matches any
TARGETS: tuple[tuple[str | None, str | None], ...] = (
    (None, None), (None, None), ("GET", None), ("POST", None), ("PATCH", None), ("PUT", None),
    ("DELETE", None), ("POST", PROVIDERS), ("PATCH", PROVIDERS), ("DELETE", PROVIDERS), ("POST", ORGS),
    ("PATCH", ORGS), ("PUT", ORGS), ("POST", PRICES), ("GET", PRICES), ("PUT", TOGGLE), ("GET", TOGGLE),
)
TRANSIENT = ("429", "429 Retry-After", "500", "502", "503", "504", "dropped connection", "late answer")
KINDS = (*TRANSIENT, "400 with validations")
PAST = "Wed, 21 Oct 2015 07:28:00 GMT"


# -- the fake, with faults armed at request numbers ---------------------------------------------


class FaultyCoder(FakeCoder):
    """The fake Coder, injecting each planned fault once the server has seen `at` requests.

    `fired` names each fault that hit a request. Disarmed, no fault applies (left-over
    ones stay unused), so that the test reads the server as it is.
    """

    def __init__(self) -> None:
        super().__init__()
        self.fired: list[str] = []
        self._schedule: dict[int, list[dict[str, Any]]] = {}
        self._seen = 0
        self._armed = False
        self._arming = threading.Lock()

    def arm(self, schedule: Iterable[tuple[int, dict[str, Any]]]) -> None:
        with self._arming:
            self._schedule, self._seen, self._armed = {}, 0, True
            for at, options in schedule:
                self._schedule.setdefault(at, []).append(options)

    def disarm(self) -> None:
        with self._arming:
            self._armed = False

    def _take_fault(self, method: str, path: str) -> Fault | None:  # the fake's per-request hook
        with self._arming:
            if not self._armed:
                return None
            for options in self._schedule.pop(self._seen, []):
                self.inject(**options)
            self._seen += 1
            fault = super()._take_fault(method, path)
            if fault is not None:
                self.fired.append(fault_kind(fault))
            return fault


def fault_kind(fault: Fault) -> str:
    if fault.drop_connection:
        return "dropped connection"
    if fault.delay:
        return "late answer"
    if fault.status == 400:
        return "400 with validations"
    return f"{fault.status}{' Retry-After' if fault.retry_after is not None else ''}"


def inject_options(kind: str, target: tuple[str | None, str | None], times: int,
                   rng: random.Random) -> dict[str, Any]:
    method, prefix = target
    options: dict[str, Any] = {"times": times, "method": method, "path_prefix": prefix}
    if kind == "dropped connection":
        return {**options, "drop_connection": True}
    if kind == "late answer":
        return {**options, "delay": LATE}
    if kind == "429 Retry-After":
        return {**options, "status": 429, "retry_after": rng.choice([0.05, "0", PAST])}
    if kind == "400 with validations":
        field = f"prices[{rng.randrange(4)}].input_price" if prefix == PRICES else "display_name"
        body = {"message": "Invalid request.", "detail": "",
                "validations": [{"field": field, "detail": "Injected validation failure."}]}
        return {**options, "status": 400, "body": body}
    return {**options, "status": int(kind.split()[0])}


@dataclass
class Scenario:
    seed: int
    previous: bool  # the server starts with an older version of the manifests
    replace: bool  # ... in which one provider has another type
    parallelism: int
    transient: bool  # every fault retryable within the deadline: everything must apply
    faults: list[tuple[int, str, dict[str, Any]]]  # (request number, kind, FakeCoder.inject options)

    @property
    def cli(self) -> bool:
        return self.seed % CLI_EVERY == 0


def scenario(seed: int, requests: int) -> Scenario:
    """Faults for an apply that makes at least `requests` requests."""
    rng = random.Random(seed)
    previous = rng.random() < 0.5
    replace = previous and rng.random() < 0.5
    transient = rng.random() < 0.5
    count = rng.randint(1, 4)
    faults = []
    budget = RETRIES - 1  # one request may meet every transient fault: it must still get through
    for index in range(count):
        target = (None, None) if index == 0 else rng.choice(TARGETS)  # the first fault always fires
        at = rng.randrange(requests)
        if transient:
            times = rng.randint(1, min(2, budget - (count - index - 1)))
            budget -= times
            kind = rng.choice(TRANSIENT)
        else:
            kind = rng.choice(KINDS)
            # up to an outage of many requests; shorter through the CLI, whose backoff is the real one
            if seed % CLI_EVERY == 0:
                outage = [1, 2, RETRIES]
            else:
                outage = [1, 2, RETRIES, 3 * RETRIES] + ([] if kind == "late answer" else [10 * RETRIES])
            times = rng.randint(1, 3) if kind == "400 with validations" else rng.choice(outage)
        faults.append((at, kind, inject_options(kind, target, times, rng)))
    return Scenario(seed, previous, replace, rng.choice([1, 4, 8, 16]), transient, faults)


# -- manifests ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> Manifests:
    """examples/ plus generated providers and models (their default moved to examples')."""
    found = example_manifests(tmp_path_factory.mktemp("faults"))
    generated = found.path / "generated"
    generate(str(generated), GENERATED_PROVIDERS, GENERATED_MODELS)
    for file in generated.rglob("*.yaml"):
        file.write_text(file.read_text().replace("default: true", "default: false"))
    found.env.update(generated_secrets(GENERATED_PROVIDERS))
    return found


def edit(file: Path, old: str, new: str) -> None:
    text = file.read_text()
    assert old in text, (file, old)
    file.write_text(text.replace(old, new, 1))


def older_version(current: Path, out: Path, rng: random.Random, replace: bool) -> Path:
    """The manifests as they were: some models missing or extra, every other name different,
    another default model, the other settings value, a weaker override, and (`replace`)
    another type for a provider."""
    shutil.copytree(current, out)
    models = sorted((out / "generated" / "models").glob("*.yaml"))
    rng.shuffle(models)
    for file in models[:12]:
        file.unlink()
    for file in out.rglob("*.yaml"):
        file.write_text(file.read_text().replace("  display_name: ", "  display_name: Old "))
    for k, file in enumerate(models[12:16]):
        (file.parent / f"extra-{k}.yaml").write_text(re.sub(r"model-\d{5}", f"model-9{k:04d}", file.read_text()))
    edit(models[16], "default: false", "default: true")
    edit(out / "models" / "anthropic.yaml", "  default: true\n", "")
    edit(out / "settings.yaml", "allow_users: true", "allow_users: false")
    edit(out / "overrides.yaml", "reasoning_effort: low", "reasoning_effort: medium")
    if replace:
        provider = out / "generated" / "providers" / "openai-0000.yaml"
        edit(provider, "type: openai", "type: azure")
        edit(provider, "https://api.openai.com/v1", "https://acme-0.openai.azure.com/openai/v1")
    return out


# -- running ------------------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FaultyCoder]:
    coder = FaultyCoder()
    with coder:
        coder.add_organization(DEFAULT_ORGANIZATION, is_default=True)
        coder.seed_default_prices(DEFAULT_PRICE_BOOK)
        yield coder


class Runner:
    """Applies and plans against the fake, in this process or through the CLI."""

    def __init__(self, fake: FakeCoder, manifests: Manifests, workdir: Path) -> None:
        self.fake = fake
        self.secrets = manifests.env
        self.environ = {"CODER_SESSION_TOKEN": fake.token, "XDG_CACHE_HOME": str(workdir / "cache")}
        self.url = "coder+" + fake.url

    def open(self, **options: Any) -> CoderStore:
        store = open_store(self.url, environ=self.environ, **options)
        assert isinstance(store, CoderStore)
        return store

    def read(self) -> State:
        store = self.open()
        try:
            return store.read()
        finally:
            store.close()

    def plan(self, path: Path) -> list[Change]:
        store = self.open()
        try:
            return make_plan([str(path)], store, OPTIONS, SecretResolver(self.secrets)).plan.changes
        finally:
            store.close()

    def apply(self, path: Path, parallelism: int = 8) -> dict[str, tuple[str, str]]:
        """{change id: (status, error)}; ReconcilerError when the apply fails as a whole."""
        store = self.open(parallelism=parallelism, request_timeout=REQUEST_TIMEOUT, backoff=0.01)
        try:
            _, report = apply_manifests([str(path)], store, OPTIONS, SecretResolver(self.secrets), 10)
        finally:
            store.close()
        return {r.change.id: (r.status, r.error) for r in report.results}

    def apply_cli(self, path: Path, report: Path, parallelism: int = 8) -> dict[str, tuple[str, str]]:
        """The same through `python -m reconciler apply`: its exit code is 1 exactly when a change
        did not apply or the apply failed as a whole (then there is no report, and ReconcilerError)."""
        done = run_cli("apply", str(path), "--store", self.url, "--prune", "--max-deletes", "100",
                       "--report", str(report), "--request-timeout", str(REQUEST_TIMEOUT),
                       "--parallelism", str(parallelism), "--lock-timeout", "10",
                       env={**self.secrets, **self.environ})
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
        if not report.exists():
            assert done.returncode == 1 and done.stderr.startswith("Error: "), done.stdout + done.stderr
            raise ReconcilerError(done.stderr)
        results = {f"{c['kind']}/{c['key']}": (c["status"], c.get("error", ""))
                   for c in json.loads(report.read_text())["changes"]}
        report.unlink()
        assert done.returncode == (0 if all(s == APPLIED for s, _ in results.values()) else 1), done.stdout
        return results

    def plan_cli_exit(self, path: Path) -> int:
        done = run_cli("plan", str(path), "--store", self.url, "--prune", "--max-deletes", "100",
                       "--detailed-exitcode", env={**self.secrets, **self.environ})
        return done.returncode


# -- what the server must hold ------------------------------------------------------------------


def held(state: State, kind: str, key: Key) -> Record | None:
    return without_default(state.of(kind).get(key), kind)


def planned(change: Change) -> Record | None:
    return None if change.action == DELETE else change.after


def allowed(change: Change, status: str, error: str, late_answers: bool) -> list[Record | None]:
    """What the server may hold for a change with this result."""
    before, after = change.before, planned(change)
    if status == APPLIED:
        return [after]
    if status == SKIPPED:
        return [before]
    if error.startswith("written, but"):
        return [after]
    if change.action == REPLACE and "the old provider was deleted" in error:
        return [None]
    if change.action == REPLACE and "replaced the provider, but" in error:
        return [after]
    # a request answered too late may still have been carried out; a refusal never was
    return [before, after] if late_answers else [before]


def without_default(record: Record | None, kind: str) -> Record | None:
    """Coder elects an organization's default model itself (its first model, a replacement for a
    deleted one): that flag is checked on its own, in `default_problems`."""
    if record is None or kind != MODEL:
        return record
    return {k: v for k, v in record.items() if k != "default"}


def through_deleted(state: State, fake: FakeCoder, names: set[str]) -> State:
    """The state with the models of a provider whose replace failed after deleting it (keyed
    `deleted:<id>`, as the failure says) under that provider's name again: untouched models."""
    deleted = {f"deleted:{p.id}": p.name for p in fake.state.providers.values() if p.deleted and p.name in names}
    out = State(objects={kind: dict(records) for kind, records in state.objects.items()})
    out.objects[MODEL] = {(org, deleted.get(p, p), m): r for (org, p, m), r in state.of(MODEL).items()}
    out.objects[OVERRIDE] = {k: {**r, "provider": deleted.get(r["provider"], r["provider"])}
                             for k, r in state.of(OVERRIDE).items()}
    return out


def report_problems(fake: FakeCoder, before: State, after: State, changes: Sequence[Change],
                    results: Mapping[str, tuple[str, str]], late_answers: bool) -> list[str]:
    """Where the report and the server disagree (empty: they agree)."""
    problems = []
    assert set(results) == {c.id for c in changes}, "the report lists other changes than planned"
    unreplaced = {c.key[0] for c in changes if c.action == REPLACE and results[c.id][0] != APPLIED}
    after = through_deleted(after, fake, unreplaced)
    for change in changes:
        status, error = results[change.id]
        assert status in (APPLIED, FAILED, SKIPPED) and not error.startswith("internal error"), (change.id, error)
        have = held(after, change.kind, change.key)
        options = [without_default(r, change.kind) for r in allowed(change, status, error, late_answers)]
        if have not in options:
            problems.append(f"{change.id} is {status} ({error}) but the server holds {have!r}")
    touched = {(c.kind, c.key) for c in changes}
    for kind in set(before.objects) | set(after.objects):
        for key in set(before.of(kind)) | set(after.of(kind)):
            if (kind, key) not in touched and held(before, kind, key) != held(after, kind, key):
                problems.append(f"{kind}/{'/'.join(key)} changed but was not in the plan")
    return problems + default_problems(after, changes, results)


def default_problems(after: State, changes: Sequence[Change], results: Mapping[str, tuple[str, str]]) -> list[str]:
    """One default model per organization, and the one an applied change made default is it."""
    problems = []
    defaults = Counter(key[0] for key, record in after.of(MODEL).items() if record["default"])
    for org in {key[0] for key in after.of(MODEL)}:
        if defaults[org] != 1:
            problems.append(f"organization {org} has {defaults[org]} default models")
    for change in changes:
        promoted = change.kind == MODEL and (change.after or {}).get("default")
        if promoted and results[change.id][0] == APPLIED and not after.of(MODEL)[change.key]["default"]:
            problems.append(f"{change.id} applied, but the model is not its organization's default")
    return problems


# -- the scenarios ------------------------------------------------------------------------------


def run_scenario(seed: int, fake: FaultyCoder, manifests: Manifests, workdir: Path,
                 figures: list[tuple[str, object]]) -> None:
    runner = Runner(fake, manifests, workdir)
    probe = scenario(seed, READS)  # the start state does not depend on the request count
    if probe.previous:
        older = older_version(manifests.path, workdir / "older", random.Random(seed), probe.replace)
        assert all(s == APPLIED for s, _ in runner.apply(older).values())
    before = runner.read()
    changes = runner.plan(manifests.path)
    assert len(changes) >= 90 and any(c.action == REPLACE for c in changes) == probe.replace
    # every change but a price is at least one request; prices go in a few batches
    chosen = scenario(seed, READS + sum(c.kind != PRICE for c in changes))
    fake.reset_requests()
    fake.arm((at, options) for at, _, options in chosen.faults)
    started = time.monotonic()
    try:
        if chosen.cli:
            results = runner.apply_cli(manifests.path, workdir / "report.json", chosen.parallelism)
        else:
            results = runner.apply(manifests.path, chosen.parallelism)
    except ReconcilerError as exc:  # the read failed for good: nothing may have been written
        assert not chosen.transient, f"a transient fault failed the apply: {exc}"
        results = {}
    elapsed = time.monotonic() - started
    # a request answered too late may have been carried out (a slow machine makes its own)
    late = "late answer" in fake.fired or any("did not answer within" in e for _, e in results.values())
    if late:
        time.sleep(LATE + 0.1)  # let answers that came too late land before looking
    fake.disarm()
    assert fake.fired, "no fault hit a request"
    after = runner.read()
    if results:
        assert report_problems(fake, before, after, changes, results, late) == []
    else:
        assert {c.id for c in changes if held(after, c.kind, c.key) != held(before, c.kind, c.key)} == set()
    if chosen.transient:
        assert {i: r for i, r in results.items() if r[0] != APPLIED} == {}, "a transient fault failed a change"
    assert fake.server_errors == []

    rerun = runner.apply_cli(manifests.path, workdir / "report.json") if chosen.cli else runner.apply(manifests.path)
    assert all(s == APPLIED for s, _ in rerun.values()), rerun
    if chosen.cli:
        assert runner.plan_cli_exit(manifests.path) == 0
    else:
        assert runner.plan(manifests.path) == []
    figures += [("changes", len(changes)), ("faults_fired", len(fake.fired)),
                ("fault_kinds", ",".join(sorted(set(fake.fired)))),
                ("not_applied", sum(s != APPLIED for s, _ in results.values())),
                ("apply_seconds", round(elapsed, 2))]


@pytest.mark.parametrize("seed", range(SCENARIOS))
def test_faults_at_random_points(seed: int, fake: FaultyCoder, manifests: Manifests, tmp_path: Path,
                                 request: pytest.FixtureRequest) -> None:
    run_scenario(seed, fake, manifests, tmp_path, request.node.user_properties)


@pytest.mark.slow
@long_only
@pytest.mark.parametrize("seed", range(SCENARIOS, SCENARIOS + (LONG_SCENARIOS if LONG else 1)))
def test_faults_at_random_points_long(seed: int, fake: FaultyCoder, manifests: Manifests, tmp_path: Path,
                                      request: pytest.FixtureRequest) -> None:
    run_scenario(seed, fake, manifests, tmp_path, request.node.user_properties)


def test_every_fault_kind_is_drawn() -> None:
    """The default scenarios cover every kind of fault, transient and permanent runs, both start states."""
    drawn = [scenario(seed, 150) for seed in range(SCENARIOS)]
    assert {kind for s in drawn for _, kind, _ in s.faults} == set(KINDS)
    assert {s.transient for s in drawn} == {True, False} and {s.previous for s in drawn} == {True, False}
    assert any(s.replace for s in drawn) and sum(s.cli for s in drawn) == SCENARIOS // CLI_EVERY


# -- the bugs these scenarios found, pinned down --------------------------------------------------

REPLACED = """apiVersion: reconciler/v1
kind: Provider
metadata: {name: gateway}
spec:
  type: TYPE
  base_url: https://llm.internal.example.com/v1
  api_keys: [{env: GATEWAY_KEY}]
---
apiVersion: reconciler/v1
kind: Model
metadata: {name: llama}
spec: {provider: gateway, model: llama-4, context_limit: 128000}
"""


def test_a_late_answer_to_a_replaces_delete_cannot_delete_the_new_provider(
    fake: FaultyCoder, tmp_path: Path
) -> None:
    """The delete of a replace, retried after its answer came too late, is carried out by Coder
    after the new provider exists: it must name the old provider's ID, not the shared name."""
    manifests = Manifests(tmp_path / "m", {"GATEWAY_KEY": "sk-gateway-0123456789abcdef"})
    manifests.path.mkdir()
    runner = Runner(fake, manifests, tmp_path)
    (manifests.path / "all.yaml").write_text(REPLACED.replace("TYPE", "openai-compat"))
    assert set(runner.apply(manifests.path).values()) == {(APPLIED, "")}
    (manifests.path / "all.yaml").write_text(REPLACED.replace("TYPE", "openai"))
    fake.arm([(0, {"delay": LATE, "method": "DELETE", "path_prefix": PROVIDERS})])
    assert runner.apply(manifests.path) == {"Provider/gateway": (APPLIED, "")}
    time.sleep(LATE + 0.1)  # the late delete lands
    state = runner.read()
    assert [(key, p["type"]) for key, p in state.of(PROVIDER).items()] == [(("gateway",), "openai")]
    assert list(state.of(MODEL)) == [(DEFAULT_ORGANIZATION, "gateway", "llama-4")]
    assert runner.plan(manifests.path) == []
    assert fake.count("DELETE", PROVIDERS) == 2


def test_a_setting_written_but_not_read_back_says_it_was_written(fake: FaultyCoder, tmp_path: Path) -> None:
    manifests = Manifests(tmp_path / "m", {})
    manifests.path.mkdir()
    (manifests.path / "settings.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Settings\nmetadata: {name: deployment}\n"
        "spec: {personal_model_overrides: {allow_users: true}}\n")
    runner = Runner(fake, manifests, tmp_path)
    fake.arm([(READS, inject_options("400 with validations", ("GET", TOGGLE), 1, random.Random(0)))])
    assert runner.apply(manifests.path) == {"Settings/deployment": (
        FAILED, "written, but reading the setting back failed: Coder answered 400 Bad Request: Invalid request.")}
    assert fake.state.allow_users is True
    assert runner.plan(manifests.path) == []
