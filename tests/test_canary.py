"""One canary secret, used as every secret of examples/, in every command and format and on the
error paths, against both SQL stores: it appears nowhere — not in stdout, stderr, reports, plan
files, written schemas, the SQLite files' bytes or any row of the PostgreSQL schema.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from reconciler.secrets import ENCRYPTION_KEY_ENV
from tests import storefixtures
from tests.cliharness import Manifests, example_manifests, new_encryption_key, object_count
from tests.conftest import run_cli
from tests.storefixtures import Backend, SqliteBackend

backend = storefixtures.backend  # both SQL stores

CANARY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"
FORMS = {  # how the canary would look if it leaked plainly, or encoded without encryption
    "plaintext": CANARY.encode(),
    "base64": base64.b64encode(CANARY.encode()),
    "hex": CANARY.encode().hex().encode(),
    "middle": CANARY[8:24].encode(),  # a masked or truncated form would still show this
}
BROKEN = """apiVersion: reconciler/v1
kind: Provider
metadata:
  name: broken
spec:
  type: openai-compat
  base_url: https://user:pass@llm.example.com/v1/chat/completions
  api_keys:
    - env: ACME_OPENAI_API_KEY
"""
PLAINTEXT = f"""apiVersion: reconciler/v1
kind: Provider
metadata:
  name: leaky
spec:
  type: openai
  api_keys:
    - {CANARY}
"""


class Witness:
    """Everything the commands printed or wrote, searched for the canary at the end."""

    def __init__(self, backend: Backend, manifests: Manifests) -> None:
        self.backend = backend
        self.manifests = manifests
        self.seen: list[tuple[str, bytes]] = []
        self.commands = 0

    def run(self, *args: str, expect: int, env: dict[str, str] | None = None, store: bool = True) -> Any:
        argv = [*args, "--store", self.backend.url] if store else list(args)
        done = run_cli(*argv, env=self.manifests.env if env is None else env)
        label = " ".join(args)
        assert done.returncode == expect, f"{label}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr, done.stderr
        self.seen += [(f"stdout of {label}", done.stdout.encode()), (f"stderr of {label}", done.stderr.encode())]
        self.commands += 1
        return done

    def file(self, path: Path) -> None:
        self.seen.append((str(path), path.read_bytes()))

    def tree(self, root: Path) -> None:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            self.file(path)

    def check(self) -> None:
        self.seen.append((f"the store at {self.backend.url}", self.backend.dump()))
        leaks = [f"{form} in {where}" for where, data in self.seen for form, needle in FORMS.items()
                 if needle in data]
        assert not leaks, leaks


@pytest.fixture
def manifests(tmp_path: Path) -> Manifests:
    return example_manifests(tmp_path, secret=CANARY)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def test_the_canary_appears_nowhere(backend: Backend, manifests: Manifests, tmp_path: Path) -> None:
    w = Witness(backend, manifests)
    paths = str(manifests.path)
    assert all(manifests.env[n] == CANARY for n in manifests.env if n.startswith("ACME_"))
    for fmt in ("text", "json", "github"):
        w.run("validate", paths, "--format", fmt, expect=0, store=False)
    w.run("schema", expect=0, store=False)
    w.run("schema", "--out", str(tmp_path / "schemas"), expect=0, store=False)
    w.tree(tmp_path / "schemas")
    for fmt in ("text", "json", "markdown"):
        w.run("plan", paths, "--format", fmt, expect=0)
    w.run("plan", paths, "--detailed-exitcode", "--out", str(tmp_path / "first.plan"), expect=2)
    w.run("apply", paths, "--report", str(tmp_path / "first.json"), expect=0)
    assert object_count(backend.url) > 0
    # every secret again, in each format, and after a change that a saved plan carries
    for fmt in ("text", "json"):
        w.run("apply", paths, "--rotate-secrets", "--format", fmt, "--report", str(tmp_path / f"{fmt}.json"),
              expect=0)
    edit(manifests.file("providers/openai.yaml"), "display_name: OpenAI", "display_name: OpenAI (canary)")
    for fmt in ("text", "json", "markdown"):
        w.run("plan", paths, "--rotate-secrets", "--format", fmt, expect=0)
    w.run("plan", paths, "--rotate-secrets", "--out", str(tmp_path / "second.plan"), expect=0)
    w.run("apply", str(tmp_path / "second.plan"), "--report", str(tmp_path / "second.json"), expect=0)
    w.run("apply", str(tmp_path / "first.plan"), expect=1)  # stale now
    w.run("plan", paths, "--detailed-exitcode", "--format", "json", expect=0)
    for name in ("first.plan", "second.plan", "first.json", "text.json", "json.json", "second.json"):
        w.file(tmp_path / name)
    # what reads the store back: its history, an export of it, re-encrypting its secrets
    for fmt in ("text", "json"):
        w.run("history", "--format", fmt, expect=0)
    w.run("export", expect=0)
    w.run("export", "--out", str(tmp_path / "exported"), expect=0)
    w.tree(tmp_path / "exported")
    rotated = {ENCRYPTION_KEY_ENV: f"{new_encryption_key()},{manifests.env[ENCRYPTION_KEY_ENV]}"}
    w.run("rekey", expect=0, env=manifests.with_env(**rotated))
    w.run("apply", paths, "--rotate-secrets", expect=0, env=manifests.with_env(**rotated))
    w.check()


def test_the_canary_appears_on_no_error_path(backend: Backend, manifests: Manifests, tmp_path: Path) -> None:
    w = Witness(backend, manifests)
    paths = str(manifests.path)
    w.run("apply", paths, expect=0)
    rotate = ("apply", paths, "--rotate-secrets", "--report", str(tmp_path / "failed.json"))
    for fmt in ("text", "json"):
        w.run(*rotate, "--format", fmt, expect=1, env=manifests.with_env(**{ENCRYPTION_KEY_ENV: None}))
        w.run(*rotate, "--format", fmt, expect=1,
              env=manifests.with_env(**{ENCRYPTION_KEY_ENV: new_encryption_key()}))
    # a missing secret: the others, all the canary, are read but never shown
    w.run(*rotate, expect=1, env=manifests.with_env(ACME_OPENAI_API_KEY=None))
    # the database refuses the write of a secret, naming the row it refused
    refuse_secret_writes(backend)
    for fmt in ("text", "json"):
        done = w.run(*rotate, "--format", fmt, expect=1)
        assert "refused by a trigger" in done.stdout + done.stderr
        w.file(tmp_path / "failed.json")
    allow_secret_writes(backend)
    # a failing manifest, for every command that reads manifests
    broken = tmp_path / "broken"
    shutil.copytree(manifests.path, broken)
    (broken / "providers" / "broken.yaml").write_text(BROKEN)
    for fmt in ("text", "json", "github"):
        w.run("validate", str(broken), "--format", fmt, expect=1, store=False)
    for fmt in ("text", "json", "markdown"):
        w.run("plan", str(broken), "--format", fmt, expect=1)
    w.run("apply", str(broken), "--rotate-secrets", expect=1)
    # an unreachable store
    w.run("apply", paths, "--rotate-secrets", "--store", "postgresql://postgres:" + CANARY + "@127.0.0.1:1/test",
          expect=1, store=False)
    assert w.commands == 16
    w.check()


def refuse_secret_writes(backend: Backend) -> None:
    if isinstance(backend, SqliteBackend):
        for event in ("INSERT", "UPDATE"):
            backend.query(f"CREATE TRIGGER refuse_{event.lower()} BEFORE {event} ON secrets"
                          " BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END")
        return
    backend.query(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'refused by a trigger: %', NEW; END $$")
    backend.query("CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON secrets FOR EACH ROW EXECUTE FUNCTION refuse()")


def allow_secret_writes(backend: Backend) -> None:
    if isinstance(backend, SqliteBackend):
        backend.query("DROP TRIGGER refuse_insert")
        backend.query("DROP TRIGGER refuse_update")
    else:
        backend.query("DROP TRIGGER refuse ON secrets")


def test_a_plaintext_canary_in_a_manifest_is_refused_and_never_echoed(
    backend: Backend, manifests: Manifests, tmp_path: Path
) -> None:
    w = Witness(backend, manifests)
    leaky = tmp_path / "leaky"
    shutil.copytree(manifests.path, leaky)
    (leaky / "providers" / "leaky.yaml").write_text(PLAINTEXT)
    env = manifests.with_env(**{n: "sk-not-the-canary-0123456789" for n in manifests.env if n.startswith("ACME_")})
    for fmt in ("text", "json", "github"):
        done = w.run("validate", str(leaky), "--format", fmt, expect=1, env=env, store=False)
        assert "RC202" in done.stdout + done.stderr
        if fmt == "json":
            codes = [d["code"] for d in json.loads(done.stdout)["diagnostics"]]
            assert "RC202" in codes
    done = w.run("plan", str(leaky), "--format", "json", expect=1, env=env)
    assert "RC202" in done.stderr
    done = w.run("apply", str(leaky), "--report", str(tmp_path / "report.json"), expect=1, env=env)
    assert "RC202" in done.stderr and not (tmp_path / "report.json").exists()
    assert object_count(backend.url) == 0
    w.check()
