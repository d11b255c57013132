"""What the CLI tests of plan and apply share: manifest sets with their secret environment,
probes of a store from outside the process under test, and a lock held by another process.

The store backends themselves (SQLite files, fresh PostgreSQL schemas) are tests/storefixtures.py's.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from benchmarks.generate import generate
from reconciler.secrets import ENCRYPTION_KEY_ENV
from reconciler.stores import open_store
from reconciler.stores.sql import SqlStore
from tests.conftest import EXAMPLES, ROOT
from tests.storefixtures import Backend, SqliteBackend

LONG = os.environ.get("RECONCILER_LONG_TESTS") == "1"
long_only = pytest.mark.skipif(not LONG, reason="long run: set RECONCILER_LONG_TESTS=1")
ENV_REF = re.compile(r"^\s*-?\s*env:\s*([A-Za-z_][A-Za-z0-9_]*)\s*$", re.MULTILINE)
FILE_REF = re.compile(r"^(\s*-?\s*file:\s*)(\S+)\s*$", re.MULTILINE)


def new_encryption_key() -> str:
    """32 random bytes in base64, as `openssl rand -base64 32` prints them."""
    return base64.b64encode(os.urandom(32)).decode()


@dataclass
class Manifests:
    """A manifest directory and the environment an apply of it needs (every secret, the key)."""

    path: Path
    env: dict[str, str]

    def with_env(self, **changes: str | None) -> dict[str, str]:
        """The environment with some variables changed (None: unset)."""
        out = dict(self.env)
        for name, value in changes.items():
            if value is None:
                out.pop(name, None)
            else:
                out[name] = value
        return out

    def file(self, relative: str) -> Path:
        return self.path / relative


def example_manifests(workdir: Path, secret: str | None = None) -> Manifests:
    """examples/ copied under `workdir`, file references pointing at files under `workdir`.

    Every env secret gets its own value (or `secret` for all of them), as does every file secret.
    """
    path = workdir / "manifests"
    shutil.copytree(EXAMPLES, path, ignore=shutil.ignore_patterns("environments"))  # another repository
    secrets_dir = workdir / "secrets"
    secrets_dir.mkdir()
    env = {"PYTHONPATH": str(ROOT), ENCRYPTION_KEY_ENV: new_encryption_key()}
    for file in sorted(path.rglob("*.yaml")):
        text = file.read_text()
        for name in ENV_REF.findall(text):
            env[name] = secret or f"sk-test-{name.lower().replace('_', '-')}-0123456789"

        def to_local(match: re.Match[str]) -> str:
            local = secrets_dir / Path(match.group(2)).name
            local.write_text((secret or f"sk-test-file-{local.name}-0123456789") + "\n")
            return match.group(1) + str(local)

        rewritten = FILE_REF.sub(to_local, text)
        if rewritten != text:
            file.write_text(rewritten)
    return Manifests(path, env)


def generated_manifests(path: Path, providers: int, models: int, secret: str | None = None) -> Manifests:
    """benchmarks/generate.py's set, with the env secrets PROVIDER_NNNN_KEY_A/B it references."""
    generate(str(path), providers, models)
    env = {"PYTHONPATH": str(ROOT), ENCRYPTION_KEY_ENV: new_encryption_key()}
    env.update(generated_secrets(providers, secret))
    return Manifests(path, env)


def generated_secrets(providers: int, secret: str | None = None) -> dict[str, str]:
    return {
        f"PROVIDER_{i:04d}_KEY_{slot}": secret or f"sk-gen-{i:04d}-{slot.lower()}-0123456789"
        for i in range(providers) for slot in "AB"
    }


def child_env(env: dict[str, str]) -> dict[str, str]:
    """The environment of a process we start ourselves: ours without RECONCILER_*, plus `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    return {**base, "NO_COLOR": "1", **env}


def apply_argv(manifests: Path | str, store_url: str, *options: str) -> list[str]:
    return [sys.executable, "-m", "reconciler", "apply", str(manifests), "--store", store_url, *options]


# -- probes of a store, from the test's own process --------------------------------------------


def opened(url: str) -> SqlStore:
    store = open_store(url)
    assert isinstance(store, SqlStore)
    return store


def state_fingerprint(url: str) -> str:
    """The fingerprint of the store's contents as a fresh reader sees them (not its apply counter)."""
    store = opened(url)
    try:
        return store.read().fingerprint(serial=False)
    finally:
        store.close()


def object_count(url: str) -> int:
    """The objects in the store; 0 for a SQLite file never created (invalid manifests open no store)."""
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        return 0
    store = opened(url)
    try:
        return store.read().count()
    finally:
        store.close()


def history(url: str, limit: int = 1000) -> list[dict[str, Any]]:
    """The store's apply history, oldest first."""
    store = opened(url)
    try:
        return list(reversed(store.history(limit)))
    finally:
        store.close()


def storage_snapshot(backend: Backend) -> Any:
    """What the store's storage holds, to tell that an operation wrote nothing at all.

    SQLite: the database file's bytes and mtime, and which journal files exist (the lock
    file beside it is not data). PostgreSQL: every row of every table of the schema.
    """
    if isinstance(backend, SqliteBackend):
        db = backend.path
        journals = sorted(p.name for p in backend.files() if p.name != db.name and not p.name.endswith(".lock"))
        return db.read_bytes(), db.stat().st_mtime_ns, journals
    return backend.dump()


def assert_one_line_error(stderr: str, *needles: str) -> str:
    """stderr is exactly one `Error: ...` line containing every needle, without a traceback."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# -- a lock held by another process ------------------------------------------------------------

HOLD_LOCK = """
import sys, time
from reconciler.stores import open_store
store = open_store(sys.argv[1])
held = store.lock(5, sys.argv[2])
held.__enter__()
print('locked', flush=True)
time.sleep(300)
"""


@contextmanager
def lock_held_by(url: str, holder: str) -> Iterator[subprocess.Popen[str]]:
    """Another process holds the store's apply lock until the block ends (then it is SIGKILLed)."""
    argv = [sys.executable, "-c", HOLD_LOCK, url, holder]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=child_env({"PYTHONPATH": str(ROOT)}))
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "locked"
        yield process
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


# a bedrock provider with static (write-only on Coder) credentials, for the Coder tests
BEDROCK_STATIC = """apiVersion: reconciler/v1
kind: Provider
metadata:
  name: bedrock-static
spec:
  type: bedrock
  settings:
    bedrock:
      region: us-west-2
      model: global.anthropic.claude-sonnet-4-5-20250929-v1:0
      small_fast_model: global.anthropic.claude-haiku-4-5-20251001-v1:0
      access_key: {env: AWS_ACCESS_KEY_ID}
      access_key_secret: {env: AWS_SECRET_ACCESS_KEY}
"""


def read_terminal(controller: int, process: subprocess.Popen[Any], answers: dict[bytes, bytes] | None = None,
                  timeout: float = 30) -> bytes:
    """Everything a child writes to the pseudo-terminal `controller` until it closes it; each answer is
    typed once, when its prompt shows. The controller is closed afterwards."""
    import select

    seen, pending = b"", dict(answers or {})
    try:
        while True:
            ready, _, _ = select.select([controller], [], [], timeout)
            if not ready:
                process.kill()
                raise AssertionError(f"no output from the terminal for {timeout} s")
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            for prompt in [p for p in pending if p in seen]:
                os.write(controller, pending.pop(prompt))
    finally:
        os.close(controller)
    return seen
