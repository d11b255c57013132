"""A saved plan is a contract: signed, applied at most once, for one store, and checked again at
apply against the live store (protect, --max-deletes, validation), on both SQL stores.

The forgeries here are signed with the right key where the point is the second line of defence
(a key holder's mistake, or a plan from another version): the signature is tested on its own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.planfile import _signature, plan_keys
from tests import storefixtures
from tests.cliharness import Manifests, assert_one_line_error, example_manifests, history, storage_snapshot
from tests.conftest import run_cli
from tests.storefixtures import Backend

backend = storefixtures.backend


@pytest.fixture
def manifests(tmp_path: Path) -> Manifests:
    return example_manifests(tmp_path)


def run(backend: Backend, manifests: Manifests, *args: str, env: dict[str, str] | None = None) -> Any:
    return run_cli(*args, "--store", backend.url, env={**manifests.env, **(env or {})})


def saved_plan(backend: Backend, manifests: Manifests, path: Path, *args: str) -> dict[str, Any]:
    done = run(backend, manifests, "plan", str(manifests.path), "--out", str(path), *args)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(path.read_text()))


def resign(path: Path, body: dict[str, Any], env: dict[str, str]) -> None:
    """Write `body` signed with the key `env` holds: what only a key holder can do."""
    unsigned = {k: v for k, v in body.items() if k != "signature"}
    body = {"kind": unsigned["kind"], "signature": _signature(unsigned, plan_keys(env)[0]), **unsigned}
    path.write_text(json.dumps(body))


def refused(done: Any, *needles: str) -> None:
    assert done.returncode == 1, done.stdout
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


def test_a_forgery_re_signed_without_the_key_is_refused(backend: Backend, manifests: Manifests,
                                                        tmp_path: Path) -> None:
    path = tmp_path / "p.plan"
    body = saved_plan(backend, manifests, path)
    provider = next(c for c in body["changes"] if c["kind"] == "Provider")
    provider["after"]["base_url"] = "https://attacker.example.com/v1"
    resign(path, body, {"RECONCILER_PLAN_KEY": "an attacker's own key, 32 characters long"})
    done = run(backend, manifests, "apply", str(path))
    assert_one_line_error(done.stderr, "signature does not match")
    assert history(backend.url) == []


@pytest.mark.parametrize(("field", "value", "needle"), [
    ("type", "nonsense", "RC201"),
    ("base_url", "javascript:alert(1)", "RC301"),
    ("enabled", "yes", "RC201"),
])
def test_what_validation_refuses_is_never_written(backend: Backend, manifests: Manifests, tmp_path: Path,
                                                  field: str, value: str, needle: str) -> None:
    path = tmp_path / "p.plan"
    body = saved_plan(backend, manifests, path)
    provider = next(c for c in body["changes"] if c["kind"] == "Provider")
    provider["after"][field] = value
    resign(path, body, manifests.env)
    done = run(backend, manifests, "apply", str(path))
    refused(done, "is refused, nothing was applied", "would write what validation refuses", needle)
    assert history(backend.url) == []


def test_a_plan_applies_at_most_once_even_on_an_a_b_a_store(backend: Backend, manifests: Manifests,
                                                             tmp_path: Path) -> None:
    assert run(backend, manifests, "apply", str(manifests.path)).returncode == 0
    openai = manifests.file("providers/openai.yaml")
    original = openai.read_text()
    openai.write_text(original.replace("display_name: OpenAI", "display_name: OpenAI (B)"))
    path = tmp_path / "to-b.plan"
    saved_plan(backend, manifests, path)
    assert run(backend, manifests, "apply", str(path)).returncode == 0
    openai.write_text(original)  # back to A by another apply
    assert run(backend, manifests, "apply", str(manifests.path)).returncode == 0
    # the store holds A again, exactly as when to-b.plan was made against... A? no: made at A
    before = storage_snapshot(backend)
    again = run(backend, manifests, "apply", str(path))
    refused(again, "is stale")
    assert storage_snapshot(backend) == before


def test_protect_and_max_deletes_are_checked_again_at_apply(backend: Backend, manifests: Manifests,
                                                            tmp_path: Path) -> None:
    vercel = manifests.file("providers/vercel.yaml")
    protect = 'metadata:\n  annotations: {reconciler/protect: "true"}\n'
    vercel.write_text(vercel.read_text().replace("metadata:\n", protect, 1))
    assert run(backend, manifests, "apply", str(manifests.path)).returncode == 0
    path = tmp_path / "p.plan"
    body = saved_plan(backend, manifests, path)
    assert body["changes"] == []
    # a plan that deletes the protected provider, with the store's own fingerprint (a buggy or older
    # planner, or a key holder's edit): refused by the live store's annotation
    body["changes"] = [{"action": "delete", "kind": "Provider", "key": "vercel", "key_fields": ["vercel"],
                        "before": {"type": "vercel"}, "after": None, "diff": [], "needs": [],
                        "send_secrets": [], "depends_on": []}]
    body["options"]["max_deletes"] = 0
    resign(path, body, manifests.env)
    before = storage_snapshot(backend)
    done = run(backend, manifests, "apply", str(path))
    refused(done, "Provider/vercel is protected", "more than its --max-deletes 0")
    assert storage_snapshot(backend) == before


def test_a_protect_given_after_the_plan_makes_it_stale(backend: Backend, manifests: Manifests,
                                                       tmp_path: Path) -> None:
    assert run(backend, manifests, "apply", str(manifests.path)).returncode == 0
    vercel = manifests.file("providers/vercel.yaml")
    models = manifests.file("models/vercel.yaml")
    text, models_text = vercel.read_text(), models.read_text()
    vercel.unlink()
    models.unlink()
    path = tmp_path / "prune.plan"
    body = saved_plan(backend, manifests, path, "--prune", "--max-deletes", "10")
    assert any(c["action"] == "delete" and c["kind"] == "Provider" for c in body["changes"])
    vercel.write_text(text.replace("metadata:\n", 'metadata:\n  annotations: {reconciler/protect: "true"}\n', 1))
    models.write_text(models_text)
    assert run(backend, manifests, "apply", str(manifests.path)).returncode == 0  # only the annotation changes
    before = storage_snapshot(backend)
    refused(run(backend, manifests, "apply", str(path)), "is stale")
    assert storage_snapshot(backend) == before


def test_a_plan_without_a_store_or_signature_is_refused(backend: Backend, manifests: Manifests,
                                                        tmp_path: Path) -> None:
    path = tmp_path / "p.plan"
    body = saved_plan(backend, manifests, path)
    body["store"] = ""
    resign(path, body, manifests.env)
    refused(run(backend, manifests, "apply", str(path)), "was made for no store at all")
    unsigned_env = {k: v for k, v in manifests.env.items() if k != "RECONCILER_ENCRYPTION_KEY"}
    made = run_cli("plan", str(manifests.path), "--out", str(path), "--store", backend.url, env=unsigned_env)
    assert made.returncode == 0 and "is not signed" in made.stderr
    refused(run(backend, manifests, "apply", str(path)), "the plan is not signed")
    assert history(backend.url) == []


@pytest.mark.parametrize("mangle", ["deep", "huge-int", "action", "types", "nan"])
def test_crafted_plan_json_is_a_clear_error(backend: Backend, manifests: Manifests, tmp_path: Path,
                                            mangle: str) -> None:
    path = tmp_path / "p.plan"
    body = saved_plan(backend, manifests, path)
    change = body["changes"][0]
    if mangle in ("deep", "huge-int"):
        change["after"]["display_name"] = "@@here@@"
        resign(path, body, manifests.env)
        crafted = "[" * 5_000 + '"x"' + "]" * 5_000 if mangle == "deep" else "9" * 5_000
        path.write_text(path.read_text().replace('"@@here@@"', crafted))
    else:
        if mangle == "action":
            change["action"] = "obliterate"
        elif mangle == "types":
            change["key_fields"] = {"not": "a list"}
        resign(path, body, manifests.env)
        if mangle == "nan":
            path.write_text(path.read_text().replace('"prune": false', '"prune": NaN'))
    done = run(backend, manifests, "apply", str(path))
    refused(done, str(path))
    assert len(done.stderr.strip().splitlines()) >= 1
    assert history(backend.url) == []
