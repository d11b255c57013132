"""Generate a large, valid manifest set: N providers and M models (default 500 / 10,000, ≈280k lines).

    python benchmarks/generate.py OUT_DIR [--providers 500] [--models 10000] [--layout files|single]

`files` writes one document per file (10,500 files, what check-jsonschema can read);
`single` writes every document into one file.
"""

from __future__ import annotations

import argparse
import os
import shutil

TYPES = ("openai", "anthropic", "google", "openrouter", "vercel", "openai-compat", "azure", "bedrock")
FAMILY = {"openai": "openai", "azure": "openai", "anthropic": "anthropic", "bedrock": "anthropic",
          "google": "google", "openai-compat": "openaicompat", "openrouter": "openrouter", "vercel": "vercel"}


def provider_doc(i: int) -> tuple[str, str, str]:
    ptype = TYPES[i % len(TYPES)]
    name = f"{ptype}-{i:04d}"
    lines = [
        "apiVersion: reconciler/v1",
        "kind: Provider",
        "metadata:",
        f"  name: {name}",
        "  labels:",
        f"    team: team-{i % 17}",
        f"    cost-center: cc-{1000 + i % 50}",
        "    environment: production",
        "  annotations:",
        "    owner: platform@example.com",
        "spec:",
        f"  type: {ptype}",
        f"  display_name: Provider {i:04d} ({ptype})",
        f"  icon: /icon/{ptype}.svg",
        "  enabled: true",
    ]
    if ptype == "bedrock":
        lines += [
            "  base_url: https://bedrock-runtime.us-east-1.amazonaws.com",
            "  settings:",
            "    bedrock:",
            "      region: us-east-1",
            "      model: global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "      small_fast_model: global.anthropic.claude-haiku-4-5-20251001-v1:0",
            f"      role_arn: arn:aws:iam::123456789012:role/bedrock-{i}",
            "      protocol: invoke-model",
        ]
    else:
        url = {
            "openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com",
            "google": "https://generativelanguage.googleapis.com/v1beta/openai",
            "openrouter": "https://openrouter.ai/api/v1", "vercel": "https://ai-gateway.vercel.sh/v1",
            "openai-compat": f"https://llm-{i}.internal.example.com/v1",
            "azure": f"https://acme-{i}.openai.azure.com/openai/v1",
        }[ptype]
        lines += [
            f"  base_url: {url}",
            "  api_keys:",
            f"    - env: PROVIDER_{i:04d}_KEY_A",
            f"    - env: PROVIDER_{i:04d}_KEY_B",
            "  settings:",
            "    upstream_headers:",
            f"      X-Team: team-{i % 17}",
            "      X-Chat-Id: '{{chat_id}}'",
        ]
    return name, ptype, "\n".join(lines) + "\n"


def model_doc(j: int, provider: str, ptype: str, default: bool) -> str:
    family = FAMILY[ptype]
    options = {
        "openai": ["        reasoning_summary: auto", "        text_verbosity: medium",
                   "        service_tier: default", "        parallel_tool_calls: true"],
        "anthropic": ["        send_reasoning: true", "        thinking_display: summarized",
                      "        thinking:", "          budget_tokens: 8192"],
        "google": ["        thinking_config:", "          thinking_budget: 4096",
                   "          include_thoughts: true", "        web_search_enabled: false"],
        "openaicompat": ["        user: coder"],
        "openrouter": ["        reasoning:", "          enabled: true", "          max_tokens: 4096",
                       "        include_usage: true"],
        "vercel": ["        reasoning:", "          enabled: true", "          max_tokens: 2048",
                   "        parallel_tool_calls: true"],
    }[family]
    lines = [
        "apiVersion: reconciler/v1",
        "kind: Model",
        "metadata:",
        f"  name: model-{j:05d}",
        "  labels:",
        f"    tier: tier-{j % 3}",
        "spec:",
        f"  provider: {provider}",
        f"  model: model-{j:05d}",
        f"  display_name: Model {j:05d}",
        "  enabled: true",
        f"  default: {'true' if default else 'false'}",
        f"  context_limit: {128000 + (j % 8) * 1000}",
        "  compression_threshold: 70",
        "  config:",
        "    max_output_tokens: 16000",
        "    temperature: 0.7",
        "    top_p: 0.95",
        "    provider_options:",
        f"      {family}:",
        *options,
        "  pricing:",
        f"    input: {1 + j % 5}.25",
        f"    output: '{5 + j % 7}.5'",
    ]
    return "\n".join(lines) + "\n"


def generate(out: str, providers: int = 500, models: int = 10_000, layout: str = "files") -> int:
    """Write the set into `out` (emptied first); returns the number of YAML lines written."""
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(os.path.join(out, "providers"))
    os.makedirs(os.path.join(out, "models"))
    made = [provider_doc(i) for i in range(providers)]
    documents: list[tuple[str, str]] = [(f"providers/{name}.yaml", text) for name, _, text in made]
    for j in range(models):
        name, ptype, _ = made[j % providers]
        documents.append((f"models/model-{j:05d}.yaml", model_doc(j, name, ptype, default=j == 0)))
    if layout == "single":
        with open(os.path.join(out, "all.yaml"), "w") as fh:
            fh.write("---\n".join(text for _, text in documents))
    else:
        for path, text in documents:
            with open(os.path.join(out, path), "w") as fh:
                fh.write(text)
    return sum(text.count("\n") for _, text in documents)


def overlay(out: str, models: int = 10_000, patched: int = 1_000) -> int:
    """An environment's overlay onto `generate`'s set: `patched` of its `models`, evenly spread,
    each patched in a map (display_name, config), a list-free scalar (context_limit) and a removal
    (config.top_p: null), in one file. Returns the number of documents."""
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    step = max(1, models // patched)
    docs = [
        "\n".join([
            "apiVersion: reconciler/v1",
            "kind: Model",
            "metadata:",
            f"  name: model-{j:05d}",
            "  labels:",
            "    environment: staging",
            "spec:",
            f"  display_name: Model {j:05d} (overlay)",
            "  context_limit: 64000",
            "  config:",
            "    max_output_tokens: 8000",
            "    top_p: null",
        ]) + "\n"
        for j in range(0, step * patched, step)
    ]
    with open(os.path.join(out, "models.yaml"), "w") as fh:
        fh.write("---\n".join(docs))
    return len(docs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--providers", type=int, default=500)
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--layout", choices=["files", "single"], default="files")
    args = parser.parse_args()
    lines = generate(args.out, args.providers, args.models, args.layout)
    print(f"wrote {args.providers} providers and {args.models} models ({lines} lines) to {args.out}")


if __name__ == "__main__":
    main()
