"""The Coder store against the strict fake Coder, over real HTTP on loopback.

Changes come from the real planner (`compare`) so that they carry the
dependencies an apply runs by; records are checked as the store reads them back.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from reconciler.changes import APPLIED, CREATE, FAILED, SKIPPED, UPDATE, Change, ChangeResult
from reconciler.errors import LockError, SecretError, StoreError, UsageError
from reconciler.plan import Plan, PlanOptions, compare
from reconciler.secrets import Secret, mask_secret
from reconciler.state import (
    KIND_ORDER,
    MODEL,
    OVERRIDE,
    PRICE,
    PROVIDER,
    SETTINGS,
    SETTINGS_KEY,
    Key,
    Record,
    State,
)
from reconciler.stores import open_store
from reconciler.stores.base import RunInfo
from reconciler.stores.coder import CoderStore
from tests.fakecoder import FakeCoder, fixtures
from tests.fakecoder.fixtures import DEFAULT_PRICE_BOOK

fake_coder = fixtures.fake_coder
ROOT = Path(__file__).resolve().parents[1]
RUN = RunInfo(who="tester@ci", tool_version="0.0-test")
ORG = "coder"
PROVIDERS = "/api/v2/ai/providers"
PRICES = "/api/experimental/ai/model-prices"
SECRETS = {
    "env:ANTHROPIC_KEY_1": "sk-ant-api03-first-0000000001",
    "env:ANTHROPIC_KEY_2": "sk-ant-api03-second-000000002",
    "env:ANTHROPIC_KEY_3": "sk-ant-api03-third-0000000003",
    "file:/run/secrets/compat": "compat-key-0000000000000",
}
Objects = dict[str, dict[Key, Record]]


def sample() -> Objects:
    """Objects of every kind Coder holds, each settings variant, two organizations."""
    return {
        PROVIDER: {
            ("anthropic-corp",): {
                "type": "anthropic", "display_name": "Anthropic (corp)", "icon": "/icon/claude.svg",
                "enabled": True, "base_url": "https://api.anthropic.com",
                "api_keys": [Secret("env:ANTHROPIC_KEY_1"), Secret("env:ANTHROPIC_KEY_2")], "settings": None,
            },
            ("anthropic-wif",): {
                "type": "anthropic", "display_name": "anthropic-wif", "icon": "", "enabled": True,
                "base_url": "https://api.anthropic.com", "api_keys": [],
                "settings": {"wif": {"federation_rule_id": "fdrl_01EXAMPLE",
                                     "organization_id": "5f3c2a9e-1b7d-4c1e-9a0f-3c1e5a7b9d02",
                                     "identity_token_file": "/var/run/secrets/anthropic/token"}},
            },
            ("bedrock-west",): {
                "type": "bedrock", "display_name": "Bedrock", "icon": "", "enabled": False,
                "base_url": "https://bedrock-runtime.us-west-2.amazonaws.com", "api_keys": [],
                "settings": {"bedrock": {"region": "us-west-2", "protocol": "invoke-model",
                                         "model": "anthropic.claude-sonnet-4-5",
                                         "small_fast_model": "anthropic.claude-haiku-4-5",
                                         "role_arn": "arn:aws:iam::123456789012:role/Bedrock"}},
            },
            ("compat",): {
                "type": "openai-compat", "display_name": "Compat", "icon": "", "enabled": True,
                "base_url": "https://llm.internal.example.com/v1",
                "api_keys": [Secret("file:/run/secrets/compat")],
                "settings": {"upstream_headers": {"X-Team": "platform", "X-Chat": "{{chat_id}}"}},
            },
        },
        MODEL: {
            (ORG, "anthropic-corp", "claude-sonnet-4-5"): {
                "display_name": "Claude Sonnet 4.5", "enabled": True, "default": True,
                "context_limit": 200000, "compression_threshold": 70,
                "config": {"max_output_tokens": 64000, "temperature": 1.0,
                           "reasoning_effort": {"default": "medium", "max": "high"},
                           "provider_options": {"anthropic": {"thinking": {"budget_tokens": 4096}}}},
            },
            (ORG, "compat", "llama-4"): {
                "display_name": "llama-4", "enabled": True, "default": False,
                "context_limit": 1000000, "compression_threshold": 30, "config": {"temperature": 0.7},
            },
            ("research", "compat", "llama-4"): {
                "display_name": "Llama 4", "enabled": False, "default": True,
                "context_limit": 128000, "compression_threshold": 50, "config": {},
            },
        },
        PRICE: {
            ("anthropic", "claude-sonnet-4-5"):
                {"input": 2_000_000, "output": 15_000_000, "cache_read": 300_000, "cache_write": None},
            ("openai-compat", "llama-4"): {"input": 0, "output": 1, "cache_read": None, "cache_write": None},
        },
        OVERRIDE: {
            (ORG, "general"):
                {"provider": "anthropic-corp", "model": "claude-sonnet-4-5", "reasoning_effort": "high"},
            (ORG, "title_generation"): {"provider": "compat", "model": "llama-4", "reasoning_effort": None},
        },
        SETTINGS: {SETTINGS_KEY: {"allow_users": True}},
    }


def full(objects: Objects) -> Objects:
    out: Objects = {kind: {} for kind in KIND_ORDER}
    out.update(copy.deepcopy(objects))
    return out


def with_views(objects: Objects, values: Mapping[str, str]) -> Objects:
    """Secrets as the desired side holds them when the plaintext is at hand."""
    def view(value: Any) -> Any:
        if isinstance(value, Secret):
            return Secret(value.ref, mask_secret(values[value.ref or ""]))
        if isinstance(value, dict):
            return {k: view(v) for k, v in value.items()}
        if isinstance(value, list):
            return [view(v) for v in value]
        return value
    return {kind: {key: view(record) for key, record in items.items()} for kind, items in full(objects).items()}


def exact(value: Any) -> Any:
    """Secrets as their views: compares what `Secret.__eq__` would forgive."""
    if isinstance(value, Secret):
        return ("secret", value.view)
    if isinstance(value, dict):
        return {k: exact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [exact(v) for v in value]
    return value


def make_plan(store: CoderStore, objects: Objects, values: Mapping[str, str] = SECRETS,
              **options: Any) -> Plan:
    actual = store.read()
    desired = State(objects=with_views(objects, values), default_organization=actual.default_organization,
                    default_prices=actual.default_prices)
    return compare(desired, actual, store.capabilities, PlanOptions(max_deletes=100, **options))


def converge(store: CoderStore, objects: Objects, values: Mapping[str, str] = SECRETS,
             **options: Any) -> list[ChangeResult]:
    plan = make_plan(store, objects, values, **options)
    assert not plan.refusal
    return store.apply(plan.changes, values, RUN)


def statuses(results: list[ChangeResult]) -> dict[str, str]:
    return {r.change.id: r.status for r in results}


Opener = Callable[..., CoderStore]


@pytest.fixture
def fake(fake_coder: FakeCoder) -> FakeCoder:
    fake_coder.add_organization("research")
    return fake_coder


@pytest.fixture
def open_coder(fake: FakeCoder, tmp_path: Path) -> Iterator[Opener]:
    """Opens Coder stores on the fake (lock files under tmp_path); closes them at teardown."""
    opened: list[CoderStore] = []

    def opener(cache: Path = tmp_path / "cache", **options: Any) -> CoderStore:
        environ = {"CODER_SESSION_TOKEN": fake.token, "XDG_CACHE_HOME": str(cache)}
        store = open_store("coder+" + fake.url, environ=environ, **{"backoff": 0.02, **options})
        assert isinstance(store, CoderStore)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        store.close()
    assert fake.server_errors == []


@pytest.fixture
def store(open_coder: Opener) -> CoderStore:
    return open_coder()


def expected_actual(objects: Objects, values: Mapping[str, str] = SECRETS) -> Any:
    return exact(with_views(objects, values))


# -- reading and writing every kind ----------------------------------------------------------


def test_an_empty_deployment_reads_empty(store: CoderStore, fake: FakeCoder) -> None:
    state = store.read()
    assert state.default_organization == ORG
    assert state.count() == 1 and state.of(SETTINGS) == {SETTINGS_KEY: {"allow_users": False}}
    book = {(p["provider"], p["model"]): p for p in DEFAULT_PRICE_BOOK}
    assert state.default_prices == {
        key: {f: row[f"{f}_price"] for f in ("input", "output", "cache_read", "cache_write")}
        for key, row in book.items()
    }
    caps = store.capabilities
    assert not caps.transactional and caps.secret_view == "masked"
    assert caps.write_only_secrets == {"settings"} and PRICE not in caps.deletable
    fake.add_organization("platform", is_default=True)
    assert store.read().default_organization == "platform"  # found, not assumed


def test_every_kind_round_trips_through_create_update_replace_delete(
    store: CoderStore, fake: FakeCoder
) -> None:
    objects = sample()
    results = converge(store, objects)
    assert set(statuses(results).values()) == {APPLIED}, [r.to_dict() for r in results if r.error]
    assert len(results) == 12  # 4 providers, 3 models, 2 prices, 2 overrides, the setting (an update)
    assert exact(store.read().objects) == expected_actual(objects)
    assert make_plan(store, objects).empty
    assert SECRETS["file:/run/secrets/compat"] in fake.secrets_seen

    # in place: every field kind of every kind, and a key rotation
    corp = objects[PROVIDER][("anthropic-corp",)]
    corp.update(display_name="Anthropic", icon="", enabled=False,
                api_keys=[Secret("env:ANTHROPIC_KEY_3"), Secret("env:ANTHROPIC_KEY_1")])
    objects[PROVIDER][("compat",)]["settings"] = None
    objects[PROVIDER][("bedrock-west",)]["settings"]["bedrock"]["region"] = "us-east-2"
    sonnet = objects[MODEL][(ORG, "anthropic-corp", "claude-sonnet-4-5")]
    sonnet.update(compression_threshold=50, display_name="Sonnet")
    objects[MODEL][(ORG, "compat", "llama-4")]["config"] = {}
    objects[PRICE][("openai-compat", "llama-4")]["cache_read"] = 0
    objects[OVERRIDE][(ORG, "general")]["reasoning_effort"] = "low"
    objects[SETTINGS][SETTINGS_KEY]["allow_users"] = False
    results = converge(store, objects)
    assert set(statuses(results).values()) == {APPLIED} and len(results) == 8
    assert exact(store.read().objects) == expected_actual(objects)
    assert make_plan(store, objects).empty

    # a type change replaces the provider; its models follow it to the new one
    models_before = {m.id: m.model for m in fake.state.models.values()}
    objects[PROVIDER][("compat",)].update(type="openai", base_url="https://api.openai.com/v1")
    del objects[PRICE][("openai-compat", "llama-4")]  # no openai-compat provider is left to price it
    plan = make_plan(store, objects)
    assert [(c.action, c.id) for c in plan.changes] == [("replace", "Provider/compat")]
    assert statuses(store.apply(plan.changes, SECRETS, RUN)) == {"Provider/compat": APPLIED}
    new_id = next(p.id for p in fake.state.providers.values() if p.name == "compat" and not p.deleted)
    assert {m.id: m.model for m in fake.state.models.values()} == models_before
    assert all(m.ai_provider_id == new_id for m in fake.state.models.values() if m.model == "llama-4")
    assert make_plan(store, objects).empty
    state = store.read()
    assert state.of(PROVIDER)[("compat",)]["type"] == "openai"
    assert {k for k in state.of(MODEL) if k[1] == "compat"} == {(ORG, "compat", "llama-4"),
                                                                ("research", "compat", "llama-4")}

    # --prune deletes all but prices (Coder cannot) and the settings singleton
    plan = make_plan(store, {}, prune=True)
    deletes = {c.id for c in plan.changes}
    assert {k for k in deletes if k.startswith("Price")} == set()
    assert any("cannot be deleted" in note and "Price/anthropic/claude-sonnet-4-5" in note for note in plan.notes)
    results = store.apply(plan.changes, SECRETS, RUN)
    assert set(statuses(results).values()) == {APPLIED}
    after = store.read()
    assert {k: len(v) for k, v in after.objects.items()} == {
        PROVIDER: 0, MODEL: 0, PRICE: 2, OVERRIDE: 0, SETTINGS: 1}


def test_reading_costs_one_request_per_collection(store: CoderStore, fake: FakeCoder) -> None:
    provider: Objects = {PROVIDER: {("compat",): sample()[PROVIDER][("compat",)]}}
    counts = []
    for size in (10, 200):
        models: dict[Key, Record] = {(org, "compat", f"model-{i:04d}"): {
            "display_name": f"Model {i}", "enabled": True, "default": i == 0, "context_limit": 128000,
            "compression_threshold": 70, "config": {"max_output_tokens": 1000 + i}}
            for org in (ORG, "research") for i in range(size)}
        results = converge(store, {**provider, MODEL: models})
        assert all(r.status == APPLIED for r in results)
        fake.reset_requests()
        assert make_plan(store, {**provider, MODEL: models}).empty
        counts.append(len(fake.requests))
        assert {(r.method, r.path) for r in fake.requests if r.method != "GET"} == {("POST", "/api/v2/authcheck")}
    # organizations, providers, prices, the toggle, build info, experiments, entitlements, one authcheck,
    # and models + overrides of each of 2 organizations
    assert counts == [12, 12]


def test_an_empty_apply_makes_no_request(store: CoderStore, fake: FakeCoder) -> None:
    converge(store, sample())
    fake.reset_requests()
    assert store.apply([], {}, RUN) == []
    assert fake.requests == []


def test_a_secret_value_not_given_refuses_before_any_request(store: CoderStore, fake: FakeCoder) -> None:
    plan = make_plan(store, sample())
    fake.reset_requests()
    values = {k: v for k, v in SECRETS.items() if k != "file:/run/secrets/compat"}
    with pytest.raises(SecretError, match="Provider/compat: file:/run/secrets/compat"):
        store.apply(plan.changes, values, RUN)
    assert fake.requests == []


# -- secrets ----------------------------------------------------------------------------------


def test_masked_keys_tell_a_changed_key_and_rotation_resends(store: CoderStore, fake: FakeCoder) -> None:
    objects: Objects = {PROVIDER: {("anthropic-corp",): sample()[PROVIDER][("anthropic-corp",)]}}
    converge(store, objects)
    assert make_plan(store, objects).empty

    changed = {**SECRETS, "env:ANTHROPIC_KEY_2": "sk-ant-api03-rotated-00000009"}
    (change,) = make_plan(store, objects, changed).changes
    assert change.send_secrets == ("api_keys",)
    assert [(d.path, d.note) for d in change.diff] == [("api_keys[1]", "(sensitive value changed)")]
    # unchanged first and last four characters: the masked form cannot tell
    lookalike = {**SECRETS, "env:ANTHROPIC_KEY_2": "sk-ant-api03-sXcXnd-000000002"}
    assert make_plan(store, objects, lookalike).empty

    # the key order is the failover order
    swapped = copy.deepcopy(objects)
    swapped[PROVIDER][("anthropic-corp",)]["api_keys"].reverse()
    (change,) = make_plan(store, swapped).changes
    assert {d.note for d in change.diff} == {"(sensitive value changed)"}

    fake.reset_requests()
    rotation = make_plan(store, objects, changed, rotate_secrets=True)
    assert [c.send_secrets for c in rotation.changes] == [("api_keys",)]
    assert statuses(store.apply(rotation.changes, changed, RUN)) == {"Provider/anthropic-corp": APPLIED}
    (patch,) = [r for r in fake.requests if r.method == "PATCH"]
    assert patch.body == {"api_keys": [{"api_key": SECRETS["env:ANTHROPIC_KEY_1"]},
                                       {"api_key": changed["env:ANTHROPIC_KEY_2"]}]}
    assert make_plan(store, objects, changed).empty
    assert [s.view for s in store.read().of(PROVIDER)[("anthropic-corp",)]["api_keys"]] == [
        "sk-a...0001", "sk-a...0009"]


def test_bedrock_credentials_are_write_only(store: CoderStore, fake: FakeCoder) -> None:
    assert store.secret_view("AKIAEXAMPLE0000000001", "settings") is None
    assert store.secret_view("sk-ant-api03-abcdefgh", "api_keys") == "sk-a...efgh"
    bedrock = copy.deepcopy(sample()[PROVIDER][("bedrock-west",)])
    bedrock["settings"]["bedrock"].update(access_key=Secret("env:AWS_KEY"), access_key_secret=Secret("env:AWS_SECRET"))
    values = {"env:AWS_KEY": "AKIAEXAMPLE0000000001", "env:AWS_SECRET": "aws-secret-example-000000000001"}
    desired = State(objects=full({PROVIDER: {("bedrock-west",): bedrock}}), default_organization=ORG)
    plan = compare(desired, store.read(), store.capabilities, PlanOptions())
    results = store.apply(plan.changes, values, RUN)
    assert statuses(results) == {"Provider/bedrock-west": APPLIED}
    stored = next(iter(fake.state.providers.values())).settings or {}
    assert (stored["access_key"], stored["access_key_secret"]) == tuple(values.values())
    read = store.read().of(PROVIDER)[("bedrock-west",)]["settings"]["bedrock"]
    assert "access_key" not in read and "external_id" not in read  # stripped; server-owned

    # a settings change that does not resend the credentials leaves the stored ones alone
    fake.reset_requests()
    before = store.read().of(PROVIDER)[("bedrock-west",)]
    after = copy.deepcopy(bedrock)
    after["settings"]["bedrock"]["region"] = "eu-west-1"
    change = Change(UPDATE, PROVIDER, ("bedrock-west",), before, after)
    assert statuses(store.apply([change], {}, RUN)) == {"Provider/bedrock-west": APPLIED}
    (patch,) = [r for r in fake.requests if r.method == "PATCH"]
    assert patch.body == {"settings": {"_type": "bedrock", "_version": 1, **{
        k: v for k, v in after["settings"]["bedrock"].items() if k not in ("access_key", "access_key_secret")}}}
    stored = next(iter(fake.state.providers.values())).settings or {}
    assert (stored["access_key"], stored["region"]) == (values["env:AWS_KEY"], "eu-west-1")


def test_errors_never_echo_a_secret(store: CoderStore, fake: FakeCoder) -> None:
    key = SECRETS["env:ANTHROPIC_KEY_1"]
    fake.inject(400, method="POST", path_prefix=PROVIDERS,
                body={"message": f"Bad key {key}.", "detail": f"got {key}", "validations": [
                    {"field": "api_keys[0]", "detail": f"{key} is not accepted"}]})
    objects: Objects = {PROVIDER: {("anthropic-corp",): sample()[PROVIDER][("anthropic-corp",)]}}
    (result,) = converge(store, objects)
    assert result.status == FAILED
    shown = repr(result.to_dict()) + repr(store)
    assert key not in shown and "(redacted)" in result.error
    assert result.details == ("api_keys[0]: (redacted) is not accepted",)
    assert fake.token not in shown


def test_a_price_coder_refuses_fails_alone(store: CoderStore, fake: FakeCoder) -> None:
    good = {"input": 1, "output": 2, "cache_read": None, "cache_write": None}
    changes = [Change(CREATE, PRICE, ("openai", "gpt-x"), None, good),
               Change(CREATE, PRICE, ("openai", "gpt-y"), None, {**good, "input": -1}),
               Change(CREATE, PRICE, ("openai-compat", "llama"), None, good)]
    results = {r.change.id: r for r in store.apply(changes, {}, RUN)}
    assert results["Price/openai/gpt-x"].status == APPLIED
    refused = results["Price/openai/gpt-y"]
    assert (refused.status, refused.error) == (FAILED, "Coder answered 400 Bad Request: Invalid AI model prices.")
    assert refused.details == ("prices[1].input_price: Price must not be negative.",)
    assert results["Price/openai-compat/llama"].error == (
        "Coder prices openai-compat models per provider, and there is no openai-compat provider")
    assert [len(r.body["prices"]) for r in fake.requests if r.method == "POST" and r.path == PRICES] == [2, 1]
    assert store.read().of(PRICE) == {("openai", "gpt-x"): good}


# -- read-back and older servers ---------------------------------------------------------------


def test_a_field_an_older_server_dropped_fails_the_change(store: CoderStore, fake: FakeCoder) -> None:
    fake.drop_fields = {"provider": {"icon"}, "model": {"compression_threshold"}}
    objects = sample()
    objects[MODEL] = {k: v for k, v in objects[MODEL].items() if k[1] == "compat"}
    objects[OVERRIDE] = {}
    results = {r.change.id: r for r in converge(store, objects)}
    corp = results["Provider/anthropic-corp"]
    assert corp.status == FAILED
    assert 'icon (sent "/icon/claude.svg", it holds "")' in corp.error
    assert "older Coder silently ignores request fields" in corp.error
    research = results["Model/research/compat/llama-4"]
    assert research.status == FAILED and "compression_threshold (sent 50, it holds 70)" in research.error
    # the default (70) for 128k and 30 for 1M are what Coder picks itself: nothing was lost
    assert results["Model/coder/compat/llama-4"].status == APPLIED
    assert results["Provider/compat"].status == APPLIED
    fake.drop_fields = {}
    assert all(r.status == APPLIED for r in converge(store, objects))
    assert make_plan(store, objects).empty


def test_a_missing_collection_names_the_feature_and_version(store: CoderStore, fake: FakeCoder) -> None:
    fake.version = "v2.36.4"
    fake.missing_endpoints = {"models", "prices"}
    state = store.read()  # a deployment without them still reads
    assert state.of(MODEL) == {} and state.default_prices == {}
    assert converge(store, {PROVIDER: sample()[PROVIDER]})[0].status == APPLIED  # what it has works
    plan = make_plan(store, sample())
    fake.reset_requests()
    with pytest.raises(StoreError) as caught:
        store.apply(plan.changes, SECRETS, RUN)
    assert str(caught.value) == (
        "nothing was applied: this Coder deployment (version v2.36.4) has no model prices "
        "(GET /api/experimental/ai/model-prices answered 404): that needs Coder v2.37 or later "
        "(enterprise, AI Governance add-on); this Coder deployment (version v2.36.4) has no "
        "organization-scoped Coder Agents models (GET /api/v2/organizations/{org}/chats/models "
        "answered 404): that needs Coder v2.37 or later")
    assert fake.requests == []


# -- faults -----------------------------------------------------------------------------------


def one_provider() -> Objects:
    return {PROVIDER: {("compat",): sample()[PROVIDER][("compat",)]},
            MODEL: {(ORG, "compat", "llama-4"): sample()[MODEL][(ORG, "compat", "llama-4")]}}


def test_429_is_retried_after_retry_after(store: CoderStore, fake: FakeCoder) -> None:
    fake.inject(429, method="POST", path_prefix=PROVIDERS, retry_after=0.4)
    fake.inject(429, method="POST", path_prefix=PROVIDERS, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
    started = time.monotonic()
    results = converge(store, one_provider())
    assert set(statuses(results).values()) == {APPLIED}
    assert time.monotonic() - started >= 0.4
    posts = [r.status for r in fake.requests if r.method == "POST" and r.path == PROVIDERS]
    assert posts == [429, 429, 201]  # a Retry-After date in the past: again at once


def test_a_500_on_a_create_is_looked_up_before_it_is_sent_again(store: CoderStore, fake: FakeCoder) -> None:
    converge(store, {PROVIDER: one_provider()[PROVIDER]})
    fake.reset_requests()
    fake.inject(500, method="POST", path_prefix="/api/v2/organizations/")
    results = converge(store, one_provider())
    assert set(statuses(results).values()) == {APPLIED}
    org = fake.state.find_organization(ORG)
    assert org is not None
    calls = [(r.method, r.status) for r in fake.requests if r.path == f"/api/v2/organizations/{org.id}/chats/models"]
    assert calls == [("GET", 200), ("POST", 500), ("GET", 200), ("POST", 201)]  # read, create, look up, create
    assert len(fake.state.models) == 1


def test_a_503_that_persists_fails_the_change_and_skips_its_dependants(
    fake: FakeCoder, open_coder: Opener
) -> None:
    store = open_coder(retries=3, backoff=0.01)
    corp = sample()[PROVIDER][("anthropic-corp",)]
    converge(store, {PROVIDER: {("anthropic-corp",): corp}})
    fake.reset_requests()
    objects = one_provider()
    objects[PROVIDER][("anthropic-corp",)] = {**corp, "display_name": "Anthropic"}
    fake.inject(503, times=100, method="POST", path_prefix=PROVIDERS)
    results = {r.change.id: r for r in converge(store, objects)}
    assert {i: r.status for i, r in results.items()} == {
        "Provider/anthropic-corp": APPLIED, "Provider/compat": FAILED, "Model/coder/compat/llama-4": SKIPPED}
    assert results["Provider/compat"].error == (
        "Coder answered 503 Service Unavailable: Service Unavailable. (Injected fault.) (after 3 attempts)")
    assert results["Model/coder/compat/llama-4"].error == "not attempted: Provider/compat did not succeed"
    assert fake.count("POST", PROVIDERS) == 3


def test_a_dropped_connection_is_retried_without_a_duplicate(store: CoderStore, fake: FakeCoder) -> None:
    fake.inject(drop_connection=True, method="POST", path_prefix=PROVIDERS)
    results = converge(store, one_provider())
    assert set(statuses(results).values()) == {APPLIED}
    posts = [r.status for r in fake.requests if r.method == "POST" and r.path == PROVIDERS]
    assert posts == [0, 201]
    assert fake.count("GET", f"{PROVIDERS}/compat") == 1  # looked up before sending it again
    assert len(fake.state.providers) == 1


def test_a_create_that_landed_after_a_timeout_is_found_not_repeated(
    fake: FakeCoder, open_coder: Opener
) -> None:
    store = open_coder(request_timeout=0.1, backoff=1.0)
    fake.inject(delay=0.3, method="POST", path_prefix=PROVIDERS)
    results = converge(store, one_provider())
    assert set(statuses(results).values()) == {APPLIED}
    assert fake.count("POST", PROVIDERS) == 1  # the write landed after the client gave up
    assert [r.status for r in fake.requests if r.path == f"{PROVIDERS}/compat"] == [200]
    assert make_plan(store, one_provider()).empty


def test_the_deadline_stops_retries_and_what_depends_on_them(fake: FakeCoder, open_coder: Opener) -> None:
    store = open_coder(deadline=1.0, retries=50)
    plan = make_plan(store, one_provider())
    fake.inject(503, times=100, method="POST", path_prefix=PROVIDERS, retry_after=0.3)
    started = time.monotonic()
    results = store.apply(plan.changes, SECRETS, RUN)
    assert time.monotonic() - started < 1.5
    provider, model = results
    assert provider.status == FAILED and "would pass the deadline" in provider.error
    assert model.status == SKIPPED


# -- partial failure and ordering -------------------------------------------------------------


def test_a_failure_skips_dependants_only_and_the_next_run_converges(store: CoderStore, fake: FakeCoder) -> None:
    objects = sample()
    objects[PROVIDER][("anthropic-corp",)]["base_url"] = "ftp://api.anthropic.com"  # Coder refuses it
    results = {r.change.id: r for r in converge(store, objects)}
    failed = results["Provider/anthropic-corp"]
    assert failed.status == FAILED
    assert failed.error == "Coder answered 400 Bad Request: Invalid AI provider request."
    assert failed.details == ('base_url: base_url scheme must be http or https, got "ftp"',)
    skipped = {i for i, r in results.items() if r.status == SKIPPED}
    assert skipped == {"Model/coder/anthropic-corp/claude-sonnet-4-5", "Override/coder/general"}
    assert results["Override/coder/general"].error == (
        "not attempted: Model/coder/anthropic-corp/claude-sonnet-4-5 did not succeed")
    assert {i for i, r in results.items() if r.status == APPLIED} == set(results) - skipped - {failed.change.id}
    objects[PROVIDER][("anthropic-corp",)]["base_url"] = "https://api.anthropic.com"
    again = converge(store, objects)
    # with Sonnet missing, Coder made the first model of the organization its default: now demoted
    assert {r.change.id for r in again} == {failed.change.id, *skipped, "Model/coder/compat/llama-4"}
    assert set(statuses(again).values()) == {APPLIED}
    assert make_plan(store, objects).empty


def test_moving_the_default_never_force_promotes_another_model(store: CoderStore, fake: FakeCoder) -> None:
    base = sample()[MODEL][(ORG, "compat", "llama-4")]
    models: dict[Key, Record] = {(ORG, "compat", name): {**base, "display_name": name, "default": name == "a"}
                                 for name in ("a", "b", "c")}
    objects: Objects = {PROVIDER: {("compat",): sample()[PROVIDER][("compat",)]}, MODEL: models}
    converge(store, objects)
    models[(ORG, "compat", "a")]["default"] = False
    models[(ORG, "compat", "b")]["default"] = True
    fake.reset_requests()
    plan = make_plan(store, objects)
    assert [c.id for c in plan.changes] == ["Model/coder/compat/b", "Model/coder/compat/a"]
    assert plan.changes[1].depends_on == ("Model/coder/compat/b",)
    assert set(statuses(store.apply(plan.changes, SECRETS, RUN)).values()) == {APPLIED}
    patches = [r.body for r in fake.requests if r.method == "PATCH"]
    assert patches == [{"is_default": True}]  # demoting a was Coder's doing already
    defaults = {m.model: m.is_default for m in fake.state.models.values()}
    assert defaults == {"a": False, "b": True, "c": False}
    assert make_plan(store, objects).empty


def test_parallel_writes_follow_dependencies(fake: FakeCoder, open_coder: Opener) -> None:
    store = open_coder(parallelism=16)
    models: dict[Key, Record] = {
        (ORG, "compat", f"m-{i:02d}"): {**sample()[MODEL][(ORG, "compat", "llama-4")], "default": False}
        for i in range(16)}
    plan = make_plan(store, {PROVIDER: {("compat",): sample()[PROVIDER][("compat",)]}, MODEL: models})
    fake.latency = 0.1
    fake.reset_requests()
    started = time.monotonic()
    results = store.apply(plan.changes, SECRETS, RUN)
    elapsed = time.monotonic() - started
    assert set(statuses(results).values()) == {APPLIED} and len(results) == 17
    paths = [r.path for r in fake.requests]
    assert paths[0] == PROVIDERS and len(paths) == 17  # the provider first, then its models
    assert elapsed < 17 * 0.1 / 2, f"{elapsed:.2f} s: the models were not written concurrently"


# -- locking ----------------------------------------------------------------------------------


def test_a_second_local_lock_times_out_naming_the_holder(
    store: CoderStore, fake: FakeCoder, open_coder: Opener, tmp_path: Path
) -> None:
    other = open_coder()
    with store.lock(5, "alice@ci-runner-7"), \
            pytest.raises(LockError, match=r"^the store is locked by alice@ci-runner-7 \(pid "), \
            other.lock(0.2, "bob"):
        pass
    with other.lock(1, "bob"):
        pass
    locks = list((tmp_path / "cache" / "reconciler" / "locks").iterdir())
    assert [p.name for p in locks] == [f"coder-127.0.0.1_{fake.url.rsplit(':', 1)[1]}.lock"]


def test_a_lock_held_by_a_killed_process_is_released(store: CoderStore, fake: FakeCoder, tmp_path: Path) -> None:
    code = (
        "import sys, time\n"
        "from reconciler.stores import open_store\n"
        "store = open_store(sys.argv[1], environ={'CODER_SESSION_TOKEN': 't', 'XDG_CACHE_HOME': sys.argv[2]})\n"
        "held = store.lock(5, 'doomed-run')\n"
        "held.__enter__()\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-c", code, "coder+" + fake.url, str(tmp_path / "cache")]
    holder = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockError, match=f"locked by doomed-run \\(pid {holder.pid} "), store.lock(0.1, "me"):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        with store.lock(5, "me"):
            pass
    finally:
        holder.kill()
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()


def test_the_lock_of_a_sql_lock_store(fake: FakeCoder, open_coder: Opener, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/locks.db"
    first, second = (open_coder(tmp_path / n, lock_store=url) for n in ("a", "b"))
    with first.lock(5, "cron@host-a"), pytest.raises(LockError, match="locked by cron@host-a"), \
            second.lock(0.1, "cron@host-b"):
        pass
    with second.lock(1, "cron@host-b"):
        pass
    assert (tmp_path / "locks.db.lock").exists() and not (tmp_path / "a" / "cache").exists()
    with pytest.raises(UsageError, match="--lock-store takes a SQL store URL"):
        open_coder(lock_store="coder+" + fake.url)


# -- opening ----------------------------------------------------------------------------------


def test_an_unreachable_deployment_fails_the_read_in_one_line() -> None:
    unreachable = CoderStore("coder+http://127.0.0.1:9", environ={"CODER_SESSION_TOKEN": "x"},
                             retries=2, backoff=0.01)
    try:
        with pytest.raises(StoreError) as caught:
            unreachable.read()
    finally:
        unreachable.close()
    assert str(caught.value) == (
        "cannot read /api/v2/organizations from coder+http://127.0.0.1:9: "
        "cannot connect to Coder: Connection refused (after 2 attempts)")
    assert caught.value.__cause__ is None


def test_urls_tokens_and_options(fake: FakeCoder, tmp_path: Path) -> None:
    env = {"CODER_SESSION_TOKEN": "tok-123456"}
    store = CoderStore("coder+HTTPS://Coder.Example.com/", environ=env)
    store.close()
    assert store.url == "coder+https://coder.example.com" and "tok-123456" not in repr(store)
    for bad, message in (
        ("coder+http://coder.example.com", "only for loopback"),
        ("coder+https://user:pw@coder.example.com", "no user, password"),
        ("coder+https://coder.example.com?token=x", "no user, password"),
        ("coder+ftp://coder.example.com", "bad Coder store URL"),
    ):
        with pytest.raises(UsageError, match=message):
            CoderStore(bad, environ=env)
    with pytest.raises(UsageError, match="set CODER_SESSION_TOKEN or pass --token-file"):
        CoderStore("coder+https://coder.example.com", environ={})
    token_file = tmp_path / "token"
    token_file.write_text(fake.token + "\n")
    from_file = CoderStore("coder+" + fake.url, token_file=str(token_file), environ={})
    try:
        assert from_file.read().default_organization == ORG
    finally:
        from_file.close()
    assert fake.requests[-1].headers["coder-session-token"] == fake.token
    with pytest.raises(UsageError, match=f"cannot read the Coder token file {tmp_path}/nope"):
        CoderStore("coder+" + fake.url, token_file=str(tmp_path / "nope"), environ={})
    with pytest.raises(UsageError, match="colour"):
        open_store("coder+" + fake.url, environ=env, colour="blue")
