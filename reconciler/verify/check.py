"""`reconciler verify`: every key, base URL and model id of the manifests, tried against the upstreams.

One task per (provider, key): the key's model listing (every page), and for OpenRouter the key
probe. Tasks run on `parallelism` threads sharing one keep-alive `httpx.Client` (the shape that
measured fastest for the Coder store, docs/CODER.md). Each request has its own timeout and is
retried on 429/5xx, timeouts and dropped connections (a billed completion only when it never reached
the upstream), honouring `Retry-After`, within one overall deadline.
Then every Model's id is looked up in its provider's list, with `--live` one minimal completion
per model. Writes nothing anywhere.

No secret reaches a message: every text built from an upstream's answer passes through
`redact_runs` with every key and the Coder token, so an error body that echoes a key, or any
8-character run of one, shows `(redacted)`.
"""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from reconciler.diagnostics import Diagnostic, sort_diagnostics
from reconciler.errors import SecretError
from reconciler.manifest.model import Manifests, Model, Provider
from reconciler.prices import PRICE_FIELDS, PriceError, to_decimal
from reconciler.secrets import SecretResolver, redact_runs
from reconciler.verify import families
from reconciler.verify.families import NotAModelList, Request, Upstream
from reconciler.verify.report import (
    AUTH_FAILED,
    NOT_FOUND,
    OK,
    PROTOCOL_ERROR,
    RATE_LIMITED,
    SKIPPED,
    UNREACHABLE,
    VERDICT_CODES,
    KeyResult,
    ProviderResult,
    VerifyReport,
)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_PAGES = 100
SNIPPET = 160


@dataclass(frozen=True)
class Options:
    parallelism: int = 8
    request_timeout: float = 10.0
    deadline: float = 120.0
    retries: int = 3
    backoff: float = 0.5
    live: bool = False


@dataclass(frozen=True)
class Through:
    """Coder's gateway: its URL (`http(s)://host`) and the session token."""

    url: str
    token: str


@dataclass
class _Task:
    """One key of one provider (or, through Coder, the provider itself)."""

    provider: Provider
    label: str  # "1", "2", … the key's place in the pool; "coder" through Coder
    ref: str | None
    root: str
    headers: dict[str, str]
    result: KeyResult | None = None
    models: list[dict[str, Any]] | None = None  # the listing's entries (see families.parse_page)


class _Failed(Exception):
    def __init__(self, verdict: str, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.verdict, self.message, self.status = verdict, message, status


@dataclass
class _Answer:
    status: int
    data: Any
    text: str


@dataclass
class Verifier:
    """Runs the checks; `client` is injectable (tests, the benchmark) and closed by its owner."""

    options: Options
    resolver: SecretResolver = field(default_factory=SecretResolver)
    through: Through | None = None
    client: Any = None
    secrets: list[str] = field(default_factory=list)
    _until: float = 0.0

    def run(self, manifests: Manifests) -> VerifyReport:
        import httpx

        started = time.monotonic()
        self._until = started + self.options.deadline
        if self.through is not None:
            self.secrets.append(self.through.token)
        providers = sorted(manifests.providers, key=lambda p: p.name)
        tasks, skipped = self._tasks(providers)
        own = self.client is None
        client = self.client or httpx.Client(
            limits=httpx.Limits(max_connections=self.options.parallelism,
                                max_keepalive_connections=self.options.parallelism),
            headers={"User-Agent": _user_agent(), "Accept": "application/json"},
            follow_redirects=False,
        )
        try:
            self._each(client, tasks, self._check_key)
            results = self._provider_results(providers, tasks, skipped)
            listed = {name: r for name, r in results.items() if r.listing is not None}
            diagnostics = [d for p in results.values() for d in p.diagnostics]
            diagnostics += check_models(manifests.models, listed, _catalog_prices(manifests), self._redact)
            live: list[tuple[Model, _Task]] = []
            if self.options.live:
                live = self._live_targets(manifests.models, tasks)
                diagnostics += self._live(client, live)
        finally:
            if own:
                client.close()
        return VerifyReport(
            providers=[results[p.name].without_listing() for p in providers],
            diagnostics=sort_diagnostics(diagnostics),
            through=None if self.through is None else self.through.url,
            live=self.options.live,
            models_checked=sum(1 for m in manifests.models if m.provider in listed),
            completions=len(live),
            seconds=time.monotonic() - started,
        )

    # ------------------------------------------------------------------ tasks

    def _tasks(self, providers: Sequence[Provider]) -> tuple[list[_Task], dict[str, str]]:
        """The tasks, and the providers not checked with why (name -> reason)."""
        tasks: list[_Task] = []
        skipped: dict[str, str] = {}
        for provider in providers:
            reason = self._unchecked(provider)
            if reason:
                skipped[provider.name] = reason
                continue
            if self.through is not None:
                root = families.gateway_root(self.through.url, provider.name)
                tasks.append(_Task(provider, "coder", None, root,
                                   families.gateway_headers(provider.type, self.through.token)))
                continue
            assert provider.base_url is not None
            root = families.api_root(provider.type, provider.base_url)
            for index, ref in enumerate(provider.api_keys, 1):
                try:
                    key = self.resolver.resolve(ref)
                except SecretError as exc:
                    tasks.append(_Task(provider, str(index), ref, root, {},
                                       KeyResult(str(index), ref, SKIPPED, f"{exc}: set it to check this key")))
                    continue
                self.secrets.append(key)
                tasks.append(_Task(provider, str(index), ref, root, families.auth_headers(provider.type, key)))
        return tasks, skipped

    def _unchecked(self, provider: Provider) -> str:
        if not provider.enabled:
            return "disabled (enabled: false): the gateway does not use it"
        if provider.type in families.UNCHECKED:
            return families.UNCHECKED[provider.type]
        if not families.checkable(provider.type):
            return f"verify does not know how {provider.type} lists its models"
        settings = provider.settings or {}
        if self.through is None and "wif" in settings:
            return ("workload identity federation: the gateway trades its own identity token for "
                    "credentials; check it through Coder (--through)")
        if "bedrock" in settings:
            return families.UNCHECKED["bedrock"]
        if "claude_platform_aws" in settings and not provider.api_keys:
            return families.UNCHECKED["bedrock"].replace("Bedrock", "Claude Platform for AWS")
        if not provider.api_keys and "wif" not in settings:
            return ("no api_keys: developers bring their own keys (BYOK), there is no key of the "
                    "deployment's to check")
        if self.through is None and provider.base_url is None:
            return "no base_url (see the validation errors)"
        return ""

    def _each(self, client: Any, items: Sequence[Any], work: Callable[[Any, Any], None]) -> None:
        if len(items) <= 1 or self.options.parallelism == 1:
            for item in items:
                work(client, item)
            return
        with ThreadPoolExecutor(max_workers=self.options.parallelism, thread_name_prefix="verify") as pool:
            for future in [pool.submit(work, client, item) for item in items]:
                future.result()

    def _check_key(self, client: Any, task: _Task) -> None:
        if task.result is not None:  # decided already (a secret that cannot be read)
            return
        ptype = task.provider.type
        try:
            probe = families.key_probe(ptype, task.root, task.headers) if self.through is None else None
            if probe is not None:
                self._send(client, probe, task)
            models: list[dict[str, Any]] = []
            after: str | None = None
            paged = ptype == "anthropic"
            for _ in range(MAX_PAGES):
                answer = self._send(client, families.listing(task.root, task.headers, after, paged), task)
                try:
                    page, after = families.parse_page(answer.data, paged)
                except NotAModelList as exc:
                    raise _Failed(PROTOCOL_ERROR, self._not_a_list(task, answer, str(exc)), answer.status) from None
                models += page
                if after is None:
                    break
            else:
                raise _Failed(PROTOCOL_ERROR, f"the listing went on for more than {MAX_PAGES} pages")
        except _Failed as failed:
            task.result = KeyResult(task.label, task.ref, failed.verdict, self._redact(failed.message), failed.status)
            return
        task.models = models
        task.result = KeyResult(task.label, task.ref, OK, f"lists {len(models)} models", 200, len(models))

    # ---------------------------------------------------------------- requests

    def _send(self, client: Any, request: Request, task: _Task) -> _Answer:
        """A 2xx answer, or _Failed with the verdict; retried on 429/5xx/dropped connections."""
        import httpx

        attempt = 0
        while True:
            attempt += 1
            remaining = self._until - time.monotonic()
            if remaining <= 0:
                raise _Failed(UNREACHABLE, f"not checked: the overall deadline of {self.options.deadline:g} s "
                                           "passed (raise --deadline, or --parallelism)")
            timeout = min(self.options.request_timeout, remaining)
            try:
                response = client.request(request.method, request.url, headers=request.headers,
                                          json=request.body, timeout=timeout)
            except httpx.TransportError as exc:
                failure = _Failed(UNREACHABLE, self._no_answer(exc, request, timeout))
                # a listing is safe to send again after any failure; a billed completion only when it never left
                retry = request.method == "GET" or isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                wait = self._delay(attempt)
            else:
                if response.status_code < 300:
                    return _Answer(response.status_code, _json(response), "")
                failure = self._refusal(response, request, task)
                retry = response.status_code in RETRY_STATUSES
                asked = _retry_after(response)
                wait = self._delay(attempt) if asked is None else asked
            if not retry or attempt >= self.options.retries:
                if attempt > 1:
                    failure.message += f" (after {attempt} attempts)"
                raise failure
            if time.monotonic() + wait >= self._until:
                failure.message += f" (a retry in {wait:.1f} s would pass the --deadline)"
                raise failure
            time.sleep(wait)

    def _delay(self, attempt: int) -> float:
        import random

        delay = min(10.0, self.options.backoff * 2 ** (attempt - 1))
        return delay / 2 + random.uniform(0, delay / 2)

    def _no_answer(self, exc: Exception, request: Request, timeout: float) -> str:
        import httpx

        from reconciler.stores.coder.api import _errno_text

        where = _host(request.url)
        if isinstance(exc, httpx.TimeoutException):
            return (f"{where} did not answer within {timeout:.3g} s: check the host, the network path "
                    "(proxy, firewall), or raise --request-timeout")
        if isinstance(exc, httpx.ConnectError):
            reason = _errno_text(exc)
            if "certificate" in str(exc).lower() or "ssl" in str(exc).lower():
                reason = ": TLS failed (certificate not trusted or wrong host name)"
            return f"cannot connect to {where}{reason}: check base_url's host and port, DNS and egress"
        return f"the connection to {where} was dropped before an answer came"

    def _refusal(self, response: Any, request: Request, task: _Task) -> _Failed:
        status = response.status_code
        said = _upstream_message(response)
        if self.through is not None:  # the key the upstream may echo is Coder's: reconciler never saw it
            said = scrub_tokens(said)
        said_text = f" ({said})" if said else ""
        ptype, name = task.provider.type, task.provider.name
        via = self.through is not None
        if via and status in (400, 403) and response.text.strip() in ("unauthorized", "no authentication key provided"):
            return _Failed(AUTH_FAILED, f"Coder refused the session token ({status}): check CODER_SESSION_TOKEN "
                                        "or --token-file; the provider's keys were not tested", status)
        subject = (f"the key Coder holds for {name}" if via
                   else f"key {task.label} ({task.ref})")
        if status in (401, 403):
            action = ("update it in Coder (`reconciler apply --rotate-secrets`)" if via
                      else f"replace the value behind {task.ref}, or drop it from api_keys")
            return _Failed(AUTH_FAILED, f"the upstream refused {subject}: {status}{said_text}; the key is wrong, "
                                        f"revoked or lacks access: {action}", status)
        if status == 404:
            if via:
                return _Failed(NOT_FOUND, f"Coder's gateway has no route for {name} ({status}{said_text}): apply the "
                                          "manifests first, or enable the AI Gateway on the deployment", status)
            expected = families.EXPECTED_PREFIX.get(ptype, "the upstream's API prefix")
            return _Failed(NOT_FOUND, f"GET {_path(request.url)} answered 404 on {_host(request.url)}: base_url's "
                                      f"path is probably wrong; {ptype} expects {expected}", status)
        if status == 429:
            return _Failed(RATE_LIMITED, f"{subject} is rate limited (429{said_text}): it may well work; "
                                         "try again later or lower --parallelism", status)
        if status >= 500:
            return _Failed(PROTOCOL_ERROR, f"the upstream failed ({status}{said_text}): try again later", status)
        return _Failed(PROTOCOL_ERROR, f"GET {_path(request.url)} answered {status}{said_text}: not a model "
                                       "list; check base_url and the provider's type", status)

    def _not_a_list(self, task: _Task, answer: _Answer, why: str) -> str:
        return (f"GET {_path(task.root + '/models')} answered {answer.status} but not a model list ({why}): "
                f"base_url may point at a web page, a proxy or another API; {task.provider.type} expects "
                f"{families.EXPECTED_PREFIX.get(task.provider.type, 'an OpenAI-compatible prefix')}")

    def _redact(self, text: str) -> str:
        return redact_runs(text, self.secrets)

    # ---------------------------------------------------------------- results

    def _provider_results(self, providers: Sequence[Provider], tasks: list[_Task],
                          skipped: dict[str, str]) -> dict[str, ProviderResult]:
        by_provider: dict[str, list[_Task]] = {}
        for task in tasks:
            by_provider.setdefault(task.provider.name, []).append(task)
        out = {}
        for provider in providers:
            if provider.name in skipped:
                reason = skipped[provider.name]
                diagnostics = [] if not provider.enabled else [
                    _at(provider, VERDICT_CODES[SKIPPED], f"provider {provider.name} not checked: {reason}",
                        ("spec", "type"))]
                out[provider.name] = ProviderResult(provider.name, provider.type, SKIPPED, reason, (), None,
                                                    diagnostics)
                continue
            mine = by_provider.get(provider.name, [])
            keys = tuple(t.result for t in mine if t.result is not None)
            entries = next((t.models for t in mine if t.models is not None), None)
            listing = None if entries is None else families.upstream_models(entries)
            failing = [k for k in keys if k.verdict != OK]
            broken = [k.verdict for k in failing if k.verdict != SKIPPED]
            verdict = broken[0] if broken else SKIPPED if listing is None else OK
            message = (f"{len(keys) - len(failing)} of {len(keys)} key(s) work" if self.through is None
                       else (keys[0].message if keys else ""))
            diagnostics = [self._key_diagnostic(provider, k) for k in failing]
            out[provider.name] = ProviderResult(provider.name, provider.type, verdict, message, keys, listing,
                                                diagnostics)
        return out

    def _key_diagnostic(self, provider: Provider, key: KeyResult) -> Diagnostic:
        code = VERDICT_CODES[key.verdict]
        path: tuple[str | int, ...]
        if key.verdict == NOT_FOUND and self.through is None:
            path = ("spec", "base_url") if "base_url" in _spec(provider) else ("spec", "type")
        elif self.through is None and key.label.isdigit():
            path = ("spec", "api_keys", int(key.label) - 1)
        else:
            path = ("metadata", "name")
        return _at(provider, code, f"provider {provider.name}: {key.message}", path)

    # -------------------------------------------------------------------- live

    def _live_targets(self, models: Sequence[Model], tasks: list[_Task]) -> list[tuple[Model, _Task]]:
        """Each model with the first key of its provider that listed models."""
        working: dict[str, _Task] = {}
        for task in tasks:
            if task.models is not None:
                working.setdefault(task.provider.name, task)
        return [(m, working[m.provider]) for m in models if m.enabled and m.provider in working]

    def _live(self, client: Any, targets: list[tuple[Model, _Task]]) -> list[Diagnostic]:
        found: list[Diagnostic | None] = [None] * len(targets)

        def one(_: Any, index: int) -> None:
            model, task = targets[index]
            request = families.completion(task.provider.type, task.root, task.headers, model.model)
            try:
                self._send(client, request, task)
            except _Failed as failed:
                message = self._redact(failed.message).replace("GET ", "POST ", 1)
                found[index] = model.meta.doc.diagnostic(
                    "RC611", f"model {model.model!r} was listed but a one-token completion failed: {message}",
                    ("spec", "model"))

        self._each(client, list(range(len(targets))), one)
        return [d for d in found if d is not None]


# ---------------------------------------------------------------------- models


Prices = dict[tuple[str, str], dict[str, Decimal]]


def check_models(models: Sequence[Model], listed: dict[str, ProviderResult], catalog: Prices,
                 redact: Callable[[str], str]) -> list[Diagnostic]:
    """Each model's id in its provider's list; context window and prices against what it states."""
    out: list[Diagnostic] = []
    indexes: dict[str, dict[str, Upstream]] = {}
    for model in models:
        provider = listed.get(model.provider)
        if provider is None or provider.listing is None:
            continue
        index = indexes.get(model.provider)
        if index is None:
            index = indexes[model.provider] = {families.model_key(provider.type, u.id): u for u in provider.listing}
        upstream = index.get(model.model)
        doc = model.meta.doc
        if upstream is None:
            close = difflib.get_close_matches(model.model, list(index), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            if provider.type == "azure":
                out.append(doc.diagnostic("RC608", redact(
                    f"model {model.model!r} is not in the models {provider.name} lists ({len(index)}); Azure lists "
                    f"models, not deployments: if it names a deployment, ignore this{hint}"), ("spec", "model")))
            else:
                out.append(doc.diagnostic("RC607", redact(
                    f"model {model.model!r} is not among the {len(index)} models {provider.name} lists{hint}"),
                    ("spec", "model")))
            continue
        if upstream.context_length is not None and model.context_limit > upstream.context_length:
            out.append(doc.diagnostic(
                "RC609", f"context_limit {model.context_limit} is above the {upstream.context_length} tokens "
                         f"{provider.name} states for {model.model!r}: lower it to {upstream.context_length} or less",
                ("spec", "context_limit")))
        if upstream.prices:
            out += _price_differences(model, provider, upstream, catalog)
    return out


def _price_differences(model: Model, provider: ProviderResult, upstream: Upstream, catalog: Prices) -> list[Diagnostic]:
    ours = dict(catalog.get((provider.type, model.model), {}))
    for name in PRICE_FIELDS:
        if model.pricing.get(name) is not None:
            try:
                ours[name] = to_decimal(model.pricing[name])
            except PriceError:
                continue
    differ = [f"{name} {_usd(ours[name])} (upstream {_usd(upstream.prices[name])})"
              for name in PRICE_FIELDS
              if name in ours and name in upstream.prices and ours[name] != upstream.prices[name]]
    if not differ:
        return []
    path = ("spec", "pricing") if model.pricing else ("spec", "model")
    return [model.meta.doc.diagnostic(
        "RC610", f"the price of {model.model!r} differs from {provider.name}'s list (USD per 1M tokens): "
                 + ", ".join(differ) + "; update it, or keep it if the difference is on purpose", path)]


def _catalog_prices(manifests: Manifests) -> Prices:
    out: Prices = {}
    for entry in manifests.prices:
        for name, value in entry.fields.items():
            if value is None:
                continue
            try:
                out.setdefault((entry.provider, entry.model), {})[name] = to_decimal(value)
            except PriceError:
                continue
    return out


def _usd(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "$" + text


# --------------------------------------------------------------------- helpers


def _at(provider: Provider, code: str, message: str, path: tuple[str | int, ...]) -> Diagnostic:
    return provider.meta.doc.diagnostic(code, message, path)


def _spec(provider: Provider) -> dict[str, Any]:
    spec = provider.meta.doc.data.get("spec") if isinstance(provider.meta.doc.data, dict) else None
    return spec if isinstance(spec, dict) else {}


def _user_agent() -> str:
    from reconciler import __version__

    return f"reconciler/{__version__} (verify)"


def _json(response: Any) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except (ValueError, RecursionError):
        return None


def _upstream_message(response: Any) -> str:
    """The upstream's own error message (OpenAI's and Anthropic's `error.message`, or `message`,
    or the start of the body), on one line and short. Redacted by the caller."""
    data = _json(response)
    said: Any = None
    if isinstance(data, dict):
        error = data.get("error")
        said = error.get("message") if isinstance(error, dict) else error if isinstance(error, str) else None
        said = said or data.get("message") or data.get("detail")
    if not isinstance(said, str):
        said = response.text if response.content and data is None else ""
    text = " ".join(str(said).split())
    return text[:SNIPPET] + ("…" if len(text) > SNIPPET else "")


_TOKEN_LIKE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-.+/=]{15,}")


def scrub_tokens(text: str) -> str:
    """Every run that looks like a credential (16+ characters of a key's alphabet, with letters and
    digits) replaced: for answers that may echo a key this process does not know, and so cannot
    redact by value (through Coder, the key is the one Coder holds)."""
    def scrubbed(match: re.Match[str]) -> str:
        word = match.group(0)
        letters, digits = any(c.isalpha() for c in word), any(c.isdigit() for c in word)
        return "(redacted)" if letters and digits else word

    return _TOKEN_LIKE.sub(scrubbed, text)


def _retry_after(response: Any) -> float | None:
    from reconciler.stores.coder.api import _retry_after as parse

    return parse(response)


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc


def _path(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).path
