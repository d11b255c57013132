"""A credential upstream header takes a secret reference: validated, stored encrypted, sent to
Coder, never shown, exported as a reference; a plain header stays plain."""

from __future__ import annotations

import json
from pathlib import Path

from tests import storefixtures
from tests.conftest import run_cli
from tests.fakecoder import FakeCoder, fixtures
from tests.storefixtures import Backend

backend = storefixtures.backend
fake_coder = fixtures.fake_coder
CANARY = "goog-CANARY-header-0123456789abcdef"
PROVIDER = """apiVersion: reconciler/v1
kind: Provider
metadata: {name: gemini}
spec:
  type: google
  api_keys: [{env: GEMINI_KEY}]
  settings:
    upstream_headers:
      x-goog-api-key: {env: GOOG_HEADER}
      X-Title: %s
"""


def manifests(root: Path, title: str = "Acme") -> Path:
    root.mkdir(exist_ok=True)
    (root / "p.yaml").write_text(PROVIDER % title)
    return root


def test_a_reference_only_for_a_credential_header(tmp_path: Path) -> None:
    root = manifests(tmp_path / "m")
    assert run_cli("validate", str(root)).returncode == 0
    (root / "p.yaml").write_text((PROVIDER % "Acme").replace("X-Title: Acme", "X-Title: {env: T}"))
    done = run_cli("validate", str(root))
    assert done.returncode == 1 and "RC417" in done.stdout and "does not say it is a" in done.stdout


def test_sql_stores_keep_it_encrypted_and_see_it_change(backend: Backend, tmp_path: Path) -> None:
    root = manifests(tmp_path / "m")
    env = {"GEMINI_KEY": "gm-key-0123456789abcdef", "GOOG_HEADER": CANARY, **storefixtures.ENV}
    store = ["--store", backend.url]
    applied = run_cli("apply", str(root), *store, env=env)
    assert applied.returncode == 0, applied.stderr
    assert CANARY.encode() not in backend.dump()
    settled = run_cli("plan", str(root), *store, "--detailed-exitcode", env=env)
    assert settled.returncode == 0, settled.stdout
    rotated = run_cli("plan", str(root), *store, "--format", "json", env={**env, "GOOG_HEADER": "goog-rotated-99"})
    diff = json.loads(rotated.stdout)["changes"][0]["diff"]
    assert {"path": "settings.upstream_headers.x-goog-api-key", "sensitive": True,
            "note": "(sensitive value changed)"} in diff
    exported = run_cli("export", *store, env=env)
    assert "x-goog-api-key: {env: GOOG_HEADER}" in exported.stdout or "env: GOOG_HEADER" in exported.stdout
    for done in (applied, settled, rotated, exported):
        assert CANARY not in done.stdout + done.stderr


def test_coder_gets_the_value_and_plans_never_show_it(fake_coder: FakeCoder, tmp_path: Path) -> None:
    root = manifests(tmp_path / "m")
    env = {"CODER_SESSION_TOKEN": fake_coder.token, "RECONCILER_STORE": "coder+" + fake_coder.url,
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "GEMINI_KEY": "gm-key-0123456789abcdef",
           "GOOG_HEADER": CANARY}
    applied = run_cli("apply", str(root), env=env)
    assert applied.returncode == 0, applied.stderr
    provider = next(p for p in fake_coder.state.providers.values() if p.name == "gemini")
    assert provider.settings["headers"]["x-goog-api-key"] == CANARY
    without_header = {k: v for k, v in env.items() if k != "GOOG_HEADER"}
    settled = run_cli("plan", str(root), "--detailed-exitcode", env=without_header)
    assert settled.returncode == 0, settled.stdout
    root = manifests(root, title="Acme (renamed)")  # a plain header changes: the whole map is written again
    saved = tmp_path / "p.plan"
    changed = run_cli("plan", str(root), "--out", str(saved), env=env)
    change = json.loads(saved.read_text())["changes"][0]
    assert "settings" in change["send_secrets"] and "env:GOOG_HEADER" in change["needs"]
    assert run_cli("apply", str(root), env=env).returncode == 0
    provider = next(p for p in fake_coder.state.providers.values() if p.name == "gemini")
    assert provider.settings["headers"] == {"x-goog-api-key": CANARY, "X-Title": "Acme (renamed)"}
    exported = run_cli("export", env=env)
    for done in (applied, settled, changed, exported):
        assert CANARY not in done.stdout + done.stderr
    assert "RECONCILER_GEMINI_HEADER_X_GOOG_API_KEY" in exported.stdout + exported.stderr


def test_a_server_echoing_part_of_a_key_leaks_nothing(fake_coder: FakeCoder, tmp_path: Path) -> None:
    root = manifests(tmp_path / "m")
    key = "gm-key-CANARYsecret-0123456789abcdef"
    echo = {"message": f"Invalid API key {key[:14]}… rejected", "detail": json.dumps({"api_key": key}),
            "validations": [{"field": "api_keys[0]", "detail": f"got {key[5:20]} and {CANARY[:10]}"}]}
    fake_coder.inject(400, body=echo, method="POST", path_prefix="/api/v2/ai/providers")
    env = {"CODER_SESSION_TOKEN": fake_coder.token, "RECONCILER_STORE": "coder+" + fake_coder.url,
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "GEMINI_KEY": key, "GOOG_HEADER": CANARY}
    report = tmp_path / "report.json"
    done = run_cli("apply", str(root), "--report", str(report), env=env)
    assert done.returncode == 1
    seen = done.stdout + done.stderr + report.read_text()
    assert "(redacted)" in seen
    for secret in (key, CANARY, fake_coder.token):
        assert not any(secret[i:i + 8] in seen for i in range(len(secret) - 7)), secret
