"""explain: which model and which credentials a developer gets in each agent context, and why.

Pure: takes a `State` (the manifests' desired state, or a store's actual state)
and, optionally, what a Coder deployment knows of one user (`UserView`), and
follows the gateway's resolution order for each context:

1. the user's personal override (root, general, explore; only when the
   deployment lets users override, and only in `model` mode; `chat_default`
   skips the admin override);
2. the organization's admin override for the context;
3. the chat's model: the organization's default model for a new chat.

A layer whose model cannot serve is skipped (the gateway falls through):
the model is disabled or gone, its provider is disabled, has no credentials
the user can use, or the model's access list leaves the user out. The one
exception is title generation, which is skipped rather than falling through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.prices import PRICE_FIELDS, from_micros
from reconciler.state import MODEL, OVERRIDE, PRICE, PROVIDER, SETTINGS, SETTINGS_KEY, Key, Record, State

FORMAT_VERSION = "1"
CONTEXTS = ("root", "general", "explore", "title_generation", "compaction", "advisor")
PERSONAL_CONTEXTS = ("root", "general", "explore")
ADMIN_CONTEXTS = ("general", "explore", "title_generation", "compaction", "advisor")
AMBIENT_TYPES = ("bedrock",)  # the gateway's own AWS credential chain serves these
NO_AGENTS_TYPES = ("copilot",)  # per-request GitHub tokens: cannot back Coder Agents


@dataclass(frozen=True)
class UserView:
    """What a deployment knows of one user; never a key value."""

    name: str
    groups: frozenset[str]  # group names in the organization, Everyone included
    # context -> {"mode": model|chat_default|deployment_default, "model": Key | None, "reasoning_effort"}
    personal: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    own_keys: frozenset[str] = frozenset()  # provider names the user saved a key for
    byok: bool = False  # the deployment lets users bring their own keys


@dataclass(frozen=True)
class Layer:
    name: str  # "personal override", "admin override", "chat model"
    held: str | None  # the model the layer named, None when it named none
    used: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.name, "held": self.held, "used": self.used, "reason": self.reason}


@dataclass(frozen=True)
class ContextAnswer:
    context: str
    model: str | None  # the model that serves, None when none does
    layers: tuple[Layer, ...]
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"context": self.context, "model": self.model, "layers": [x.to_dict() for x in self.layers],
                "note": self.note}


@dataclass(frozen=True)
class Credentials:
    provider: str
    type: str
    enabled: bool
    central_keys: tuple[str, ...]  # masked views or references, never values
    source: str  # what the gateway sends upstream for this user
    available: bool

    def to_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "type": self.type, "enabled": self.enabled,
                "central_keys": list(self.central_keys), "source": self.source, "available": self.available}


@dataclass(frozen=True)
class EffectivePrice:
    model: str
    key: tuple[str, str]  # (provider type, model id)
    prices: dict[str, str | None]  # USD per 1M tokens, exact decimals
    source: str  # manifests | custom price on the server | the server's price book | none

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "price_key": list(self.key), "prices": dict(self.prices), "source": self.source}


@dataclass(frozen=True)
class Explanation:
    side: str  # "manifests" | "store"
    organization: str
    user: str | None
    personal_overrides: bool | None  # None: not known
    contexts: tuple[ContextAnswer, ...]
    credentials: tuple[Credentials, ...]
    prices: tuple[EffectivePrice, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "side": self.side, "organization": self.organization, "user": self.user,
            "personal_overrides_allowed": self.personal_overrides,
            "contexts": [c.to_dict() for c in self.contexts],
            "credentials": [c.to_dict() for c in self.credentials],
            "prices": [p.to_dict() for p in self.prices],
        }


def explain(
    state: State,
    *,
    side: str,
    organization: str | None = None,
    user: UserView | None = None,
    contexts: tuple[str, ...] = CONTEXTS,
    names: Mapping[Key, str] | None = None,
    pinned: Mapping[tuple[str, str], Record] | None = None,
    show_keys: bool = True,
) -> Explanation:
    """Resolve every context of one organization. `names` maps model keys to the manifests' names;
    `pinned` holds the prices the manifests set (the desired side); `show_keys` False hides even
    masked key views (a store whose view is a fingerprint)."""
    org = organization or state.default_organization
    label = _Labels(names or {})
    settings = state.of(SETTINGS).get(SETTINGS_KEY)
    allow = None if settings is None else bool(settings.get("allow_users"))
    creds = {name: _credentials(name, record, user, show_keys) for (name,), record in state.of(PROVIDER).items()}
    resolver = _Resolver(state, org, user, creds, label)
    answers = tuple(resolver.context(c, allow) for c in contexts)
    models = sorted(k for k in state.of(MODEL) if k[0] == org)
    used_providers = {k[1] for k in models}
    credentials = tuple(creds[p] for p in sorted(creds) if p in used_providers)
    prices = tuple(_price(state, k, label(k), pinned) for k in models if state.of(MODEL)[k].get("enabled", True))
    return Explanation(side, org, user.name if user else None, allow, answers, credentials, prices)


class _Labels:
    def __init__(self, names: Mapping[Key, str]) -> None:
        self._names = names

    def __call__(self, key: Key) -> str:
        name = self._names.get(key)
        ident = "/".join(key[1:])
        return f"{name} ({ident})" if name else ident


class _Resolver:
    def __init__(self, state: State, org: str, user: UserView | None, creds: dict[str, Credentials],
                 label: _Labels) -> None:
        self.state, self.org, self.user, self.creds, self.label = state, org, user, creds, label

    def context(self, context: str, allow: bool | None) -> ContextAnswer:
        layers: list[Layer] = []
        skip_admin = False
        if context in PERSONAL_CONTEXTS:
            chosen, skip_admin = self._personal(context, allow, layers)
            if chosen:
                return ContextAnswer(context, chosen, tuple(layers))
        if context in ADMIN_CONTEXTS:
            if skip_admin:
                why = "skipped: the personal setting uses the chat's model"
                layers.append(Layer("admin override", None, False, why))
            else:
                chosen = self._admin(context, layers)
                if chosen:
                    return ContextAnswer(context, chosen, tuple(layers), _advisor_note(context))
                if context == "title_generation" and layers[-1].held is not None:
                    return ContextAnswer(context, None, tuple(layers),
                                         "title generation is skipped when its override cannot serve")
        chosen = self._chat_model(layers)
        return ContextAnswer(context, chosen, tuple(layers), _advisor_note(context))

    def _personal(self, context: str, allow: bool | None, layers: list[Layer]) -> tuple[str | None, bool]:
        name = "personal override"
        if allow is False:
            layers.append(Layer(name, None, False, "skipped: the deployment does not let users override models"))
            return None, False
        if self.user is None:
            why = "not known: give --user (and a Coder store) to see a user's own choice"
            if allow is None:
                why += "; whether users may override is not known either"
            layers.append(Layer(name, None, False, why))
            return None, False
        saved = self.user.personal.get(context) or {}
        mode = saved.get("mode") or ("chat_default" if context == "root" else "deployment_default")
        if mode == "chat_default":
            layers.append(Layer(name, None, False, f"{self.user.name} uses the chat's model here (chat_default)"))
            return None, context != "root"
        if mode != "model" or not saved.get("model"):
            layers.append(Layer(name, None, False, f"{self.user.name} follows the organization's choice"))
            return None, False
        key: Key = tuple(saved["model"])
        ok, why = self._serves(key)
        layers.append(Layer(name, self.label(key), ok, why if not ok else f"{self.user.name}'s own choice"))
        return (self.label(key) if ok else None), False

    def _admin(self, context: str, layers: list[Layer]) -> str | None:
        record = self.state.of(OVERRIDE).get((self.org, context))
        if record is None:
            layers.append(Layer("admin override", None, False, "none set for this context"))
            return None
        key: Key = (self.org, record.get("provider") or "", record.get("model") or "")
        ok, why = self._serves(key)
        effort = record.get("reasoning_effort")
        reason = f"set by the organization{f', reasoning effort {effort}' if effort else ''}" if ok else why
        layers.append(Layer("admin override", self.label(key), ok, reason))
        return self.label(key) if ok else None

    def _chat_model(self, layers: list[Layer]) -> str | None:
        models = self.state.of(MODEL)
        default = next((k for k in sorted(models) if k[0] == self.org and models[k].get("default")), None)
        if default is None:
            usable = [k for k in sorted(models) if k[0] == self.org and self._serves(k)[0]]
            if not usable:
                layers.append(Layer("chat model", None, False, "no model in this organization can serve"))
                return None
            layers.append(Layer("chat model", self.label(usable[0]), True,
                                "no default model: the user's pick in the selector (the first usable shown)"))
            return self.label(usable[0])
        ok, why = self._serves(default)
        layers.append(Layer("chat model", self.label(default), ok,
                            "the organization's default model (a chat keeps the model it was started with)"
                            if ok else f"the default model cannot serve: {why}"))
        return self.label(default) if ok else None

    def _serves(self, key: Key) -> tuple[bool, str]:
        record = self.state.of(MODEL).get(key)
        if record is None:
            return False, "skipped: the model no longer exists"
        if not record.get("enabled", True):
            return False, "skipped: the model is disabled"
        creds = self.creds.get(key[1])
        if creds is None:
            return False, f"skipped: its provider {key[1]} does not exist"
        if not creds.enabled:
            return False, f"skipped: its provider {key[1]} is disabled"
        if not creds.available:
            return False, f"skipped: {creds.source}"
        access = record.get("access")
        if access is not None and self.user is not None and not _admits(access, self.user):
            return False, f"skipped: the model's access list does not include {self.user.name} or their groups"
        return True, "serves"


def _admits(access: Mapping[str, Any], user: UserView) -> bool:
    users = access.get("users") or []
    groups = access.get("groups") or []
    return user.name in users or bool(user.groups & set(groups))


def _advisor_note(context: str) -> str:
    if context == "advisor":
        return "the advisor context is used only where the deployment enables the chat-advisor experiment"
    return ""


def _credentials(name: str, record: Record, user: UserView | None, show_keys: bool) -> Credentials:
    ptype = str(record.get("type") or "")
    keys = tuple(_key_label(k, show_keys) for k in record.get("api_keys") or [])
    enabled = bool(record.get("enabled", True))
    own = user is not None and user.byok and name in user.own_keys
    if ptype in NO_AGENTS_TYPES:
        return Credentials(name, ptype, enabled, keys, "cannot back Coder Agents (per-request GitHub tokens)", False)
    settings = record.get("settings") or {}
    if own:
        source = f"{user.name}'s own key (BYOK){' before the central keys' if keys else ''}"  # type: ignore[union-attr]
        return Credentials(name, ptype, enabled, keys, source, True)
    if keys:
        return Credentials(name, ptype, enabled, keys, f"{len(keys)} central key(s), in failover order", True)
    if ptype in AMBIENT_TYPES or "bedrock" in settings:
        static = (settings.get("bedrock") or {}).get("access_key") is not None
        source = "static AWS credentials" if static else "the gateway's ambient AWS credential chain (IAM role, env)"
        return Credentials(name, ptype, enabled, keys, source, True)
    if "wif" in settings:
        return Credentials(name, ptype, enabled, keys, "workload identity federation", True)
    if "claude_platform_aws" in settings:
        source = "the gateway's ambient AWS credentials, signed for Claude Platform for AWS (IAM role, env)"
        return Credentials(name, ptype, enabled, keys, source, True)
    if user is not None and user.byok:
        return Credentials(name, ptype, enabled, keys,
                           f"no central key and {user.name} has saved no key of their own: unavailable to this "
                           "user, so its models are hidden from the selector", False)
    why = "no central key" + ("" if user is None else " and users cannot bring their own")
    return Credentials(name, ptype, enabled, keys, f"{why}: unavailable, so its models are hidden from the selector",
                       False)


def _key_label(secret: Any, show: bool) -> str:
    ref = getattr(secret, "ref", None)
    if ref:
        return ref
    view = getattr(secret, "view", None)
    return view if show and view else "(set)"


def _price(state: State, key: Key, label: str, pinned: Mapping[tuple[str, str], Record] | None) -> EffectivePrice:
    provider = state.of(PROVIDER).get((key[1],)) or {}
    price_key = (str(provider.get("type") or ""), key[2])
    booked = state.default_prices.get(price_key)
    if pinned is not None and price_key in pinned:
        return EffectivePrice(label, price_key, _usd(pinned[price_key]), "pinned in the manifests")
    custom = state.of(PRICE).get(price_key)
    if custom is not None and custom != booked:
        return EffectivePrice(label, price_key, _usd(custom), "a custom price on the server")
    if booked is not None and any(v is not None for v in booked.values()):
        same = " (a custom price equal to it is stored)" if custom is not None and pinned is None else ""
        return EffectivePrice(label, price_key, _usd(booked), f"the server's price book{same}")
    return EffectivePrice(label, price_key, dict.fromkeys(PRICE_FIELDS),
                          "none: usage is costed as zero and invisible to budgets")


def _usd(record: Record) -> dict[str, str | None]:
    return {f: from_micros(record.get(f)) for f in PRICE_FIELDS}
