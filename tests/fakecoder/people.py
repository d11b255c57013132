"""People and money: users, groups, personal overrides, users' own keys (BYOK) and the spend export.

/api/v2/users/{user}
/api/v2/organizations/{org}/groups                                  (with members; Everyone's id is the org's)
/api/v2/organizations/{org}/members/{user}/chats/model-overrides    (a user's personal overrides)
/api/v2/users/{user}/ai-provider-keys                               (which providers the user has a key for)
/api/v2/organizations/{org}/ai/spend/export                         (CSV, at most 31 days per request)
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .organizations import organization_or_404
from .state import State
from .wire import ApiError, Reply, Request, new_id, not_found, parse_uuid

PERSONAL_CONTEXTS = ("root", "general", "explore")
DEFAULT_MODES = {"root": "chat_default", "general": "deployment_default", "explore": "deployment_default"}
SPEND_COLUMNS = (
    "user_id", "username", "group_id", "group_name", "organization_id", "organization_name", "model",
    "provider", "provider_name", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
    "cost_micros", "period_start", "period_end",
)
MAX_SPEND_DAYS = 31
RETENTION_DAYS = 60  # Coder's AI Gateway data retention default


@dataclass
class User:
    id: str
    username: str


@dataclass
class Group:
    id: str
    organization_id: str
    name: str
    members: set[str] = field(default_factory=set)  # user ids


@dataclass
class SpendRow:
    """Usage of one user on one model of one provider, on one day (the fake sums the days asked)."""

    user_id: str
    organization_id: str
    group_id: str
    model: str
    provider_type: str
    provider_name: str
    day: datetime
    tokens: dict[str, int]  # input, output, cache_read, cache_write
    cost_micros: int


@dataclass
class People:
    users: dict[str, User] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    # (org id, user id, context) -> {"mode", "model_config_id", "reasoning_effort"}
    personal: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    user_keys: set[tuple[str, str]] = field(default_factory=set)  # (user id, provider id)
    byok_enabled: bool = False
    spend: list[SpendRow] = field(default_factory=list)


def people_of(state: State) -> People:
    with state.lock:
        if state.people is None:
            state.people = People()
        return state.people


def add_user(state: State, username: str) -> User:
    user = User(new_id(), username)
    people_of(state).users[user.id] = user
    return user


def add_group(state: State, org_id: str, name: str, members: list[str]) -> Group:
    group = Group(new_id(), org_id, name, set(members))
    people_of(state).groups[group.id] = group
    return group


def _user_or_404(state: State, ref: str) -> User:
    people = people_of(state)
    user_id = parse_uuid(ref)
    found = people.users.get(user_id) if user_id else next(
        (u for u in people.users.values() if u.username == ref), None)
    if found is None:
        raise not_found()
    return found


def _user_json(user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "name": user.username.title(), "status": "active"}


def get_user(state: State, req: Request) -> Reply:
    return Reply(200, _user_json(_user_or_404(state, req.params["user"])))


def list_groups(state: State, req: Request) -> Reply:
    org = organization_or_404(state, req.params["org"])
    people = people_of(state)
    everyone = {
        "id": org.id, "name": "Everyone", "display_name": "", "organization_id": org.id,
        "members": [_user_json(u) for u in people.users.values()], "total_member_count": len(people.users),
        "source": "user",
    }
    groups = [everyone]
    for group in people.groups.values():
        if group.organization_id != org.id:
            continue
        members = [_user_json(people.users[m]) for m in sorted(group.members) if m in people.users]
        groups.append({
            "id": group.id, "name": group.name, "display_name": "", "organization_id": org.id,
            "members": members, "total_member_count": len(members), "source": "user",
        })
    return Reply(200, groups)


def get_personal_overrides(state: State, req: Request) -> Reply:
    org = organization_or_404(state, req.params["org"])
    user = _user_or_404(state, req.params["user"])
    people = people_of(state)
    body: dict[str, Any] = {"enabled": state.allow_users}
    for context in PERSONAL_CONTEXTS:
        saved = people.personal.get((org.id, user.id, context))
        entry = {"context": context, "mode": DEFAULT_MODES[context], "model_config_id": "", "is_set": False}
        if saved is not None:
            entry.update(saved, is_set=True)
        body[context] = entry
    defaults: dict[str, Any] = {}
    for context in ("general", "explore"):
        override = state.overrides.get((org.id, context))
        if override is not None:
            defaults[context] = {"context": context, "model_config_id": override.model_config_id}
    body["deployment_defaults"] = defaults
    return Reply(200, body)


def list_user_keys(state: State, req: Request) -> Reply:
    user = _user_or_404(state, req.params["user"])
    people = people_of(state)
    rows = []
    for provider in state.providers.values():
        if provider.deleted:
            continue
        rows.append({
            "provider": {"id": provider.id, "type": provider.type, "name": provider.name,
                         "display_name": provider.display_name, "icon": provider.icon,
                         "enabled": provider.enabled, "deleted": False},
            "has_user_api_key": (user.id, provider.id) in people.user_keys,
            "has_provider_api_key": bool(provider.api_keys),
            "byok_enabled": people.byok_enabled,
        })
    return Reply(200, rows)


def _period(req: Request) -> tuple[datetime, datetime]:
    start, end = req.query.get("period_start"), req.query.get("period_end")
    today = datetime.now(UTC)
    if start is None and end is None:
        return today.replace(day=1, hour=0, minute=0, second=0, microsecond=0), today
    if start is None or end is None:
        raise ApiError(400, "Invalid query parameters.", "period_start and period_end must be provided together.")
    try:
        lo = datetime.fromisoformat(start.replace("Z", "+00:00"))
        hi = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "Invalid query parameters.", "period_start and period_end must be RFC3339.") from None
    if hi <= lo or hi - lo > timedelta(days=MAX_SPEND_DAYS):
        raise ApiError(400, "Invalid period.", f"The period must span at most {MAX_SPEND_DAYS} days.")
    if lo < today - timedelta(days=RETENTION_DAYS):
        raise ApiError(400, "Invalid period.", "period_start is outside the AI Gateway data retention window.")
    return lo, hi


def export_spend(state: State, req: Request) -> Reply:
    org = organization_or_404(state, req.params["org"])
    lo, hi = _period(req)
    people = people_of(state)
    sums: dict[tuple[str, str, str, str, str], list[int]] = {}
    for row in people.spend:
        if row.organization_id != org.id or not lo <= row.day < hi:
            continue
        key = (row.user_id, row.group_id, row.model, row.provider_type, row.provider_name)
        acc = sums.setdefault(key, [0, 0, 0, 0, 0])
        for i, name in enumerate(("input", "output", "cache_read", "cache_write")):
            acc[i] += row.tokens.get(name, 0)
        acc[4] += row.cost_micros
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SPEND_COLUMNS)
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    for (user_id, group_id, model, ptype, pname), acc in sorted(sums.items()):
        user = people.users.get(user_id)
        group = people.groups.get(group_id)
        writer.writerow([
            user_id, user.username if user else "", group_id, group.name if group else "Everyone",
            org.id, org.name, model, ptype, pname, *acc, lo.strftime(stamp), hi.strftime(stamp),
        ])
    return Reply(200, out.getvalue(), {"Content-Type": "text/csv; charset=utf-8"})


ROUTES = (
    ("/api/v2/users/{user}", {"GET": get_user}),
    ("/api/v2/organizations/{org}/groups", {"GET": list_groups}),
    ("/api/v2/organizations/{org}/members/{user}/chats/model-overrides", {"GET": get_personal_overrides}),
    ("/api/v2/users/{user}/ai-provider-keys", {"GET": list_user_keys}),
    ("/api/v2/organizations/{org}/ai/spend/export", {"GET": export_spend}),
)
