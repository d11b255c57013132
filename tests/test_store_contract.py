"""The SQL store contract, run against SQLite (files under tmp_path) and the real PostgreSQL.

Set RECONCILER_TEST_POSTGRES_DSN (e.g. postgresql://postgres@127.0.0.1:5432/test)
to include PostgreSQL; each of its tests gets a fresh schema.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from reconciler.changes import CREATE, DELETE, REPLACE, UPDATE, Change, ChangeResult
from reconciler.errors import LockError, SecretError, StoreError, UsageError
from reconciler.prices import default_price_book
from reconciler.secrets import ENCRYPTION_KEY_ENV, Secret, key_id
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
)
from reconciler.stores import open_store
from reconciler.stores.base import RunInfo
from reconciler.stores.postgres import redact
from reconciler.stores.sql import SqlStore
from tests import storefixtures
from tests.storefixtures import ENV, KEY_A, KEY_B, ROOT, Backend, PostgresBackend, SqliteBackend

backend = storefixtures.backend  # fixtures: both stores; PostgreSQL alone; an opened store
pg_backend = storefixtures.pg_backend
store = storefixtures.store

RUN = RunInfo(who="tester@ci", tool_version="0.0-test", plan={"format_version": "1"})
SECRETS = {
    "env:ANTHROPIC_KEY_1": "sk-ant-first-000000000001",
    "env:ANTHROPIC_KEY_2": "sk-ant-second-00000000002",
    "env:AWS_ACCESS_KEY_ID": "AKIAEXAMPLEEXAMPLE00",
    "env:AWS_SECRET_ACCESS_KEY": "aws-secret-example-0000000000000000000000",
    "file:/run/secrets/compat": "compat-key-0000000000000",
}
Objects = dict[str, dict[Key, Record]]


def sample() -> Objects:
    """Objects of every kind, with every secret position and settings variant used."""
    return {
        PROVIDER: {
            ("anthropic-corp",): {
                "type": "anthropic",
                "display_name": "Anthropic (corp)",
                "icon": "/icon/claude.svg",
                "enabled": True,
                "base_url": "https://api.anthropic.com",
                "api_keys": [Secret("env:ANTHROPIC_KEY_1"), Secret("env:ANTHROPIC_KEY_2")],
                "settings": {"wif": {"audience": "https://gateway.example.com", "pool": "corp"}},
            },
            ("bedrock-west",): {
                "type": "bedrock",
                "display_name": "Bedrock",
                "icon": "",
                "enabled": False,
                "base_url": "https://bedrock-runtime.us-west-2.amazonaws.com",
                "api_keys": [],
                "settings": {"bedrock": {
                    "region": "us-west-2",
                    "protocol": "invoke-model",
                    "model": "anthropic.claude-sonnet-4-5",
                    "access_key": Secret("env:AWS_ACCESS_KEY_ID"),
                    "access_key_secret": Secret("env:AWS_SECRET_ACCESS_KEY"),
                }},
            },
            ("compat",): {
                "type": "openai-compat",
                "display_name": "Compat",
                "icon": "",
                "enabled": True,
                "base_url": "https://llm.internal.example.com/v1",
                "api_keys": [Secret("file:/run/secrets/compat")],
                "settings": {"upstream_headers": {"X-Team": "platform", "X-Env": "prod"}},
            },
        },
        MODEL: {
            ("default", "anthropic-corp", "claude-sonnet-4-5"): {
                "display_name": "Claude Sonnet 4.5",
                "enabled": True,
                "default": True,
                "context_limit": 200000,
                "compression_threshold": 70,
                "config": {
                    "max_output_tokens": 64000,
                    "reasoning_effort": {"default": "medium", "max": "high"},
                    "provider_options": {"anthropic": {"thinking": {"budget_tokens": 4096}}},
                },
            },
            ("research", "compat", "llama-4"): {
                "display_name": "Llama 4",
                "enabled": False,
                "default": False,
                "context_limit": 1000000,
                "compression_threshold": 30,
                "config": {"temperature": 0.7},
            },
        },
        PRICE: {
            ("anthropic", "claude-sonnet-4-5"): {
                "input": 3_000_000, "output": 15_000_000, "cache_read": 300_000,
                "cache_write": None,
            },
            ("openai-compat", "llama-4"):
                {"input": 0, "output": 1, "cache_read": None, "cache_write": None},
        },
        OVERRIDE: {
            ("default", "general"): {
                "provider": "anthropic-corp", "model": "claude-sonnet-4-5",
                "reasoning_effort": "max",
            },
            ("default", "title_generation"):
                {"provider": "compat", "model": "llama-4", "reasoning_effort": None},
        },
        SETTINGS: {SETTINGS_KEY: {"allow_users": True}},
    }


def models(count: int, provider: str = "compat") -> Objects:
    return {MODEL: {
        ("default", provider, f"model-{i:05d}"): {
            "display_name": f"Model {i}",
            "enabled": i % 7 != 0,
            "default": False,
            "context_limit": 128000,
            "compression_threshold": 70,
            "config": {"temperature": 0.5, "max_output_tokens": 4096 + i},
        }
        for i in range(count)
    }}


def broken_model() -> Change:
    """A create the database refuses (context_limit is NOT NULL), for failing an apply midway."""
    record = {"display_name": "Broken", "enabled": True, "default": False, "context_limit": None,
              "compression_threshold": 70, "config": {}}
    return Change(CREATE, MODEL, ("default", "compat", "broken"), None, record)


def creates(objects: Objects) -> list[Change]:
    return [Change(CREATE, kind, key, None, record)
            for kind, items in objects.items() for key, record in items.items()]


def resend(key: Key, record: Record, group: str = "api_keys") -> Change:
    return Change(UPDATE, PROVIDER, key, record, record, send_secrets=(group,))


def exact(value: Any) -> Any:
    """Secrets as (ref, view) tuples: compares what `Secret.__eq__` would forgive."""
    if isinstance(value, Secret):
        return ("secret", value.ref, value.view)
    if isinstance(value, dict):
        return {k: exact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [exact(v) for v in value]
    return value


def expected(store: SqlStore, objects: Objects, values: Mapping[str, str] | None = None) -> Any:
    """`objects` as the store must read them back: each secret with its view of the value."""
    values = SECRETS if values is None else values

    def view(value: Any) -> Any:
        if isinstance(value, Secret):
            return Secret(value.ref, store.secret_view(values[value.ref or ""], "api_keys"))
        if isinstance(value, dict):
            return {k: view(v) for k, v in value.items()}
        if isinstance(value, list):
            return [view(v) for v in value]
        return value

    full: Objects = {kind: {} for kind in KIND_ORDER}
    full.update(objects)
    return exact(view(full))


def snapshot(store: SqlStore) -> Any:
    return exact(store.read().objects)


def secret_rows(backend: Backend) -> list[tuple[Any, ...]]:
    query = "SELECT owner, slot, ref, key_id, ciphertext, fingerprint FROM secrets"
    return sorted(backend.query(query))


def history_count(backend: Backend) -> int:
    return int(backend.query("SELECT count(*) FROM history")[0][0])


def key_id_of(key: str) -> str:
    return key_id(base64.b64decode(key))


# -- reading and writing every kind ----------------------------------------------------------


def test_an_empty_store_reads_empty(store: SqlStore) -> None:
    state = store.read()
    assert state.count() == 0
    assert state.default_organization == "default"
    assert state.default_prices == default_price_book()
    assert store.capabilities.transactional and store.capabilities.secret_view == "fingerprint"


def test_every_kind_round_trips_through_create_update_replace_delete(store: SqlStore) -> None:
    objects = sample()
    store.apply(creates(objects), SECRETS, RUN)
    assert snapshot(store) == expected(store, objects)

    before = copy.deepcopy(objects)
    objects[PROVIDER][("anthropic-corp",)].update(
        display_name="Anthropic", enabled=False, icon="", settings=None,
        api_keys=[Secret("env:ANTHROPIC_KEY_2")])
    objects[MODEL][("default", "anthropic-corp", "claude-sonnet-4-5")].update(
        default=False, compression_threshold=50, config={})
    objects[PRICE][("anthropic", "claude-sonnet-4-5")]["cache_write"] = 3_750_000
    objects[OVERRIDE][("default", "general")]["reasoning_effort"] = "low"
    objects[SETTINGS][SETTINGS_KEY]["allow_users"] = False
    updates = [
        Change(UPDATE, kind, key, before[kind][key], record,
               send_secrets=("api_keys",) if kind == PROVIDER else ())
        for kind, items in objects.items() for key, record in items.items()
        if exact(record) != exact(before[kind][key])
    ]
    assert len(updates) == 5
    store.apply(updates, SECRETS, RUN)
    assert snapshot(store) == expected(store, objects)

    replaced = {
        "type": "bedrock", "display_name": "Compat on Bedrock", "icon": "", "enabled": True,
        "base_url": None, "api_keys": [],
        "settings": {"bedrock": {"region": "eu-west-1",
                                 "access_key": Secret("env:AWS_ACCESS_KEY_ID"),
                                 "access_key_secret": Secret("env:AWS_SECRET_ACCESS_KEY")}},
    }
    compat = objects[PROVIDER][("compat",)]
    store.apply([Change(REPLACE, PROVIDER, ("compat",), compat, replaced)], SECRETS, RUN)
    objects[PROVIDER][("compat",)] = replaced
    assert snapshot(store) == expected(store, objects)

    deletes = [Change(DELETE, kind, key, record, None)
               for kind, items in reversed(objects.items()) for key, record in items.items()]
    store.apply(deletes, {}, RUN)
    assert store.read().count() == 0
    assert snapshot(store) == expected(store, {})


def test_fingerprints_persist_across_opens(backend: Backend) -> None:
    first, second = backend.open(environ=ENV), backend.open(environ=ENV)
    assert first.secret_view("sk-x", "api_keys") == second.secret_view("sk-x", "api_keys")
    assert first.secret_view("sk-x", "api_keys") != first.secret_view("sk-y", "api_keys")


# -- secrets ----------------------------------------------------------------------------------


def test_secrets_are_encrypted_at_rest_and_never_surface(backend: Backend, store: SqlStore) -> None:
    canary = "sk-canary-" + os.urandom(16).hex()
    aws_canary = "aws-canary-" + os.urandom(16).hex()
    values = {**SECRETS, "env:CANARY": canary, "env:AWS_SECRET_ACCESS_KEY": aws_canary}
    objects = sample()
    corp = objects[PROVIDER][("anthropic-corp",)]
    corp["api_keys"] = [Secret("env:CANARY")]
    store.apply(creates(objects), values, RUN)

    state = store.read()
    assert snapshot(store) == expected(store, objects, values)
    api_key = state.of(PROVIDER)[("anthropic-corp",)]["api_keys"][0]
    assert api_key.view == store.secret_view(canary, "api_keys")
    bedrock = state.of(PROVIDER)[("bedrock-west",)]["settings"]["bedrock"]
    assert bedrock["access_key_secret"].view == store.secret_view(aws_canary, "settings")

    # an apply that carries the plaintexts and fails: neither the error nor the store shows them
    with pytest.raises(StoreError) as caught:
        store.apply([resend(("anthropic-corp",), corp), broken_model()], values, RUN)
    shown = "".join(traceback.format_exception(caught.value))
    shown += repr(caught.value) + repr(store) + repr(state)
    dump = backend.dump()
    for plaintext in (canary, aws_canary):
        assert plaintext not in shown
        assert plaintext.encode() not in dump
    assert b"sk-canary-" not in dump


def test_secret_slots_not_sent_keep_their_ciphertext(backend: Backend, store: SqlStore) -> None:
    objects = sample()
    store.apply(creates(objects), SECRETS, RUN)
    rows = secret_rows(backend)
    assert len(rows) == 5 and {row[3] for row in rows} == {key_id_of(KEY_A)}

    before = copy.deepcopy(objects[PROVIDER])
    corp, bedrock = objects[PROVIDER][("anthropic-corp",)], objects[PROVIDER][("bedrock-west",)]
    corp["display_name"] = "renamed"
    corp["api_keys"] = [Secret("env:SAME_VALUE_NEW_NAME"), Secret("env:ANTHROPIC_KEY_2")]
    bedrock["settings"]["bedrock"]["region"] = "us-east-1"
    changes = [Change(UPDATE, PROVIDER, key, before[key], objects[PROVIDER][key])
               for key in (("anthropic-corp",), ("bedrock-west",))]
    store.apply(changes, {}, RUN)  # no secret group sent: no values needed
    after = secret_rows(backend)
    assert [(r[0], r[1], r[4], r[5]) for r in after] == [(r[0], r[1], r[4], r[5]) for r in rows]
    assert ("anthropic-corp", "api_keys/0", "env:SAME_VALUE_NEW_NAME") in {r[:3] for r in after}
    values = {**SECRETS, "env:SAME_VALUE_NEW_NAME": SECRETS["env:ANTHROPIC_KEY_1"]}
    assert snapshot(store) == expected(store, objects, values)

    # send the settings group only: the api_keys rows stay as they were
    values["env:AWS_SECRET_ACCESS_KEY"] = "aws-secret-rotated-000000000000000000000"
    store.apply([resend(("bedrock-west",), bedrock, "settings")], values, RUN)
    rotated = {r[:2]: r for r in secret_rows(backend)}
    for row in after:
        assert (rotated[row[:2]][4] != row[4]) == (row[0] == "bedrock-west"), row[:2]
    assert snapshot(store) == expected(store, objects, values)


def test_a_missing_encryption_key_refuses_before_any_write(backend: Backend) -> None:
    store = backend.open(environ={})
    before, dump = snapshot(store), backend.dump()
    with pytest.raises(SecretError, match=ENCRYPTION_KEY_ENV):
        store.apply(creates(sample()), SECRETS, RUN)
    assert snapshot(store) == before and history_count(backend) == 0
    if isinstance(backend, SqliteBackend):
        assert backend.dump() == dump
    # a plan that writes no secret needs no key
    objects = {kind: items for kind, items in sample().items() if kind != PROVIDER}
    store.apply(creates(objects), {}, RUN)
    assert snapshot(store) == expected(store, objects)


def test_a_value_missing_from_secrets_refuses_before_any_write(
    backend: Backend, store: SqlStore
) -> None:
    objects = sample()
    store.apply(creates({MODEL: objects[MODEL]}), {}, RUN)
    before, history = snapshot(store), history_count(backend)
    values = {k: v for k, v in SECRETS.items() if k != "file:/run/secrets/compat"}
    with pytest.raises(SecretError, match="file:/run/secrets/compat"):
        store.apply(creates({PRICE: objects[PRICE], PROVIDER: objects[PROVIDER]}), values, RUN)
    assert snapshot(store) == before and history_count(backend) == history


def test_the_wrong_key_is_refused(backend: Backend) -> None:
    backend.open(environ=ENV).apply(creates(sample()), SECRETS, RUN)
    store = backend.open(environ={ENCRYPTION_KEY_ENV: KEY_B})
    before, rows = snapshot(store), secret_rows(backend)
    compat = sample()[PROVIDER][("compat",)]
    with pytest.raises(SecretError, match="none of the keys"):
        store.apply([resend(("compat",), compat)], SECRETS, RUN)
    assert snapshot(store) == before and secret_rows(backend) == rows
    with pytest.raises(SecretError, match="rekeying changed nothing"):
        store.rekey()
    assert secret_rows(backend) == rows


def test_rekey_re_encrypts_every_secret_with_the_first_key(backend: Backend) -> None:
    backend.open(environ=ENV).apply(creates(sample()), SECRETS, RUN)
    before = snapshot(backend.open(environ=ENV))
    rows = secret_rows(backend)
    rotating = backend.open(environ={ENCRYPTION_KEY_ENV: f"{KEY_B},{KEY_A}"})
    assert rotating.rekey() == len(rows) == 5
    after = secret_rows(backend)
    assert {r[3] for r in after} == {key_id_of(KEY_B)}
    assert all(old[4] != new[4] for old, new in zip(rows, after, strict=True))
    assert [r[5] for r in after] == [r[5] for r in rows]  # same values, same fingerprints
    assert snapshot(rotating) == before

    only_b = backend.open(environ={ENCRYPTION_KEY_ENV: KEY_B})
    assert only_b.rekey() == 0  # B now decrypts everything, and nothing is left to move
    change = [resend(("compat",), sample()[PROVIDER][("compat",)])]
    only_b.apply(change, SECRETS, RUN)
    with pytest.raises(SecretError, match="none of the keys"):
        backend.open(environ=ENV).apply(change, SECRETS, RUN)


# -- transactions and history -----------------------------------------------------------------


def test_a_failing_change_leaves_the_store_as_it_was(backend: Backend, store: SqlStore) -> None:
    objects = sample()
    store.apply(creates(objects), SECRETS, RUN)
    before, rows, history = snapshot(store), secret_rows(backend), history_count(backend)
    corp = objects[PROVIDER][("anthropic-corp",)]
    changes = [
        resend(("anthropic-corp",), {**corp, "display_name": "changed"}),
        Change(DELETE, PROVIDER, ("bedrock-west",), objects[PROVIDER][("bedrock-west",)], None),
        *creates(models(50)),
        Change(DELETE, PRICE, ("anthropic", "claude-sonnet-4-5"), {}, None),
        broken_model(),
    ]
    seen: list[ChangeResult] = []
    with pytest.raises(StoreError) as caught:
        store.apply(changes, SECRETS, RUN, seen.append)
    message = str(caught.value)
    assert "\n" not in message and "rolled back: nothing was written" in message
    assert "INSERT" not in message and "context_limit" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert seen == []
    assert snapshot(store) == before
    assert secret_rows(backend) == rows and history_count(backend) == history


def test_an_empty_apply_writes_nothing(backend: Backend, store: SqlStore) -> None:
    store.apply(creates(sample()), SECRETS, RUN)
    history = history_count(backend)
    files: dict[Path, tuple[bytes, int]] = {}
    if isinstance(backend, SqliteBackend):
        files = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in backend.files()}
        time.sleep(0.01)
    assert store.apply([], {}, RUN) == []
    assert history_count(backend) == history
    if isinstance(backend, SqliteBackend):
        assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in backend.files()} == files


def test_each_apply_is_recorded_in_the_history(store: SqlStore) -> None:
    objects = sample()
    seen: list[ChangeResult] = []
    first = store.apply(creates(objects), SECRETS, RUN, seen.append)
    assert seen == first and [r.status for r in first] == ["applied"] * len(first)
    run = RunInfo(who="alice@laptop", tool_version="9.9.9", plan={"format_version": "1", "n": 2},
                  source={"commit": "a" * 40, "run_url": "https://ci.example.com/acme/runs/7"})
    settings = objects[SETTINGS][SETTINGS_KEY]
    change = Change(UPDATE, SETTINGS, SETTINGS_KEY, settings, {"allow_users": False})
    second = store.apply([change], {}, run)
    newest, oldest = store.history(10)
    assert newest["id"] > oldest["id"]
    assert (newest["who"], newest["tool_version"]) == ("alice@laptop", "9.9.9")
    assert newest["plan"] == run.plan
    assert (newest["commit"], newest["run_url"]) == ("a" * 40, "https://ci.example.com/acme/runs/7")
    assert (oldest["commit"], oldest["run_url"]) == (None, None)
    assert newest["results"] == [{"id": r.change.id, "action": r.change.action, "status": "applied"} for r in second]
    assert oldest["results"] == [{"id": r.change.id, "action": r.change.action, "status": "applied"} for r in first]
    assert oldest["who"] == "tester@ci"
    assert oldest["started_at"] <= oldest["finished_at"] <= newest["started_at"]
    assert store.history(1) == [newest]


# -- locking ----------------------------------------------------------------------------------


def test_a_second_lock_times_out_naming_the_holder(backend: Backend) -> None:
    first, second = backend.open(), backend.open()
    with first.lock(5, "alice@ci-runner-7"):
        started = time.monotonic()
        with pytest.raises(LockError) as caught, second.lock(0.3, "bob"):
            pass
        assert 0.3 <= time.monotonic() - started < 3
    message = str(caught.value)
    assert message.startswith("the store is locked by alice@ci-runner-7 (pid ")
    assert f"pid {os.getpid()} on host {socket.gethostname()} since " in message
    assert message.endswith("; gave up after 0.3 s")
    with second.lock(1, "bob"):
        pass


def test_a_lock_held_by_a_killed_process_is_released(backend: Backend) -> None:
    code = (
        "import sys, time\n"
        "from reconciler.stores import open_store\n"
        "store = open_store(sys.argv[1])\n"
        "held = store.lock(5, 'doomed-run')\n"
        "held.__enter__()\n"
        "print('locked', flush=True)\n"
        "time.sleep(120)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-c", code, backend.url]
    holder = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        store = backend.open()
        named = f"locked by doomed-run \\(pid {holder.pid} "
        with pytest.raises(LockError, match=named), store.lock(0.2, "me"):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        started = time.monotonic()
        with store.lock(10, "me"):
            assert time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()


def test_labels_and_annotations_are_kept_per_object(store: SqlStore) -> None:
    """Each object's metadata as its change gave it, whether or not other objects share the same
    dicts; none stored for an object without any; a change without metadata leaves it alone."""
    shared, protect = {"team": "ml"}, {"reconciler/protect": "true"}
    variants: list[dict[str, Any]] = [
        {"labels": shared, "annotations": {}},
        {"labels": dict(shared), "annotations": protect},
        {"labels": {}, "annotations": {}},
        {"labels": shared, "annotations": protect},
    ]
    first = [dataclasses.replace(c, meta=variants[i % len(variants)]) for i, c in enumerate(creates(sample()))]
    store.apply(first, SECRETS, RUN)
    assert store.read().meta == {(c.kind, c.key): c.meta for c in first if c.meta != variants[2]}

    cleared, relabelled, untouched = first[0], first[1], first[3]
    store.apply([
        Change(UPDATE, cleared.kind, cleared.key, cleared.after, cleared.after, meta={"labels": {}, "annotations": {}}),
        Change(UPDATE, relabelled.kind, relabelled.key, relabelled.after, relabelled.after,
               meta={"labels": {"team": "infra"}, "annotations": {}}),
        Change(UPDATE, untouched.kind, untouched.key, untouched.after, untouched.after),  # meta None
    ], SECRETS, RUN)
    meta = store.read().meta
    assert (cleared.kind, cleared.key) not in meta
    assert meta[(relabelled.kind, relabelled.key)] == {"labels": {"team": "infra"}, "annotations": {}}
    assert meta[(untouched.kind, untouched.key)] == variants[3]


# -- opening ----------------------------------------------------------------------------------


def test_a_store_from_a_newer_reconciler_is_refused(backend: Backend) -> None:
    backend.open().close()
    backend.query("UPDATE meta SET value = '999' WHERE name = 'schema_version'")
    with pytest.raises(StoreError, match="created by a newer reconciler"):
        backend.open()


def test_a_schema_2_store_keeps_its_labels_and_annotations_through_the_migration(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Schema 2 kept labels and annotations in a table of their own; schema 3 keeps them in the row."""
    from reconciler.stores import sql

    with monkeypatch.context() as old:
        old.setattr(sql, "MIGRATIONS", sql.MIGRATIONS[:2])
        old.setattr(sql, "SCHEMA_VERSION", 2)
        backend.open().close()
    backend.query("INSERT INTO providers (name, type, display_name, icon, enabled, base_url, settings)"
                  " VALUES ('compat', 'openai-compat', 'Compat', '', TRUE, 'https://llm.example.com/v1', NULL)")
    for model in ("m1", "m2", "m3"):
        backend.query("INSERT INTO models (organization, provider, model, display_name, enabled, is_default,"
                      f" context_limit, compression_threshold, config) VALUES ('default', 'compat', '{model}',"
                      f" '{model}', TRUE, {'TRUE' if model == 'm1' else 'FALSE'}, 1000, 70, '{{}}')")
    protected = '{"annotations":{"reconciler/protect":"true"},"labels":{}}'
    labelled = '{"annotations":{},"labels":{"team":"ml"}}'
    for kind, key, meta in [
        (PROVIDER, '["compat"]', protected),
        (MODEL, '["default","compat","m1"]', labelled),
        (MODEL, '["default","compat","m2"]', '{"annotations":{},"labels":{}}'),  # none: schema 2 kept a row
        (MODEL, '["default","compat","gone"]', labelled),  # an object no longer there
    ]:
        backend.query(f"INSERT INTO object_meta (kind, key, meta) VALUES ('{kind}', '{key}', '{meta}')")

    state = backend.open().read()

    assert state.meta == {
        (PROVIDER, ("compat",)): {"labels": {}, "annotations": {"reconciler/protect": "true"}},
        (MODEL, ("default", "compat", "m1")): {"labels": {"team": "ml"}, "annotations": {}},
    }
    assert sorted(state.of(MODEL)) == [("default", "compat", m) for m in ("m1", "m2", "m3")]
    assert backend.query("SELECT value FROM meta WHERE name = 'schema_version'") == [(str(sql.SCHEMA_VERSION),)]
    tables = ("SELECT name FROM sqlite_master WHERE type = 'table'" if isinstance(backend, SqliteBackend) else
              "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
    assert "object_meta" not in {name for (name,) in backend.query(tables)}


def test_unknown_options_are_usage_errors(backend: Backend) -> None:
    with pytest.raises(UsageError, match="colour"):
        open_store(backend.url, colour="blue")


# -- scale ------------------------------------------------------------------------------------


def test_ten_thousand_models_apply_and_read_back(store: SqlStore) -> None:
    """At this size PostgreSQL writes through COPY and a staging table; what reads back is the same."""
    objects: Objects = {PROVIDER: {("compat",): sample()[PROVIDER][("compat",)]}, **models(10_000)}
    results = store.apply(creates(objects), SECRETS, RUN)
    assert len(results) == 10_001 and store.read().count() == 10_001
    assert snapshot(store) == expected(store, objects)
    # and updates of many rows at once: every existing row takes its new values
    renamed = {key: {**record, "display_name": record["display_name"] + " (renamed)", "enabled": True}
               for key, record in objects[MODEL].items()}
    store.apply([Change(UPDATE, MODEL, key, objects[MODEL][key], record) for key, record in renamed.items()],
                SECRETS, RUN)
    assert snapshot(store) == expected(store, {**objects, MODEL: renamed})


# -- SQLite specifics -------------------------------------------------------------------------


def test_sqlite_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "store.db"
    sqlite = SqliteBackend(path)
    old_umask = os.umask(0)
    try:
        store = sqlite.open(environ=ENV)
        store.apply(creates(sample()), SECRETS, RUN)
        with store.lock(1, "me"):
            pass
        store.close()
    finally:
        os.umask(old_umask)
    assert [p.name for p in sqlite.files()] == ["store.db", "store.db.lock"]
    for file in sqlite.files():
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    path.chmod(0o644)
    sqlite.open().close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_sqlite_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///.reconciler/store.db")
    assert relative.read().count() == 0
    assert not (tmp_path / ".reconciler").exists()  # reading never creates a store
    assert isinstance(relative, SqlStore)
    relative.init()
    relative.close()
    assert (tmp_path / ".reconciler" / "store.db").is_file()
    assert relative.url == "sqlite:///.reconciler/store.db"
    for bad in ("sqlite://", "sqlite:///", "sqlite://host/x.db", "sqlite:///x.db?mode=ro"):
        with pytest.raises(UsageError, match="bad SQLite store URL"):
            open_store(bad)
    (tmp_path / "junk.db").write_bytes(b"this is not a database, " * 100)
    with pytest.raises(StoreError, match="junk.db: file is not a database"):
        open_store("sqlite:///junk.db").read()


# -- PostgreSQL specifics ---------------------------------------------------------------------


def test_postgres_connection_failures_are_one_line() -> None:
    with pytest.raises(StoreError) as caught:
        open_store("postgresql://postgres:hunter2@127.0.0.1:1/test")
    message = str(caught.value)
    assert message == "cannot connect to PostgreSQL at 127.0.0.1:1/test: Connection refused"
    assert caught.value.__cause__ is None
    assert redact("postgresql://u:hunter2@h:5432/db?password=x&sslmode=require") == (
        "postgresql://u@h:5432/db?sslmode=require")


def test_postgres_missing_database_and_schema(pg_backend: PostgresBackend) -> None:
    base = pg_backend.dsn.partition("?")[0].rsplit("/", 1)[0]
    missing = '^cannot connect .*: database "reconciler_no_such_db" does not exist$'
    with pytest.raises(StoreError, match=missing):
        open_store(base + "/reconciler_no_such_db")
    with pytest.raises(StoreError, match="names no existing schema"):
        open_store(pg_backend.url.replace(pg_backend.schema, pg_backend.schema + "_missing"))


def test_postgres_store_url_has_no_password(pg_backend: PostgresBackend) -> None:
    scheme, rest = pg_backend.url.split("://", 1)
    if "@" in rest.split("/", 1)[0]:
        user, rest = rest.split("@", 1)
        with_password = f"{scheme}://{user.split(':')[0]}:hunter2@{rest}"
    else:
        with_password = f"{scheme}://postgres:hunter2@{rest}"
    try:
        opened = open_store(with_password)
    except StoreError as exc:  # a server that checks passwords refuses this one: fine too
        assert "hunter2" not in str(exc)
        return
    opened.close()
    assert "hunter2" not in opened.url and "hunter2" not in repr(opened)


@pytest.mark.parametrize("count", [20, 300], ids=["row by row", "through COPY"])
def test_postgres_connection_lost_mid_apply_changes_nothing(pg_backend: PostgresBackend, count: int) -> None:
    from reconciler.stores.postgres import COPY_ROWS

    assert 20 < COPY_ROWS <= 300  # the two ways of writing rows, as the ids say
    store = pg_backend.open(environ=ENV)
    objects = sample()
    store.apply(creates({PROVIDER: objects[PROVIDER]}), SECRETS, RUN)
    before = snapshot(store)
    # the server ends the session while the models are being written
    pg_backend.query(
        "CREATE FUNCTION die() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$")
    pg_backend.query(
        "CREATE TRIGGER die BEFORE INSERT ON models FOR EACH ROW EXECUTE FUNCTION die()")
    compat = objects[PROVIDER][("compat",)]
    changes = [resend(("compat",), {**compat, "enabled": False}), *creates(models(count))]
    with pytest.raises(StoreError) as caught:
        store.apply(changes, SECRETS, RUN)
    message = str(caught.value)
    assert message.startswith("apply to the PostgreSQL store at ")
    assert "lost the connection to the server" in message
    assert "rolled back: nothing was written" in message and "\n" not in message
    pg_backend.query("DROP TRIGGER die ON models")
    assert snapshot(pg_backend.open(environ=ENV)) == before
    with pytest.raises(StoreError, match="lost the connection"):
        store.read()
