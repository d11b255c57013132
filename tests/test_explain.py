"""`reconciler explain` and `reconciler cost`: every fall-through, a user's own view on a fake Coder,
request counts, exact re-pricing of a spend export, and golden text and Markdown."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from reconciler.cost import reprice
from reconciler.explain import UserView, explain
from reconciler.secrets import Secret
from reconciler.state import MODEL, OVERRIDE, PRICE, PROVIDER, SETTINGS, SETTINGS_KEY, State
from tests.conftest import run_cli
from tests.fakecoder import FakeCoder, fixtures, people

fake_coder = fixtures.fake_coder
GOLDEN = Path(__file__).parent / "golden_explain"
CANARY = "sk-canary-explain-0123456789abcdef"

MANIFESTS = """\
apiVersion: reconciler/v1
kind: Provider
metadata: {name: anthropic}
spec:
  type: anthropic
  api_keys: [{env: EXPLAIN_ANTHROPIC_KEY}]
---
apiVersion: reconciler/v1
kind: Provider
metadata: {name: openai}
spec:
  type: openai
  enabled: %(openai_enabled)s
  api_keys: [{env: EXPLAIN_OPENAI_KEY}]
---
apiVersion: reconciler/v1
kind: Provider
metadata: {name: internal}
spec:
  type: openai-compat
  base_url: https://llm.internal.example/v1
---
apiVersion: reconciler/v1
kind: Model
metadata: {name: sonnet}
spec:
  provider: anthropic
  model: claude-sonnet-4-5
  default: true
  context_limit: 200000
  config: {reasoning_effort: {default: medium, max: high}}
---
apiVersion: reconciler/v1
kind: Model
metadata: {name: haiku}
spec:
  provider: anthropic
  model: claude-haiku-4-5
  enabled: %(haiku_enabled)s
  context_limit: 200000
  pricing: {input: "0.8", output: "4"}
---
apiVersion: reconciler/v1
kind: Model
metadata: {name: mini}
spec:
  provider: openai
  model: gpt-5-mini
  context_limit: 400000
---
apiVersion: reconciler/v1
kind: Model
metadata: {name: qwen}
spec:
  provider: internal
  model: qwen3-coder
  context_limit: 128000
---
apiVersion: reconciler/v1
kind: Overrides
metadata: {name: default-org}
spec:
  contexts:
    explore: {model: haiku}
    title_generation: {model: mini}
    compaction: {model: qwen}
---
apiVersion: reconciler/v1
kind: Settings
metadata: {name: deployment}
spec:
  personal_model_overrides: {allow_users: %(allow_users)s}
"""


def write_manifests(root: Path, *, haiku_enabled: bool = True, openai_enabled: bool = True,
                    allow_users: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    values = {"haiku_enabled": str(haiku_enabled).lower(), "openai_enabled": str(openai_enabled).lower(),
              "allow_users": str(allow_users).lower()}
    (root / "all.yaml").write_text(MANIFESTS % values)
    return root


def contexts_of(stdout: str, side: int = 0) -> dict[str, dict]:
    data = json.loads(stdout)
    assert data["format_version"] == "1"
    return {c["context"]: c for c in data["explanations"][side]["contexts"]}


def test_from_manifests_every_fall_through(tmp_path: Path) -> None:
    root = write_manifests(tmp_path / "m", haiku_enabled=True, openai_enabled=False)
    done = run_cli("explain", str(root), "--format", "json")
    assert done.returncode == 0, done.stderr
    contexts = contexts_of(done.stdout)
    explore = contexts["explore"]
    assert explore["model"] == "haiku (anthropic/claude-haiku-4-5)"
    assert [x["used"] for x in explore["layers"]] == [False, True]
    # title generation names a model of a disabled provider: title generation is skipped
    title = contexts["title_generation"]
    assert title["model"] is None and "skipped" in title["note"]
    assert "provider openai is disabled" in title["layers"][-1]["reason"]
    # compaction names a model whose provider has no credentials: it falls through
    compaction = contexts["compaction"]
    assert compaction["model"] == "sonnet (anthropic/claude-sonnet-4-5)"
    assert "no central key" in compaction["layers"][0]["reason"]
    credentials = {c["provider"]: c for c in json.loads(done.stdout)["explanations"][0]["credentials"]}
    assert credentials["internal"]["available"] is False
    assert credentials["anthropic"]["central_keys"] == ["env:EXPLAIN_ANTHROPIC_KEY"]
    prices = {p["model"]: p for p in json.loads(done.stdout)["explanations"][0]["prices"]}
    assert prices["sonnet (anthropic/claude-sonnet-4-5)"]["source"] == "the server's price book"
    assert prices["haiku (anthropic/claude-haiku-4-5)"]["source"] == "pinned in the manifests"
    assert prices["haiku (anthropic/claude-haiku-4-5)"]["prices"]["input"] == "0.8"
    assert prices["qwen (internal/qwen3-coder)"]["source"].startswith("none")


def test_personal_overrides_off_skip_the_personal_layer(tmp_path: Path) -> None:
    root = write_manifests(tmp_path / "m", allow_users=False)
    done = run_cli("explain", str(root), "--context", "general", "--format", "json")
    general = contexts_of(done.stdout)["general"]
    assert list(contexts_of(done.stdout)) == ["general"]
    assert "does not let users override" in general["layers"][0]["reason"]
    # no admin override for general: the chat's model, the organization's default
    assert general["model"] == "sonnet (anthropic/claude-sonnet-4-5)"


def test_bad_questions_are_usage_errors(tmp_path: Path) -> None:
    root = write_manifests(tmp_path / "m")
    done = run_cli("explain", cwd=tmp_path)
    assert done.returncode == 1 and "give manifest PATHs" in done.stderr
    done = run_cli("explain", str(root), "--diff", cwd=tmp_path)
    assert done.returncode == 1 and "--diff compares" in done.stderr
    for argv, needle in [
        (["explain", str(root), "--context", "chat"], "unknown context 'chat'"),
        (["explain", str(root), "--user", "alice"], "--user needs a Coder store"),
        (["cost", str(root), "--since", "soon"], "--since 'soon'"),
    ]:
        done = run_cli(*argv, cwd=tmp_path, env={"RECONCILER_STORE": f"sqlite:///{tmp_path}/s.db"})
        assert done.returncode == 1, argv
        assert needle in done.stderr and "Traceback" not in done.stderr, (argv, done.stderr)


def _user_state(access: dict | None) -> State:
    state = State(default_organization="coder")
    state.of(PROVIDER)[("anthropic",)] = {"type": "anthropic", "enabled": True, "api_keys": [], "settings": None}
    state.of(PROVIDER)[("bedrock",)] = {"type": "bedrock", "enabled": True, "api_keys": [],
                                        "settings": {"bedrock": {"region": "us-east-1"}}}
    state.of(MODEL)[("coder", "anthropic", "opus")] = {"enabled": True, "default": False, "access": access}
    state.of(MODEL)[("coder", "bedrock", "sonnet")] = {"enabled": True, "default": True}
    state.of(OVERRIDE)[("coder", "general")] = {"provider": "anthropic", "model": "opus"}
    state.of(SETTINGS)[SETTINGS_KEY] = {"allow_users": True}
    return state


@pytest.mark.parametrize(("byok", "own", "groups", "expected", "why"), [
    (True, {"anthropic"}, {"Everyone", "ml"}, "anthropic/opus", "set by the organization"),
    (True, set(), {"Everyone", "ml"}, "bedrock/sonnet", "has saved no key of their own"),
    (False, {"anthropic"}, {"Everyone", "ml"}, "bedrock/sonnet", "users cannot bring their own"),
    (True, {"anthropic"}, {"Everyone"}, "bedrock/sonnet", "access list does not include alice"),
])
def test_byok_and_access_lists(byok: bool, own: set[str], groups: set[str], expected: str, why: str) -> None:
    user = UserView("alice", frozenset(groups), {}, frozenset(own), byok)
    answer = explain(_user_state({"groups": ["ml"], "users": []}), side="store", user=user, contexts=("general",))
    general = answer.contexts[0]
    assert general.model == expected
    reasons = " ".join(layer.reason for layer in general.layers)
    assert why in reasons
    # the bedrock provider serves from the ambient AWS chain: never a key
    bedrock = next(c for c in answer.credentials if c.provider == "bedrock")
    assert bedrock.available and "ambient AWS credential chain" in bedrock.source


def test_claude_platform_serves_from_its_keys_else_the_gateways_aws_credentials() -> None:
    state = _user_state(None)
    settings = {"claude_platform_aws": {"region": "us-east-1", "workspace_id": "wrkspc_1"}}
    state.of(PROVIDER)[("claude-aws",)] = {"type": "anthropic", "enabled": True, "api_keys": [], "settings": settings}
    state.of(PROVIDER)[("claude-aws-keyed",)] = {"type": "anthropic", "enabled": True, "settings": settings,
                                                 "api_keys": [Secret(ref="env:KEY")]}
    for provider in ("claude-aws", "claude-aws-keyed"):
        state.of(MODEL)[("coder", provider, "claude-sonnet-4-5")] = {"enabled": True, "default": False}
    credentials = {c.provider: c for c in explain(state, side="store", contexts=("general",)).credentials}
    assert credentials["claude-aws"].available
    assert "ambient AWS credentials, signed for Claude Platform for AWS" in credentials["claude-aws"].source
    assert credentials["claude-aws-keyed"].source == "1 central key(s), in failover order"


def _seed_people(fake: FakeCoder, users: int = 3) -> dict[str, str]:
    ids = {}
    for n in range(users):
        ids[f"user{n}"] = people.add_user(fake.state, f"user{n}").id
    ids["alice"] = people.add_user(fake.state, "alice").id
    org_id = fake.state.find_organization(fixtures.DEFAULT_ORGANIZATION).id
    people.add_group(fake.state, org_id, "ml", [ids["alice"]])
    return ids


def _apply(root: Path, fake: FakeCoder, tmp_path: Path) -> dict[str, str]:
    env = {"CODER_SESSION_TOKEN": fake.token, "RECONCILER_STORE": "coder+" + fake.url,
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "EXPLAIN_ANTHROPIC_KEY": CANARY,
           "EXPLAIN_OPENAI_KEY": "sk-openai-explain-000000000001"}
    done = run_cli("apply", str(root), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return env


def test_a_users_own_view_against_coder(fake_coder: FakeCoder, tmp_path: Path) -> None:
    root = write_manifests(tmp_path / "m", haiku_enabled=True)
    env = _apply(root, fake_coder, tmp_path)
    ids = _seed_people(fake_coder)
    org_id = fake_coder.state.find_organization(fixtures.DEFAULT_ORGANIZATION).id
    haiku = next(m.id for m in fake_coder.state.models.values() if m.model == "claude-haiku-4-5")
    crowd = people.people_of(fake_coder.state)
    crowd.personal[(org_id, ids["alice"], "general")] = {"mode": "model", "model_config_id": haiku}
    crowd.personal[(org_id, ids["alice"], "explore")] = {"mode": "chat_default", "model_config_id": ""}

    done = run_cli("explain", "--user", "alice", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    contexts = contexts_of(done.stdout)
    general = contexts["general"]
    assert general["model"] == "anthropic/claude-haiku-4-5" and general["layers"][0]["used"]
    assert "alice's own choice" in general["layers"][0]["reason"]
    explore = contexts["explore"]  # chat_default: the admin override is bypassed
    assert explore["model"] == "anthropic/claude-sonnet-4-5"
    assert "skipped" in explore["layers"][1]["reason"]
    credentials = {c["provider"]: c for c in json.loads(done.stdout)["explanations"][0]["credentials"]}
    assert credentials["anthropic"]["central_keys"][0].startswith("sk-c...")  # masked as Coder shows it
    assert CANARY not in done.stdout + done.stderr

    # the toggle off: alice's own choice no longer counts
    fake_coder.state.allow_users = False
    done = run_cli("explain", "--user", "alice", "--context", "general", "--format", "json", env=env)
    general = contexts_of(done.stdout)["general"]
    assert general["model"] == "anthropic/claude-sonnet-4-5"
    assert "does not let users override" in general["layers"][0]["reason"]

    # the store now: haiku disabled in the UI, then deleted: the override falls through, either way
    fake_coder.state.allow_users = True
    haiku_model = fake_coder.state.models[haiku]
    haiku_model.enabled = False
    done = run_cli("explain", str(root), "--diff", "--context", "explore", "--format", "json", env=env)
    will, now = contexts_of(done.stdout, 0)["explore"], contexts_of(done.stdout, 1)["explore"]
    assert will["model"] == "haiku (anthropic/claude-haiku-4-5)"  # the manifests enable it again
    assert now["model"] == "sonnet (anthropic/claude-sonnet-4-5)"
    assert "the model is disabled" in now["layers"][1]["reason"]
    del fake_coder.state.models[haiku]
    done = run_cli("explain", "--context", "explore", "--format", "json", env=env)
    explore = contexts_of(done.stdout)["explore"]
    assert explore["model"] == "anthropic/claude-sonnet-4-5"
    assert "no longer exists" in explore["layers"][1]["reason"]

    missing = run_cli("explain", "--user", "nobody", env=env)
    assert missing.returncode == 1 and "user 'nobody'" in missing.stderr and "Traceback" not in missing.stderr


def test_one_user_of_a_thousand_costs_no_request_per_object(fake_coder: FakeCoder, tmp_path: Path) -> None:
    root = tmp_path / "many"
    root.mkdir()
    docs = [MANIFESTS.split("---\n")[0]]
    for n in range(200):
        docs.append(f"apiVersion: reconciler/v1\nkind: Model\nmetadata: {{name: m{n}}}\nspec:\n"
                    f"  provider: anthropic\n  model: model-{n}\n  context_limit: 100000\n"
                    f"  default: {str(n == 0).lower()}\n")
    (root / "all.yaml").write_text("---\n".join(docs))
    env = _apply(root, fake_coder, tmp_path)
    _seed_people(fake_coder, users=1000)
    fake_coder.reset_requests()
    done = run_cli("explain", "--user", "alice", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    paths = [r.path for r in fake_coder.requests]
    model_ids = {m.id for m in fake_coder.state.models.values()}
    user_ids = {u.id for u in people.people_of(fake_coder.state).users.values()}
    assert not [p for p in paths if any(i in p for i in model_ids | user_ids)]  # nothing per model or per user
    per_collection: dict[str, int] = {}
    for path in paths:
        per_collection[path] = per_collection.get(path, 0) + 1
    assert max(per_collection.values()) == 1
    assert len(paths) == 14, paths  # 10 to read the configuration, 4 for the user


def _spend(fake: FakeCoder, ids: dict[str, str], days_ago: int, model: str, ptype: str, pname: str,
           tokens: dict[str, int], cost: int) -> None:
    org_id = fake.state.find_organization(fixtures.DEFAULT_ORGANIZATION).id
    day = datetime.now(UTC) - timedelta(days=days_ago)
    people.people_of(fake.state).spend.append(people.SpendRow(
        ids["alice"], org_id, org_id, model, ptype, pname, day, tokens, cost))


def test_cost_reprices_the_spend_export_exactly(fake_coder: FakeCoder, tmp_path: Path) -> None:
    root = write_manifests(tmp_path / "m", haiku_enabled=True)
    env = _apply(root, fake_coder, tmp_path)
    ids = _seed_people(fake_coder)
    sonnet = {"input": 1_234_567, "output": 345_678, "cache_read": 9_000_001, "cache_write": 77_777}
    haiku = {"input": 5_000_000, "output": 1_000_003, "cache_read": 0, "cache_write": 0}
    _spend(fake_coder, ids, 3, "claude-sonnet-4-5", "anthropic", "anthropic", sonnet, 11_111_111)
    _spend(fake_coder, ids, 40, "claude-sonnet-4-5", "anthropic", "anthropic", sonnet, 11_111_111)  # 2nd window
    _spend(fake_coder, ids, 5, "claude-haiku-4-5", "anthropic", "anthropic", haiku, 9_000_000)
    _spend(fake_coder, ids, 5, "qwen3-coder", "openai-compat", "internal", haiku, 0)
    # the change: haiku's input price from 0.8 to 0.5 per 1M tokens
    manifest = root / "all.yaml"
    manifest.write_text(manifest.read_text().replace('input: "0.8"', 'input: "0.5"'))

    fake_coder.reset_requests()
    done = run_cli("cost", str(root), "--since", "45d", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    exports = [r for r in fake_coder.requests if r.path.endswith("/ai/spend/export")]
    assert len(exports) == 2  # 45 days: two windows of at most 31 days
    data = json.loads(done.stdout)

    # computed here independently: price (micro-dollars per 1M tokens) x tokens / 1M
    def charge(tokens: dict[str, int], price: dict[str, int]) -> Decimal:
        return sum((Decimal(tokens[f]) * price[f] / 1_000_000 for f in price), Decimal(0))

    book_sonnet = {"input": 3_000_000, "output": 15_000_000, "cache_read": 300_000, "cache_write": 3_750_000}
    today_haiku = {"input": 800_000, "output": 4_000_000, "cache_read": 100_000, "cache_write": 1_250_000}
    new_haiku = {**today_haiku, "input": 500_000}
    twice = {f: 2 * v for f, v in sonnet.items()}
    today = charge(twice, book_sonnet) + charge(haiku, today_haiku)
    proposed = charge(twice, book_sonnet) + charge(haiku, new_haiku)
    total = data["total"]
    assert Decimal(total["today_micros"]) == today
    assert Decimal(total["proposed_micros"]) == proposed
    assert Decimal(total["delta_micros"]) == proposed - today == Decimal("-1500000")
    assert total["recorded_micros"] == str(2 * 11_111_111 + 9_000_000)
    assert total["unpriced_tokens_today"] == sum(haiku.values())  # the openai-compat model has no price
    text = run_cli("cost", str(root), "--since", "45d", env=env)
    assert "under this change" in text.stdout and "-$1.50" in text.stdout
    markdown = run_cli("cost", str(root), "--since", "45d", "--format", "markdown", env=env)
    assert markdown.stdout.startswith("### Cost of this change") and "| **total** |" in markdown.stdout


def test_cost_on_a_sql_store_says_it_keeps_no_usage(tmp_path: Path) -> None:
    root = write_manifests(tmp_path / "m")
    done = run_cli("cost", str(root), "--store", f"sqlite:///{tmp_path}/s.db", env={"RECONCILER_ENCRYPTION_KEY": ""})
    assert done.returncode == 0, done.stderr
    assert "keeps no usage" in done.stdout


def test_reprice_is_exact_where_floats_are_not() -> None:
    actual = State()
    actual.default_prices[("openai", "m")] = {"input": 100_001, "output": None, "cache_read": None,
                                              "cache_write": None}
    rows = [{"organization": "o", "provider": "p", "provider_type": "openai", "model": "m",
             "tokens": {"input": 3, "output": 7}, "cost_micros": 0}] * 3
    report = reprice(rows, actual, None, since="a", until="b")
    line = report.lines[0]
    assert line.today == Decimal("0.900009")  # 9 tokens x 100001 / 1M, exactly
    assert line.unpriced_today == 21 and report.totals().percent() == Decimal("0.0")


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_golden_explain_outputs(tmp_path: Path, fmt: str) -> None:
    root = write_manifests(tmp_path / "m", openai_enabled=False)
    done = run_cli("explain", str(root), "--format", fmt, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    golden = GOLDEN / f"explain.{'md' if fmt == 'markdown' else 'txt'}"
    if os.environ.get("RECONCILER_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(done.stdout)
    assert done.stdout == golden.read_text()


def test_plan_cost_appends_the_section(fake_coder: FakeCoder, tmp_path: Path) -> None:
    root = write_manifests(tmp_path / "m")
    env = _apply(root, fake_coder, tmp_path)
    ids = _seed_people(fake_coder)
    _spend(fake_coder, ids, 2, "claude-haiku-4-5", "anthropic", "anthropic",
           {"input": 2_000_000, "output": 0, "cache_read": 0, "cache_write": 0}, 1_600_000)
    manifest = root / "all.yaml"
    manifest.write_text(manifest.read_text().replace('input: "0.8"', 'input: "1"'))
    done = run_cli("plan", str(root), "--cost", "--format", "markdown", env=env)
    assert done.returncode == 0, done.stderr
    assert "### Cost of this change" in done.stdout
    assert "$1.60 | $2.00 | +$0.40, +25.0%" in done.stdout  # 2M input tokens: $0.80 -> $1.00 per 1M
    sql = run_cli("plan", str(root), "--cost", "--store", f"sqlite:///{tmp_path}/s.db",
                  env={"RECONCILER_ENCRYPTION_KEY": ""})
    assert sql.returncode == 0 and "keeps no usage" in sql.stdout


def test_price_book_warnings_at_their_lines(fake_coder: FakeCoder, tmp_path: Path) -> None:
    root = write_manifests(tmp_path / "m")
    manifest = root / "all.yaml"
    text = manifest.read_text()
    text = text.replace('pricing: {input: "0.8", output: "4"}', 'pricing: {input: "1", output: "5"}')  # = book
    text = text.replace("  model: gpt-5-mini\n", "  model: gpt-5-mini\n  pricing: {input: \"0.3\"}\n")
    manifest.write_text(text)
    env = {"CODER_SESSION_TOKEN": fake_coder.token, "RECONCILER_STORE": "coder+" + fake_coder.url,
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = run_cli("plan", str(root), env=env)
    assert done.returncode == 0, done.stderr
    lines = text.splitlines()

    def line_of(needle: str) -> int:
        return next(n for n, line in enumerate(lines, start=1) if needle in line)

    haiku_line, mini_line, qwen_line = line_of('output: "5"'), line_of('input: "0.3"'), line_of("model: qwen3-coder")
    assert f"all.yaml:{haiku_line}:" in done.stderr
    assert "RC504 the price of anthropic/claude-haiku-4-5 equals the store's price book" in done.stderr
    assert f"all.yaml:{mini_line}:" in done.stderr
    assert "RC503 the price of openai/gpt-5-mini differs" in done.stderr and "$0.25 in the book" in done.stderr
    assert f"all.yaml:{qwen_line}:" in done.stderr and "RC502" in done.stderr


def test_pricing_book_follows_the_book_with_a_multiplier(fake_coder: FakeCoder, tmp_path: Path) -> None:
    root = write_manifests(tmp_path / "m")
    manifest = root / "all.yaml"
    manifest.write_text(manifest.read_text().replace("  default: true\n",
                                                     "  default: true\n  pricing: {book: true, multiplier: 0.8}\n"))
    env = _apply(root, fake_coder, tmp_path)

    def sonnet_price() -> dict:
        found = [p for k, p in fake_coder.state.custom_prices.items() if k[2] == "claude-sonnet-4-5"]
        assert len(found) == 1
        return found[0].prices

    assert sonnet_price() == {"input_price": 2_400_000, "output_price": 12_000_000, "cache_read_price": 240_000,
                              "cache_write_price": 3_000_000}  # 0.8 x the book, exactly
    assert run_cli("plan", str(root), "--detailed-exitcode", env=env).returncode == 0
    # the book changes (a Coder upgrade): the next plan re-derives the price, the apply writes it
    book = [dict(row, input_price=3_300_003) if row["model"] == "claude-sonnet-4-5" else row
            for row in fixtures.DEFAULT_PRICE_BOOK]
    fake_coder.seed_default_prices(book)
    planned = run_cli("plan", str(root), "--format", "json", env=env)
    changes = json.loads(planned.stdout)["changes"]
    assert [(c["key"], c["diff"]) for c in changes] == [
        ("anthropic/claude-sonnet-4-5", [{"path": "input", "before": 2_400_000, "after": 2_640_002}])]
    assert run_cli("apply", str(root), env=env).returncode == 0
    assert sonnet_price()["input_price"] == 2_640_002  # 3,300,003 x 0.8 = 2,640,002.4: half-even to the micro
    assert run_cli("plan", str(root), "--detailed-exitcode", env=env).returncode == 0


def test_a_pin_on_purpose_is_not_warned_about(tmp_path: Path) -> None:
    root = write_manifests(tmp_path / "m")
    manifest = root / "all.yaml"
    text = manifest.read_text().replace('pricing: {input: "0.8", output: "4"}', 'pricing: {input: "1", output: "5"}')
    manifest.write_text(text)
    store = ["--store", f"sqlite:///{tmp_path}/s.db"]
    env = {"RECONCILER_ENCRYPTION_KEY": ""}
    assert "RC504" in run_cli("plan", str(root), *store, env=env).stderr
    manifest.write_text(text.replace("metadata: {name: haiku}",
                                     'metadata: {name: haiku, annotations: {reconciler/price-pin: "true"}}'))
    done = run_cli("plan", str(root), *store, env=env)
    assert done.returncode == 0 and "RC504" not in done.stderr and "RC502" in done.stderr


def test_byok_against_coder_with_and_without_a_saved_key(fake_coder: FakeCoder, tmp_path: Path) -> None:
    root = write_manifests(tmp_path / "m")
    env = _apply(root, fake_coder, tmp_path)
    ids = _seed_people(fake_coder)
    crowd = people.people_of(fake_coder.state)
    crowd.byok_enabled = True
    internal = next(p.id for p in fake_coder.state.providers.values() if p.name == "internal")

    def compaction() -> tuple[dict, dict]:
        done = run_cli("explain", "--user", "alice", "--format", "json", env=env)
        assert done.returncode == 0, done.stderr
        data = json.loads(done.stdout)["explanations"][0]
        creds = {c["provider"]: c for c in data["credentials"]}
        return {c["context"]: c for c in data["contexts"]}["compaction"], creds["internal"]

    context, creds = compaction()  # no central key, no key of alice's: hidden, falls through
    assert context["model"] == "anthropic/claude-sonnet-4-5" and not creds["available"]
    assert "alice has saved no key of their own" in creds["source"]
    crowd.user_keys.add((ids["alice"], internal))
    context, creds = compaction()  # alice saved her own key: the override serves
    assert context["model"] == "internal/qwen3-coder" and creds["available"]
    assert creds["source"] == "alice's own key (BYOK)"


def test_golden_cost_outputs() -> None:
    actual = State()
    actual.default_prices[("anthropic", "claude-sonnet-4-5")] = {
        "input": 3_000_000, "output": 15_000_000, "cache_read": 300_000, "cache_write": 3_750_000}
    actual.of(PRICE)[("openai", "gpt-5")] = {"input": 1_250_000, "output": 10_000_000, "cache_read": 125_000,
                                             "cache_write": None}
    desired = State()
    desired.of(PRICE)[("openai", "gpt-5")] = {"input": 1_000_000, "output": 8_000_000, "cache_read": 100_000,
                                              "cache_write": None}
    rows = [
        {"organization": "coder", "provider": "anthropic", "provider_type": "anthropic",
         "model": "claude-sonnet-4-5", "tokens": {"input": 40_000_000, "output": 2_000_000,
                                                  "cache_read": 90_000_000, "cache_write": 1_000_000},
         "cost_micros": 180_750_000},
        {"organization": "coder", "provider": "openai", "provider_type": "openai", "model": "gpt-5",
         "tokens": {"input": 10_000_000, "output": 1_000_000, "cache_read": 0, "cache_write": 5},
         "cost_micros": 22_500_000},
        {"organization": "research", "provider": "internal", "provider_type": "openai-compat", "model": "qwen",
         "tokens": {"input": 1_000, "output": 1_000, "cache_read": 0, "cache_write": 0}, "cost_micros": 0},
    ]
    report = reprice(rows, actual, desired, since="2026-11-04 00:00 UTC", until="2026-12-04 00:00 UTC")
    from reconciler.render import Style
    from reconciler.render.explain import render_cost_markdown, render_cost_text

    for name, text in (("cost.txt", render_cost_text(report, Style(False))), ("cost.md", render_cost_markdown(report))):
        golden = GOLDEN / name
        if os.environ.get("RECONCILER_UPDATE_GOLDEN"):
            golden.write_text(text)
        assert text == golden.read_text(), name
