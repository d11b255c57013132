"""Semantic rules over the typed desired state.

Each rule is a plain function `(Manifests) -> Iterable[Diagnostic]`, named
for what it checks; `RULES` runs them in order. Rules see only documents that
passed the schema pass; a reference to a document that failed it is not
reported again as unknown.

Messages never repeat a secret, a header value or a base URL.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from reconciler.diagnostics import Diagnostic
from reconciler.manifest.loader import Document, Path, quoted
from reconciler.manifest.model import (
    EFFORTS,
    OPTION_FAMILIES,
    Manifests,
    Meta,
    Model,
    Overrides,
    Provider,
)
from reconciler.prices import PriceError, default_price_book, from_micros, to_micros
from reconciler.secrets import Secret, credential_header
from reconciler.state import MOVED_FROM
from reconciler.validate.urls import check_base_url, plain_http_to_remote

Rule = Callable[[Manifests], Iterable[Diagnostic]]
T = TypeVar("T")

INT64_MAX = 2**63 - 1
NO_API_KEYS = {  # provider type or settings variant -> why api_keys are refused
    "bedrock": "Bedrock providers do not accept api_keys; "
    "configure access credentials via settings.bedrock",
    "copilot": "Copilot providers do not accept api_keys; "
    "they authenticate via request-time GitHub OAuth tokens",
    "wif": "WIF providers do not accept api_keys; "
    "they authenticate via workload identity federation (settings.wif)",
}
SETTINGS_TYPES = {  # others: any type
    "bedrock": ("anthropic", "bedrock"), "wif": ("anthropic",), "claude_platform_aws": ("anthropic",),
}
AWS_REGION = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}")
BEDROCK_CONFIGURED_BY = ("region", "role_arn", "access_key", "access_key_secret")
BEDROCK_KEY_PAIR = ("access_key", "access_key_secret")
PROTOCOL_NEEDS = {"invoke-model": ("model", "small_fast_model"), "mantle": ("region",)}
ROLE_NAME = r"[A-Za-z0-9+=,.@_-]"
ROLE_ARN = re.compile(
    rf"arn:(aws|aws-cn|aws-us-gov):iam::[0-9]{{12}}:role/({ROLE_NAME}+/)*{ROLE_NAME}{{1,64}}"
)
DENIED_HEADERS = frozenset({
    "authorization", "x-api-key", "host", "content-length", "transfer-encoding", "connection",
    "upgrade", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
    "trailer", "cookie", "set-cookie",
})
DENIED_HEADER_PREFIX = "x-ai-bridge-actor"
MAX_HEADER_BYTES = 4096
CHAT_ID_PLACEHOLDER = "{{chat_id}}"  # the only placeholder the gateway fills
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# provider_options family -> option -> the values Coder documents (it stores any string: a warning)
DOCUMENTED_VALUES: dict[str, dict[str, tuple[str, ...]]] = {
    "openai": {
        "reasoning_summary": ("auto", "concise", "detailed"),
        "service_tier": ("auto", "default", "flex", "scale", "priority"),
    },
}
# provider_options family -> pairs of option paths that may not both be set
EXCLUSIVE_OPTIONS: dict[str, tuple[tuple[Path, Path], ...]] = {
    "anthropic": ((("allowed_domains",), ("blocked_domains",)),),
    "google": ((("thinking_config", "thinking_budget"), ("thinking_config", "thinking_level")),),
}


def check_rules(manifests: Manifests) -> list[Diagnostic]:
    """Every semantic problem of `manifests`."""
    return [found for rule in RULES for found in rule(manifests)]


# --- helpers ---------------------------------------------------------------


def _spec(doc: Document) -> dict[str, Any]:
    spec = doc.data.get("spec")
    return spec if isinstance(spec, dict) else {}


def _place(doc: Document, path: Path) -> str:
    origin = doc.origin(path)  # a merged document: the base's file or the overlay's
    return f"{origin.file}:{origin.locate(path)[0]}"


def _org(organization: str | None) -> str:
    return "the default organization" if organization is None else f"organization {quoted(organization)}"


def _first(items: Iterable[T], key: Callable[[T], Hashable]) -> dict[Any, T]:
    """The first item of each key."""
    first: dict[Any, T] = {}
    for item in items:
        first.setdefault(key(item), item)
    return first


def _repeats(items: Iterable[T], key: Callable[[T], Hashable]) -> Iterator[tuple[T, T]]:
    """(item, the first item with its key) for each item whose key came before."""
    items = list(items)
    first = _first(items, key)
    for item in items:
        if first[key(item)] is not item:
            yield item, first[key(item)]


def _providers(m: Manifests) -> dict[str, Provider]:
    return _first(m.providers, lambda p: p.name)


def _models(m: Manifests) -> dict[str, Model]:
    return _first(m.models, lambda model: model.name)


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(candidates), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _rank(effort: str) -> int:
    return EFFORTS.index(effort)


def _model_provider(m: Manifests) -> Iterator[tuple[Model, Provider]]:
    """Each model with its provider, for the models whose provider is defined."""
    providers = _providers(m)
    for model in m.models:
        provider = providers.get(model.provider)
        if provider is not None:
            yield model, provider


# --- providers -------------------------------------------------------------


def base_url_is_sound(m: Manifests) -> Iterator[Diagnostic]:
    for provider in m.providers:
        url = _spec(provider.meta.doc).get("base_url")
        if isinstance(url, str):
            for code, message in check_base_url(url, provider.type):
                yield provider.meta.doc.diagnostic(code, message, ("spec", "base_url"))


def base_url_given_when_required(m: Manifests) -> Iterator[Diagnostic]:
    for provider in m.providers:
        if provider.base_url is not None:
            continue
        if provider.type == "bedrock":
            message = "type bedrock needs base_url or settings.bedrock.region to derive it from"
        else:
            message = f"type {provider.type} has no default base_url; set spec.base_url"
        yield provider.meta.doc.diagnostic("RC310", message, ("spec", "type"))


_KEY_PREFIXES = ("sk-", "sk_", "AIza", "xai-", "gsk_", "hf_", "ghp_", "gho_", "github_pat_", "AKIA", "ASIA",
                 "pk-", "rk-", "glpat-", "xox", "eyJ")


def _looks_like_a_key(name: str) -> bool:
    """An `env:` name that is a key pasted where the variable's name belongs."""
    if name.startswith(_KEY_PREFIXES):
        return True
    mixed = any(c.islower() for c in name) and any(c.isupper() for c in name) and any(c.isdigit() for c in name)
    return len(name) >= 24 and mixed and "_" not in name


def env_names_are_names(m: Manifests) -> Iterator[Diagnostic]:
    for provider in m.providers:
        refs = [(("spec", "api_keys", i), ref) for i, ref in enumerate(provider.api_keys)]
        for variant, body in (provider.settings or {}).items():
            refs += [(("spec", "settings", variant, k), v) for k, v in (body or {}).items()
                     if isinstance(v, str) and v.startswith("env:")]
        for path, ref in refs:
            source, _, name = ref.partition(":")
            if source == "env" and _looks_like_a_key(name):
                message = ("this env: name looks like a key, not the name of a variable (it is not shown "
                           "here; if it is a real key, rotate it): write {env: VARIABLE_NAME}")
                yield provider.meta.doc.diagnostic("RC202", message, path)


def api_keys_accepted(m: Manifests) -> Iterator[Diagnostic]:
    for provider in m.providers:
        variant = next(iter(provider.settings or {}), "")
        refusal = NO_API_KEYS.get(provider.type) or NO_API_KEYS.get(variant)
        if provider.api_keys and refusal:
            yield provider.meta.doc.diagnostic("RC406", refusal, ("spec", "api_keys"), key=True)


def settings_fit_type(m: Manifests) -> Iterator[Diagnostic]:
    for provider in m.providers:
        for variant in provider.settings or {}:
            types = SETTINGS_TYPES.get(variant)
            if types is not None and provider.type not in types:
                message = f"{variant} settings are only valid for type {' or '.join(types)}"
                path = ("spec", "settings", variant)
                yield provider.meta.doc.diagnostic("RC407", message, path, key=True)


def _bedrock(provider: Provider) -> dict[str, Any] | None:
    body = (provider.settings or {}).get("bedrock")
    return body if isinstance(body, dict) else None


def bedrock_configured(m: Manifests) -> Iterator[Diagnostic]:
    for provider in m.providers:
        bedrock = _bedrock(provider) or {}
        if provider.type == "bedrock" and not any(bedrock.get(k) for k in BEDROCK_CONFIGURED_BY):
            message = (
                "type bedrock requires settings.bedrock with at least one of region, role_arn "
                "or access_key/access_key_secret (with no keys, the AWS credential chain is used)"
            )
            path = ("spec", "settings") if provider.settings else ("spec", "type")
            yield provider.meta.doc.diagnostic("RC408", message, path)


def bedrock_keys_paired(m: Manifests) -> Iterator[Diagnostic]:
    for provider in m.providers:
        bedrock = _bedrock(provider) or {}
        given = [k for k in BEDROCK_KEY_PAIR if k in bedrock]
        if len(given) == 1:
            (present,) = given
            (missing,) = (k for k in BEDROCK_KEY_PAIR if k != present)
            message = f"{present} needs {missing}: static AWS keys come as a pair"
            path = ("spec", "settings", "bedrock", present)
            yield provider.meta.doc.diagnostic("RC424", message, path, key=True)


def bedrock_protocol_complete(m: Manifests) -> Iterator[Diagnostic]:
    for provider in m.providers:
        bedrock = _bedrock(provider)
        if provider.type != "bedrock" or bedrock is None:
            continue
        if not any(bedrock.get(k) for k in BEDROCK_CONFIGURED_BY):
            continue  # RC408 says what is missing first
        protocol = bedrock.get("protocol", "invoke-model")
        missing = [k for k in PROTOCOL_NEEDS.get(protocol, ()) if not bedrock.get(k)]
        if missing:
            message = f"the {protocol} protocol needs settings.bedrock.{' and '.join(missing)}"
            path = ("spec", "settings", "bedrock")
            yield provider.meta.doc.diagnostic("RC421", message, path, key=True)


def role_arn_is_iam_role(m: Manifests) -> Iterator[Diagnostic]:
    for provider in m.providers:
        arn = (_bedrock(provider) or {}).get("role_arn")
        if isinstance(arn, str) and not ROLE_ARN.fullmatch(arn):
            message = (
                f"role_arn {quoted(arn)} is not an IAM role ARN; "
                "write it as arn:aws:iam::123456789012:role/BedrockRole"
            )
            path = ("spec", "settings", "bedrock", "role_arn")
            yield provider.meta.doc.diagnostic("RC422", message, path)


def claude_platform_region(m: Manifests) -> Iterator[Diagnostic]:
    for provider in m.providers:
        body = (provider.settings or {}).get("claude_platform_aws") or {}
        region = body.get("region")
        if isinstance(region, str) and not AWS_REGION.fullmatch(region):
            message = (f"region {quoted(region)} is not an AWS region name; write it as AWS does, "
                       "e.g. us-east-1 or eu-west-1")
            yield provider.meta.doc.diagnostic("RC426", message, ("spec", "settings", "claude_platform_aws", "region"))


def wif_uses_https(m: Manifests) -> Iterator[Diagnostic]:
    for provider in m.providers:
        has_wif = "wif" in (provider.settings or {})
        if has_wif and provider.base_url and plain_http_to_remote(provider.base_url):
            message = "WIF providers require an https base_url; http is allowed for loopback only"
            yield provider.meta.doc.diagnostic("RC420", message, ("spec", "base_url"))


def upstream_headers_allowed(m: Manifests) -> Iterator[Diagnostic]:
    for provider in m.providers:
        headers = (provider.settings or {}).get("upstream_headers") or {}
        base: Path = ("spec", "settings", "upstream_headers")
        seen: dict[str, str] = {}
        for name, value in headers.items():
            doc, lower = provider.meta.doc, name.lower()
            if lower in DENIED_HEADERS or lower.startswith(DENIED_HEADER_PREFIX):
                message = f"header {name!r} is managed by the gateway and cannot be overridden"
                yield doc.diagnostic("RC417", message, (*base, name), key=True)
            if lower in seen:
                message = f"header {name!r} repeats {seen[lower]!r} (names are case-insensitive)"
                yield doc.diagnostic("RC417", message, (*base, name), key=True)
            seen.setdefault(lower, name)
            denied = lower in DENIED_HEADERS or lower.startswith(DENIED_HEADER_PREFIX)
            if isinstance(value, Secret):
                if not denied and not _credential_header(lower):
                    message = (f"header {name!r} takes a secret reference but its name does not say it is a "
                               "credential (key, token, secret, auth, password …): write its value, or name it "
                               "as the upstream names the credential header")
                    yield doc.diagnostic("RC417", message, (*base, name), key=True)
                continue
            if not denied and _credential_header(lower) and value and not _PLACEHOLDER.fullmatch(value.strip()):
                message = (f"header {name!r} looks like a credential: a key never goes into a manifest as "
                           "text (the value is not shown here; if it was a real key, rotate it); give a "
                           "reference, {env: NAME} or {file: PATH}, or the provider's api_keys")
                yield doc.diagnostic("RC202", message, (*base, name))
                continue
            for problem in _header_value_problems(value):
                message = f"the value of header {name!r} {problem}"
                yield doc.diagnostic("RC417", message, (*base, name))


def _credential_header(lower: str) -> bool:
    return credential_header(lower)


def _header_value_problems(value: str) -> list[str]:
    """What is wrong with a header value, without ever repeating it (it may be a token)."""
    problems = []
    if len(value.encode("utf-8")) > MAX_HEADER_BYTES:
        problems.append(f"is longer than {MAX_HEADER_BYTES} bytes (UTF-8)")
    if _CONTROL.search(value):
        problems.append("contains a control character (CR, LF, NUL, DEL, ...); remove it")
    problems += _placeholder_problems(value)
    return problems


def _placeholder_problems(value: str) -> list[str]:
    """Coder's scan: each `{{` must close with `}}`, and what it encloses must be `{{chat_id}}`."""
    problems, rest = [], value
    while (start := rest.find("{{")) >= 0:
        end = rest.find("}}", start)
        if end < 0:
            return [*problems, "has an unterminated {{ placeholder; close it ({{chat_id}}) or remove the braces"]
        if rest[start:end + 2] != CHAT_ID_PLACEHOLDER and not problems:
            problems.append("uses a placeholder other than {{chat_id}}, the only one the gateway fills")
        rest = rest[end + 2:]
    return problems


# --- uniqueness ------------------------------------------------------------


def names_unique_per_kind(m: Manifests) -> Iterator[Diagnostic]:
    kinds: dict[str, list[Meta]] = {
        "Provider": [p.meta for p in m.providers],
        "Model": [model.meta for model in m.models],
        "PriceCatalog": m.catalogs,
        "Overrides": [o.meta for o in m.overrides],
    }
    for kind, metas in kinds.items():
        for meta, original in _repeats(metas, lambda meta: meta.name):
            where = _place(original.doc, ("metadata", "name"))
            message = f"{kind} {meta.name!r} is already defined at {where}; rename one of them"
            yield meta.doc.diagnostic("RC401", message, ("metadata", "name"))


def model_keys_unique(m: Manifests) -> Iterator[Diagnostic]:
    for model, original in _repeats(m.models, lambda x: (x.organization, x.provider, x.model)):
        where = _place(original.meta.doc, ("spec", "model"))
        message = (
            f"model {quoted(model.model)} of provider {model.provider!r} in {_org(model.organization)} "
            f"is already defined by Model {original.name!r} at {where}"
        )
        yield model.meta.doc.diagnostic("RC401", message, ("spec", "model"))


def one_overrides_per_organization(m: Manifests) -> Iterator[Diagnostic]:
    for overrides, original in _repeats(m.overrides, lambda o: o.organization):
        where = _place(original.meta.doc, ("metadata", "name"))
        message = (
            f"{_org(overrides.organization)} already has Overrides {original.meta.name!r} "
            f"at {where}; merge the contexts into one document"
        )
        path = ("spec", "organization")
        yield overrides.meta.doc.diagnostic("RC401", message, path, key=True)


def single_settings(m: Manifests) -> Iterator[Diagnostic]:
    for extra in m.settings[1:]:
        where = _place(m.settings[0].meta.doc, ("kind",))
        message = f"Settings is deployment-wide and already defined at {where}; keep one document"
        yield extra.meta.doc.diagnostic("RC401", message, ("kind",))


# --- models ----------------------------------------------------------------


def model_provider_defined(m: Manifests) -> Iterator[Diagnostic]:
    providers = _providers(m)
    invalid = m.invalid_names.get("Provider", set())
    for model in m.models:
        if model.provider not in providers and model.provider not in invalid:
            hint = _did_you_mean(model.provider, providers)
            message = f"provider {model.provider!r} is not defined by any Provider manifest{hint}"
            yield model.meta.doc.diagnostic("RC402", message, ("spec", "provider"))


def model_not_on_copilot(m: Manifests) -> Iterator[Diagnostic]:
    for model, provider in _model_provider(m):
        if provider.type == "copilot":
            message = (
                f"provider {provider.name!r} is of type copilot, which cannot back models; "
                "pick a provider of another type"
            )
            yield model.meta.doc.diagnostic("RC416", message, ("spec", "provider"))


def model_provider_enabled(m: Manifests) -> Iterator[Diagnostic]:
    for model, provider in _model_provider(m):
        if not provider.enabled:
            message = f"provider {provider.name!r} is disabled, so this model cannot be used"
            yield model.meta.doc.diagnostic("RC423", message, ("spec", "provider"))


def moved_from_names_a_model(m: Manifests) -> Iterator[Diagnostic]:
    """`reconciler/moved-from` on a Model: the `<provider>/<model>` it was, or `none`."""
    for model in m.models:
        hint = (model.meta.annotations or {}).get(MOVED_FROM)
        if hint is None or str(hint).strip().lower() == "none":
            continue
        provider, slash, model_id = str(hint).partition("/")
        if not (slash and provider.strip() and model_id.strip()) or hint != str(hint).strip():
            problem = "is not <provider>/<model> (the model's provider and model id before the move)"
        elif (provider, model_id) == (model.provider, model.model):
            problem = "names this model itself"
        else:
            continue
        yield model.meta.doc.diagnostic("RC425", f"{MOVED_FROM}: {str(hint)!r} {problem}, or 'none'",
                                        ("metadata", "annotations", MOVED_FROM))


def one_default_per_organization(m: Manifests) -> Iterator[Diagnostic]:
    defaults = [model for model in m.models if model.default]
    for model, original in _repeats(defaults, lambda x: x.organization):
        where = _place(original.meta.doc, ("spec", "default"))
        message = (
            f"{_org(model.organization)} already has a default model, {original.name!r} at "
            f"{where}; set default: true on one model only"
        )
        yield model.meta.doc.diagnostic("RC404", message, ("spec", "default"))


def organization_has_default(m: Manifests) -> Iterator[Diagnostic]:
    if m.invalid_names.get("Model"):
        return  # the default may be among the models that failed the schema pass
    first = _first(m.models, lambda model: model.organization)
    with_default = {model.organization for model in m.models if model.default}
    for organization, model in first.items():
        if organization not in with_default:
            message = f"{_org(organization)} has models but no default; set default: true on one"
            yield model.meta.doc.diagnostic("RC418", message, ("spec", "default"), key=True)


def _options(model: Model) -> dict[str, Any]:
    options = model.config.get("provider_options")
    return options if isinstance(options, dict) else {}


def options_family_fits(m: Manifests) -> Iterator[Diagnostic]:
    for model, provider in _model_provider(m):
        for family in _options(model):
            if provider.type not in OPTION_FAMILIES.get(family, ()):
                fitting = [f for f, types in OPTION_FAMILIES.items() if provider.type in types]
                advice = f"use provider_options.{fitting[0]}" if fitting else "remove it"
                message = (
                    f"provider_options.{family} does not fit provider {provider.name!r} of type "
                    f"{provider.type}; {advice}"
                )
                path = ("spec", "config", "provider_options", family)
                yield model.meta.doc.diagnostic("RC405", message, path, key=True)


def effort_default_within_max(m: Manifests) -> Iterator[Diagnostic]:
    for model in m.models:
        effort = model.config.get("reasoning_effort") or {}
        default, maximum = effort.get("default"), effort.get("max")
        if default in EFFORTS and maximum in EFFORTS and _rank(default) > _rank(maximum):
            message = f"reasoning_effort default {default!r} is above max {maximum!r}; lower it"
            path = ("spec", "config", "reasoning_effort", "default")
            yield model.meta.doc.diagnostic("RC412", message, path)


def options_not_exclusive(m: Manifests) -> Iterator[Diagnostic]:
    for model in m.models:
        for family, body in _options(model).items():
            for first, second in EXCLUSIVE_OPTIONS.get(family, ()):
                if _dig(body, first) is not None and _dig(body, second) is not None:
                    message = f"{first[-1]} and {second[-1]} are mutually exclusive; set only one"
                    path = ("spec", "config", "provider_options", family, *second)
                    yield model.meta.doc.diagnostic("RC419", message, path, key=True)


def option_values_documented(m: Manifests) -> Iterator[Diagnostic]:
    """Options Coder stores as free text but documents a set of values for: another value is a warning."""
    for model in m.models:
        for family, body in _options(model).items():
            for option, values in DOCUMENTED_VALUES.get(family, {}).items():
                value = body.get(option) if isinstance(body, dict) else None
                if isinstance(value, str) and value not in values:
                    message = (f"{option} {quoted(value)} is not one of the documented values "
                               f"({', '.join(values)}); Coder passes it upstream as written, check the spelling")
                    path = ("spec", "config", "provider_options", family, option)
                    yield model.meta.doc.diagnostic("RC427", message, path)


def _dig(data: Any, path: Path) -> Any:
    for part in path:
        data = data.get(part) if isinstance(data, dict) else None
    return data


# --- overrides -------------------------------------------------------------


def _override_targets(m: Manifests) -> Iterator[tuple[Overrides, str, Model]]:
    """(overrides, context, model) for each context whose model is defined."""
    models = _models(m)
    for overrides in m.overrides:
        for context, target in overrides.contexts.items():
            model = models.get(target["model"])
            if model is not None:
                yield overrides, context, model


def override_model_defined(m: Manifests) -> Iterator[Diagnostic]:
    models = _models(m)
    invalid = m.invalid_names.get("Model", set())
    for overrides in m.overrides:
        for context, target in overrides.contexts.items():
            name = target["model"]
            if name not in models and name not in invalid:
                hint = _did_you_mean(name, models)
                message = f"model {name!r} is not the metadata.name of any Model{hint}"
                path = ("spec", "contexts", context, "model")
                yield overrides.meta.doc.diagnostic("RC403", message, path)


def override_model_enabled(m: Manifests) -> Iterator[Diagnostic]:
    for overrides, context, model in _override_targets(m):
        if not model.enabled:
            message = f"Model {model.name!r} is disabled; enable it or pick an enabled model"
            path = ("spec", "contexts", context, "model")
            yield overrides.meta.doc.diagnostic("RC414", message, path)


def override_same_organization(m: Manifests) -> Iterator[Diagnostic]:
    for overrides, context, model in _override_targets(m):
        if model.organization != overrides.organization:
            message = (
                f"Model {model.name!r} belongs to {_org(model.organization)}, but these overrides "
                f"are for {_org(overrides.organization)}; pick a model of the same organization"
            )
            path = ("spec", "contexts", context, "model")
            yield overrides.meta.doc.diagnostic("RC415", message, path)


def override_effort_in_range(m: Manifests) -> Iterator[Diagnostic]:
    for overrides, context, model in _override_targets(m):
        effort = overrides.contexts[context].get("reasoning_effort")
        problem = _effort_problem(effort, model) if effort is not None else ""
        if problem:
            path = ("spec", "contexts", context, "reasoning_effort")
            yield overrides.meta.doc.diagnostic("RC413", problem, path)


def _effort_problem(effort: str, model: Model) -> str:
    allowed = (model.config.get("reasoning_effort") or {}).get("max")
    if allowed not in EFFORTS:
        return (
            f"This model does not support reasoning effort: Model {model.name!r} has no "
            "config.reasoning_effort; remove reasoning_effort here or give the model a range"
        )
    if effort in EFFORTS and _rank(effort) > _rank(allowed):
        choices = ", ".join(EFFORTS[: _rank(allowed) + 1])
        return f"reasoning_effort {effort!r} is above the model's max {allowed!r}; use {choices}"
    return ""


# Efforts Coder sends per provider family (coderd/x/chatd/chatprovider: ReasoningEffortFromChat, and
# chatopenai.ReasoningEffortFromChat for openai, azure and openai-compat); any other level is not sent
# and the model reasons at its provider's default.
EFFORTS_SENT = {
    ("openai", "azure", "openai-compat"): ("minimal", "low", "medium", "high", "xhigh"),
    ("anthropic", "bedrock"): ("low", "medium", "high", "xhigh", "max"),
    ("openrouter",): ("low", "medium", "high"),
    ("vercel",): ("none", "minimal", "low", "medium", "high", "xhigh"),
}


def _efforts_sent(provider_type: str) -> tuple[str, ...] | None:
    return next((sent for types, sent in EFFORTS_SENT.items() if provider_type in types), None)


def _effort_dropped(effort: Any, provider: Provider) -> str:
    sent = _efforts_sent(provider.type)
    if sent is None or effort not in EFFORTS or effort in sent:
        return ""
    return (f"reasoning_effort {effort!r} is not sent to {provider.type} models (Coder sends only "
            f"{', '.join(sent)}): it becomes the provider's default effort; pick one of those")


def efforts_the_family_takes(m: Manifests) -> Iterator[Diagnostic]:
    providers = {p.name: p for p in m.providers}
    for model, provider in _model_provider(m):
        effort = (model.config.get("reasoning_effort") or {}).get("default")
        message = _effort_dropped(effort, provider)
        if message:
            yield model.meta.doc.diagnostic("RC428", message, ("spec", "config", "reasoning_effort", "default"))
    for overrides, context, model in _override_targets(m):
        provider = providers.get(model.provider)
        effort = overrides.contexts[context].get("reasoning_effort")
        message = _effort_dropped(effort, provider) if provider is not None else ""
        if message:
            path = ("spec", "contexts", context, "reasoning_effort")
            yield overrides.meta.doc.diagnostic("RC428", message, path)


# --- prices ----------------------------------------------------------------


@dataclass(frozen=True)
class _PriceSource:
    """A set of price fields from a manifest: a model's pricing or a catalog entry."""

    doc: Document
    path: Path  # of the mapping that holds the fields
    key: tuple[str, str] | None  # (provider type, model); None when the provider is unknown
    fields: dict[str, Any]
    book: bool = False  # `pricing: book`: every field from the store's price book
    priority: int = 0  # a catalog's spec.priority; a model's own pricing is 0


def _price_sources(m: Manifests) -> list[_PriceSource]:
    """Every source of prices, in file order (the first one of a key is the reference); built once
    per set of manifests, since four rules walk it (a 20,000-entry catalog is 20,000 sources)."""
    built: list[_PriceSource] | None = m.__dict__.get("_price_sources")
    if built is None:
        built = m.__dict__["_price_sources"] = _build_price_sources(m)
    return built


def _build_price_sources(m: Manifests) -> list[_PriceSource]:
    providers = _providers(m)
    sources = []
    for model in m.models:
        provider = providers.get(model.provider)
        key = (provider.type, model.model) if provider is not None else None
        sources.append(_PriceSource(model.meta.doc, ("spec", "pricing"), key, model.pricing, model.book is not None))
    for entry in m.prices:
        path = ("spec", "prices", entry.index)
        sources.append(_PriceSource(entry.doc, path, (entry.provider, entry.model), entry.fields,
                                    priority=entry.priority))
    return sorted(sources, key=lambda s: (s.doc.file, s.doc.index, s.path))


def _exact_price(value: Any) -> tuple[int | None, str]:
    """(micro-dollars, "") for a storable price, else (None, what is wrong with it)."""
    try:
        micros = to_micros(value)
    except PriceError as exc:
        return None, f"{exc}; write USD per 1M tokens with at most 6 decimals"
    if micros is not None and micros > INT64_MAX:
        return None, "is above the largest price the gateway can store (9.2e12 USD per 1M tokens)"
    return micros, ""


def prices_exact(m: Manifests) -> Iterator[Diagnostic]:
    for source in _price_sources(m):
        for field, value in source.fields.items():
            _, problem = _exact_price(value)
            if problem:
                message = f"{field} price {problem}"
                yield source.doc.diagnostic("RC410", message, (*source.path, field))


def _shown(micros: int | None) -> str:
    return "null (unknown)" if micros is None else f"{from_micros(micros)} USD"


def prices_agree(m: Manifests) -> Iterator[Diagnostic]:
    """Sources of one price field at the highest priority that gives it must agree; lower ones are
    overridden (an imported list under local corrections)."""
    sources = [s for s in _price_sources(m) if s.key is not None]
    top: dict[tuple[tuple[str, str], str], int] = {}
    for source in sources:
        for field in source.fields:
            slot = (source.key, field)
            top[slot] = max(top.get(slot, source.priority), source.priority)  # type: ignore[index]
    first: dict[tuple[tuple[str, str], str], tuple[_PriceSource, int | None]] = {}
    for source in sources:
        for field, value in source.fields.items():
            micros, problem = _exact_price(value)
            if problem or source.priority != top[(source.key, field)]:  # type: ignore[index]
                continue  # RC410, or overridden by a catalog of higher priority
            original, agreed = first.setdefault((source.key, field), (source, micros))  # type: ignore[index]
            if original is not source and agreed != micros:
                where = _place(original.doc, (*original.path, field))
                message = (
                    f"{field} price of {'/'.join(source.key)} is {_shown(micros)} here but "  # type: ignore[arg-type]
                    f"{_shown(agreed)} at {where}; give one price (or leave the field out here), or "
                    "give the catalog that should win a higher spec.priority"
                )
                yield source.doc.diagnostic("RC409", message, (*source.path, field))


def book_pricing_alone(m: Manifests) -> Iterator[Diagnostic]:
    """`pricing: book` prices every field of its key: nothing else may price that key."""
    sources = _price_sources(m)
    book_keys = {s.key: s for s in sources if s.key is not None and s.book}
    for source in sources:
        original = book_keys.get(source.key)  # type: ignore[arg-type]
        if original is None or original is source or not (source.fields or source.book):
            continue
        message = (
            f"{'/'.join(source.key or ())} follows the price book at {_place(original.doc, original.path)} "
            "(pricing: book), so it cannot also be priced here; remove one of the two"
        )
        yield source.doc.diagnostic("RC409", message, source.path)


def models_priced(m: Manifests) -> Iterator[Diagnostic]:
    book = default_price_book()
    priced = {
        s.key for s in _price_sources(m) if s.book or any(v is not None for v in s.fields.values())
    }
    for model, provider in _model_provider(m):
        key = (provider.type, model.model)
        if provider.type == "copilot" or key in priced:
            continue
        if any(v is not None for v in book.get(key, {}).values()):
            continue
        message = (
            f"no price for {quoted(provider.type + '/' + model.model)} in its pricing, a PriceCatalog or the "
            "default price book: its usage would be costed as zero; add spec.pricing"
        )
        yield model.meta.doc.diagnostic("RC411", message, ("spec", "model"))


RULES: list[Rule] = [
    base_url_is_sound,
    base_url_given_when_required,
    api_keys_accepted,
    settings_fit_type,
    bedrock_configured,
    bedrock_keys_paired,
    bedrock_protocol_complete,
    role_arn_is_iam_role,
    claude_platform_region,
    wif_uses_https,
    upstream_headers_allowed,
    env_names_are_names,
    names_unique_per_kind,
    model_keys_unique,
    one_overrides_per_organization,
    single_settings,
    model_provider_defined,
    model_not_on_copilot,
    model_provider_enabled,
    moved_from_names_a_model,
    one_default_per_organization,
    organization_has_default,
    options_family_fits,
    effort_default_within_max,
    options_not_exclusive,
    option_values_documented,
    override_model_defined,
    override_model_enabled,
    override_same_organization,
    override_effort_in_range,
    efforts_the_family_takes,
    prices_exact,
    prices_agree,
    book_pricing_alone,
    models_priced,
]
