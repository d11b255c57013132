"""The Coder store: a live Coder deployment through its REST API (`coder+https://host`).

Reading costs one request per collection (organizations, providers, prices,
the personal-override toggle, and each organization's models and overrides),
never one per object. Writing follows the changes' dependencies, runs
independent writes concurrently on `parallelism` threads, and reads back what
each write answered, so that a field an older Coder silently ignored fails the
change instead of drifting. Nothing is transactional: every change gets its
own result. How records map onto the API: mapping.py; the writes:
writer.py; docs/CODER.md.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from reconciler.changes import Change, ChangeResult
from reconciler.errors import StoreError, UsageError
from reconciler.explain import UserView
from reconciler.prices import PRICE_FIELDS
from reconciler.secrets import mask_secret, redact_runs
from reconciler.state import (
    KIND_ORDER,
    MODEL,
    OVERRIDE,
    PRICE,
    PROVIDER,
    SETTINGS,
    SETTINGS_KEY,
    Key,
    Record,
    State,
)
from reconciler.stores.base import Capabilities, ProgressCallback, RunInfo
from reconciler.stores.coder.access import access_record, acl_path, principals_from
from reconciler.stores.coder.api import ApiFailure, CoderApi
from reconciler.stores.coder.deployment import (
    AUTHCHECK,
    ENTITLEMENTS,
    EXPERIMENTS,
    ME,
    Deployment,
    checks,
    refusals,
)
from reconciler.stores.coder.mapping import (
    BUILDINFO,
    GLOBAL_PRICE_TYPES,
    ORGANIZATIONS,
    PRICES,
    PROVIDERS,
    TOGGLE,
    model_record,
    models_path,
    overrides_path,
    price_record,
    price_source,
    provider_record,
)
from reconciler.stores.coder.runner import run_units
from reconciler.stores.coder.writer import Index, Writer, check_features, check_secrets, write_units

TOKEN_ENV = "CODER_SESSION_TOKEN"
DEFAULT_PARALLELISM = 8
DEFAULT_REQUEST_TIMEOUT = 30.0
DEFAULT_DEADLINE = 600.0
DEFAULT_RETRIES = 5
DEFAULT_BACKOFF = 0.25

# kind -> (the feature, its collection, the Coder that has it): for a 404 on that collection
FEATURES = {
    PROVIDER: ("AI providers", f"GET {PROVIDERS}",
               "Coder v2.37 or later with the AI Governance add-on"),
    MODEL: ("organization-scoped Coder Agents models", "GET /api/v2/organizations/{org}/chats/models",
            "Coder v2.37 or later"),
    PRICE: ("model prices", f"GET {PRICES}",
            "Coder v2.37 or later (enterprise, AI Governance add-on)"),
    OVERRIDE: ("organization-scoped model overrides",
               "GET /api/v2/organizations/{org}/chats/model-overrides", "Coder v2.37 or later"),
    SETTINGS: ("the personal model override setting", f"GET {TOGGLE}", "Coder v2.37 or later"),
}


class CoderStore:
    """`coder+https://host` (`coder+http://` on loopback, for tests): a Coder deployment."""

    capabilities = Capabilities(
        transactional=False,
        secret_view="masked",
        write_only_secrets=frozenset({"settings"}),  # bedrock credentials never come back
        deletable=frozenset(KIND_ORDER) - {PRICE},  # Coder has no way to delete a price
    )

    def __init__(
        self,
        url: str,
        *,
        token_file: str | None = None,
        parallelism: int = DEFAULT_PARALLELISM,
        lock_store: str | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        deadline: float = DEFAULT_DEADLINE,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        environ: Mapping[str, str] | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise UsageError(f"unknown option(s) for a Coder store: {', '.join(sorted(unknown))}")
        if parallelism < 1 or request_timeout <= 0 or deadline <= 0 or retries < 1:
            raise UsageError("parallelism and retries must be at least 1, timeouts positive")
        self.url, base_url = parse_url(url)
        self._environ = os.environ if environ is None else environ
        self._lock_store = _lock_store_url(lock_store)
        self._parallelism = parallelism
        self._deadline = deadline
        self._api = CoderApi(base_url, session_token(token_file, self._environ), connections=parallelism,
                             request_timeout=request_timeout, retries=retries, backoff=backoff)
        self._index: Index | None = None
        self._deployment = Deployment()
        self._username: str | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # -- the Store protocol ---------------------------------------------------------------------

    def secret_view(self, plaintext: str, group: str) -> str | None:
        """Coder shows API keys masked (`sk-a...efgh`) and bedrock credentials not at all."""
        return mask_secret(plaintext) if group == "api_keys" else None

    def lock(self, timeout: float, holder: str) -> AbstractContextManager[None]:
        """A SQL store's lock when `lock_store` is set; else a file lock on this machine."""
        if self._lock_store is not None:
            return _store_lock(self._lock_store, timeout, holder)
        from reconciler.stores.sqlite import file_lock

        return file_lock(self._lock_path(), timeout, holder)

    def read(self) -> State:
        state, self._index = self._read()
        return state

    def _read(self) -> tuple[State, Index]:
        """The deployment's state; StoreError when an answer is not of the shape Coder's API gives
        (a proxy's page, another server, a version this tool does not know), never a crash."""
        try:
            return self._read_answers()
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise StoreError(
                f"{self.url} answered something that is not Coder's API ({type(exc).__name__} reading its "
                "collections): is the URL a Coder deployment, of a version this tool knows?") from None

    def _read_answers(self) -> tuple[State, Index]:
        until = time.monotonic() + self._deadline
        index = Index()

        def fetch(what: tuple[str, dict[str, str] | None, str | None]) -> Any:
            return self._fetch(*what, until=until, index=index)

        with ThreadPoolExecutor(self._parallelism, thread_name_prefix="coder-read") as pool:
            learnt = [pool.submit(self._maybe, path, until) for path in (BUILDINFO, EXPERIMENTS, ENTITLEMENTS)]
            first = [(ORGANIZATIONS, None, None), (PROVIDERS, None, PROVIDER),
                     (PRICES, {"source": "all"}, PRICE), (TOGGLE, None, SETTINGS)]
            orgs, providers, prices, toggle = pool.map(fetch, first)
            if not isinstance(orgs, list) or not all(
                    isinstance(o, dict) and isinstance(o.get("name"), str) and isinstance(o.get("id"), str)
                    for o in orgs):
                raise StoreError(f"{self.url} did not list its organizations: is it a Coder deployment?")
            _expect(providers, list, PROVIDER, index, PROVIDERS)
            _expect(prices, list, PRICE, index, PRICES)
            _expect(toggle, dict, SETTINGS, index, TOGGLE)
            default = next((o["name"] for o in orgs if o.get("is_default")), None)
            if default is None:
                raise StoreError(f"the Coder deployment at {self.url} has no default organization")
            index.orgs = {o["name"]: o["id"] for o in orgs}
            per_org = [(models_path(o["id"]), None, MODEL) for o in orgs]
            per_org += [(overrides_path(o["id"]), None, OVERRIDE) for o in orgs]
            rights = pool.submit(self._maybe, AUTHCHECK, until, {"checks": checks(index.orgs)})
            fetched = list(pool.map(fetch, per_org))
            self._deployment = _deployment(*(f.result() for f in learnt), rights.result(), self._who)
        for kind, answer in list(index.missing.items()):
            index.missing[kind] = self._deployment.missing(kind, *FEATURES[kind], answer)
        for answer, (path, _, kind) in zip(fetched, per_org, strict=True):
            _expect(answer, dict, kind, index, path)
            if answer is not None:
                _expect(answer.get("models" if kind == MODEL else "overrides") or [], list, kind, index, path)
        state = State(default_organization=default)
        _read_providers(state, index, providers or [])
        for org, models, overrides in zip(orgs, fetched[:len(orgs)], fetched[len(orgs):], strict=True):
            by_id = _read_models(state, index, org["name"], (models or {}).get("models") or [])
            _read_overrides(state, org["name"], (overrides or {}).get("overrides") or [], by_id)
        _read_prices(state, index, prices or [])
        state.serial = _serial(providers, fetched, prices)
        for org in sorted(index.orgs):
            if not self._deployment.may(f"chat_model_config:read@{org}"):
                state.notes.append(
                    f"the token of {self._who()} may not read every model of organization {org}: Coder lists "
                    "only the models its access lists grant, so the others are neither planned nor pruned "
                    "(an organization admin's token sees them all)")
        if isinstance(toggle, dict):
            state.of(SETTINGS)[SETTINGS_KEY] = {"allow_users": bool(toggle.get("allow_users"))}
        return state, index

    def apply(
        self,
        changes: Sequence[Change],
        secrets: Mapping[str, str],
        run: RunInfo,
        progress: ProgressCallback | None = None,
    ) -> list[ChangeResult]:
        """Every change gets a result: applied, failed (with Coder's reasons) or skipped.

        Raises only before the first write: a secret value not given, or a kind
        of change this deployment has no API for.
        """
        if not changes:
            return []
        check_secrets(changes, secrets)
        if self._index is None:
            _, self._index = self._read()
        index = self._index
        check_features(changes, index)
        until = time.monotonic() + self._deadline
        writer = Writer(self._api, index, secrets, until)
        results = run_units(write_units(changes), writer.execute, self._parallelism, until, progress)
        by_change = {id(r.change): r for r in results}
        return [by_change[id(c)] for c in changes]

    def close(self) -> None:
        self._api.close()

    # -- beyond the configuration: explain and cost -------------------------------------------

    def user_view(self, user: str, organization: str) -> UserView:
        """One user's groups, personal overrides and own keys (4 requests; read() first)."""
        from reconciler.stores.coder.people import read_user

        if self._index is None:
            _, self._index = self._read()
        return read_user(self._api, self._index, self.url, user, organization, self._deadline)

    def spend(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Every organization's recorded AI spend between `start` and `end`, from Coder's CSV export."""
        from reconciler.stores.coder.people import read_spend

        if self._index is None:
            _, self._index = self._read()
        return list(read_spend(self._api, self._index, self.url, start, end, self._deadline))

    # -- helpers --------------------------------------------------------------------------------

    def _fetch(self, path: str, params: dict[str, str] | None, kind: str | None, *, until: float,
               index: Index) -> Any:
        """A collection's JSON; None when the deployment has no such collection (noted in `index`)."""
        try:
            return self._api.request("GET", path, until, params=params).data
        except ApiFailure as failure:
            if failure.status in (403, 404) and kind is not None:
                # said once the deployment's version, entitlements and rights are known
                index.missing[kind] = f"{failure.status} {failure.message}"
                return None
            summary = redact_runs(failure.summary(), [self._api.token])
            raise StoreError(f"cannot read {path} from {self.url}: {summary}") from None

    def _maybe(self, path: str, until: float, body: Any = None) -> Any:
        """What the deployment says of itself; None when it does not say (an older build, no right)."""
        try:
            reply = self._api.request("POST" if body is not None else "GET", path, until, body=body)
        except ApiFailure:
            return None
        return reply.data

    def _who(self) -> str:
        """`user <name>` of the token, asked once, for messages about its rights."""
        if self._username is None:
            data = self._maybe(ME, time.monotonic() + 10)
            name = data.get("username") if isinstance(data, dict) else None
            self._username = f"user {name}" if isinstance(name, str) and name else "this token"
        return self._username

    def read_access(self, state: State, models: Sequence[Key]) -> None:
        """The access lists of the stored models `models` names and of their move candidates (one
        request each: Coder has no bulk read), and the groups and members of their organizations
        (two requests each), read concurrently."""
        index = self._index
        if not models or index is None:
            return
        wanted = set(models)
        same = {(key[0], key[2]) for key in wanted}
        stored = [k for k in state.of(MODEL) if k[0] in index.orgs and (k in wanted or (k[0], k[2]) in same)]
        orgs = sorted({key[0] for key in wanted} & set(index.orgs))
        until = time.monotonic() + self._deadline
        with ThreadPoolExecutor(self._parallelism, thread_name_prefix="coder-access") as pool:
            asked = {org: (pool.submit(self._maybe, f"{ORGANIZATIONS}/{index.orgs[org]}/groups", until),
                           pool.submit(self._maybe, f"{ORGANIZATIONS}/{index.orgs[org]}/members", until))
                     for org in orgs}
            acls = {key: pool.submit(self._acl, acl_path(models_path(index.orgs[key[0]]), index.models[key]), until)
                    for key in stored if key in index.models}
            state.principals = state.principals or {}
            for org, (groups, members) in asked.items():
                known = index.principals[org] = principals_from(index.orgs[org], groups.result(), members.result())
                state.principals[org] = known.names()
            for key, answer in acls.items():
                record = access_record(answer.result(), index.orgs[key[0]])
                if record is not None:
                    state.of(MODEL)[key]["access"] = record
                    index.learn_acl(key[0], answer.result())

    def _acl(self, path: str, until: float) -> Any:
        """A model's access list; None where the token may not read it (Coder answers 404, and the
        change that needs it is refused for the share right); any other failure fails the read."""
        try:
            return self._api.request("GET", path, until).data
        except ApiFailure as failure:
            if failure.status in (403, 404):
                return None
            summary = redact_runs(failure.summary(), [self._api.token])
            raise StoreError(f"cannot read {path} from {self.url}: {summary}") from None

    def refusals(self, changes: Sequence[Change]) -> dict[str, list[str]]:
        """Cause -> the changes this deployment or token would refuse, known before any write."""
        out = refusals(changes, self._deployment)
        refused = {change_id for ids in out.values() for change_id in ids}
        if self._index is not None:
            for change in changes:
                why = self._index.missing.get(change.kind)
                if why and change.id not in refused:
                    out.setdefault(why, []).append(change.id)
        return out

    def _lock_path(self) -> Path:
        cache = self._environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        place = urlsplit(self.url)
        name = re.sub(r"[^A-Za-z0-9.-]", "_", f"coder-{place.netloc}{place.path}")
        return Path(cache) / "reconciler" / "locks" / f"{name}.lock"


# -- reading ----------------------------------------------------------------------------------


def _deployment(buildinfo: Any, experiments: Any, entitlements: Any, rights: Any, who: Any) -> Deployment:
    """The answers of build info, experiments, entitlements and authcheck, as far as they make sense."""
    version = buildinfo.get("version") if isinstance(buildinfo, dict) else None
    features = entitlements.get("features") if isinstance(entitlements, dict) else None
    return Deployment(
        version=version if isinstance(version, str) and version else "unknown",
        experiments=frozenset(e for e in experiments if isinstance(e, str)) if isinstance(experiments, list) else None,
        features={name: isinstance(f, dict) and f.get("entitlement") in ("entitled", "grace_period")
                  and bool(f.get("enabled")) for name, f in features.items()} if isinstance(features, dict) else None,
        permissions={k: v for k, v in rights.items() if isinstance(v, bool)} if isinstance(rights, dict) else None,
        who=who,
    )


def _expect(answer: Any, shape: type, kind: str | None, index: Index, path: str) -> None:
    """An answer of the shape the API gives, or None for a collection this deployment lacks."""
    if answer is None and kind in index.missing:
        return
    if not isinstance(answer, shape) or (shape is list and not all(isinstance(item, dict) for item in answer)):
        raise StoreError(f"GET {path} did not answer as Coder's API does (expected a JSON "
                         f"{'list of objects' if shape is list else 'object'}): is the URL a Coder deployment?")


def _serial(*collections: Any) -> str:
    """The objects' update times: what a saved plan's fingerprint adds so that an A -> B -> A
    deployment (the same objects, written again) does not let an old plan run twice."""
    digest = hashlib.sha256()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            stamp = value.get("updated_at")
            if isinstance(stamp, str):
                digest.update(f"{value.get('id', '')}@{stamp}\n".encode())
            for item in value.values():
                if isinstance(item, list | dict):
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(list(collections))
    return "updated:" + digest.hexdigest()[:32]


def _strings(item: dict[str, Any], *names: str) -> None:
    """TypeError (said as "not Coder's API") unless the answer's object has these fields as text."""
    for name in names:
        if not isinstance(item.get(name), str) or not item[name]:
            raise TypeError(f"an object without a text {name}")


def _read_providers(state: State, index: Index, providers: list[dict[str, Any]]) -> None:
    for data in providers:
        _strings(data, "id", "name")
        state.of(PROVIDER)[(data["name"],)] = provider_record(data)
        index.providers[data["name"]] = (data["id"], data.get("type") or "")


def _read_models(state: State, index: Index, org: str, models: list[dict[str, Any]]) -> dict[str, Key]:
    names = {pid: name for name, (pid, _) in index.providers.items()}
    by_id: dict[str, Key] = {}
    for data in models:
        _strings(data, "id", "model")
        provider_id = data.get("ai_provider_id") or ""
        # a model whose provider was deleted stays listed; no manifest can name it
        key = (org, names.get(provider_id) or f"deleted:{provider_id}", data["model"])
        state.of(MODEL)[key] = model_record(data)
        index.put_model(key, data)
        by_id[data["id"]] = key
    return by_id


def _read_overrides(state: State, org: str, overrides: list[dict[str, Any]], by_id: dict[str, Key]) -> None:
    for data in overrides:
        model_id = data.get("model_config_id") or ""
        if not model_id:
            continue
        key: Key = by_id.get(model_id, (org, "", f"unknown:{model_id}"))
        state.of(OVERRIDE)[(org, data["context"])] = {
            "provider": key[1], "model": key[2], "reasoning_effort": data.get("reasoning_effort") or None,
        }


def _read_prices(state: State, index: Index, rows: list[dict[str, Any]]) -> None:
    """Default prices into the price book; custom ones into objects.

    A type Coder prices only per provider (openai-compat) shows one record per
    model: the price when every provider of that type has the same one, else
    nulls, so that the plan writes it to all of them.
    """
    per_provider: dict[Key, dict[str, Record]] = {}
    for row in rows:
        key: Key = (row.get("provider") or "", row.get("model") or "")
        if price_source(row) == "default":
            if not row.get("provider_id"):
                state.default_prices[key] = price_record(row)
        elif row.get("provider_id") and key[0] in GLOBAL_PRICE_TYPES:
            # one provider's own price: it wins over its type's price (codersdk/aimodelprices.go)
            name = index.provider_name(row["provider_id"])
            if name is not None:
                state.provider_prices[(key[0], key[1], name)] = price_record(row)
        elif row.get("provider_id"):
            per_provider.setdefault(key, {})[row["provider_id"]] = price_record(row)
        else:
            state.of(PRICE)[key] = price_record(row)
    for key, by_provider in per_provider.items():
        if key in state.of(PRICE):
            continue
        expected = set(index.provider_ids_of_type(key[0])) | set(by_provider)
        records = [by_provider.get(pid) for pid in sorted(expected)]
        agreed = records[0] if all(r == records[0] for r in records) else None
        state.of(PRICE)[key] = agreed or dict.fromkeys(PRICE_FIELDS)


# -- opening ----------------------------------------------------------------------------------


def parse_url(url: str) -> tuple[str, str]:
    """(the store URL for messages, the API's base URL) of `coder+https://host[:port][/path]`."""
    from reconciler.validate.urls import plain_http_to_remote

    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    http = scheme.partition("+")[2]
    if http not in ("http", "https") or not parts.hostname:
        from reconciler.stores import redact_store_url

        raise UsageError(f"bad Coder store URL {redact_store_url(url)!r}: use coder+https://host")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise UsageError("a Coder store URL takes no user, password, query or fragment: "
                         "give the token with CODER_SESSION_TOKEN or --token-file")
    netloc, path = parts.netloc.lower(), parts.path.rstrip("/")
    if http == "http" and (not _loopback_host(parts.hostname) or plain_http_to_remote(f"{http}://{netloc}")):
        raise UsageError(f"coder+http:// sends the session token unencrypted and is only for loopback "
                         f"hosts: use coder+https://{netloc}{path}")
    return f"{scheme}://{netloc}{path}", f"{http}://{netloc}{path}"


def _loopback_host(host: str) -> bool:
    """Whether `host` is a loopback address however it is spelt (the way the HTTP client and the
    C library read it): `localhost`, 127.x, ::1, an IPv4-mapped ::ffff:127.x, or a decimal, octal
    or hex IPv4 such as 2130706433 or 0x7f.1. Anything else may be a remote host."""
    import ipaddress
    import socket

    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(name))  # 2130706433, 0177.0.0.1, 0x7f.1
        except (OSError, ValueError):
            return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def session_token(token_file: str | None, environ: Mapping[str, str]) -> str:
    """The session token, from --token-file or CODER_SESSION_TOKEN; never part of any message."""
    if token_file:
        from reconciler.files import SECRET_FILE_BYTES, read_regular

        try:
            token = read_regular(token_file, SECRET_FILE_BYTES).decode("utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
            raise UsageError(f"cannot read the Coder token file {token_file}: {reason}") from None
        if not token:
            raise UsageError(f"the Coder token file {token_file} is empty")
        return _printable_token(token, token_file)
    token = environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise UsageError(f"no Coder session token: set {TOKEN_ENV} or pass --token-file")
    return _printable_token(token, TOKEN_ENV)


def _printable_token(token: str, where: str) -> str:
    """A token goes into an HTTP header: printable ASCII only (the token itself is never shown)."""
    if not token.isascii() or not token.isprintable():
        raise UsageError(f"the Coder session token from {where} holds characters a token cannot have "
                         "(non-ASCII or control characters): copy it again")
    return token


def _lock_store_url(url: str | None) -> str | None:
    if url is None:
        return None
    scheme = url.split("://", 1)[0].lower()
    if scheme not in ("sqlite", "postgresql", "postgres"):
        raise UsageError("--lock-store takes a SQL store URL (sqlite:///… or postgresql://…)")
    return url


@contextmanager
def _store_lock(url: str, timeout: float, holder: str) -> Iterator[None]:
    from reconciler.stores import open_store

    store = open_store(url)
    try:
        with store.lock(timeout, holder):
            yield
    finally:
        store.close()
