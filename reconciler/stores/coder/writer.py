"""Writing changes to Coder: one handler per kind and action, each reading back what it wrote.

Every failure becomes the result of its change (applied / failed with Coder's
message and validations); nothing is raised past the first write. The
`Index` holds the IDs that names resolve to, from the last read and the
writes since; writes on several threads update it under its lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.changes import APPLIED, CREATE, DELETE, FAILED, REPLACE, UPDATE, Change, ChangeResult
from reconciler.errors import SecretError, StoreError
from reconciler.secrets import Secret, redact_runs
from reconciler.state import MODEL, OVERRIDE, PRICE, PROVIDER, SETTINGS, Key, Record, secret_slots
from reconciler.stores.coder.access import Principals, access_record, acl_patch, acl_path, created_access
from reconciler.stores.coder.api import ApiFailure, CoderApi, Reply
from reconciler.stores.coder.mapping import (
    GLOBAL_PRICE_TYPES,
    PRICES,
    PROVIDER_SCALARS,
    PROVIDERS,
    TOGGLE,
    lost_fields,
    lost_keys,
    lost_message,
    model_body,
    model_changed_fields,
    model_create_fields,
    model_record,
    models_path,
    overrides_path,
    price_entry,
    price_record,
    provider_create_body,
    provider_patch_body,
    provider_record,
)
from reconciler.stores.coder.runner import Unit, units_for

PRICE_BATCH = 2000  # entries per upsert; Coder takes bodies up to 1 MiB


class Refused(Exception):
    """A change that cannot be (or was not) carried out, with the reason for its result."""

    def __init__(self, message: str, details: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.details = details


@dataclass
class Index:
    """What the store knows of the deployment's IDs, from the last read and the writes since."""

    orgs: dict[str, str] = field(default_factory=dict)  # name -> id
    providers: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (id, type)
    models: dict[Key, str] = field(default_factory=dict)  # (organization, provider, model) -> id
    defaults: dict[str, str] = field(default_factory=dict)  # organization -> its default model's id
    missing: dict[str, str] = field(default_factory=dict)  # kind -> why the deployment has no API for it
    principals: dict[str, Principals] = field(default_factory=dict)  # organization -> names -> IDs
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def org_id(self, name: str) -> str:
        if name not in self.orgs:
            raise Refused(f"organization {name!r} does not exist in this Coder deployment")
        return self.orgs[name]

    def provider_id(self, name: str) -> str:
        with self.lock:
            found = self.providers.get(name)
        if found is None:
            raise Refused(f"AI provider {name!r} does not exist in this Coder deployment")
        return found[0]

    def model_id(self, key: Key) -> str:
        with self.lock:
            found = self.models.get(key)
        if found is None:
            raise Refused(f"model {'/'.join(key)} does not exist in this Coder deployment")
        return found

    def provider_name(self, provider_id: str) -> str | None:
        with self.lock:
            return next((name for name, (pid, _) in self.providers.items() if pid == provider_id), None)

    def provider_ids_of_type(self, provider_type: str) -> list[str]:
        with self.lock:
            return sorted(pid for pid, ptype in self.providers.values() if ptype == provider_type)

    def learn_acl(self, org: str, acl: Any) -> None:
        """The names and IDs an access list answer shows (a principal may have left the organization)."""
        known = self.principals.setdefault(org, Principals())
        for part, names in (("groups", known.groups), ("users", known.users)):
            for item in acl.get(part) or [] if isinstance(acl, dict) else []:
                name = item.get("username" if part == "users" else "name") if isinstance(item, dict) else None
                if isinstance(name, str) and isinstance(item.get("id"), str):
                    names.setdefault(name, item["id"])

    def put_model(self, key: Key, data: Mapping[str, Any]) -> None:
        """A model as Coder answered for it, default flag included."""
        with self.lock:
            self.models[key] = data["id"]
            if data.get("is_default"):
                self.defaults[key[0]] = data["id"]
            elif self.defaults.get(key[0]) == data["id"]:
                del self.defaults[key[0]]


def write_units(changes: Sequence[Change]) -> list[Unit]:
    """The changes as units to run: prices written together (globally priced ones in one unit,
    per-provider ones in another, after the providers of their types)."""
    writes: dict[str, list[str]] = {}
    for change in changes:
        if change.kind == PROVIDER and change.after is not None:
            writes.setdefault(change.after["type"], []).append(change.id)

    def group(change: Change) -> str | None:
        if change.kind != PRICE:
            return None
        return "prices" if change.key[0] in GLOBAL_PRICE_TYPES else "prices-by-provider"

    def needs(change: Change) -> tuple[str, ...]:
        if change.kind == PRICE and change.key[0] not in GLOBAL_PRICE_TYPES:
            return (*change.depends_on, *writes.get(change.key[0], ()))
        return change.depends_on

    return units_for(changes, group, needs)


def check_secrets(changes: Sequence[Change], secrets: Mapping[str, str]) -> None:
    """Every secret a change sends must be given, before anything is written."""
    missing = set()
    for change in changes:
        fresh = change.action in (CREATE, REPLACE)
        for group, secret in secret_slots(change.after or {}):
            if (fresh or group in change.send_secrets) and (secret.ref is None or secret.ref not in secrets):
                missing.add(f"{change.id}: {secret.ref or '(no reference)'}")
    if missing:
        raise SecretError("nothing was applied: the value of secret reference(s) "
                          + ", ".join(sorted(missing)) + " was not given to apply")


def check_features(changes: Sequence[Change], index: Index) -> None:
    """A change of a kind the deployment has no API for refuses the apply, before any write."""
    missing = sorted({index.missing[c.kind] for c in changes if c.kind in index.missing})
    if missing:
        raise StoreError("nothing was applied: " + "; ".join(missing))


class Writer:
    """Carries out one unit of changes; every failure becomes that change's result."""

    def __init__(self, api: CoderApi, index: Index, secrets: Mapping[str, str], until: float) -> None:
        self._api = api
        self._index = index
        self._secrets = secrets
        self._until = until
        self._handlers: dict[tuple[str, str], Callable[[Change], None]] = {
            (PROVIDER, CREATE): self._provider_create,
            (PROVIDER, UPDATE): self._provider_update,
            (PROVIDER, REPLACE): self._provider_replace,
            (PROVIDER, DELETE): self._provider_delete,
            (MODEL, CREATE): self._model_create,
            (MODEL, UPDATE): self._model_update,
            (MODEL, DELETE): self._model_delete,
            (OVERRIDE, CREATE): self._override_put,
            (OVERRIDE, UPDATE): self._override_put,
            (OVERRIDE, DELETE): self._override_delete,
            (SETTINGS, CREATE): self._settings_put,
            (SETTINGS, UPDATE): self._settings_put,
        }

    def execute(self, unit: Unit) -> list[ChangeResult]:
        first = unit.changes[0]
        if first.kind == PRICE:
            return self._prices(unit.changes)
        handler = self._handlers.get((first.kind, first.action))
        try:
            if handler is None:
                raise Refused(f"the Coder store cannot {first.action} a {first.kind}")
            handler(first)
        except Refused as refused:
            return [ChangeResult(first, FAILED, self._scrub(str(refused)),
                                 tuple(self._scrub(d) for d in refused.details))]
        except ApiFailure as failure:
            return [ChangeResult(first, FAILED, self._scrub(failure.summary()),
                                 tuple(self._scrub(v) for v in failure.validations))]
        return [ChangeResult(first, APPLIED)]

    def _request(self, method: str, path: str, body: Any = None, **options: Any) -> Reply:
        return self._api.request(method, path, self._until, body=body, **options)

    def _plaintext(self, secret: Secret) -> str:
        return self._secrets[secret.ref or ""]

    def _scrub(self, text: str) -> str:
        """Coder's messages never hold our secrets, but make sure nothing echoes one, or 8
        characters of one, raw or JSON-escaped (the session token included)."""
        for value in self._secrets.values():
            if 4 <= len(value) < 8 and value in text:
                text = text.replace(value, "(redacted)")
        return redact_runs(text, [*self._secrets.values(), self._api.token])

    def _create(self, path: str, body: dict[str, Any], find: Callable[[], Reply | None], conflict: str,
                once_more: bool = False) -> Reply:
        """POST a create; a create that may have landed is looked up rather than sent twice. A 409
        for something not found is `conflict`, never a loop (`once_more`: one more try, for a
        model's create that lost Coder's default election to a concurrent one)."""
        try:
            return self._request("POST", path, body, recover=find)
        except ApiFailure as failure:
            if failure.status != 409:
                raise
        found = find()  # an earlier attempt landed: the read-back decides whether it is what was sent
        if found is not None:
            return found
        if once_more:
            try:
                return self._request("POST", path, body, recover=find)
            except ApiFailure as failure:
                if failure.status != 409:
                    raise
        raise Refused(conflict)

    # -- providers

    def _provider_create(self, change: Change) -> None:
        name, after = change.key[0], change.after or {}
        body = provider_create_body(name, after, self._plaintext)
        conflict = (f"Coder answered 409: an AI provider named {name!r} exists but cannot be seen, which is how "
                    "Coder keeps the name of a deleted provider on some versions; give the provider another "
                    "metadata.name (and its models spec.provider): the next apply creates it and moves the "
                    "models to it in place (docs/IDENTITY.md)")
        reply = self._create(PROVIDERS, body, lambda: self._find(f"{PROVIDERS}/{name}"), conflict)
        data = reply.data or {}
        got = provider_record(data)
        lost = lost_fields(after, got, ["type", *PROVIDER_SCALARS, "settings"])
        lost += lost_keys(body.get("api_keys", []), got["api_keys"])
        with self._index.lock:
            self._index.providers[name] = (data.get("id", ""), got["type"])
        if lost:
            raise Refused(lost_message(lost))

    def _provider_update(self, change: Change) -> None:
        before, after = change.before or {}, change.after or {}
        body = provider_patch_body(before, after, change.send_secrets, self._plaintext)
        if not body:
            return
        provider_id = self._index.provider_id(change.key[0])
        got = provider_record(self._request("PATCH", f"{PROVIDERS}/{provider_id}", body).data or {})
        lost = lost_fields(after, got, [f for f in (*PROVIDER_SCALARS, "settings") if f in body])
        if "api_keys" in body:
            lost += lost_keys([k["api_key"] for k in body["api_keys"]], got["api_keys"])
        if lost:
            raise Refused(lost_message(lost))

    def _provider_delete(self, change: Change) -> None:
        name = change.key[0]
        # by ID, not name: a retried delete that Coder carries out late must miss a replace's new provider
        self._delete(f"{PROVIDERS}/{self._index.provider_id(name)}")
        with self._index.lock:
            self._index.providers.pop(name, None)

    def _provider_replace(self, change: Change) -> None:
        """Delete, create, then point the old provider's models at the new one (same name)."""
        name = change.key[0]
        self._provider_delete(change)
        not_as_sent: Refused | None = None
        try:
            self._provider_create(change)
        except ApiFailure as failure:
            raise Refused(f"the old provider was deleted but creating the new one failed: "
                           f"{failure.summary()}; its models now point at the deleted provider",
                           failure.validations) from None
        except Refused as refused:  # created, but not as sent: still move the models to it
            with self._index.lock:
                created = name in self._index.providers
            if not created:
                with self._index.lock:
                    stranded = sum(1 for k in self._index.models if k[1] == name)
                raise Refused(f"the old provider was deleted, but creating the new one was refused: {refused}; "
                              f"until then its {stranded} model(s) point at the deleted provider") from None
            not_as_sent = refused
        new_id = self._index.provider_id(name)
        with self._index.lock:
            moved = [(k, mid) for k, mid in self._index.models.items() if k[1] == name]
        failed = []
        for key, model_id in moved:
            path = f"{models_path(self._index.org_id(key[0]))}/{model_id}"
            try:
                self._request("PATCH", path, {"ai_provider_id": new_id})
            except ApiFailure as failure:
                if failure.status != 404:  # deleted meanwhile: nothing to move
                    failed.append(f"{'/'.join(key)}: {failure.summary()}")
        if failed:
            raise Refused("replaced the provider, but some of its models still point at the "
                           "deleted one", tuple(failed))
        if not_as_sent is not None:
            raise not_as_sent

    # -- models

    def _model_create(self, change: Change) -> None:
        org, provider, model = change.key
        after = change.after or {}
        org_id, provider_id = self._index.org_id(org), self._index.provider_id(provider)
        fields = model_create_fields(after)
        body = {"ai_provider_id": provider_id, "model": model, **model_body(after, fields)}
        conflict = (f"Coder answered 409: model {provider}/{model} already exists in organization {org}, but this "
                    "token cannot see it (Coder lists only the models a token may use): apply with a token that "
                    "may read every model of the organization (an organization admin's), or give this token's "
                    "user access to that model")
        reply = self._create(models_path(org_id), body, lambda: self._find_model(org_id, provider_id, model),
                             conflict, once_more=True)
        data = reply.data or {}
        self._index.put_model(change.key, data)
        lost = lost_fields(after, model_record(data), fields)
        if lost:
            raise Refused(lost_message(lost))
        if after.get("access") is not None and after["access"] != created_access():
            self._write_access(org, data.get("id", ""), created_access(), after["access"], check=False)

    def _model_update(self, change: Change) -> None:
        org = change.key[0]
        before, after = change.before or {}, change.after or {}
        model_id = self._index.model_id(change.moved_from or change.key)
        fields = model_changed_fields(before, after)
        with self._index.lock:
            still_default = self._index.defaults.get(org) == model_id
        if "default" in fields and not after["default"] and not still_default:
            fields.remove("default")  # promoting another model already demoted this one
        body = model_body(after, fields)
        if change.moved_from is not None:  # in place: the model keeps its ID, access list and overrides
            body["ai_provider_id"] = self._index.provider_id(change.key[1])
            body["model"] = change.key[2]
        if after.get("access") is not None and after["access"] != before.get("access"):
            self._write_access(org, model_id, before.get("access"), after["access"])
        if not body:
            return
        path = f"{models_path(self._index.org_id(org))}/{model_id}"
        data = self._request("PATCH", path, body).data or {}
        if change.moved_from is not None:
            with self._index.lock:
                self._index.models.pop(change.moved_from, None)
            moved = {"provider": body["ai_provider_id"], "model": change.key[2]}
            got = {"provider": data.get("ai_provider_id"), "model": data.get("model")}
            lost = lost_fields(moved, got, list(moved))
            if lost:
                raise Refused(lost_message(lost))
        self._index.put_model(change.key, data)
        lost = lost_fields(after, model_record(data), fields)
        if lost:
            raise Refused(lost_message(lost))

    def _write_access(self, org: str, model_id: str, before: Any, after: Any, check: bool = True) -> None:
        """PATCH the model's access list from `before` to `after`; with `check`, only when the list
        is still `before` (someone may have changed it since the plan was read)."""
        org_id = self._index.org_id(org)
        path = acl_path(models_path(org_id), model_id)
        if check:
            now = access_record(self._request("GET", path).data, org_id)
            if before is not None and now != before:
                raise Refused(f"the model's access list changed since the plan was made (it is now "
                              f"{now}); plan again")
            before = now
        known = self._index.principals.get(org, Principals())
        try:
            body = acl_patch(before, after, known)
        except KeyError as missing:
            raise Refused(f"{missing.args[0]!r} is no group or member of organization {org}") from None
        if body:
            self._request("PATCH", path, body)
        got = access_record(self._request("GET", path).data, org_id)
        if got != {"groups": sorted(after.get("groups") or []), "users": sorted(after.get("users") or [])}:
            raise Refused(lost_message([f"access (sent {after}, it holds {got})"]))

    def _model_delete(self, change: Change) -> None:
        model_id = self._index.model_id(change.key)
        self._delete(f"{models_path(self._index.org_id(change.key[0]))}/{model_id}")
        with self._index.lock:
            self._index.models.pop(change.key, None)
            if self._index.defaults.get(change.key[0]) == model_id:
                del self._index.defaults[change.key[0]]  # Coder promotes another one

    def _find_model(self, org_id: str, provider_id: str, model: str) -> Reply | None:
        listed = self._request("GET", models_path(org_id)).data or {}
        for data in listed.get("models") or []:
            if data.get("ai_provider_id") == provider_id and data.get("model") == model:
                return Reply(200, data)
        return None

    # -- overrides and settings

    def _override_put(self, change: Change) -> None:
        org, context = change.key
        after = change.after or {}
        model_id = self._index.model_id((org, after["provider"], after["model"]))
        body: dict[str, Any] = {"model_config_id": model_id}
        if after.get("reasoning_effort"):
            body["reasoning_effort"] = after["reasoning_effort"]
        data = self._request("PUT", f"{overrides_path(self._index.org_id(org))}/{context}", body).data or {}
        sent = {"model_config_id": model_id, "reasoning_effort": after.get("reasoning_effort")}
        got = {"model_config_id": data.get("model_config_id"), "reasoning_effort": data.get("reasoning_effort")}
        lost = lost_fields(sent, got, list(sent))
        if lost:
            raise Refused(lost_message(lost))

    def _override_delete(self, change: Change) -> None:
        org, context = change.key
        self._request("PUT", f"{overrides_path(self._index.org_id(org))}/{context}", {"model_config_id": ""})

    def _settings_put(self, change: Change) -> None:
        allow = bool((change.after or {}).get("allow_users"))
        self._request("PUT", TOGGLE, {"allow_users": allow})
        try:
            got = self._request("GET", TOGGLE).data or {}
        except ApiFailure as failure:  # the PUT was answered: the setting is written
            raise Refused(f"written, but reading the setting back failed: {failure.summary()}",
                          failure.validations) from None
        lost = lost_fields({"allow_users": allow}, {"allow_users": got.get("allow_users")}, ["allow_users"])
        if lost:
            raise Refused(lost_message(lost))

    # -- prices

    def _prices(self, changes: Sequence[Change]) -> list[ChangeResult]:
        """One upsert per batch; entries Coder refuses fail alone and the rest is sent again."""
        failed: dict[str, ChangeResult] = {}
        entries: list[tuple[Change, dict[str, Any]]] = []
        for change in changes:
            try:
                entries += [(change, entry) for entry in self._price_entries(change)]
            except Refused as refused:
                failed[change.id] = ChangeResult(change, FAILED, str(refused))
        for start in range(0, len(entries), PRICE_BATCH):
            self._upsert(entries[start:start + PRICE_BATCH], failed)
        written = [c for c in changes if c.id not in failed]
        try:
            if written:
                self._read_back_prices(written, failed)
        except ApiFailure as failure:
            for change in written:
                failed[change.id] = ChangeResult(
                    change, FAILED, f"written, but reading the prices back failed: {failure.summary()}")
        return [failed.get(c.id) or ChangeResult(c, APPLIED) for c in changes]

    def _price_entries(self, change: Change) -> list[dict[str, Any]]:
        ptype, model = change.key
        if change.action == DELETE:
            raise Refused("Coder has no way to delete a price")
        record = change.after or {}
        if ptype in GLOBAL_PRICE_TYPES:
            return [price_entry(model, record, ptype, None)]
        ids = self._index.provider_ids_of_type(ptype)
        if not ids:
            raise Refused(f"Coder prices {ptype} models per provider, and there is no {ptype} provider")
        return [price_entry(model, record, ptype, pid) for pid in ids]

    def _upsert(self, batch: list[tuple[Change, dict[str, Any]]], failed: dict[str, ChangeResult]) -> None:
        """Upsert a batch; when Coder names the entries it refuses, those fail and the rest goes again."""
        for _ in range(2):
            pending = [(c, e) for c, e in batch if c.id not in failed]
            if not pending:
                return
            try:
                self._request("POST", PRICES, {"prices": [e for _, e in pending]})
                return
            except ApiFailure as failure:
                blamed = _blamed_entries(failure, len(pending))
                for position, (change, _) in enumerate(pending):
                    if not blamed or position in blamed:
                        details = [v for v in failure.validations
                                   if not blamed or v.startswith(f"prices[{position}]")]
                        failed[change.id] = ChangeResult(change, FAILED, self._scrub(failure.summary()),
                                                         tuple(details))
                if not blamed:
                    return
        for change, _ in batch:
            if change.id not in failed:
                failed[change.id] = ChangeResult(change, FAILED, "not written: Coder refused its batch twice")

    def _read_back_prices(self, written: list[Change], failed: dict[str, ChangeResult]) -> None:
        rows = self._request("GET", PRICES, params={"source": "custom"}).data or []
        kept: dict[tuple[str, str, str | None], Record] = {
            (r.get("provider") or "", r.get("model") or "", r.get("provider_id")): price_record(r) for r in rows
        }
        for change in written:
            ptype, model = change.key
            record = change.after or {}
            ids: list[str | None] = [None] if ptype in GLOBAL_PRICE_TYPES else list(
                self._index.provider_ids_of_type(ptype))
            lost = [f"the price of {ptype}/{model}" for pid in ids if kept.get((ptype, model, pid)) != record]
            if lost:
                failed[change.id] = ChangeResult(change, FAILED, lost_message(lost))

    # -- shared

    def _find(self, path: str) -> Reply | None:
        try:
            return self._request("GET", path)
        except ApiFailure as failure:
            if failure.status == 404:
                return None
            raise

    def _delete(self, path: str) -> None:
        try:
            self._request("DELETE", path)
        except ApiFailure as failure:
            if failure.status != 404:  # already gone: what a delete wants
                raise


def _blamed_entries(failure: ApiFailure, count: int) -> set[int]:
    """Positions of the entries a 400 names (`prices[3].input_price: ...`); empty when it names none."""
    if failure.status != 400:
        return set()
    out = set()
    for line in failure.validations:
        if line.startswith("prices["):
            number = line[len("prices["):].split("]", 1)[0]
            if number.isdigit() and int(number) < count:
                out.add(int(number))
    return out
