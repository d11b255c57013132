"""compare(desired, actual) -> Plan. Pure: no I/O, no printing.

Objects are compared record by record with `==` (records are normalised on
both sides); only the few that differ get a field-by-field diff.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from reconciler.changes import (
    CREATE,
    DELETE,
    REPLACE,
    SENSITIVE_CHANGED,
    UPDATE,
    Change,
    FieldDiff,
)
from reconciler.diagnostics import Diagnostic, format_path
from reconciler.secrets import Secret
from reconciler.selection import Selection
from reconciler.state import (
    KIND_ORDER,
    MODEL,
    MOVED_FROM,
    NO_META,
    OVERRIDE,
    PRICE,
    PROTECT,
    PROVIDER,
    SETTINGS,
    Key,
    Record,
    State,
    key_text,
    secret_slots,
)
from reconciler.stores.base import Capabilities

FORMAT_VERSION = "1"
DEFAULT_MAX_DELETES = 10
IMMUTABLE = {PROVIDER: ("type",)}  # changing these replaces the object
ACTIONS = (CREATE, UPDATE, REPLACE, DELETE)


@dataclass(frozen=True)
class PlanOptions:
    prune: bool = False
    max_deletes: int = DEFAULT_MAX_DELETES
    select: tuple[str, ...] = ()  # label selectors as typed (see selector.py), all must hold
    rotate_secrets: bool = False
    target: tuple[str, ...] = ()  # Kind/name of manifests planned alone, with what they depend on


@dataclass
class Plan:
    changes: list[Change]
    state_fingerprint: str  # of the store state planned against; "" until `fingerprint()` computes it
    options: PlanOptions = field(default_factory=PlanOptions)
    unmanaged: list[str] = field(default_factory=list)  # ids left alone (no --prune)
    not_selected: list[str] = field(default_factory=list)  # ids outside --select: another owner's
    notes: list[str] = field(default_factory=list)  # warnings to show with the plan
    refusal: str = ""  # why apply must not run this plan (e.g. too many deletes)
    unverifiable: list[str] = field(default_factory=list)  # secret references not checked
    # validation warnings of the manifests planned (kept in a saved plan for `show`; not in to_dict)
    warnings: list[Diagnostic] = field(default_factory=list)
    # change id -> the manifest that writes it: {"manifest": "Model/claude-sonnet", "file", "line"[, "detail"]}
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    # change id -> the apply that last wrote the store's side ({} when none did; see lastwrite.py)
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)

    actual: State | None = field(default=None, repr=False, compare=False)

    def fingerprint(self) -> str:
        """The fingerprint of the state planned against, computed when a saved plan needs it."""
        if not self.state_fingerprint and self.actual is not None:
            self.state_fingerprint = self.actual.fingerprint()
        return self.state_fingerprint

    @property
    def empty(self) -> bool:
        return not self.changes

    def summary(self) -> dict[str, int]:
        counts = {action: 0 for action in ACTIONS}
        for change in self.changes:
            counts[change.action] += 1
        counts["unmanaged"] = len(self.unmanaged)
        return counts

    def to_history(self) -> dict[str, Any]:
        """What an apply history keeps of the plan: every change, with its diff except for a create's
        (the new record is in the store; listing its fields would cost megabytes per large apply)."""
        return {
            "format_version": FORMAT_VERSION,
            "changes": [{"action": c.action, "kind": c.kind, "key": key_text(c.key), "diff": []}
                        if c.action == CREATE else c.to_dict() for c in self.changes],
            "summary": self.summary(),
            "notes": list(self.notes),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "changes": [self._change_dict(c) for c in self.changes],
            "summary": self.summary(),
            "unmanaged": sorted(self.unmanaged),
            **({"not_selected": sorted(self.not_selected)} if self.options.select else {}),
            "notes": list(self.notes),
            "refusal": self.refusal,
            "unverifiable_secrets": sorted(set(self.unverifiable)),
        }


    def _change_dict(self, change: Change) -> dict[str, Any]:
        out = change.to_dict()
        source = self.sources.get(change.id)
        if source is not None:
            out["source"] = source
        if change.id in self.provenance:
            out["last_written"] = self.provenance[change.id] or None
        return out

    def address(self, change: Change) -> str:
        """How the author wrote the object: `Model claude-sonnet (models/anthropic.yaml:14)`; a delete
        (named by no manifest) by its store key."""
        source = self.sources.get(change.id)
        if source is None:
            return f"{change.kind} {key_text(change.key)}"
        kind, _, name = source["manifest"].partition("/")
        detail = f" {source['detail']}" if source.get("detail") else ""
        return f"{kind} {name}{detail} ({source['file']}:{source['line']})"


def compare(desired: State, actual: State, capabilities: Capabilities, options: PlanOptions) -> Plan:
    plan = Plan(changes=[], state_fingerprint="", options=options, actual=actual, notes=list(actual.notes))
    selection = Selection.of(desired, actual, capabilities, options, plan)
    desired = selection.desired
    moves = _moves(desired, actual, options, plan)
    present_state = _moved_view(actual, moves) if moves else actual  # the store once the moves are done
    _settle_default_flags(desired, present_state, pruning=options.prune and not options.select)
    _settle_access(desired, present_state)
    deletes: list[Change] = []
    keeps_metadata, write_only = capabilities.keeps_metadata, capabilities.write_only_secrets
    for kind in KIND_ORDER:
        wanted, present = desired.of(kind), present_state.of(kind)
        for key in sorted(wanted):
            meta = desired.meta.get((kind, key), NO_META) if keeps_metadata else None
            change = _compare_one(kind, key, wanted[key], present.get(key), present_state, options, plan,
                                  write_only, meta)
            if change is None and meta is not None:
                change = _metadata_change(kind, key, meta, present_state)
            if kind == MODEL and key in moves:
                change = _moved(key, moves[key], actual.of(MODEL)[moves[key]], wanted[key], change, meta)
            if change is not None:
                _refuse_protected_replace(change, desired, plan)
                plan.changes.append(change)
        for key in sorted(present.keys() - wanted.keys()):
            if selection.owns(kind, key):
                deletes.extend(_unlisted(kind, key, present[key], present_state, capabilities, options, plan))
    _provider_prices(desired, present_state, plan)
    _promote_before_demote(plan.changes)
    plan.changes += sorted(deletes, key=lambda c: -KIND_ORDER.index(c.kind))
    _link_dependencies(plan.changes)
    removing = sum(c.action in (DELETE, REPLACE) for c in plan.changes)
    if removing > options.max_deletes:
        plan.refusal = (
            f"the plan deletes or replaces {removing} objects, more than --max-deletes "
            f"{options.max_deletes}; raise the limit if this is intended"
        )
    return plan


def _moves(desired: State, actual: State, options: PlanOptions, plan: Plan) -> dict[Key, Key]:
    """Models that keep their identity under a new key: new key -> the stored key it moves from.

    A Model whose manifest says `reconciler/moved-from: <provider>/<model>` moves from that model of
    its organization, if the store has it and no manifest still names it. Without the annotation, a
    model whose provider changed moves when the match is unambiguous: the only stored model with
    its organization and model id that no manifest names, and the only new one with them (not with
    --select, where the unnamed models may be another team's). `reconciler/moved-from: none` asks
    for a new model instead. Anything else is said in a note and not guessed.
    """
    wanted, present = desired.of(MODEL), actual.of(MODEL)
    new = sorted(k for k in wanted if k not in present)
    if not new:
        return {}
    unclaimed = {k for k in present if k not in wanted}
    moves: dict[Key, Key] = {}
    guessing: dict[tuple[str, str], list[Key]] = {}
    for key in new:
        hint = desired.meta.get((MODEL, key), NO_META)["annotations"].get(MOVED_FROM)
        if hint is None:
            guessing.setdefault((key[0], key[2]), []).append(key)
            continue
        if str(hint).strip().lower() in ("", "none"):
            continue
        provider, _, model = str(hint).partition("/")
        old = (key[0], provider, model)
        where = f"{MODEL}/{key_text(key)}: {MOVED_FROM}: {hint}"
        if old in unclaimed and old not in moves.values():
            moves[key] = old
        elif old in wanted:
            plan.notes.append(f"{where} names a model the manifests still declare; it is created as a new model")
        else:
            plan.notes.append(f"{where} names no model of organization {key[0]} in the store; "
                              "it is created as a new model")
    if options.select:
        return moves
    taken = set(moves.values())
    stored: dict[tuple[str, str], list[Key]] = {}
    for key in sorted(unclaimed - taken):
        stored.setdefault((key[0], key[2]), []).append(key)
    for (org, model), news in guessing.items():
        olds = stored.get((org, model), [])
        if len(news) == 1 and len(olds) == 1:
            moves[news[0]] = olds[0]
        elif olds:
            plan.notes.append(
                f"model {model!r} of organization {org} could have moved from "
                f"{', '.join(key_text(k) for k in olds)} to {', '.join(key_text(k) for k in news)}; "
                f"not guessed: new models are created. Annotate the Model with "
                f"{MOVED_FROM}: <provider>/<model> to keep a stored model's identity")
    return moves


def _moved_view(actual: State, moves: dict[Key, Key]) -> State:
    """The store as it is once the moves are done (a copy: `actual` stays as read)."""
    view = State(objects={kind: dict(records) for kind, records in actual.objects.items()},
                 default_organization=actual.default_organization, default_prices=actual.default_prices,
                 meta=dict(actual.meta), serial=actual.serial)
    for new, old in moves.items():
        view.move_model(old, new)
    return view


def _moved(key: Key, old: Key, have: Record, want: Record, change: Change | None,
           meta: dict[str, Any] | None) -> Change:
    """A model moved in place: an update under its new key that names the old one."""
    moved = tuple(FieldDiff(name, before, after) for name, before, after in
                  (("provider", old[1], key[1]), ("model", old[2], key[2])) if before != after)
    return Change(UPDATE, MODEL, key, have, want, moved + (change.diff if change else ()),
                  reason=f"moved from {key_text(old)}", meta=meta, moved_from=old)


def _compare_one(
    kind: str, key: Key, want: Record, have: Record | None, actual: State, options: PlanOptions, plan: Plan,
    write_only: frozenset[str] = frozenset(), meta: dict[str, Any] | None = None,
) -> Change | None:
    if have is None and kind == PRICE and actual.default_prices.get(key) == want:
        return None  # no custom price, and the store's default price book already says so
    # (group, secret) of each slot; only a provider's record has any
    wanted = list(secret_slots(want)) if kind == PROVIDER else []
    present = list(secret_slots(have)) if kind == PROVIDER and have is not None else []
    secrets_out = _secret_groups(wanted, present, have is None, options.rotate_secrets, plan, write_only)
    if have is None:
        return Change(CREATE, kind, key, None, want, (), needs=_refs(wanted), meta=meta,
                      send_secrets=tuple(sorted(secrets_out)) if secrets_out else ())
    # secrets the store never shows are left out of the comparison, which could otherwise never
    # settle; they are sent on create, replace or --rotate-secrets
    compared_want, compared_have = _without_secrets(want, write_only), _without_secrets(have, write_only)
    if compared_want == compared_have and not secrets_out:
        return None
    for name in IMMUTABLE.get(kind, ()):
        if want.get(name) != have.get(name):
            reason = f"{name} cannot change in place ({have.get(name)} -> {want.get(name)})"
            return Change(REPLACE, kind, key, have, want, _diff(have, want), reason=reason, needs=_refs(wanted),
                          meta=meta, send_secrets=tuple(sorted({g for g, _ in wanted})))
    diff = _diff(compared_have, compared_want)
    if "settings" not in secrets_out and _rewritten_whole(want) and any(d.path.startswith("settings") for d in diff):
        secrets_out = secrets_out | {"settings"}
    if not diff and secrets_out:
        diff = (FieldDiff("api_keys" if "api_keys" in secrets_out else "settings", sensitive=True,
                          note="(resent: --rotate-secrets)"),)
    return Change(UPDATE, kind, key, have, want, diff, send_secrets=tuple(sorted(secrets_out)),
                  needs=_refs(wanted, secrets_out), meta=meta)


def _refs(slots: list[tuple[str, Secret]], groups: set[str] | None = None) -> tuple[str, ...]:
    """The references of the slots (of `groups` only, when given) that a write needs."""
    if not slots:
        return ()
    return tuple(s.ref for g, s in slots if s.ref and (groups is None or g in groups))


def _metadata_change(kind: str, key: Key, want: dict[str, Any], actual: State) -> Change | None:
    """An object whose record is unchanged but whose labels or annotations changed: an update."""
    have = actual.meta.get((kind, key), NO_META)
    if want == have or key not in actual.of(kind):
        return None  # unchanged, or nothing stored to hold it (a price the default book gives)
    record = actual.of(kind)[key]
    diff: list[FieldDiff] = []
    _diff_into(diff, ("metadata",), have, want, creating=False)
    return Change(UPDATE, kind, key, record, record, tuple(diff), meta=want)


def _refuse_protected_replace(change: Change, desired: State, plan: Plan) -> None:
    if change.action != REPLACE:
        return
    if desired.protected(change.kind, change.key):
        plan.refusal = plan.refusal or (
            f"{change.id} is protected ({PROTECT}: \"true\") but the plan replaces it "
            f"({change.reason}); remove the annotation to allow it"
        )


def _without_secrets(record: Record, groups: frozenset[str]) -> Record:
    """A copy of the record without the secret slots of `groups` (see state.secret_slots)."""
    if not groups:
        return record
    out = dict(record)
    if "api_keys" in groups and "api_keys" in out:
        out["api_keys"] = []
    if "settings" in groups and out.get("settings"):
        out["settings"] = {variant: {k: v for k, v in (body or {}).items() if not isinstance(v, Secret)}
                           for variant, body in out["settings"].items()}
    return out


def _rewritten_whole(record: Record) -> bool:
    """Upstream headers with a secret: a store replaces the whole header map on a write, so any
    change of the settings must send the secret headers again (bedrock's keys merge instead)."""
    headers = (record.get("settings") or {}).get("upstream_headers") or {}
    return any(isinstance(v, Secret) for v in headers.values())


def _secret_groups(
    wanted: list[tuple[str, Secret]], present: list[tuple[str, Secret]], creating: bool, rotate: bool, plan: Plan,
    write_only: frozenset[str] = frozenset(),
) -> set[str]:
    """Secret groups to resend, from the (group, secret) slots wanted and present: all of them on a
    create or with --rotate-secrets, else the changed ones (a write-only group never shows a change)."""
    if not wanted and not present:
        return set()
    by_group: dict[str, list[Secret]] = {}
    for group, secret in wanted:
        by_group.setdefault(group, []).append(secret)
        if not creating and secret.view is None and secret.ref:
            plan.unverifiable.append(secret.ref)
    if creating or rotate:
        return set(by_group)
    stored: dict[str, list[Secret]] = {}
    for group, secret in present:
        stored.setdefault(group, []).append(secret)
    return {g for g in by_group.keys() | stored.keys()
            if g not in write_only and by_group.get(g, []) != stored.get(g, [])}


def creation_diff(after: Record) -> tuple[FieldDiff, ...]:
    """A new object's fields, as the diff of a create shows them."""
    return _diff(None, after)


def _diff(before: Record | None, after: Record) -> tuple[FieldDiff, ...]:
    out: list[FieldDiff] = []
    _diff_into(out, (), before if before is not None else {}, after, creating=before is None)
    return tuple(out)


def _diff_into(out: list[FieldDiff], path: tuple[str | int, ...], before: Any, after: Any, creating: bool) -> None:
    if isinstance(before, dict) or isinstance(after, dict):
        before = before if isinstance(before, dict) else {} if before is None else before
        after = after if isinstance(after, dict) else {} if after is None else after
    if isinstance(before, dict) and isinstance(after, dict):
        for name in sorted(before.keys() | after.keys(), key=str):
            _diff_into(out, (*path, name), before.get(name), after.get(name), creating)
        return
    if _has_secret(before) or _has_secret(after):
        _secret_diff(out, path, before, after, creating)
        return
    if creating and after in (None, "", []):
        return  # an unset field of a new object says nothing
    if before != after:
        elements = _element_diff(path, before, after) if not creating else None
        out.extend(elements if elements is not None else (FieldDiff(format_path(path), before, after),))


def _element_diff(path: tuple[str | int, ...], before: Any, after: Any) -> list[FieldDiff] | None:
    """Two lists of plain values that differ by more than their order: one diff per element removed
    (`- path[]: "github.com"`) and added (`+ path[]: "pkg.go.dev"`); None for anything else (lists of
    mappings, or a new order of the same elements, are shown whole)."""
    if not (isinstance(before, list) and isinstance(after, list) and before and after):
        return None
    if not all(isinstance(v, str | int | float | bool) for v in (*before, *after)):
        return None
    left, right = Counter(map(_hashable, before)), Counter(map(_hashable, after))
    if left == right:
        return None
    where = format_path(path) + "[]"
    removed = [v for v in before if _unpaired(right, v)]
    added = [v for v in after if _unpaired(left, v)]
    return [*(FieldDiff(where, v, None) for v in removed), *(FieldDiff(where, None, v) for v in added)]


def _hashable(value: Any) -> tuple[str, Any]:
    return (type(value).__name__, value)  # True and 1 are different elements


def _unpaired(theirs: Counter[tuple[str, Any]], value: Any) -> bool:
    """Whether this occurrence of `value` has no partner left on the other side (consuming one if so)."""
    key = _hashable(value)
    if theirs[key] > 0:
        theirs[key] -= 1
        return False
    return True


def _has_secret(value: Any) -> bool:
    return isinstance(value, Secret) or (isinstance(value, list) and any(isinstance(v, Secret) for v in value))


def _secret_diff(out: list[FieldDiff], path: tuple[str | int, ...], before: Any, after: Any, creating: bool) -> None:
    b = before if isinstance(before, list) else [] if before is None else [before]
    a = after if isinstance(after, list) else [] if after is None else [after]
    where = format_path(path)
    if creating:
        if a:
            refs = ", ".join(s.ref or "?" for s in a)
            out.append(FieldDiff(where, sensitive=True, note=f"(sensitive: {refs})"))
        return
    if len(a) != len(b):
        out.append(FieldDiff(where, sensitive=True, note=f"{SENSITIVE_CHANGED} ({len(b)} -> {len(a)})"))
        return
    for i, (x, y) in enumerate(zip(b, a, strict=True)):
        if x != y:
            sub = f"{where}[{i}]" if isinstance(after, list) else where
            out.append(FieldDiff(sub, sensitive=True, note=SENSITIVE_CHANGED))


def _unlisted(
    kind: str, key: Key, record: Record, actual: State, caps: Capabilities, options: PlanOptions, plan: Plan
) -> list[Change]:
    ident = f"{kind}/{key_text(key)}"
    if kind == SETTINGS:
        return []  # a singleton is never deleted
    if not options.prune:
        plan.unmanaged.append(ident)
        return []
    if actual.protected(kind, key):
        plan.notes.append(f"{ident} is protected ({PROTECT}: \"true\") and is not deleted")
        return []
    if kind not in caps.deletable:
        plan.notes.append(f"{ident} cannot be deleted: the store has no way to remove a {kind}")
        plan.unmanaged.append(ident)
        return []
    return [Change(DELETE, kind, key, record, None, _deleted_diff(record))]


def _deleted_diff(record: Record) -> tuple[FieldDiff, ...]:
    return tuple(FieldDiff(name, None if _has_secret(v) else v, None, sensitive=_has_secret(v),
                           note="(sensitive)" if _has_secret(v) else "")
                 for name, v in sorted(record.items()))


def _settle_default_flags(desired: State, actual: State, pruning: bool) -> None:
    """In an organization whose manifests name no default model, the default flag is not managed."""
    models = desired.of(MODEL)
    managed = {key[0] for key, record in models.items() if record["default"]}
    for key, record in models.items():
        if key[0] not in managed:
            record["default"] = bool(actual.of(MODEL).get(key, {}).get("default", False))
    for key, record in actual.of(MODEL).items():
        if key[0] in managed and record.get("default") and key not in models and not pruning:
            # the gateway demotes the old default when another becomes default: say so
            demoted = dict(record, default=False)
            models[key] = demoted


def _provider_prices(desired: State, actual: State, plan: Plan) -> None:
    """A price one provider is billed at instead of its type's: no manifest sets it, so it is an
    unmanaged object (the drift alarm sees it), and where it differs from the price the type would
    have, the plan says what is really billed."""
    from reconciler.prices import describe_price

    for (ptype, model, provider), record in sorted(actual.provider_prices.items()):
        plan.unmanaged.append(f"{PRICE}/{ptype}/{model} (provider {provider})")
        typed = desired.of(PRICE).get((ptype, model)) or actual.of(PRICE).get((ptype, model)) \
            or actual.default_prices.get((ptype, model))
        if record != typed:
            plan.notes.append(
                f"provider {provider} is billed its own price for {model} ({describe_price(record)}), not the "
                f"{ptype} price ({describe_price(typed)}): the store's per-provider price wins; remove it "
                "there to bill the type's price")


def _settle_access(desired: State, actual: State) -> None:
    """A model whose manifest gives no `access` leaves the stored access list alone."""
    present = actual.of(MODEL)
    for key, record in desired.of(MODEL).items():
        if "access" not in record and present.get(key, {}).get("access") is not None:
            record["access"] = present[key]["access"]


def _promote_before_demote(changes: list[Change]) -> None:
    """A new default is set before the old one is cleared, so an organization always has one."""
    def rank(change: Change) -> int:
        if change.kind != MODEL or change.after is None:
            return 0
        return 1 if change.after.get("default") is False and (change.before or {}).get("default") else 0

    changes.sort(key=lambda c: (KIND_ORDER.index(c.kind), rank(c)))


def _link_dependencies(changes: list[Change]) -> None:
    """Each change names the changes it needs first (providers before models, models before overrides,
    a new default before the old one is cleared; deletes the other way round). Linear in changes."""
    ids = {c.id for c in changes}
    promoting: dict[str, list[str]] = {}  # organization -> models becoming its default
    override_deletes: dict[str, list[str]] = {}  # model id -> deletes of overrides naming it
    model_deletes: dict[str, list[str]] = {}  # provider name -> deletes of its models
    for c in changes:
        if c.kind == MODEL and (c.after or {}).get("default"):
            promoting.setdefault(c.key[0], []).append(c.id)
        elif c.kind == OVERRIDE and c.action == DELETE:
            override_deletes.setdefault(str((c.before or {}).get("model")), []).append(c.id)
        if c.kind == MODEL and c.action == DELETE:
            model_deletes.setdefault(c.key[1], []).append(c.id)
        elif c.kind == MODEL and c.moved_from is not None:  # off the old provider before it goes
            model_deletes.setdefault(c.moved_from[1], []).append(c.id)
    for i, change in enumerate(changes):
        needs: list[str] = []
        record = change.after or {}
        if change.kind == MODEL and change.action != DELETE:
            needs.append(f"{PROVIDER}/{change.key[1]}")
            if record.get("default") is False and (change.before or {}).get("default"):
                needs += promoting.get(change.key[0], [])
        elif change.kind == OVERRIDE and change.action != DELETE:
            needs.append(f"{MODEL}/{change.key[0]}/{record.get('provider')}/{record.get('model')}")
        elif change.kind == MODEL:
            needs += override_deletes.get(change.key[2], [])
        elif change.kind == PROVIDER and change.action == DELETE:
            needs += model_deletes.get(change.key[0], [])
        if not needs:
            continue
        present = tuple(n for n in needs if n in ids and n != change.id)
        if present:
            changes[i] = change.depending_on(present)
