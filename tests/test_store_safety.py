"""What the tool opens and writes: plan never writes (no tables created, nothing migrated, no
mode changed), another application's database is refused rather than adopted, no symbolic link is
followed for the store or its lock, and waits are finite numbers of seconds."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import psycopg
import pytest

from tests import storefixtures
from tests.cliharness import example_manifests
from tests.conftest import run_cli
from tests.storefixtures import PostgresBackend

pg_backend = storefixtures.pg_backend


def other_app_db(path: Path) -> bytes:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total TEXT)")
        conn.execute("INSERT INTO invoices (total) VALUES ('12.50')")
    path.chmod(0o644)
    return path.read_bytes()


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_another_applications_sqlite_file_is_refused_not_adopted(tmp_path: Path, command: str) -> None:
    manifests = example_manifests(tmp_path)
    db = tmp_path / "app.db"
    before = other_app_db(db)
    done = run_cli(command, str(manifests.path), "--store", f"sqlite:///{db}", env=manifests.env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "holds" in done.stderr and "not a reconciler store" in done.stderr
    assert db.read_bytes() == before and stat.S_IMODE(db.stat().st_mode) == 0o644
    assert not (tmp_path / "app.db.lock").exists() or command == "apply"


def test_plan_on_a_wrong_path_changes_no_file(tmp_path: Path) -> None:
    manifests = example_manifests(tmp_path)
    victim = tmp_path / "notes.txt"
    victim.write_text("not a database\n")
    victim.chmod(0o644)
    done = run_cli("plan", str(manifests.path), "--store", f"sqlite:///{victim}", env=manifests.env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert victim.read_text() == "not a database\n" and stat.S_IMODE(victim.stat().st_mode) == 0o644


def test_plan_creates_nothing_in_an_empty_postgresql_schema(pg_backend: PostgresBackend, tmp_path: Path) -> None:
    manifests = example_manifests(tmp_path)
    done = run_cli("plan", str(manifests.path), "--store", pg_backend.url, env=manifests.env)
    assert done.returncode == 0, done.stderr
    assert "Plan:" in done.stdout
    assert pg_backend.query("SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()") \
        == [(0,)]


def test_another_applications_postgresql_schema_is_refused(pg_backend: PostgresBackend, tmp_path: Path) -> None:
    manifests = example_manifests(tmp_path)
    with psycopg.connect(pg_backend.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id int)")
    for command in ("plan", "apply"):
        done = run_cli(command, str(manifests.path), "--store", pg_backend.url, env=manifests.env)
        assert done.returncode == 1 and "not a reconciler store" in done.stderr, done.stderr
    tables = pg_backend.query("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
    assert tables == [("invoices",)]


def test_no_symbolic_link_is_followed_for_the_store_or_its_lock(tmp_path: Path) -> None:
    manifests = example_manifests(tmp_path)
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    target.chmod(0o644)
    link = tmp_path / "store.db"
    link.symlink_to(target)
    for command in ("plan", "apply"):
        done = run_cli(command, str(manifests.path), "--store", f"sqlite:///{link}", env=manifests.env)
        assert done.returncode == 1 and "symbolic link" in done.stderr, done.stderr
    store = tmp_path / "real" / "store.db"
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "store.db.lock").symlink_to(target)
    done = run_cli("apply", str(manifests.path), "--store", f"sqlite:///{store}", env=manifests.env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert target.read_text() == "keep me\n" and stat.S_IMODE(target.stat().st_mode) == 0o644


@pytest.mark.parametrize(("option", "value"), [("--lock-timeout", "nan"), ("--lock-timeout", "inf"),
                                               ("--request-timeout", "nan"), ("--deadline", "-1")])
def test_waits_are_finite(tmp_path: Path, option: str, value: str) -> None:
    done = run_cli("apply", str(tmp_path), option, value)
    assert done.returncode == 1 and option in done.stderr and "Traceback" not in done.stderr


def test_special_files_are_refused_never_read(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    done = run_cli("validate", str(tmp_path), timeout=30)
    assert done.returncode == 1 and "FIFO" in done.stdout and "not a regular file" in done.stdout
    done = run_cli("validate", str(fifo), timeout=30)
    assert done.returncode == 1 and "FIFO" in done.stdout
    fifo.unlink()

    manifests = example_manifests(tmp_path / "m")
    provider = manifests.file("providers/llm-internal.yaml")
    text = provider.read_text()
    for special in ("/dev/zero", str(tmp_path / "secret-pipe")):
        if special.endswith("pipe"):
            os.mkfifo(special)
        provider.write_text(text.replace(next(line.split("file:")[1].strip().rstrip("}").strip()
                                              for line in text.splitlines() if "file:" in line), special))
        store = f"sqlite:///{tmp_path / 'store.db'}"
        done = run_cli("apply", str(manifests.path), "--store", store, env=manifests.env, timeout=60)
        assert done.returncode == 1 and "not a regular file" in done.stderr, done.stderr
        assert "nothing was applied" in done.stderr
    token = tmp_path / "token-pipe"
    os.mkfifo(token)
    done = run_cli("plan", str(manifests.path), "--store", "coder+https://coder.example.com", "--token-file",
                   str(token), timeout=30)
    assert done.returncode == 1 and "FIFO" in done.stderr


def test_a_symlinked_manifest_folder_is_read_not_skipped(tmp_path: Path) -> None:
    manifests = example_manifests(tmp_path / "m")
    (tmp_path / "elsewhere").mkdir()
    models = manifests.path / "models"
    models.rename(tmp_path / "elsewhere" / "models")
    models.symlink_to(tmp_path / "elsewhere" / "models")
    (tmp_path / "elsewhere" / "models" / "loop").symlink_to(manifests.path)  # and a loop
    done = run_cli("validate", str(manifests.path), "--format", "json")
    assert done.returncode == 0, done.stderr
    import json

    assert json.loads(done.stdout)["documents"] > 30


def test_plain_http_goes_only_to_loopback_however_spelt(tmp_path: Path) -> None:
    for host in ("3221225986", "0xc0.0.2.2", "[::ffff:192.0.2.2]", "192.0.2.2"):
        done = run_cli("plan", str(tmp_path), "--store", f"coder+http://{host}:9",
                       env={"CODER_SESSION_TOKEN": "t" * 20}, timeout=30)
        assert done.returncode == 1 and "only for loopback" in done.stderr, (host, done.stderr)


def test_prices_written_as_yaml_numbers_are_read_exactly(tmp_path: Path) -> None:
    from reconciler.prices import to_micros
    from reconciler.validate import validate_paths

    (tmp_path / "c.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: PriceCatalog\nmetadata: {name: c}\nspec:\n  prices:\n"
        "    - {provider: openai, model: m, input: 123456789012.345678, output: 0.70, cache_read: 1_000.5}\n")
    result = validate_paths([str(tmp_path)], jobs=1)
    assert result.diagnostics == []
    fields = result.manifests.prices[0].fields
    assert to_micros(fields["input"]) == 123_456_789_012_345_678  # a float would give ...670
    assert (to_micros(fields["output"]), to_micros(fields["cache_read"])) == (700_000, 1_000_500_000)


def test_a_secrets_prefix_or_escaped_form_is_scrubbed() -> None:
    from reconciler.secrets import redact_runs

    key = 'sk-ant-api03-AbCdEfGhIjKlMnOp"\\q'
    echoes = [f"invalid key {key[:12]}...", f'{{"api_key": {__import__("json").dumps(key)}}}',
              f"got {key[5:17]} from the client", "sk-ant-api03-AbCdEf%22"]
    for echo in echoes:
        cleaned = redact_runs(echo, [key])
        assert "(redacted)" in cleaned
        assert not any(key[i:i + 8] in cleaned for i in range(len(key) - 7)), cleaned
    assert redact_runs("a masked key sk-a...Op\\q stays", [key]) == "a masked key sk-a...Op\\q stays"


@pytest.mark.parametrize("url", [
    "host=db.example password=CANARY-pw-0123456789 dbname=x",
    "postgresql://u:CANARY-pw-0123456789@[::1/db",
    "postgresql://u@127.0.0.1:1/db?sslpassword=CANARY-pw-0123456789&connect_timeout=1",
    "coder+https://user:CANARY-pw-0123456789@",
    "sqlite://user:CANARY-pw-0123456789@/tmp/x.db",
])
def test_credentials_in_store_urls_are_never_echoed(tmp_path: Path, url: str) -> None:
    for argv in (["plan", str(tmp_path), "-v"], ["export"], ["history"]):
        done = run_cli(*argv, "--store", url, timeout=30)
        assert "CANARY-pw" not in done.stdout + done.stderr, (argv, done.stderr)
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr


@pytest.mark.parametrize("fmt", ["text", "github"])
def test_terminal_escapes_from_data_never_reach_the_terminal(tmp_path: Path, fmt: str) -> None:
    evil = tmp_path / "evil\x1b]0;pwned\x07\x1b[2J.yaml"
    evil.write_text("apiVersion: reconciler/v1\nkind: Provider\nmetadata: {name: \"x\\e[31m\"}\nspec: {type: openai}\n")
    done = run_cli("validate", str(tmp_path), "--format", fmt)
    assert done.returncode == 1
    for raw in ("\x1b]0;", "\x07", "\x1b[2J"):
        assert raw not in done.stdout + done.stderr
    assert "\\x1b]0;pwned" in done.stdout + done.stderr


@pytest.mark.parametrize(("settings", "needle"), [
    ("upstream_headers: {api-key: CANARY-0123456789abcdef}", "looks like a credential"),
    ("upstream_headers: {x-goog-api-key: CANARY-0123456789abcdef}", "looks like a credential"),
    ("upstream_headers: {Ocp-Apim-Subscription-Key: CANARY-0123456789abcdef}", "looks like a credential"),
    ("upstream_headers: {X-Team-Token: CANARY-0123456789abcdef}", "looks like a credential"),
])
def test_credentials_in_headers_are_refused_unechoed(tmp_path: Path, settings: str, needle: str) -> None:
    (tmp_path / "p.yaml").write_text("apiVersion: reconciler/v1\nkind: Provider\nmetadata: {name: p}\nspec:\n"
                                     "  type: openai\n  settings:\n    " + settings + "\n")
    for argv in (["validate", str(tmp_path)], ["validate", str(tmp_path), "--format", "json"]):
        done = run_cli(*argv)
        assert done.returncode == 1 and "RC202" in done.stdout + done.stderr and needle in done.stdout + done.stderr
        assert "CANARY" not in done.stdout + done.stderr


@pytest.mark.parametrize("name", ["sk_proj_CANARY0123456789abcdef", "AIzaSyCANARY0123456789abcdefghij",
                                  "CANARYq8Z3xY7wK2mN5pR9tV1bC4"])
def test_a_key_given_as_an_env_name_is_refused_unechoed(tmp_path: Path, name: str) -> None:
    (tmp_path / "p.yaml").write_text("apiVersion: reconciler/v1\nkind: Provider\nmetadata: {name: p}\nspec:\n"
                                     f"  type: openai\n  api_keys: [{{env: {name}}}]\n")
    done = run_cli("validate", str(tmp_path))
    assert done.returncode == 1 and "looks like a key" in done.stdout
    assert "CANARY" not in done.stdout + done.stderr
    ok = tmp_path / "q.yaml"
    ok.write_text("apiVersion: reconciler/v1\nkind: Provider\nmetadata: {name: q}\nspec:\n"
                  "  type: openai\n  api_keys: [{env: ACME_OPENAI_API_KEY_SECONDARY}]\n")
    (tmp_path / "p.yaml").unlink()
    assert run_cli("validate", str(tmp_path)).returncode == 0


def test_outputs_go_where_asked_as_the_file_there_allows(tmp_path: Path) -> None:
    import json

    manifests = example_manifests(tmp_path / "m")
    store = ["--store", f"sqlite:///{tmp_path / 'store.db'}"]
    done = run_cli("apply", str(manifests.path), *store, "--report", "/dev/stdout", "-q", env=manifests.env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "success"  # straight into the pipe, not replaced
    (tmp_path / "file").write_text("x")
    done = run_cli("plan", str(manifests.path), *store, "--out", str(tmp_path / "file" / "plan.json"),
                   env=manifests.env)
    assert done.returncode == 1 and "cannot write" in done.stderr and "Not a directory" in done.stderr
    assert "internal error" not in done.stderr
    real, link = tmp_path / "real.json", tmp_path / "link.json"
    real.write_text("old")
    link.symlink_to(real)
    done = run_cli("plan", str(manifests.path), *store, "--out", str(link), env=manifests.env)
    assert done.returncode == 0 and link.is_symlink() and json.loads(real.read_text())["kind"] == "reconciler-plan"
