"""`reconciler verify` through the real entry point, against fake upstreams and a fake Coder served
over real HTTP on 127.0.0.1: every verdict of every family, pools, model ids, --live, --through."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.fakecoder import FakeCoder, fixtures
from tests.fakeupstream import ANTHROPIC, AZURE, FAMILIES, OPENAI, OPENROUTER, FakeUpstream

fake_coder = fixtures.fake_coder

CANARY = "sk-CANARY-7f3e9a1c55d04b2e8c6a"  # echoed back by the upstream in its 401 body
GOOD, REVOKED, LIMITED, SLOW = (f"sk-{what}-0123456789abcdef" for what in ("good", "revoked", "limited", "slow"))
TYPE = {OPENAI: "openai", AZURE: "azure", ANTHROPIC: "anthropic", OPENROUTER: "openrouter"}
MODELS = {
    OPENAI: ["gpt-5", "gpt-5-mini", "gpt-4.1"],
    AZURE: ["gpt-5", "gpt-4o"],
    ANTHROPIC: ["claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5", "claude-3-5-haiku-latest",
                "claude-sonnet-4-0"],
    OPENROUTER: [{"id": "anthropic/claude-sonnet-4.5", "context_length": 1000000,
                  "pricing": {"prompt": "0.000003", "completion": "0.000015"}},
                 {"id": "openai/gpt-5", "context_length": 400000,
                  "pricing": {"prompt": "0.00000125", "completion": "0.00001"}}],
}


def provider_doc(name: str, ptype: str, base_url: str, keys: list[str]) -> str:
    refs = "".join(f"    - env: {k}\n" for k in keys)
    return (f"apiVersion: reconciler/v1\nkind: Provider\nmetadata:\n  name: {name}\nspec:\n  type: {ptype}\n"
            f"  base_url: {base_url}\n" + (f"  api_keys:\n{refs}" if keys else ""))


def model_doc(name: str, provider: str, model: str, context_limit: int = 100000, extra: str = "") -> str:
    return (f"apiVersion: reconciler/v1\nkind: Model\nmetadata:\n  name: {name}\nspec:\n  provider: {provider}\n"
            f"  model: {model}\n  context_limit: {context_limit}\n{extra}")


def write(path: Path, *docs: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "manifests.yaml").write_text("---\n".join(docs))
    return path


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def verify(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    """(exit code, the json report, stdout + stderr)."""
    done = run_cli("verify", *args, "--format", "json", env=env)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stdout + done.stderr


def verdicts(report: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["verdict"] for p in report["providers"]}


@pytest.fixture
def upstreams() -> Iterator[dict[str, FakeUpstream]]:
    keys = {GOOD: "ok", REVOKED: "revoked", CANARY: "echo", LIMITED: "429", SLOW: "slow"}
    with ExitStack() as stack:
        yield {f: stack.enter_context(FakeUpstream(f, keys, MODELS[f], slow_seconds=2.0)) for f in FAMILIES}


def family_manifests(tmp_path: Path, family: str, upstream: FakeUpstream, garbage: FakeUpstream) -> Path:
    ptype, base = TYPE[family], upstream.base_url
    wrong = upstream.origin + ("/api" if family == ANTHROPIC else "/wrong/v1")
    down = f"http://127.0.0.1:{closed_port()}" + ("" if family == ANTHROPIC else "/v1")
    return write(
        tmp_path / family,
        provider_doc("good", ptype, base, ["GOOD"]),
        provider_doc("revoked", ptype, base, ["REVOKED"]),
        provider_doc("echo", ptype, base, ["CANARY"]),
        provider_doc("wrong-prefix", ptype, wrong, ["GOOD"]),
        provider_doc("limited", ptype, base, ["LIMITED"]),
        provider_doc("garbage", ptype, garbage.base_url, ["GOOD"]),
        provider_doc("slow", ptype, base, ["SLOW"]),
        provider_doc("down", ptype, down, ["GOOD"]),
        provider_doc("unset", ptype, base, ["NOT_SET_ANYWHERE"]),
    )


KEY_ENV = {"GOOD": GOOD, "REVOKED": REVOKED, "CANARY": CANARY, "LIMITED": LIMITED, "SLOW": SLOW}


@pytest.mark.parametrize("family", FAMILIES)
def test_every_verdict_of_every_family(family: str, upstreams: dict[str, FakeUpstream], tmp_path: Path) -> None:
    with FakeUpstream(family, {GOOD: "garbage"}, MODELS[family], garbage=True) as garbage:
        path = family_manifests(tmp_path, family, upstreams[family], garbage)
        code, report, shown = verify(str(path), "--request-timeout", "0.5", "--parallelism", "4", env=KEY_ENV)
    assert code == 1
    assert verdicts(report) == {
        "good": "ok", "revoked": "auth_failed", "echo": "auth_failed", "wrong-prefix": "not_found",
        "limited": "rate_limited", "garbage": "protocol_error", "slow": "unreachable", "down": "unreachable",
        "unset": "skipped",
    }
    keys = {p["name"]: p["keys"][0] for p in report["providers"]}
    assert keys["good"]["models"] == len(MODELS[family])
    assert "did not answer within 0.5 s" in keys["slow"]["message"]
    assert "Connection refused" in keys["down"]["message"]
    assert "after 3 attempts" in keys["limited"]["message"]
    assert "NOT_SET_ANYWHERE is not set" in keys["unset"]["message"]
    expected_prefix = {OPENAI: "path /v1", AZURE: "path /openai/v1", ANTHROPIC: "no path",
                       OPENROUTER: "path /api/v1"}[family]
    assert expected_prefix in keys["wrong-prefix"]["message"]
    assert "(redacted)" in keys["echo"]["message"]
    for secret in (CANARY, CANARY[3:11], GOOD, REVOKED):
        assert secret not in shown
    codes = {d["code"] for d in report["diagnostics"]}
    assert codes == {"RC601", "RC602", "RC603", "RC604", "RC605", "RC606"}


def test_auth_headers_each_family_sends(upstreams: dict[str, FakeUpstream], tmp_path: Path) -> None:
    path = write(tmp_path / "m", *(provider_doc(f"p-{f}", TYPE[f], u.base_url, ["GOOD"]) for f, u in upstreams.items()))
    code, report, _ = verify(str(path), env=KEY_ENV)
    assert code == 0, report
    seen = {f: u.seen for f, u in upstreams.items()}
    assert seen[AZURE][0].headers["api-key"] == GOOD and "authorization" not in seen[AZURE][0].headers
    assert seen[OPENAI][0].headers["authorization"] == f"Bearer {GOOD}"
    anthropic = seen[ANTHROPIC]
    assert all(s.headers["x-api-key"] == GOOD and s.headers["anthropic-version"] for s in anthropic)
    assert [s.query.get("after_id") for s in anthropic] == [None, "claude-sonnet-4-5", "claude-3-5-haiku-latest"]
    assert [s.path for s in seen[OPENROUTER]] == ["/api/v1/key", "/api/v1/models"]


def test_a_dead_backup_key_in_a_pool_of_three(upstreams: dict[str, FakeUpstream], tmp_path: Path) -> None:
    path = write(tmp_path / "m", provider_doc("openai", "openai", upstreams[OPENAI].base_url,
                                              ["GOOD", "GOOD_TOO", "REVOKED"]))
    code, report, shown = verify(str(path), env={**KEY_ENV, "GOOD_TOO": GOOD})
    assert code == 1
    provider, = report["providers"]
    assert provider["verdict"] == "auth_failed"
    assert [k["verdict"] for k in provider["keys"]] == ["ok", "ok", "auth_failed"]
    assert "key 3 (env:REVOKED)" in provider["keys"][2]["message"]
    diagnostic, = report["diagnostics"]
    assert (diagnostic["line"], diagnostic["path"], diagnostic["code"]) == (11, "spec.api_keys[2]", "RC601")


def test_a_model_id_typo_is_reported_at_its_line_with_the_right_suggestion(
        upstreams: dict[str, FakeUpstream], tmp_path: Path) -> None:
    path = write(tmp_path / "m",
                 provider_doc("anthropic", "anthropic", upstreams[ANTHROPIC].base_url, ["GOOD"]),
                 model_doc("sonnet", "anthropic", "claude-sonet-4-5"),
                 model_doc("opus", "anthropic", "claude-opus-4-1"))
    done = run_cli("verify", str(path), "--format", "github", env=KEY_ENV)
    assert done.returncode == 1
    annotation, = done.stdout.splitlines()
    # the typo's `model:` is line 17 of the file: 9 lines of provider, `---`, then 7 lines down
    assert annotation.startswith(f"::error file={path / 'manifests.yaml'},line=17,col=10,title=RC607::")
    assert "did you mean 'claude-sonnet-4-5'" in annotation


def test_openrouter_context_window_and_prices(upstreams: dict[str, FakeUpstream], tmp_path: Path) -> None:
    pricing = "  pricing: {input: '3', output: '16'}\n"
    path = write(tmp_path / "m",
                 provider_doc("openrouter", "openrouter", upstreams[OPENROUTER].base_url, ["GOOD"]),
                 model_doc("sonnet", "openrouter", "anthropic/claude-sonnet-4.5", 1000000, pricing),
                 model_doc("gpt", "openrouter", "openai/gpt-5", 500000))
    code, report, _ = verify(str(path), env=KEY_ENV)
    assert code == 1
    found = {(d["code"], d["path"]): d for d in report["diagnostics"]}
    assert set(found) == {("RC609", "spec.context_limit"), ("RC610", "spec.pricing")}
    assert "above the 400000 tokens" in found["RC609", "spec.context_limit"]["message"]
    price = found["RC610", "spec.pricing"]
    assert price["severity"] == "warning" and "output $16 (upstream $15)" in price["message"]


def test_retries_honour_retry_after_and_recover(tmp_path: Path) -> None:
    with FakeUpstream(OPENAI, {GOOD: "429-once", REVOKED: "500-once"}, ["gpt-5"]) as upstream:
        path = write(tmp_path / "m", provider_doc("p", "openai", upstream.base_url, ["GOOD", "REVOKED"]))
        code, report, _ = verify(str(path), env=KEY_ENV)
        assert code == 0, report
        assert upstream.count("GET", "/models") == 4  # each key: a refusal, then the list


def test_live_is_never_called_without_the_flag(upstreams: dict[str, FakeUpstream], tmp_path: Path) -> None:
    path = write(tmp_path / "m",
                 provider_doc("openai", "openai", upstreams[OPENAI].base_url, ["GOOD"]),
                 provider_doc("anthropic", "anthropic", upstreams[ANTHROPIC].base_url, ["GOOD"]),
                 model_doc("gpt", "openai", "gpt-5"), model_doc("mini", "openai", "gpt-5-mini"),
                 model_doc("haiku", "anthropic", "claude-haiku-4-5"))
    code, _, _ = verify(str(path), env=KEY_ENV)
    assert code == 0
    assert sum(u.count("POST") for u in upstreams.values()) == 0

    done = run_cli("verify", str(path), "--live", env=KEY_ENV)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "billed" in done.stderr
    assert upstreams[OPENAI].count("POST", "/chat/completions") == 2
    assert upstreams[ANTHROPIC].count("POST", "/messages") == 1
    bodies = [s.body for u in upstreams.values() for s in u.seen if s.method == "POST"]
    assert sorted(b["model"] for b in bodies) == ["claude-haiku-4-5", "gpt-5", "gpt-5-mini"]


def test_live_reports_a_listed_model_that_is_not_served(tmp_path: Path) -> None:
    with FakeUpstream(OPENAI, {GOOD: "ok"}, ["gpt-5", "gpt-5-mini"], unserved=["gpt-5-mini"]) as upstream:
        path = write(tmp_path / "m", provider_doc("openai", "openai", upstream.base_url, ["GOOD"]),
                     model_doc("gpt", "openai", "gpt-5"), model_doc("mini", "openai", "gpt-5-mini"))
        code, report, _ = verify(str(path), "--live", env=KEY_ENV)
    assert code == 1 and report["summary"]["completions"] == 2
    diagnostic, = report["diagnostics"]
    assert (diagnostic["code"], diagnostic["line"], diagnostic["path"]) == ("RC611", 26, "spec.model")
    assert "403" in diagnostic["message"]
    assert "no access to gpt-5-mini" in diagnostic["message"]


def test_warn_only_metrics_and_markdown(upstreams: dict[str, FakeUpstream], tmp_path: Path) -> None:
    path = write(tmp_path / "m", provider_doc("openai", "openai", upstreams[OPENAI].base_url, ["GOOD", "CANARY"]))
    metrics = tmp_path / "verify.prom"
    done = run_cli("verify", str(path), "--warn-only", "--format", "markdown", "--metrics-file", str(metrics),
                   env=KEY_ENV)
    assert done.returncode == 0
    assert "| `openai` | openai | 2 env:CANARY | **auth_failed** |" in done.stdout
    text = metrics.read_text()
    assert 'reconciler_verify_key_verdict{provider="openai",type="openai",key="2",verdict="auth_failed"} 1' in text
    assert 'reconciler_verify_key_verdict{provider="openai",type="openai",key="1",verdict="ok"} 1' in text
    assert 'reconciler_verify_provider_verdict{provider="openai",type="openai",verdict="ok"} 0' in text
    assert "reconciler_verify_last_run_success 0" in text
    for output in (done.stdout, done.stderr, text):
        assert CANARY not in output and CANARY[-8:] not in output


def test_skipped_types_and_invalid_manifests(tmp_path: Path) -> None:
    path = write(tmp_path / "m",
                 "apiVersion: reconciler/v1\nkind: Provider\nmetadata: {name: copilot}\nspec: {type: copilot}\n",
                 "apiVersion: reconciler/v1\nkind: Provider\nmetadata: {name: bedrock}\n"
                 "spec: {type: bedrock, settings: {bedrock: {region: us-east-1, model: m, small_fast_model: s}}}\n",
                 "apiVersion: reconciler/v1\nkind: Provider\nmetadata: {name: byok}\nspec: {type: openai}\n")
    code, report, _ = verify(str(path))
    assert code == 0 and verdicts(report) == {"bedrock": "skipped", "byok": "skipped", "copilot": "skipped"}
    assert "BYOK" in report["providers"][1]["message"]

    broken = write(tmp_path / "bad", "apiVersion: reconciler/v1\nkind: Provider\nmetadata: {name: x}\nspec: {}\n")
    metrics = tmp_path / "verify.prom"
    done = run_cli("verify", str(broken), "--metrics-file", str(metrics))
    assert done.returncode == 1 and "nothing was verified" in done.stderr and "Traceback" not in done.stderr
    assert "reconciler_verify_last_run_success 0" in metrics.read_text()


def test_the_overall_deadline_bounds_the_run(tmp_path: Path) -> None:
    with FakeUpstream(OPENAI, {SLOW: "slow"}, ["gpt-5"], slow_seconds=1.0) as upstream:
        path = write(tmp_path / "m", provider_doc("slow", "openai", upstream.base_url, ["SLOW", "SLOW", "SLOW"]))
        code, report, _ = verify(str(path), "--deadline", "0.6", "--parallelism", "1", env=KEY_ENV)
    assert code == 1
    messages = [k["message"] for k in report["providers"][0]["keys"]]
    assert "did not answer within 0.5" in messages[0] or "did not answer within 0.6" in messages[0]
    assert all("the overall deadline of 0.6 s passed" in m for m in messages[1:])


def test_google_ids_and_nothing_written(tmp_path: Path) -> None:
    with FakeUpstream(OPENAI, {GOOD: "ok"}, ["models/gemini-2.5-pro", "models/gemini-2.5-flash"]) as upstream:
        path = write(tmp_path / "m", provider_doc("gemini", "google", upstream.base_url, ["GOOD"]),
                     model_doc("pro", "gemini", "gemini-2.5-pro"), model_doc("flash", "gemini", "gemini-2.5-flsh"))
        done = run_cli("verify", str(path), env={**KEY_ENV, "RECONCILER_STORE": "sqlite:///store.db"}, cwd=tmp_path)
    assert done.returncode == 1
    error, = done.stderr.splitlines()  # gemini-2.5-pro is found although Google lists models/gemini-2.5-pro
    assert "model 'gemini-2.5-flsh'" in error and "did you mean 'gemini-2.5-flash'" in error and "models/" not in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no store, no state


# ------------------------------------------------------------------------------ through Coder


def test_through_coder_checks_the_keys_coder_holds(fake_coder: FakeCoder, upstreams: dict[str, FakeUpstream],
                                                   tmp_path: Path) -> None:
    path = write(tmp_path / "m",
                 provider_doc("openai", "openai", upstreams[OPENAI].base_url, ["GOOD"]),
                 provider_doc("claude", "anthropic", upstreams[ANTHROPIC].base_url, ["GOOD"]),
                 provider_doc("stale", "azure", upstreams[AZURE].base_url, ["CANARY"]),
                 model_doc("gpt", "openai", "gpt-5", extra="  default: true\n"),
                 model_doc("sonnet", "claude", "claude-sonet-4-5"))
    store_env = {"CODER_SESSION_TOKEN": fake_coder.token, **KEY_ENV}
    applied = run_cli("apply", str(path), "--store", "coder+" + fake_coder.url, env=store_env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    for upstream in upstreams.values():
        upstream.seen.clear()

    # no provider key in the environment: only the Coder token
    code, report, shown = verify(str(path), "--through", "coder+" + fake_coder.url,
                                 env={"CODER_SESSION_TOKEN": fake_coder.token})
    assert code == 1
    assert report["through"] == fake_coder.url
    assert verdicts(report) == {"claude": "ok", "openai": "ok", "stale": "auth_failed"}
    assert "the key Coder holds for stale" in report["providers"][2]["keys"][0]["message"]
    typo, = [d for d in report["diagnostics"] if d["code"] == "RC607"]
    assert "did you mean 'claude-sonnet-4-5'" in typo["message"]
    # Coder swapped its token for the key it holds
    assert upstreams[ANTHROPIC].seen[0].headers["x-api-key"] == GOOD
    assert all(fake_coder.token not in s.headers.values() for u in upstreams.values() for s in u.seen)
    gateway = [r for r in fake_coder.requests if r.path.startswith("/api/v2/ai-gateway/")]
    assert {r.path for r in gateway} == {f"/api/v2/ai-gateway/{n}/v1/models" for n in ("openai", "claude", "stale")}
    assert all(r.headers["authorization"] == f"Bearer {fake_coder.token}" for r in gateway)
    for secret in (CANARY, fake_coder.token):
        assert secret not in shown


def test_through_coder_with_a_bad_token_or_an_unknown_provider(fake_coder: FakeCoder,
                                                               upstreams: dict[str, FakeUpstream],
                                                               tmp_path: Path) -> None:
    path = write(tmp_path / "m", provider_doc("never-applied", "openai", upstreams[OPENAI].base_url, ["GOOD"]))
    code, report, shown = verify(str(path), "--through", "coder+" + fake_coder.url,
                                 env={"CODER_SESSION_TOKEN": "not-the-token-0123456789"})
    assert code == 1
    key, = report["providers"][0]["keys"]
    assert key["verdict"] == "auth_failed" and "Coder refused the session token (403)" in key["message"]
    assert "not-the-token-0123456789" not in shown

    code, report, _ = verify(str(path), "--through", "coder+" + fake_coder.url,
                             env={"CODER_SESSION_TOKEN": fake_coder.token})
    assert verdicts(report) == {"never-applied": "not_found"}
    assert "apply the manifests first" in report["providers"][0]["keys"][0]["message"]

    done = run_cli("verify", str(path), "--through", "coder+http://example.com", env={"CODER_SESSION_TOKEN": "t"})
    assert done.returncode == 1 and "only for loopback hosts" in done.stderr
    done = run_cli("verify", str(path), "--through", "coder+" + fake_coder.url)
    assert done.returncode == 1 and "CODER_SESSION_TOKEN" in done.stderr


# ------------------------------------------------------------------------- the example workflow


def test_the_example_workflow_verifies_pull_requests_and_through_coder_on_a_schedule() -> None:
    import yaml

    from tests.test_workflow import GITHUB_WORKFLOW, env_references

    jobs = yaml.safe_load(GITHUB_WORKFLOW.read_text())["jobs"]
    pr, through = jobs["verify"], jobs["verify-through-coder"]
    assert pr["if"] == "github.event_name == 'pull_request'"
    step = next(s for s in pr["steps"] if s.get("id") == "verify")
    assert 'reconciler verify "$MANIFESTS" --format github' in step["run"] and 'exit "$status"' in step["run"]
    keys = env_references()
    assert all(pr["env"][name] == f"${{{{ secrets.{name} }}}}" for name in keys)
    # the job that posts the plan comment still gets no key; the through-Coder check none either
    assert not any(name in jobs["pull-request"].get("env", {}) or name in through["env"] for name in keys)
    assert through["needs"] == "apply" and "schedule" in through["if"]
    step = next(s for s in through["steps"] if s.get("id") == "verify-through")
    assert '--through "$RECONCILER_STORE"' in step["run"] and "--metrics-file verify.prom" in step["run"]


def test_claude_platform_for_aws_without_keys_is_skipped_for_its_real_reason(tmp_path: Path) -> None:
    path = write(tmp_path / "m", "apiVersion: reconciler/v1\nkind: Provider\nmetadata: {name: anthropic-aws}\n"
                                 "spec: {type: anthropic, settings: {claude_platform_aws: "
                                 "{region: us-east-1, workspace_id: w}}}\n")
    code, report, _ = verify(str(path))
    assert code == 0 and verdicts(report) == {"anthropic-aws": "skipped"}
    assert "Claude Platform for AWS" in report["providers"][0]["message"]
