"""AI providers, deployment-scoped (coder-api.md §2): /api/v2/ai/providers."""

from __future__ import annotations

import ipaddress
import json
import re
import string
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from .access import require
from .state import ApiKey, Provider, State
from .wire import (
    ApiError,
    FieldError,
    GoObject,
    Reply,
    Request,
    invalid_json,
    is_int,
    json_kind,
    new_id,
    not_found,
    now,
    parse_uuid,
    validation_failed,
)

PROVIDER_TYPES = (
    "openai",
    "anthropic",
    "azure",
    "google",
    "openai-compat",
    "openrouter",
    "vercel",
    "bedrock",
    "copilot",
)
NAME_PATTERN = "^[a-z0-9]+(-[a-z0-9]+)*$"
_NAME_RE = re.compile(NAME_PATTERN)
INVALID_REF_MESSAGE = f"Invalid provider id or name: must be a UUID or match {NAME_PATTERN}."
INVALID_PROVIDER_MESSAGE = "Invalid AI provider request."
# Documented failover limit; the API-side cap is unconfirmed (coder-api.md §9).
MAX_API_KEYS = 5
SETTINGS_VERSION = 1

_SETTINGS_STRUCTS = {
    "bedrock": "AIProviderBedrockSettings",
    "upstream-headers": "AIProviderUpstreamHeadersSettings",
    "wif": "AIProviderWIFSettings",
    "claude_platform_aws": "AIProviderClaudePlatformAWSSettings",
}
BEDROCK_FIELDS = (
    "region",
    "model",
    "small_fast_model",
    "access_key",
    "access_key_secret",
    "role_arn",
    "external_id",
    "protocol",
)
BEDROCK_SECRET_FIELDS = ("access_key", "access_key_secret")
BEDROCK_PROTOCOLS = ("invoke-model", "mantle")
WIF_FIELDS = (
    "federation_rule_id",
    "organization_id",
    "identity_token_file",
    "service_account_id",
    "workspace_id",
)
# codersdk/aiproviders_claude_platform_aws.go: both required, neither secret (Coder 2.38+)
CLAUDE_PLATFORM_FIELDS = ("region", "workspace_id")
_STRING_FIELDS = {
    "bedrock": BEDROCK_FIELDS,
    "wif": WIF_FIELDS,
    "claude_platform_aws": CLAUDE_PLATFORM_FIELDS,
}

MAX_HEADERS = 16
MAX_HEADER_NAME_LENGTH = 128
MAX_HEADER_VALUE_BYTES = 4096
DENIED_HEADERS = frozenset(
    {
        "authorization",
        "x-api-key",
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "upgrade",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "cookie",
        "set-cookie",
    }
)
DENIED_HEADER_PREFIX = "x-ai-bridge-actor"
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits)
ALLOWED_PLACEHOLDER = "{{chat_id}}"

_TYPE_KEYS_MESSAGES = {
    "bedrock": (
        "Bedrock providers do not accept api_keys; configure access credentials via settings."
    ),
    "copilot": (
        "Copilot providers do not accept api_keys; "
        "they authenticate via request-time GitHub OAuth tokens."
    ),
}
WIF_KEYS_MESSAGE = (
    "WIF providers do not accept api_keys; they authenticate with workload identity federation."
)
_ROLE_ARN_EXAMPLE = "e.g. arn:aws:iam::123456789012:role/BedrockRole"


def mask_secret(secret: str) -> str:
    """aibridge's MaskSecret: reveal r runes at each end, r by length (coder-api.md §2.4)."""
    n = len(secret)
    if n == 0:
        return ""
    reveal = 4 if n >= 20 else 2 if n >= 10 else 1 if n >= 5 else 0
    if n <= 2 * reveal:
        return "..."
    return secret[:reveal] + "..." + secret[n - reveal :]


# ---------------------------------------------------------------- settings


def decode_settings(raw: Any) -> dict[str, Any] | None:
    """Decode the `settings` union as codersdk's UnmarshalJSON does; `{}` is None.

    Present string fields are kept as sent, "" included: a PATCH must tell an
    omitted bedrock secret (keep the stored one) from an empty one (clear it).
    """
    if not isinstance(raw, dict):
        raise invalid_json(
            f"json: cannot unmarshal {json_kind(raw)} into Go struct field "
            "settings of type codersdk.AIProviderSettings"
        )
    if not raw:
        return None
    kind = raw.get("_type")
    if kind is None or kind == "":
        raise invalid_json("settings missing _type discriminator")
    if not isinstance(kind, str) or kind not in _SETTINGS_STRUCTS:
        raise invalid_json(f"unknown settings type {json.dumps(kind)}")
    version = raw.get("_version")
    if not is_int(version) or version != SETTINGS_VERSION:
        shown = version if is_int(version) else 0
        raise invalid_json(
            f'unsupported "{kind}" settings version {shown} (expected {SETTINGS_VERSION})'
        )
    obj = GoObject(raw, _SETTINGS_STRUCTS[kind])
    settings: dict[str, Any] = {"_type": kind}
    if kind == "upstream-headers":
        settings["headers"] = obj.string_map("headers") or {}
        return settings
    for name in _STRING_FIELDS[kind]:
        value = obj.string(name)
        if value is not None:
            settings[name] = value
    return settings


def _compact(settings: dict[str, Any] | None) -> dict[str, Any] | None:
    """The stored form: empty strings dropped, settings without headers are none."""
    if settings is None:
        return None
    if settings["_type"] == "upstream-headers":
        return settings if settings["headers"] else None
    return {k: v for k, v in settings.items() if v != ""}


def _merge_settings(
    stored: dict[str, Any] | None, sent: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Settings after a write: bedrock secrets and external_id carry forward."""
    if sent is None or sent["_type"] != "bedrock":
        return _compact(sent)
    previous = stored if stored is not None and stored["_type"] == "bedrock" else {}
    stored_external_id = previous.get("external_id")
    sent_external_id = sent.get("external_id")
    if sent_external_id and sent_external_id != stored_external_id:
        raise ApiError(400, "The Bedrock external ID is server-generated and cannot be changed.")
    merged = dict(sent)
    for name in BEDROCK_SECRET_FIELDS:
        if name not in sent and name in previous:
            merged[name] = previous[name]
    merged["external_id"] = stored_external_id or new_id()
    return _compact(merged)


def settings_json(settings: dict[str, Any] | None) -> dict[str, Any] | None:
    """The response form: `_type`/`_version` plus non-secret fields."""
    if settings is None:
        return None
    kind = settings["_type"]
    out: dict[str, Any] = {"_type": kind, "_version": SETTINGS_VERSION}
    if kind == "upstream-headers":
        out["headers"] = dict(settings["headers"])
        return out
    for name in _STRING_FIELDS[kind]:
        if name in settings and name not in BEDROCK_SECRET_FIELDS:
            out[name] = settings[name]
    return out


# -------------------------------------------------------------- validation


def _base_url_errors(base_url: str) -> list[FieldError]:
    if not base_url:
        return [FieldError("base_url", "base_url is required")]
    try:
        parsed = urlsplit(base_url)
    except ValueError:
        parsed = None
    if parsed is None or not parsed.scheme or not parsed.netloc:
        detail = "base_url must be an absolute URL (e.g. https://api.example.com/)"
        return [FieldError("base_url", detail)]
    if parsed.scheme not in ("http", "https"):
        detail = f'base_url scheme must be http or https, got "{parsed.scheme}"'
        return [FieldError("base_url", detail)]
    return []


def _role_arn_error(arn: str) -> str | None:
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not all(parts[1:3]) or not parts[5]:
        return f'role_arn "{arn}" is not a valid ARN, {_ROLE_ARN_EXAMPLE}'
    if parts[2] != "iam":
        return f'role_arn "{arn}" must be an IAM ARN, {_ROLE_ARN_EXAMPLE}'
    if not parts[5].startswith("role/"):
        return f'role_arn "{arn}" must reference an IAM role, {_ROLE_ARN_EXAMPLE}'
    return None


def _bedrock_configured(settings: dict[str, Any] | None) -> bool:
    if settings is None or settings["_type"] != "bedrock":
        return False
    return any(settings.get(f) for f in ("region", "role_arn", *BEDROCK_SECRET_FIELDS))


def _bedrock_errors(settings: dict[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    protocol = settings.get("protocol") or "invoke-model"
    if protocol not in BEDROCK_PROTOCOLS:
        detail = f'protocol must be one of {", ".join(BEDROCK_PROTOCOLS)}, got "{protocol}"'
        errors.append(FieldError("settings.protocol", detail))
    elif protocol == "invoke-model":
        for name in ("model", "small_fast_model"):
            if not settings.get(name):
                detail = f"{name} is required for the invoke-model protocol"
                errors.append(FieldError(f"settings.{name}", detail))
    elif not settings.get("region"):
        errors.append(FieldError("settings.region", "region is required for the mantle protocol"))
    role_arn = settings.get("role_arn")
    arn_error = _role_arn_error(role_arn) if role_arn else None
    if arn_error:
        errors.append(FieldError("settings.role_arn", arn_error))
    return errors


def _header_errors(headers: dict[str, str]) -> list[FieldError]:
    errors: list[FieldError] = []
    if len(headers) > MAX_HEADERS:
        detail = f"at most {MAX_HEADERS} upstream headers are allowed, got {len(headers)}"
        errors.append(FieldError("settings.headers", detail))
    seen: dict[str, str] = {}
    for name, value in headers.items():
        field = f"settings.headers.{name}"
        lower = name.lower()
        if not name or not set(name) <= _TOKEN_CHARS:
            errors.append(FieldError(field, f'header name "{name}" is not a valid HTTP token'))
        elif len(name) > MAX_HEADER_NAME_LENGTH:
            detail = f'header name "{name}" exceeds {MAX_HEADER_NAME_LENGTH} characters'
            errors.append(FieldError(field, detail))
        elif lower in DENIED_HEADERS or lower.startswith(DENIED_HEADER_PREFIX):
            detail = f'header "{name}" is managed by the gateway and cannot be overridden'
            errors.append(FieldError(field, detail))
        elif lower in seen:
            detail = f'header "{name}" duplicates "{seen[lower]}" (names are case-insensitive)'
            errors.append(FieldError(field, detail))
        seen.setdefault(lower, name)
        if not value:
            errors.append(FieldError(field, f'header "{name}" value must not be empty'))
        elif len(value.encode()) > MAX_HEADER_VALUE_BYTES:
            detail = f'header "{name}" value exceeds {MAX_HEADER_VALUE_BYTES} bytes'
            errors.append(FieldError(field, detail))
        elif any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            detail = f'header "{name}" value must not contain control characters'
            errors.append(FieldError(field, detail))
        else:
            errors += [FieldError(field, d) for d in _placeholder_errors(value)]
    return errors


def _placeholder_errors(value: str) -> list[str]:
    """validateAIProviderUpstreamHeaderPlaceholders (codersdk/aiproviders_upstream_headers.go)."""
    details: list[str] = []
    rest = value
    while (start := rest.find("{{")) >= 0:
        end = rest.find("}}", start)
        if end < 0:
            return [*details, "header value has an unterminated {{ placeholder"]
        token = rest[start : end + 2]
        if token != ALLOWED_PLACEHOLDER:
            details.append(
                f"unknown placeholder {json.dumps(token)}; only {json.dumps(ALLOWED_PLACEHOLDER)} "
                "is supported"
            )
        rest = rest[end + 2 :]
    return details


SETTINGS_SINCE = {"claude_platform_aws": (2, 38)}  # variants newer than 2.37


def _check_settings_known(state: State, settings: dict[str, Any] | None) -> None:
    """A Coder older than a variant decodes its `_type` as unknown."""
    since = SETTINGS_SINCE.get(settings["_type"]) if settings is not None else None
    found = re.match(r"v?(\d+)\.(\d+)", state.version)
    if since is not None and found is not None and (int(found[1]), int(found[2])) < since:
        raise invalid_json(f"unknown settings type {json.dumps(settings['_type'])}")  # type: ignore[index]


def _claude_platform_errors(ptype: str, settings: dict[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    if ptype != "anthropic":
        detail = "claude_platform_aws settings are only valid for type=anthropic"
        errors.append(FieldError("settings", detail))
    for name in CLAUDE_PLATFORM_FIELDS:
        if not settings.get(name):
            errors.append(FieldError(f"settings.{name}", f"{name} is required"))
    return errors


def _wif_errors(settings: dict[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    for name in ("federation_rule_id", "organization_id", "identity_token_file"):
        if not settings.get(name):
            errors.append(FieldError(f"settings.{name}", f"{name} is required"))
    rule = settings.get("federation_rule_id", "")
    if rule and not rule.startswith("fdrl_"):
        detail = 'federation_rule_id must start with "fdrl_"'
        errors.append(FieldError("settings.federation_rule_id", detail))
    token_file = settings.get("identity_token_file", "")
    if token_file and not token_file.startswith("/"):
        detail = "identity_token_file must be an absolute path"
        errors.append(FieldError("settings.identity_token_file", detail))
    return errors


def _settings_errors(ptype: str, settings: dict[str, Any] | None) -> list[FieldError]:
    errors: list[FieldError] = []
    if ptype == "bedrock" and not _bedrock_configured(settings):
        errors.append(FieldError("settings", "type=bedrock requires bedrock settings"))
    if settings is None:
        return errors
    kind = settings["_type"]
    if kind == "bedrock":
        if ptype not in ("anthropic", "bedrock"):
            detail = "bedrock settings are only valid for type=anthropic or type=bedrock"
            errors.append(FieldError("settings", detail))
        errors += _bedrock_errors(settings)
    elif kind == "upstream-headers":
        errors += _header_errors(settings["headers"])
    elif kind == "claude_platform_aws":
        errors += _claude_platform_errors(ptype, settings)
    else:
        errors += _wif_errors(settings)
    return errors


def _provider_errors(
    ptype: str, name: str, base_url: str, settings: dict[str, Any] | None, key_count: int
) -> list[FieldError]:
    """Validate(): every rule that holds for a stored provider."""
    errors: list[FieldError] = []
    if not ptype:
        errors.append(FieldError("type", "type is required"))
    elif ptype not in PROVIDER_TYPES:
        errors.append(FieldError("type", f'unsupported provider type "{ptype}"'))
    if not name:
        errors.append(FieldError("name", "name is required"))
    elif not _NAME_RE.fullmatch(name):
        detail = f"name must match {NAME_PATTERN} (lowercase alphanumeric, hyphens between words)"
        errors.append(FieldError("name", detail))
    errors += _base_url_errors(base_url)
    if key_count > MAX_API_KEYS:
        errors.append(FieldError("api_keys", f"at most {MAX_API_KEYS} api_keys are allowed"))
    return errors + _settings_errors(ptype, settings)


def _whitespace_error(key: str) -> str | None:
    if key != key.strip():
        return "api_keys entries must not contain leading or trailing whitespace"
    return None


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_wif(ptype: str, base_url: str, settings: dict[str, Any] | None, has_keys: bool) -> None:
    """Handler checks for workload identity federation."""
    if settings is None or settings["_type"] != "wif":
        return
    if ptype != "anthropic":
        raise ApiError(400, "WIF settings are only valid for type=anthropic.")
    if has_keys:
        raise ApiError(400, WIF_KEYS_MESSAGE)
    parsed = urlsplit(base_url)
    if parsed.scheme != "https" and not _is_loopback(parsed.hostname):
        raise ApiError(
            400,
            "WIF providers require an https base_url; http is allowed for loopback hosts only.",
        )


def _record_secrets(state: State, keys: list[str], settings: dict[str, Any] | None) -> None:
    state.secrets_seen.extend(k for k in keys if k)
    if settings is not None and settings["_type"] == "bedrock":
        state.secrets_seen.extend(settings[f] for f in BEDROCK_SECRET_FIELDS if settings.get(f))


# ---------------------------------------------------------------- handlers


def provider_json(provider: Provider) -> dict[str, Any]:
    return {
        "id": provider.id,
        "type": provider.type,
        "name": provider.name,
        "display_name": provider.display_name,
        "icon": provider.icon,
        "enabled": provider.enabled,
        "base_url": provider.base_url,
        "api_keys": [
            {"id": k.id, "masked": mask_secret(k.secret), "created_at": k.created_at}
            for k in provider.api_keys
        ],
        "settings": settings_json(provider.settings),
        "created_at": provider.created_at,
        "updated_at": provider.updated_at,
    }


def _lookup(state: State, ref: str, include_deleted: bool = False) -> Provider:
    provider_id = parse_uuid(ref)
    if provider_id is not None:
        found = state.providers.get(provider_id)
        candidates = [found] if found is not None else []
    elif _NAME_RE.fullmatch(ref):
        candidates = [p for p in state.providers.values() if p.name == ref]
    else:
        raise ApiError(400, INVALID_REF_MESSAGE)
    active = [p for p in candidates if not p.deleted]
    if active:
        return active[0]
    if include_deleted and candidates:
        return candidates[-1]
    raise not_found()


def list_providers(state: State, req: Request) -> Reply:
    return Reply(200, [provider_json(p) for p in state.providers.values() if not p.deleted])


def get_provider(state: State, req: Request) -> Reply:
    return Reply(200, provider_json(_lookup(state, req.params["provider"])))


def create_provider(state: State, req: Request) -> Reply:
    require(state, "ai_provider", "create")
    body = req.json_object("CreateAIProviderRequest")
    ptype = body.string("type") or ""
    name = body.string("name") or ""
    display_name = body.string("display_name") or ""
    icon = body.string("icon") or ""
    enabled = body.boolean("enabled") or False
    base_url = body.string("base_url") or ""
    api_keys = body.strings("api_keys") or []
    sent_settings = decode_settings(body.raw("settings")) if body.has("settings") else None
    _check_settings_known(state, sent_settings)
    _record_secrets(state, api_keys, sent_settings)

    errors: list[FieldError] = []
    for i, key in enumerate(api_keys):
        detail = "api_keys entries must not be empty" if not key else _whitespace_error(key)
        if detail:
            errors.append(FieldError(f"api_keys[{i}]", detail))
    if api_keys and ptype in _TYPE_KEYS_MESSAGES:
        errors.append(FieldError("api_keys", f"type={ptype} does not accept api_keys"))
    sent_external_id = sent_settings.pop("external_id", "") if sent_settings is not None else ""
    if sent_external_id:
        detail = "external_id is server-generated and cannot be set"
        errors.append(FieldError("settings.external_id", detail))
    settings = _merge_settings(None, sent_settings)
    errors += _provider_errors(ptype, name, base_url, settings, len(api_keys))
    if errors:
        raise validation_failed(INVALID_PROVIDER_MESSAGE, errors)
    _check_wif(ptype, base_url, settings, bool(api_keys))
    if any(p.name == name and (state.deleted_names_reserved or not p.deleted) for p in state.providers.values()):
        raise ApiError(409, f'AI provider "{name}" already exists.')

    stamp = now()
    provider = Provider(
        id=new_id(),
        type=ptype,
        name=name,
        display_name=display_name or name,
        icon=icon,
        enabled=enabled,
        base_url=base_url,
        api_keys=[ApiKey(new_id(), key, stamp) for key in api_keys],
        settings=settings,
        created_at=stamp,
        updated_at=stamp,
    )
    state.providers[provider.id] = provider
    return Reply(201, provider_json(provider))


@dataclass(frozen=True)
class _KeyMutation:
    id: str | None
    api_key: str | None


def _decode_mutations(body: GoObject) -> list[_KeyMutation] | None:
    entries = body.objects("api_keys", "AIProviderKeyMutation")
    if entries is None:
        return None
    errors: list[FieldError] = []
    mutations: list[_KeyMutation] = []
    first_index: dict[str, int] = {}
    for i, entry in enumerate(entries):
        key_id, api_key = entry.uuid("id"), entry.string("api_key")
        field = f"api_keys[{i}]"
        detail: str | None = None
        if (key_id is None) == (api_key is None):
            detail = "exactly one of id or api_key must be set"
        elif api_key is not None:
            detail = "api_key must not be empty" if not api_key else _whitespace_error(api_key)
        elif key_id is not None and key_id in first_index:
            detail = f"id {key_id} already referenced at api_keys[{first_index[key_id]}]"
        elif key_id is not None:
            first_index[key_id] = i
        if detail:
            errors.append(FieldError(field, detail))
        mutations.append(_KeyMutation(key_id, api_key))
    if errors:
        raise validation_failed(INVALID_PROVIDER_MESSAGE, errors)
    return mutations


def _apply_mutations(provider: Provider, mutations: list[_KeyMutation]) -> list[ApiKey]:
    """The desired post-patch key set: keep referenced ids, add new keys, drop the rest."""
    if mutations and provider.type in _TYPE_KEYS_MESSAGES:
        raise ApiError(400, _TYPE_KEYS_MESSAGES[provider.type])
    known = {k.id: k for k in provider.api_keys}
    keys: list[ApiKey] = []
    for mutation in mutations:
        if mutation.api_key is not None:
            keys.append(ApiKey(new_id(), mutation.api_key, now()))
        elif mutation.id in known:
            keys.append(known[mutation.id])
        else:
            raise ApiError(400, "api_keys references an unknown id for this provider")
    return keys


def _display_name(provider: Provider, sent: str | None) -> str:
    """Nil keeps the stored name; "" falls back to the provider name."""
    if sent is None:
        return provider.display_name
    return sent or provider.name


_UPDATE_FIELDS = ("display_name", "icon", "enabled", "base_url", "api_keys", "settings")


def update_provider(state: State, req: Request) -> Reply:
    require(state, "ai_provider", "update")
    provider = _lookup(state, req.params["provider"])
    body = req.json_object("UpdateAIProviderRequest")
    display_name = body.string("display_name")
    icon = body.string("icon")
    enabled = body.boolean("enabled")
    base_url = body.string("base_url")
    mutations = _decode_mutations(body)
    settings_sent = body.has("settings")
    sent_settings = decode_settings(body.raw("settings")) if settings_sent else None
    _check_settings_known(state, sent_settings)
    if not any(body.has(f) for f in _UPDATE_FIELDS):
        raise ApiError(400, "At least one field must be provided.")
    added = [m.api_key for m in mutations or [] if m.api_key is not None]
    _record_secrets(state, added, sent_settings)

    keys = provider.api_keys if mutations is None else _apply_mutations(provider, mutations)
    settings = (
        _merge_settings(provider.settings, sent_settings) if settings_sent else provider.settings
    )
    candidate = replace(
        provider,
        display_name=_display_name(provider, display_name),
        icon=provider.icon if icon is None else icon,
        enabled=provider.enabled if enabled is None else enabled,
        base_url=provider.base_url if base_url is None else base_url,
        api_keys=keys,
        settings=settings,
        updated_at=now(),
    )
    errors = _provider_errors(
        candidate.type, candidate.name, candidate.base_url, candidate.settings, len(keys)
    )
    if errors:
        raise validation_failed(INVALID_PROVIDER_MESSAGE, errors)
    _check_wif(candidate.type, candidate.base_url, candidate.settings, bool(keys))
    state.providers[provider.id] = candidate
    return Reply(200, provider_json(candidate))


def delete_provider(state: State, req: Request) -> Reply:
    require(state, "ai_provider", "delete")
    provider = _lookup(state, req.params["provider"], include_deleted=True)
    if not provider.deleted:
        provider.deleted = True
        provider.updated_at = now()
    return Reply(204)
