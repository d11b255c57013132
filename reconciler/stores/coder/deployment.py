"""What a Coder deployment can do and what the token may do there, learnt at plan time with a fixed
number of requests (build info, experiments, entitlements, one `POST /api/v2/authcheck`), and
the changes it would refuse, each with its real cause and the fix.

Coder answers 404, not 403, where a permission is missing on a model, an organization's override
or the personal-override setting, so a 404 alone never says "too old": the version, the
experiments and the token's rights decide what to tell.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.changes import CREATE, DELETE, REPLACE, Change
from reconciler.state import MODEL, OVERRIDE, PRICE, PROVIDER, SETTINGS

EXPERIMENTS = "/api/v2/experiments"
ENTITLEMENTS = "/api/v2/entitlements"
AUTHCHECK = "/api/v2/authcheck"
ME = "/api/v2/users/me"

ADVISOR = "advisor"
ADVISOR_EXPERIMENT = "chat-advisor"
# the entitlement model prices are gated on (enterprise/coderd/aimodelprices.go: RequireFeatureMW),
# and the AI Governance add-on's seat feature that newer builds show beside it
PRICE_FEATURES = ("aibridge", "ai_governance_user_limit")
MINIMUM = (2, 37)  # organization-scoped models, overrides and prices
# provider settings variants and the Coder that first has them
SETTINGS_SINCE = {"claude_platform_aws": (2, 38)}


def version_tuple(version: str) -> tuple[int, int, int] | None:
    """`v2.37.2+abc123` -> (2, 37, 2); None for a development build or something else."""
    found = re.match(r"v?(\d+)\.(\d+)\.(\d+)", version.strip())
    return (int(found[1]), int(found[2]), int(found[3])) if found else None


def checks(organizations: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The authcheck body's checks: deployment-wide rights, and model rights per organization."""
    out: dict[str, dict[str, Any]] = {}
    for action in ("create", "update", "delete"):
        out[f"ai_provider:{action}"] = {"object": {"resource_type": "ai_provider"}, "action": action}
    out["ai_model_price:update"] = {"object": {"resource_type": "ai_model_price"}, "action": "update"}
    for action in ("read", "update"):
        out[f"deployment_config:{action}"] = {"object": {"resource_type": "deployment_config"}, "action": action}
    for name, org_id in organizations.items():
        for action in ("read", "create", "update", "delete", "share"):
            out[f"chat_model_config:{action}@{name}"] = {
                "object": {"resource_type": "chat_model_config", "organization_id": org_id}, "action": action}
    return out


@dataclass
class Deployment:
    """What was learnt; None where the deployment did not say (an older build, an error)."""

    version: str = "unknown"
    experiments: frozenset[str] | None = None
    features: dict[str, bool] | None = None  # entitled and enabled
    permissions: dict[str, bool] | None = None  # check name -> allowed
    who: Callable[[], str] = field(default=lambda: "this token", repr=False)  # the token's user, asked once

    def at_least(self, wanted: tuple[int, int]) -> bool | None:
        found = version_tuple(self.version)
        return None if found is None else found[:2] >= wanted

    def may(self, check: str) -> bool:
        """Unknown counts as allowed: the server still decides, and its answer is reported."""
        return self.permissions is None or self.permissions.get(check, True)

    def prices_entitled(self) -> bool:
        return self.features is None or any(self.features.get(name) for name in PRICE_FEATURES)

    def missing(self, kind: str, feature: str, collection: str, needs: str, answer: str = "404") -> str:
        """Why a collection answered 404 (or 403): a permission the token lacks, an add-on the
        deployment is not entitled to, or an older Coder."""
        if kind == PRICE and not self.prices_entitled():
            return (f"model prices need the AI Governance add-on, which this deployment is not entitled to "
                    f"({collection} answered {answer})")
        if answer.startswith("403"):
            return f"{collection} answered {answer}: the token of {self.who()} may not read {feature}"
        lacking = {
            SETTINGS: ("deployment_config:read", "Settings need a deployment admin's token"),
        }.get(kind)
        if lacking is not None and not self.may(lacking[0]):
            return (f"{collection} answered 404: the token of {self.who()} lacks {lacking[0].replace(':', ' ')} "
                    f"rights (Coder answers 404, not 403, without them); {lacking[1]}")
        if self.at_least(MINIMUM) is False:
            return (f"this Coder deployment (version {self.version}) has no {feature} ({collection} answered "
                    f"404): that needs {needs}")
        return (f"{collection} answered 404 on Coder {self.version}: not found or not permitted (Coder answers "
                f"404 where the token lacks a right); check the token's roles")


def refusals(changes: Sequence[Change], deployment: Deployment) -> dict[str, list[str]]:
    """Cause -> the ids of the changes this deployment and token would refuse for it."""
    out: dict[str, list[str]] = {}

    def refuse(cause: str, change: Change) -> None:
        out.setdefault(cause, []).append(change.id)

    for change in changes:
        for cause in _causes(change, deployment):
            refuse(cause, change)
    return out


def _causes(change: Change, d: Deployment) -> list[str]:
    action = {CREATE: "create", DELETE: "delete", REPLACE: "create"}.get(change.action, "update")
    causes: list[str] = []
    if change.kind == PROVIDER:
        actions = ("delete", "create") if change.action == REPLACE else (action,)
        for act in actions:
            if not d.may(f"ai_provider:{act}"):
                causes.append(f"AI providers need an owner's token (ai_provider {act}); the token of "
                              f"{d.who()} lacks it")
        variant = next(iter((change.after or {}).get("settings") or {}), None)
        since = SETTINGS_SINCE.get(variant or "")
        if since is not None and d.at_least(since) is False:
            causes.append(f"provider settings {variant} need Coder v{since[0]}.{since[1]} or later; this server "
                          f"is {d.version}")
    elif change.kind == MODEL:
        org = change.key[0]
        if not d.may(f"chat_model_config:{action}@{org}"):
            causes.append(f"models of organization {org} need chat_model_config {action} rights there (an "
                          f"organization admin's token); the token of {d.who()} lacks them")
        if _access_changes(change) and not d.may(f"chat_model_config:share@{org}"):
            causes.append(f"model access lists in organization {org} need chat_model_config share rights there "
                          f"(an organization admin's token); the token of {d.who()} lacks them")
    elif change.kind == OVERRIDE:
        org, context = change.key
        if not d.may(f"chat_model_config:update@{org}"):
            causes.append(f"the overrides of organization {org} need chat_model_config update rights there (an "
                          f"organization admin's token); the token of {d.who()} lacks them")
        if context == ADVISOR and d.experiments is not None and ADVISOR_EXPERIMENT not in d.experiments:
            causes.append(f"the advisor override context needs the {ADVISOR_EXPERIMENT} experiment on this "
                          f"deployment (CODER_EXPERIMENTS={ADVISOR_EXPERIMENT}); enable it or remove the advisor "
                          "context from the Overrides manifest")
    elif change.kind == PRICE:
        if not d.prices_entitled():
            causes.append("model prices need the AI Governance add-on, which this deployment is not "
                          "entitled to; remove the prices from the manifests or add the license")
        elif not d.may("ai_model_price:update"):
            causes.append(f"model prices need ai_model_price update rights (an owner's token); the token of "
                          f"{d.who()} lacks them")
    elif change.kind == SETTINGS and not d.may("deployment_config:update"):
        causes.append(f"Settings need deployment-admin rights (deployment_config update); the token of "
                      f"{d.who()} lacks them")
    return causes


def _access_changes(change: Change) -> bool:
    after = (change.after or {}).get("access")
    return after is not None and after != (change.before or {}).get("access")
