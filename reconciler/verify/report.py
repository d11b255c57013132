"""What `verify` found, as plain data: a verdict per provider and per key, and diagnostics at lines."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from reconciler.diagnostics import ERROR, Diagnostic

FORMAT_VERSION = "1"

OK = "ok"
AUTH_FAILED = "auth_failed"
NOT_FOUND = "not_found"
UNREACHABLE = "unreachable"
PROTOCOL_ERROR = "protocol_error"
RATE_LIMITED = "rate_limited"
SKIPPED = "skipped"
VERDICTS = (OK, AUTH_FAILED, NOT_FOUND, UNREACHABLE, PROTOCOL_ERROR, RATE_LIMITED, SKIPPED)
# the diagnostic code of each verdict that is not ok
VERDICT_CODES = {AUTH_FAILED: "RC601", NOT_FOUND: "RC602", UNREACHABLE: "RC603", PROTOCOL_ERROR: "RC604",
                 RATE_LIMITED: "RC605", SKIPPED: "RC606"}


@dataclass(frozen=True)
class KeyResult:
    """One key of a provider's pool (`label` "1", "2", …; "coder" for the key Coder holds)."""

    label: str
    ref: str | None  # "env:NAME" / "file:PATH": a reference, never a value
    verdict: str
    message: str
    status: int = 0  # the HTTP status that decided it; 0 for none
    models: int | None = None  # how many models the key lists

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.label, "ref": self.ref, "verdict": self.verdict, "message": self.message,
                "status": self.status or None, "models": self.models}


@dataclass(frozen=True)
class ProviderResult:
    name: str
    type: str
    verdict: str
    message: str
    keys: tuple[KeyResult, ...]
    listing: Any  # the upstream's models (list[Upstream]) while checking; None in the report
    diagnostics: list[Diagnostic]

    def without_listing(self) -> ProviderResult:
        return replace(self, listing=None, diagnostics=[])

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "verdict": self.verdict, "message": self.message,
                "keys": [k.to_dict() for k in self.keys]}


@dataclass(frozen=True)
class VerifyReport:
    providers: list[ProviderResult]
    diagnostics: list[Diagnostic]
    through: str | None  # the Coder URL checked through, None for the upstreams directly
    live: bool
    models_checked: int
    completions: int  # billed requests sent (--live)
    seconds: float

    @property
    def ok(self) -> bool:
        return not any(d.severity == ERROR for d in self.diagnostics)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(VERDICTS, 0)
        for provider in self.providers:
            out[provider.verdict] += 1
        return out

    def key_counts(self) -> dict[str, int]:
        out = dict.fromkeys(VERDICTS, 0)
        for provider in self.providers:
            for key in provider.keys:
                out[key.verdict] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        errors = sum(d.severity == ERROR for d in self.diagnostics)
        return {
            "format_version": FORMAT_VERSION,
            "ok": self.ok,
            "through": self.through,
            "live": self.live,
            "providers": [p.to_dict() for p in self.providers],
            "summary": {"providers": self.counts(), "keys": self.key_counts(),
                        "models_checked": self.models_checked, "completions": self.completions,
                        "errors": errors, "warnings": len(self.diagnostics) - errors},
            "diagnostics": [d.to_dict() for d in self.diagnostics],
        }
