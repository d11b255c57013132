"""What `explain` and `cost` read from Coder beyond the configuration: one user, and the spend export.

Each read is a fixed number of requests (none per model or per user):
- a user: GET /api/v2/users/{user}, GET /api/v2/organizations/{org}/groups,
  GET /api/v2/organizations/{org}/members/{user}/chats/model-overrides and
  GET /api/v2/users/{user}/ai-provider-keys;
- spend: GET /api/v2/organizations/{org}/ai/spend/export (CSV) for each
  window of at most 31 days, the longest period Coder answers at once.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from reconciler.errors import StoreError
from reconciler.explain import PERSONAL_CONTEXTS, UserView
from reconciler.state import Key
from reconciler.stores.coder.api import ApiFailure, CoderApi
from reconciler.stores.coder.writer import Index

TOKEN_KINDS = ("input", "output", "cache_read", "cache_write")
SPEND_WINDOW = timedelta(days=31)  # Coder refuses a longer period_start..period_end
SPEND_COLUMNS = ("username", "organization_name", "model", "provider", "provider_name", "input_tokens",
                 "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_micros")


def read_user(api: CoderApi, index: Index, store_url: str, user: str, org: str, deadline: float) -> UserView:
    until = time.monotonic() + deadline
    seg = quote(user, safe="")
    org_id = index.orgs.get(org)
    if org_id is None:
        raise StoreError(f"organization {org!r} does not exist in the Coder deployment at {store_url}")
    me = _get(api, f"/api/v2/users/{seg}", until, store_url, f"user {user!r}")
    username = str(me.get("username") or user) if isinstance(me, dict) else user
    groups = _get(api, f"/api/v2/organizations/{org_id}/groups", until, store_url, "the organization's groups")
    names = {"Everyone"}
    for group in groups if isinstance(groups, list) else []:
        members = {str(m.get("username")) for m in group.get("members") or [] if isinstance(m, dict)}
        if username in members:
            names.add(str(group.get("name")))
    personal_raw = _get(api, f"/api/v2/organizations/{org_id}/members/{seg}/chats/model-overrides", until,
                        store_url, f"{username}'s personal model overrides")
    by_id = {model_id: key for key, model_id in index.models.items()}
    personal: dict[str, dict[str, Any]] = {}
    for context in PERSONAL_CONTEXTS:
        entry = personal_raw.get(context) if isinstance(personal_raw, dict) else None
        if not isinstance(entry, dict):
            continue
        key: Key | None = by_id.get(str(entry.get("model_config_id") or ""))
        personal[context] = {"mode": entry.get("mode"), "model": key,
                             "reasoning_effort": entry.get("reasoning_effort")}
    keys = _get(api, f"/api/v2/users/{seg}/ai-provider-keys", until, store_url, f"{username}'s provider keys")
    own, byok = set(), False
    for row in keys if isinstance(keys, list) else []:
        if not isinstance(row, dict):
            continue
        byok = byok or bool(row.get("byok_enabled"))
        provider = row.get("provider") if isinstance(row.get("provider"), dict) else {}
        if row.get("has_user_api_key"):
            own.add(str(provider.get("name")))
    return UserView(username, frozenset(names), personal, frozenset(own), byok)


def read_spend(api: CoderApi, index: Index, store_url: str, start: datetime, end: datetime,
               deadline: float) -> Iterator[dict[str, Any]]:
    """Rows of every organization's spend export between `start` and `end` (UTC)."""
    until = time.monotonic() + deadline
    for org, org_id in sorted(index.orgs.items()):
        lo = start
        while lo < end:
            hi = min(lo + SPEND_WINDOW, end)
            params = {"period_start": _stamp(lo), "period_end": _stamp(hi)}
            path = f"/api/v2/organizations/{org_id}/ai/spend/export"
            try:
                text = api.request("GET", path, until, params=params, text=True).data or ""
            except ApiFailure as failure:
                why = failure.summary()
                if failure.status == 404:
                    why += " (the spend export needs a Coder with the AI Gateway entitlement, and a token that may "\
                           "read the organization's group members)"
                raise StoreError(f"cannot read the spend of organization {org} from {store_url}: {why}") from None
            yield from _rows(text, org, store_url)
            lo = hi


def _rows(text: str, org: str, store_url: str) -> Iterator[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in SPEND_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise StoreError(f"the spend export of organization {org} from {store_url} lacks the column(s) "
                         f"{', '.join(missing)}")
    for number, row in enumerate(reader, start=2):
        try:
            tokens = {name: int(row[f"{name}_tokens"] or 0) for name in TOKEN_KINDS}
            cost = int(row["cost_micros"] or 0)
        except (TypeError, ValueError):
            raise StoreError(f"the spend export of organization {org} from {store_url} has a value that is not a "
                             f"whole number on line {number}") from None
        if any(v < 0 for v in tokens.values()) or cost < 0:
            raise StoreError(f"the spend export of organization {org} has a negative count on line {number}")
        yield {"organization": row.get("organization_name") or org, "user": row.get("username") or "",
               "model": row.get("model") or "", "provider_type": row.get("provider") or "",
               "provider": row.get("provider_name") or "", "tokens": tokens, "cost_micros": cost}


def _get(api: CoderApi, path: str, until: float, store_url: str, what: str) -> Any:
    try:
        return api.request("GET", path, until).data
    except ApiFailure as failure:
        hint = " (not found or not permitted)" if failure.status == 404 else ""
        raise StoreError(f"cannot read {what} from {store_url}: {failure.summary()}{hint}") from None


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
