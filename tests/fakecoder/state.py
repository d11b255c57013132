"""The fake's in-memory store. Handlers mutate it while holding `State.lock`."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from .wire import new_id, now, parse_uuid


class SecretList(list[str]):
    """Plaintext secrets the server received; its repr never shows them."""

    def __repr__(self) -> str:
        return f"<{len(self)} secret(s) hidden>"


@dataclass
class Organization:
    id: str
    name: str
    display_name: str
    is_default: bool
    created_at: str
    updated_at: str


@dataclass
class ApiKey:
    id: str
    secret: str
    created_at: str


@dataclass
class Provider:
    id: str
    type: str
    name: str
    display_name: str
    icon: str
    enabled: bool
    base_url: str
    api_keys: list[ApiKey]
    # {"_type": ..., field: value} with secrets, `_version` implied; None when empty.
    settings: dict[str, Any] | None
    created_at: str
    updated_at: str
    deleted: bool = False


@dataclass
class ChatModel:
    id: str
    organization_id: str
    ai_provider_id: str
    model: str
    display_name: str
    enabled: bool
    is_default: bool
    context_limit: int
    compression_threshold: int
    model_config: dict[str, Any] | None  # already re-encoded in struct order
    created_at: str
    updated_at: str
    # principal id -> role ("read"); a new model's group list is the Everyone group (the org's id)
    group_acl: dict[str, str] = field(default_factory=dict)
    user_acl: dict[str, str] = field(default_factory=dict)


PRICE_FIELDS = ("input_price", "output_price", "cache_read_price", "cache_write_price")


@dataclass
class ModelPrice:
    provider: str
    provider_id: str | None
    model: str
    prices: dict[str, int | None]  # the four PRICE_FIELDS
    source: str  # "default" | "custom"
    created_at: str
    updated_at: str


# (provider type, provider id or None, model)
PriceKey = tuple[str, str | None, str]


@dataclass
class Override:
    model_config_id: str
    reasoning_effort: str | None


@dataclass
class State:
    version: str
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    user_id: str = field(default_factory=new_id)
    organizations: dict[str, Organization] = field(default_factory=dict)
    providers: dict[str, Provider] = field(default_factory=dict)
    models: dict[str, ChatModel] = field(default_factory=dict)
    default_prices: dict[PriceKey, ModelPrice] = field(default_factory=dict)
    custom_prices: dict[PriceKey, ModelPrice] = field(default_factory=dict)
    overrides: dict[tuple[str, str], Override] = field(default_factory=dict)  # (org id, context)
    allow_users: bool = False
    people: Any = field(default=None, repr=False)  # people.People: users, groups, BYOK keys, spend
    # what the token may do ("resource:action", "resource:action@<org id>"); None: the owner, anything
    permissions: set[str] | None = None
    username: str = "admin"
    experiments: set[str] = field(default_factory=lambda: {"chat-advisor"})
    features: dict[str, bool] = field(default_factory=lambda: {"aibridge": True, "ai_governance_user_limit": True})
    # whether a deleted (soft-deleted) provider keeps its name, so that re-creating it answers 409
    deleted_names_reserved: bool = False
    secrets_seen: SecretList = field(default_factory=SecretList, repr=False)

    def add_organization(self, name: str, is_default: bool) -> Organization:
        with self.lock:
            stamp = now()
            org = Organization(new_id(), name, name, is_default, stamp, stamp)
            if is_default:
                for other in self.organizations.values():
                    other.is_default = False
            self.organizations[org.id] = org
            return org

    def find_organization(self, id_or_name: str) -> Organization | None:
        org_id = parse_uuid(id_or_name)
        if org_id is not None:
            return self.organizations.get(org_id)
        return next((o for o in self.organizations.values() if o.name == id_or_name), None)

    def active_provider(self, provider_id: str) -> Provider | None:
        provider = self.providers.get(provider_id)
        return None if provider is None or provider.deleted else provider

    def org_models(self, org_id: str) -> list[ChatModel]:
        return [m for m in self.models.values() if m.organization_id == org_id]
