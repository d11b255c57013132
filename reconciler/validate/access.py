"""Plan-time check of model access lists: every group and user a Model's `spec.access` names must
exist in its organization, as the store knows it (Coder: the organization's groups and members).

An unknown name is an error (RC505) at its line, with the closest names as a did-you-mean. A
store that cannot tell (SQL stores) takes any name.
"""

from __future__ import annotations

import difflib

from reconciler.diagnostics import Diagnostic
from reconciler.manifest.model import Manifests
from reconciler.state import State

PARTS = {"groups": "group", "users": "user"}


def access_diagnostics(manifests: Manifests, actual: State) -> list[Diagnostic]:
    if actual.principals is None:
        return []
    out = []
    for model in manifests.models:
        if model.access is None:
            continue
        org = model.organization or actual.default_organization
        known = actual.principals.get(org)
        if known is None:
            continue
        spec_access = (model.meta.doc.data.get("spec") or {}).get("access") or {}
        for part, noun in PARTS.items():
            for position, name in enumerate(spec_access.get(part) or []):
                if name in known.get(part, []):
                    continue
                close = difflib.get_close_matches(name, known.get(part, []), n=3, cutoff=0.6)
                hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
                message = f"{noun} {name!r} does not exist in organization {org}{hint}"
                out.append(model.meta.doc.diagnostic("RC505", message, ("spec", "access", part, position)))
    return out
