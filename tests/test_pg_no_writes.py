"""A no-change apply on PostgreSQL commits no transaction that writes, the lock included: the
holder's identity is spelled in advisory locks, not written in a row, and a waiter still names it."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from tests import storefixtures
from tests.cliharness import example_manifests, lock_held_by
from tests.conftest import run_cli
from tests.storefixtures import PostgresBackend

pg_backend = storefixtures.pg_backend


def row_writes(backend: PostgresBackend) -> dict[str, int]:
    """Rows inserted, updated and deleted per table of the store's schema, as the statistics
    collector has them once every finished session has reported (polled until they stop moving)."""
    query = ("SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables"
             " WHERE schemaname = %s ORDER BY relname")
    last: dict[str, int] | None = None
    with psycopg.connect(backend.dsn, autocommit=True) as conn:
        for _ in range(40):
            conn.execute("SELECT pg_stat_clear_snapshot()")
            now = {name: int(count) for name, count in conn.execute(query, (backend.schema,)).fetchall()}
            if now == last:
                return now
            last = now
            time.sleep(0.25)
    assert last is not None
    return last


def test_a_no_change_apply_commits_no_write(pg_backend: PostgresBackend, tmp_path: Path) -> None:
    manifests = example_manifests(tmp_path)
    env = {**manifests.env, "RECONCILER_CACHE": "off"}  # the full path, not the no-op shortcut

    def apply(*args: str) -> None:
        done = run_cli("apply", str(manifests.path), "--store", pg_backend.url, *args, env=env)
        assert done.returncode == 0, done.stderr

    apply()
    before = row_writes(pg_backend)
    assert sum(before.values()) > 0  # the first apply's writes were counted: the probe sees writes
    apply()
    apply("--format", "json")
    after = row_writes(pg_backend)
    assert after == before  # no row inserted, updated or deleted: lock_holders included

    env["ACME_OPENAI_API_KEY"] = "sk-rotated-0123456789abcdef"  # a real change is counted
    apply()
    assert sum(row_writes(pg_backend).values()) > sum(after.values())


def test_a_waiter_names_the_holder_without_a_row(pg_backend: PostgresBackend, tmp_path: Path) -> None:
    manifests = example_manifests(tmp_path)
    assert run_cli("apply", str(manifests.path), "--store", pg_backend.url, env=manifests.env).returncode == 0
    holder_name = "nightly-cron@runner-3 " + "é" * 200  # longer than is spelled: cut, still named
    with lock_held_by(pg_backend.url, holder_name) as holder:
        done = run_cli("apply", str(manifests.path), "--store", pg_backend.url, "--lock-timeout", "0.5",
                       env=manifests.env)
        assert done.returncode == 1
        assert "the store is locked by nightly-cron@runner-3 é" in done.stderr
        assert f"(pid {holder.pid} on host " in done.stderr
        assert pg_backend.query("SELECT count(*) FROM lock_holders") == [(0,)]
