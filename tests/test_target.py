"""`--target Kind/name` plans some manifests and what they depend on, on every store; it says the plan is
partial, refuses what names nothing, and is refused with a saved plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests import storefixtures
from tests.cliharness import Manifests, example_manifests, object_count
from tests.conftest import run_cli
from tests.fakecoder import FakeCoder, fixtures
from tests.storefixtures import Backend

backend = storefixtures.backend
fake_coder = fixtures.fake_coder


@pytest.fixture
def manifests(tmp_path: Path) -> Manifests:
    return example_manifests(tmp_path)


def planned(url: str, manifests: Manifests, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = run_cli("plan", str(manifests.path), "--store", url, "--format", "json", *args,
                   env={**manifests.env, **(env or {})})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def changed(plan: dict[str, Any]) -> list[str]:
    return sorted(f"{c['kind']}/{c['key']}" for c in plan["changes"])


# its price is the store's price book's (nothing to write), so no Price change
SONNET = ["Model/{org}/anthropic/claude-sonnet-4-5", "Override/{org}/general", "Provider/anthropic"]


def test_a_model_target_takes_its_provider_price_and_overrides(backend: Backend, manifests: Manifests) -> None:
    plan = planned(backend.url, manifests, "--target", "Model/claude-sonnet")
    assert changed(plan) == sorted(s.format(org="default") for s in SONNET)
    assert plan["notes"][0].startswith("this plan is partial: only --target Model/claude-sonnet")
    done = run_cli("apply", str(manifests.path), "--store", backend.url, "--target", "Model/claude-sonnet",
                   env=manifests.env)
    assert done.returncode == 0, done.stderr
    assert object_count(backend.url) == 3  # nothing else was written
    # a provider alone; then an Overrides document and every model its contexts route to
    assert changed(planned(backend.url, manifests, "--target", "Provider/openai")) == ["Provider/openai"]
    overrides = changed(planned(backend.url, manifests, "--target", "Overrides/default-org"))
    assert "Override/default/explore" in overrides and "Model/default/anthropic/claude-haiku-4-5" in overrides
    assert "Provider/openai" in overrides and "Provider/gemini" in overrides
    assert not any(c.startswith("Provider/azure") for c in overrides)


def test_a_provider_target_without_its_manifest_prunes_just_it(backend: Backend, manifests: Manifests) -> None:
    assert run_cli("apply", str(manifests.path), "--store", backend.url, env=manifests.env).returncode == 0
    for model in (manifests.path / "models").glob("vercel.yaml"):
        model.unlink()
    (manifests.path / "providers" / "vercel.yaml").unlink()
    plan = planned(backend.url, manifests, "--target", "Provider/vercel", "--prune")
    assert [c["action"] for c in plan["changes"]] == ["delete"] and changed(plan) == ["Provider/vercel"]
    assert plan["unmanaged"] == []


def test_targets_on_the_fake_coder(fake_coder: FakeCoder, manifests: Manifests, tmp_path: Path) -> None:
    env = {"CODER_SESSION_TOKEN": fake_coder.token, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    plan = planned("coder+" + fake_coder.url, manifests, "--target", "Model/claude-sonnet", env=env)
    assert changed(plan) == sorted(s.format(org="coder") for s in SONNET)


@pytest.mark.parametrize(("target", "message"), [
    ("claude-sonnet", "expected Kind/name"), ("Model/", "expected Kind/name"),
    ("Widget/x", "'Widget' is not a manifest kind"),
])
def test_malformed_targets_are_usage_errors(manifests: Manifests, tmp_path: Path, target: str, message: str) -> None:
    done = run_cli("plan", str(manifests.path), "--store", f"sqlite:///{tmp_path / 's.db'}", "--target", target,
                   env=manifests.env)
    assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr


def test_a_target_naming_nothing_is_an_error(backend: Backend, manifests: Manifests) -> None:
    done = run_cli("plan", str(manifests.path), "--store", backend.url, "--target", "Model/nope",
                   "--target", "Provider/nope", env=manifests.env)
    assert done.returncode == 1
    assert "--target Model/nope, Provider/nope: no manifest has that kind and metadata.name" in done.stderr


def test_target_is_refused_with_a_saved_plan(backend: Backend, manifests: Manifests, tmp_path: Path) -> None:
    path = tmp_path / "p.plan"
    made = run_cli("plan", str(manifests.path), "--store", backend.url, "--target", "Provider/openai",
                   "--out", str(path), env=manifests.env)
    assert made.returncode == 0 and json.loads(path.read_text())["options"]["target"] == ["Provider/openai"]
    shown = run_cli("show", str(path), env=manifests.env)
    assert "this plan is partial" in shown.stdout
    done = run_cli("apply", str(path), "--store", backend.url, "--target", "Provider/openai", env=manifests.env)
    assert done.returncode == 1 and "--target cannot be given with a saved plan" in done.stderr
    assert object_count(backend.url) == 0
    applied = run_cli("apply", str(path), "--store", backend.url, env=manifests.env)
    assert applied.returncode == 0, applied.stderr
