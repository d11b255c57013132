"""Strict decoding of a chat model's `model_config` (ChatModelCallConfig, coder-api.md §3.5).

The server decodes `model_config` strictly: an unknown key at any depth is an
error, except the legacy pricing keys, which are accepted and dropped. The
response re-encodes the config in struct order with Go's `omitempty` rules.
Specs are plain data: a `Kind`, a `OneOf` enum, a `ListOf` or a dict of keys
in struct order (a nested struct, itself strict).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeAlias

from .wire import is_int, is_number, json_kind


class Kind(Enum):
    BOOL = "bool"
    INT = "int64"
    NUMBER = "float64"
    STRING = "string"
    STRING_LIST = "[]string"
    INT_MAP = "map[string]int64"
    JSON_OBJECT = "map[string]any"


@dataclass(frozen=True)
class OneOf:
    values: tuple[str, ...]


@dataclass(frozen=True)
class ListOf:
    item: OptionSpec


OptionSpec: TypeAlias = Kind | OneOf | ListOf | Mapping[str, "OptionSpec"]

EFFORT_LEVELS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_REASONING: dict[str, OptionSpec] = {  # ChatModelReasoningOptions: no `effort` any more
    "enabled": Kind.BOOL,
    "exclude": Kind.BOOL,
    "max_tokens": Kind.INT,
}
GOOGLE_THINKING_LEVELS = ("minimal", "low", "medium", "high")

# Allowed keys of `provider_options.<family>`, in struct order. From codersdk
# ChatModel*ProviderOptions (coder/coder codersdk/chats.go). The per-provider
# effort keys (openai and openaicompat `reasoning_effort`, anthropic `effort`,
# openrouter/vercel `reasoning.effort`) were removed in favour of the model's
# `reasoning_effort` range, so they are unknown fields here. An `enum` struct
# tag is only a hint for the UI: Coder validates the values of
# anthropic.thinking_display and google thinking_level, and stores any string
# for the others (reasoning_summary, service_tier). Extend when Coder adds options.
MODEL_CONFIG_FAMILIES: dict[str, dict[str, OptionSpec]] = {
    "openai": {
        "include": Kind.STRING_LIST,
        "instructions": Kind.STRING,
        "logit_bias": Kind.INT_MAP,
        "log_probs": Kind.BOOL,
        "top_log_probs": Kind.INT,
        "max_tool_calls": Kind.INT,
        "parallel_tool_calls": Kind.BOOL,
        "user": Kind.STRING,
        "reasoning_summary": Kind.STRING,
        "max_completion_tokens": Kind.INT,
        "text_verbosity": OneOf(("low", "medium", "high")),
        "prediction": Kind.JSON_OBJECT,
        "store": Kind.BOOL,
        "metadata": Kind.JSON_OBJECT,
        "prompt_cache_key": Kind.STRING,
        "safety_identifier": Kind.STRING,
        "service_tier": Kind.STRING,
        "structured_outputs": Kind.BOOL,
        "strict_json_schema": Kind.BOOL,
        "web_search_enabled": Kind.BOOL,
        "search_context_size": OneOf(("low", "medium", "high")),
        "allowed_domains": Kind.STRING_LIST,
    },
    "anthropic": {
        "send_reasoning": Kind.BOOL,
        "thinking": {"budget_tokens": Kind.INT},
        "thinking_display": OneOf(("summarized", "omitted")),
        "disable_parallel_tool_use": Kind.BOOL,
        "web_search_enabled": Kind.BOOL,
        "allowed_domains": Kind.STRING_LIST,
        "blocked_domains": Kind.STRING_LIST,
        "context_1m_enabled": Kind.BOOL,
    },
    "google": {
        "thinking_config": {
            "thinking_budget": Kind.INT,
            "thinking_level": Kind.STRING,  # checked in _check_semantics, with Coder's message
            "include_thoughts": Kind.BOOL,
        },
        "cached_content": Kind.STRING,
        "safety_settings": ListOf({"category": Kind.STRING, "threshold": Kind.STRING}),
        "threshold": Kind.STRING,
        "web_search_enabled": Kind.BOOL,
    },
    "openaicompat": {
        "user": Kind.STRING,
    },
    "openrouter": {
        "reasoning": _REASONING,
        "extra_body": Kind.JSON_OBJECT,
        "include_usage": Kind.BOOL,
        "logit_bias": Kind.INT_MAP,
        "log_probs": Kind.BOOL,
        "parallel_tool_calls": Kind.BOOL,
        "user": Kind.STRING,
        "provider": {
            "order": Kind.STRING_LIST,
            "allow_fallbacks": Kind.BOOL,
            "require_parameters": Kind.BOOL,
            "data_collection": Kind.STRING,
            "only": Kind.STRING_LIST,
            "ignore": Kind.STRING_LIST,
            "quantizations": Kind.STRING_LIST,
            "sort": Kind.STRING,
        },
    },
    "vercel": {
        "reasoning": _REASONING,
        "providerOptions": {"order": Kind.STRING_LIST, "models": Kind.STRING_LIST},
        "user": Kind.STRING,
        "logit_bias": Kind.INT_MAP,
        "logprobs": Kind.BOOL,
        "top_logprobs": Kind.INT,
        "parallel_tool_calls": Kind.BOOL,
        "extra_body": Kind.JSON_OBJECT,
    },
}

CALL_CONFIG: dict[str, OptionSpec] = {
    "max_output_tokens": Kind.INT,
    "temperature": Kind.NUMBER,
    "top_p": Kind.NUMBER,
    "top_k": Kind.INT,
    "presence_penalty": Kind.NUMBER,
    "frequency_penalty": Kind.NUMBER,
    "reasoning_effort": {"default": OneOf(EFFORT_LEVELS), "max": OneOf(EFFORT_LEVELS)},
    "openai_config": {"use_responses_api": Kind.BOOL},
    "provider_options": MODEL_CONFIG_FAMILIES,
}

# Pricing moved to model prices (§4); these keys are tolerated and dropped.
LEGACY_PRICING_KEYS = frozenset(
    {
        "cost",
        "input_price_per_million_tokens",
        "output_price_per_million_tokens",
        "cache_read_price_per_million_tokens",
        "cache_write_price_per_million_tokens",
    }
)
_INT64_LIMIT = 2**63


class ModelConfigError(ValueError):
    """Why a `model_config` was rejected (the `detail` of the 400)."""


def decode_model_config(raw: Any) -> dict[str, Any] | None:
    """The stored (re-encoded) config, or None when it configures nothing."""
    if not isinstance(raw, dict):
        raise ModelConfigError(
            f"json: cannot unmarshal {json_kind(raw)} into Go value of type "
            "codersdk.ChatModelCallConfig"
        )
    kept = {k: v for k, v in raw.items() if k not in LEGACY_PRICING_KEYS}
    config = _decode_object(kept, CALL_CONFIG, "model_config")
    _check_semantics(config)
    return config or None


def reasoning_efforts(config: dict[str, Any] | None) -> list[str]:
    """The selectable efforts: every level up to the configured maximum."""
    if config is None or "reasoning_effort" not in config:
        return []
    highest = EFFORT_LEVELS.index(config["reasoning_effort"]["max"])
    return list(EFFORT_LEVELS[: highest + 1])


def _type_error(value: Any, go_type: str, path: str) -> ModelConfigError:
    return ModelConfigError(
        f"json: cannot unmarshal {json_kind(value)} into {path} of type {go_type}"
    )


def _decode_object(
    value: dict[str, Any], spec: Mapping[str, OptionSpec], path: str
) -> dict[str, Any]:
    for key in value:
        if key not in spec:
            raise ModelConfigError(f'json: unknown field "{key}" in {path}')
    out: dict[str, Any] = {}
    for key, sub in spec.items():
        decoded = _decode(value.get(key), sub, f"{path}.{key}")
        if decoded is not None:
            out[key] = decoded
    return out


def _decode(value: Any, spec: OptionSpec, path: str) -> Any:
    """A decoded value in its re-encoded form; None when Go would omit it."""
    if value is None:
        return None
    if isinstance(spec, Mapping):
        if not isinstance(value, dict):
            raise _type_error(value, "struct", path)
        return _decode_object(value, spec, path)
    if isinstance(spec, ListOf):
        if not isinstance(value, list):
            raise _type_error(value, "array", path)
        items = [_decode(item, spec.item, f"{path}[{i}]") for i, item in enumerate(value)]
        return items or None
    if isinstance(spec, OneOf):
        if not isinstance(value, str):
            raise _type_error(value, "string", path)
        if value not in spec.values:
            raise ModelConfigError(f'{path}: "{value}" is not one of {", ".join(spec.values)}')
        return value
    return _decode_scalar(value, spec, path)


def _decode_scalar(value: Any, kind: Kind, path: str) -> Any:
    valid = {
        Kind.BOOL: isinstance(value, bool),
        Kind.INT: is_int(value) and -_INT64_LIMIT <= value < _INT64_LIMIT,
        Kind.NUMBER: is_number(value),
        Kind.STRING: isinstance(value, str),
        Kind.STRING_LIST: isinstance(value, list) and all(isinstance(v, str) for v in value),
        Kind.INT_MAP: isinstance(value, dict) and all(is_int(v) for v in value.values()),
        Kind.JSON_OBJECT: isinstance(value, dict),
    }[kind]
    if not valid:
        raise _type_error(value, kind.value, path)
    if kind is Kind.NUMBER and isinstance(value, float) and value.is_integer():
        return int(value)  # Go marshals float64(1) as 1
    if kind in (Kind.STRING_LIST, Kind.INT_MAP, Kind.JSON_OBJECT) and not value:
        return None  # omitempty drops empty slices and maps
    return value


def _check_semantics(config: dict[str, Any]) -> None:
    temperature = config.get("temperature")
    if temperature is not None and not 0 <= temperature <= 2:
        raise ModelConfigError("temperature must be between 0 and 2")
    effort = config.get("reasoning_effort")
    if effort is not None:
        if "default" not in effort or "max" not in effort:
            raise ModelConfigError(
                "reasoning_effort.default and reasoning_effort.max must both be set"
            )
        if EFFORT_LEVELS.index(effort["default"]) > EFFORT_LEVELS.index(effort["max"]):
            raise ModelConfigError(
                f'reasoning_effort.default "{effort["default"]}" exceeds '
                f'reasoning_effort.max "{effort["max"]}"'
            )
    thinking = config.get("provider_options", {}).get("google", {}).get("thinking_config", {})
    level = "provider_options.google.thinking_config.thinking_level"
    if "thinking_level" in thinking and thinking["thinking_level"] not in GOOGLE_THINKING_LEVELS:
        raise ModelConfigError(f"{level} must be one of {', '.join(GOOGLE_THINKING_LEVELS)}")
    if "thinking_level" in thinking and "thinking_budget" in thinking:
        raise ModelConfigError(f"{level} cannot be combined with thinking_budget")
    anthropic = config.get("provider_options", {}).get("anthropic", {})
    if "allowed_domains" in anthropic and "blocked_domains" in anthropic:
        raise ModelConfigError(
            "provider_options.anthropic: allowed_domains and blocked_domains "
            "cannot be used together"
        )
