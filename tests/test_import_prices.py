"""`reconciler import-prices`: a LiteLLM price file -> a PriceCatalog, exactly.

tests/data/model_prices_and_context_window.json is a LiteLLM-format file made
for these tests: chat models of every mapped provider, and entries to skip
(other modes, unmapped providers, routes, no prices, inexact or invalid
prices, duplicates and conflicts).
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import yaml

from reconciler.errors import UsageError
from reconciler.importers.litellm import COSTS, import_prices
from reconciler.prices import to_micros
from reconciler.validate import validate_paths
from tests.conftest import ROOT, run_cli

PRICE_FILE = ROOT / "tests" / "data" / "model_prices_and_context_window.json"

# entry -> why it is skipped (the reason keys of reconciler.importers.litellm.REASONS)
SKIPPED = {
    "sample_spec": "sample",
    "text-embedding-3-small": "mode",
    "dall-e-3": "mode",
    "whisper-1": "mode",
    "azure/text-embedding-3-large": "mode",
    "gemini/imagen-4.0-generate-001": "mode",
    "gemini/text-embedding-004": "mode",
    "amazon.titan-embed-text-v2:0": "mode",
    "deepseek/deepseek-chat": "provider",
    "mistral/mistral-large-latest": "provider",
    "groq/llama-3.3-70b-versatile": "provider",
    "xai/grok-4": "provider",
    "azure/eu/gpt-4o-2024-08-06": "route",
    "azure/global-standard/gpt-4o-mini": "route",
    "bedrock/us-east-1/anthropic.claude-3-5-sonnet-20240620-v1:0": "route",
    "gemini/gemini-2.0-flash-thinking-exp": "unpriced",
    "openrouter/mistralai/mistral-small-3.2-24b-instruct": "inexact",
    "openrouter/openai/gpt-4.1-nano": "invalid",
    "openai/gpt-4o-mini": "duplicate",
    "gemini-2.5-flash": "duplicate",
    "gemini-2.5-pro": "conflict",
}


@pytest.fixture(scope="module")
def converted():
    return import_prices(str(PRICE_FILE))


@pytest.fixture(scope="module")
def raw() -> dict:
    return json.loads(PRICE_FILE.read_text(), parse_float=Decimal)


def test_every_entry_is_converted_or_skipped_with_its_reason(converted, raw):
    assert {s.entry: s.reason for s in converted.skipped} == SKIPPED
    assert set(converted.origin.values()) | set(SKIPPED) == set(raw)
    assert converted.entries == len(raw)


def test_the_examples_of_the_issue_convert_exactly(converted):
    sonnet = converted.prices[("anthropic", "claude-sonnet-4-5")]
    assert sonnet == {"input": "3", "output": "15", "cache_read": "0.3", "cache_write": "3.75"}  # 3e-06 -> 3
    assert converted.prices[("openai", "gpt-5")]["cache_read"] == "0.125"  # 1.25e-07 -> 0.125
    deepseek = converted.prices[("openrouter", "deepseek/deepseek-chat-v3.1")]
    assert deepseek["input"] == "0.2"  # 2e-07: through binary floats it would be 0.19999999999999998
    assert float("2e-07") * 1_000_000 != 0.2
    haiku = converted.prices[("bedrock", "us.anthropic.claude-haiku-4-5-20251001-v1:0")]
    assert (haiku["input"], haiku["cache_write"]) == ("1.1", "1.375")


def test_every_converted_price_is_the_file_s_price_times_a_million(converted, raw):
    """Checked independently of the converter: Decimal arithmetic on the JSON text, field by field."""
    for key, prices in converted.prices.items():
        entry = raw[converted.origin[key]]
        for name, value in prices.items():
            assert Decimal(value) == entry[COSTS[name]] * 1_000_000, (key, name)
            assert to_micros(value) == int(entry[COSTS[name]] * 10**12)
        given = {name for name, field in COSTS.items() if entry.get(field) is not None}
        assert set(prices) == given  # a price LiteLLM does not give is left out, not invented


def test_provider_names_map_onto_types_and_routing_prefixes_are_dropped(converted):
    assert converted.origin[("azure", "gpt-4o")] == "azure/gpt-4o"
    assert converted.origin[("google", "gemini-2.5-flash")] == "gemini/gemini-2.5-flash"
    assert converted.origin[("google", "claude-sonnet-4-5")] == "vertex_ai/claude-sonnet-4-5"  # vertex_ai*
    assert converted.origin[("bedrock", "meta.llama3-3-70b-instruct-v1:0")] == "meta.llama3-3-70b-instruct-v1:0"
    assert converted.origin[("openrouter", "qwen/qwen3-coder")] == "openrouter/qwen/qwen3-coder"
    assert converted.origin[("vercel", "xai/grok-code-fast-1")] == "vercel_ai_gateway/xai/grok-code-fast-1"
    assert converted.origin[("openai", "gpt-5-codex")] == "gpt-5-codex"  # mode responses
    free = converted.prices[("openrouter", "meta-llama/llama-3.3-70b-instruct:free")]
    assert free == {"input": "0", "output": "0"}


def test_gemini_s_own_api_wins_over_vertex_when_prices_differ(converted):
    assert converted.origin[("google", "gemini-2.5-pro")] == "gemini/gemini-2.5-pro"
    assert converted.prices[("google", "gemini-2.5-pro")]["cache_read"] == "0.3125"


def test_two_entries_of_equal_precedence_that_disagree_are_both_skipped(tmp_path):
    path = tmp_path / "prices.json"
    entry = {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-06,
             "output_cost_per_token": 2e-06}
    path.write_text(json.dumps({"gpt-x": entry, "openai/gpt-x": {**entry, "output_cost_per_token": 3e-06},
                                "gpt-y": entry}))
    result = import_prices(str(path))
    assert set(result.prices) == {("openai", "gpt-y")}
    assert {(s.entry, s.reason) for s in result.skipped} == {("gpt-x", "conflict"), ("openai/gpt-x", "conflict")}


def test_the_cli_writes_a_catalog_that_validates_and_reports_what_it_skipped(tmp_path, converted):
    out = tmp_path / "prices" / "litellm.yaml"
    result = run_cli("import-prices", str(PRICE_FILE), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert f"Converted {len(converted.prices)} prices from {converted.entries} entries" in result.stderr
    assert f"Skipped {len(SKIPPED)}:" in result.stderr
    assert "not a chat model: text-embedding-3-small (mode embedding)" in result.stderr
    text = out.read_text()
    assert text.startswith("# yaml-language-server: $schema=https://reconciler.dev/schemas/v1/pricecatalog")
    validation = validate_paths([str(out)])
    assert validation.diagnostics == []
    entries = {(p.provider, p.model): {k: str(v) for k, v in p.fields.items()} for p in validation.manifests.prices}
    assert entries == converted.prices
    assert run_cli("validate", str(out)).returncode == 0


def test_the_catalog_on_stdout_is_the_same_yaml(converted):
    result = run_cli("import-prices", str(PRICE_FILE), "--name", "vendor-list", "-q")
    assert result.returncode == 0 and result.stderr == ""
    doc = yaml.safe_load(result.stdout)
    assert doc["metadata"] == {"name": "vendor-list"}
    assert len(doc["spec"]["prices"]) == len(converted.prices)


@pytest.mark.parametrize("content, message", [
    ("[1, 2]", "expected a JSON object"),
    ("{\"a\": ", "is not valid JSON"),
    ("{\"a\": NaN}", "NaN is not a number"),
])
def test_a_broken_file_is_one_clear_error(tmp_path, content, message):
    path = tmp_path / "prices.json"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        import_prices(str(path))
    result = run_cli("import-prices", str(path))
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr


def test_a_missing_file_and_a_bad_name_exit_1(tmp_path):
    missing = run_cli("import-prices", str(tmp_path / "nope.json"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    bad = run_cli("import-prices", str(PRICE_FILE), "--name", "Not A Name")
    assert bad.returncode == 1 and "--name" in bad.stderr
