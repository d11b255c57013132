"""'internal error' is unreachable from input: every class of hostile input that reached it once
is swept here through the real entry point, each expected to end in an `Error:` message, exit 1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.cliharness import example_manifests
from tests.conftest import run_cli
from tests.fakecoder import FakeCoder, fixtures

fake_coder = fixtures.fake_coder


def clean_failure(done: Any) -> None:
    assert done.returncode == 1, done.stdout
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[0].startswith("Error:"), done.stderr


DEEP = "[" * 100_000 + "]" * 100_000
COLLECTION_ANSWERS = [
    ("/api/v2/organizations", [1, 2, 3]),
    ("/api/v2/organizations", [{"id": "x"}]),
    ("/api/v2/ai/providers", [{"id": "1", "type": 7}]),
    ("/api/v2/ai/providers", {"not": "a list"}),
    ("/api/v2/ai/providers", DEEP),
    ("/api/experimental/ai/model-prices", [{"provider": None, "model": ["x"]}]),
    ("/api/v2/chats/config/personal-model-overrides", "garbage"),
]


@pytest.mark.parametrize(("path", "body"), COLLECTION_ANSWERS, ids=lambda v: str(v)[:30])
def test_malformed_coder_answers(fake_coder: FakeCoder, tmp_path: Path, path: str, body: Any) -> None:
    fake_coder.inject(200, body=body, path_prefix=path, times=50)
    env = {"CODER_SESSION_TOKEN": fake_coder.token, "XDG_CACHE_HOME": str(tmp_path)}
    for command in ("plan", "export"):
        argv = [command, str(example_manifests(tmp_path / command).path)] if command == "plan" else [command]
        clean_failure(run_cli(*argv, "--store", "coder+" + fake_coder.url, env=env, timeout=60))


def test_models_of_the_wrong_shape(fake_coder: FakeCoder, tmp_path: Path) -> None:
    org = fake_coder.state.find_organization(fixtures.DEFAULT_ORGANIZATION)
    fake_coder.inject(200, body={"models": [{"id": 5, "model": None}]},
                      path_prefix=f"/api/v2/organizations/{org.id}/chats/models", times=50)
    env = {"CODER_SESSION_TOKEN": fake_coder.token, "XDG_CACHE_HOME": str(tmp_path)}
    clean_failure(run_cli("export", "--store", "coder+" + fake_coder.url, env=env, timeout=60))


def test_an_error_body_with_escapes_is_shown_escaped(fake_coder: FakeCoder, tmp_path: Path) -> None:
    fake_coder.inject(400, body={"message": "bad\x1b]0;pwned\x07 request"}, path_prefix="/api/v2/ai/providers")
    env = {"CODER_SESSION_TOKEN": fake_coder.token, "XDG_CACHE_HOME": str(tmp_path)}
    done = run_cli("export", "--store", "coder+" + fake_coder.url, env=env, timeout=60)
    clean_failure(done)
    assert "\x1b]0;" not in done.stderr and "\\x1b]0;pwned" in done.stderr


def test_a_non_utf8_secret_and_a_non_ascii_token(tmp_path: Path) -> None:
    manifests = example_manifests(tmp_path / "m")
    env = {**manifests.env, "ACME_OPENAI_API_KEY": "sk-\udcff\udcfe-not-utf8-0123456789"}
    clean_failure(run_cli("apply", str(manifests.path), "--store", f"sqlite:///{tmp_path / 's.db'}", env=env))
    clean_failure(run_cli("plan", str(manifests.path), "--store", "coder+https://coder.example.com",
                          env={"CODER_SESSION_TOKEN": "tökén-not-ascii"}))


@pytest.mark.parametrize("path", ["a%00b.db", "x" * 5000 + ".db"])
def test_impossible_sqlite_paths(tmp_path: Path, path: str) -> None:
    for command in ("plan", "apply"):
        clean_failure(run_cli(command, str(tmp_path), "--store", f"sqlite:///{tmp_path}/{path}"))


def test_a_corrupt_ciphertext_during_rekey(tmp_path: Path) -> None:
    import sqlite3

    manifests = example_manifests(tmp_path / "m")
    store = f"sqlite:///{tmp_path / 's.db'}"
    assert run_cli("apply", str(manifests.path), "--store", store, env=manifests.env).returncode == 0
    with sqlite3.connect(tmp_path / "s.db") as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(secrets)")]
        assert "ciphertext" in columns
        conn.execute("UPDATE secrets SET ciphertext = 'AAAAnot-a-ciphertext'")
    from tests.cliharness import new_encryption_key

    rotated = f"{new_encryption_key()},{manifests.env['RECONCILER_ENCRYPTION_KEY']}"  # a new key first: decrypt all
    env = {**manifests.env, "RECONCILER_ENCRYPTION_KEY": rotated}
    clean_failure(run_cli("rekey", "--store", store, env=env))
