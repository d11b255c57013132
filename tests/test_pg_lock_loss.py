"""The PostgreSQL apply lock lives in the session that writes: when that session ends (a killed
backend, idle_session_timeout), the apply fails and writes nothing, and the next applier that
takes the lock plans against a store nobody is half-way through writing."""

from __future__ import annotations

import time

import psycopg
import pytest

from reconciler.changes import CREATE, Change
from reconciler.errors import StoreError
from reconciler.state import SETTINGS, SETTINGS_KEY
from reconciler.stores.base import RunInfo
from reconciler.stores.postgres import PostgresStore
from tests import storefixtures
from tests.storefixtures import PostgresBackend

pg_backend = storefixtures.pg_backend
RUN = RunInfo(who="tester@ci", tool_version="0.0-test")
CHANGE = Change(CREATE, SETTINGS, SETTINGS_KEY, after={"allow_users": True})


def backend_pid(store: PostgresStore) -> int:
    conn = store._connection()  # the store's own session: where the lock is
    return int(conn.info.backend_pid)


def settings_rows(backend: PostgresBackend) -> int:
    return len(backend.query("SELECT * FROM settings"))


@pytest.mark.parametrize("how", ["terminate", "idle-timeout"])
def test_a_lost_lock_session_aborts_the_apply(pg_backend: PostgresBackend, how: str) -> None:
    url = pg_backend.url
    if how == "idle-timeout":  # the server ends a session idle for 300 ms
        url = url.replace("options=-csearch_path%3D", "options=-cidle_session_timeout%3D300%20-csearch_path%3D")
    first, second = PostgresStore(url), PostgresStore(pg_backend.url)
    try:
        with first.lock(5, "first applier"):
            first.read()
            if how == "terminate":
                with psycopg.connect(pg_backend.dsn, autocommit=True) as admin:
                    admin.execute("SELECT pg_terminate_backend(%s)", (backend_pid(first),))
            else:
                time.sleep(0.8)  # longer than idle_session_timeout: the server ends the session
            with second.lock(2, "second applier"):  # the lock went with the session
                pass
            with pytest.raises(StoreError) as caught:
                first.apply([CHANGE], {}, RUN)
        assert "nothing was written" in str(caught.value) or "lost the connection" in str(caught.value)
        assert settings_rows(pg_backend) == 0
        assert second.apply([CHANGE], {}, RUN)[0].status == "applied"
    finally:
        first.close()
        second.close()


def test_the_lock_is_held_by_the_session_that_writes(pg_backend: PostgresBackend) -> None:
    store = PostgresStore(pg_backend.url)
    try:
        with store.lock(5, "writer"):
            pid = backend_pid(store)
            held = pg_backend.query(  # the lock itself (objsubid 1); the others spell the holder's name
                f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = {pid}"
                " AND objsubid = 1")
            assert held == [(1,)]
            assert store.apply([CHANGE], {}, RUN)[0].status == "applied"
        assert pg_backend.query(
            f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = {pid}") == [(0,)]
    finally:
        store.close()
