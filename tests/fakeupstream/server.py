"""FakeUpstream: one LLM provider's API as `verify` sees it, served over real HTTP on 127.0.0.1.

Each family speaks its own model-list format and auth:

- openai:     GET /v1/models, `Authorization: Bearer KEY`
- azure:      GET /openai/v1/models, `api-key: KEY` (a Bearer header is refused)
- anthropic:  GET /v1/models, `x-api-key: KEY` and `anthropic-version`, paginated
              (`limit`, `after_id`; answers `has_more`, `first_id`, `last_id`)
- openrouter: GET /api/v1/models for anyone (with `context_length` and per-token `pricing`),
              GET /api/v1/key for a key's own details (401 for a bad key)

A key's `behaviour` says how the server treats it: "ok", "revoked" (401), "echo" (401 whose
body repeats the key), "429" (always, with Retry-After), "429-once", "500-once", "garbage"
(200 with an HTML page), "slow" (sleeps `slow_seconds` first); `garbage=True` answers every
request with an HTML page. Any other path answers 404,
which is what a base URL with the wrong prefix meets. Completions (POST …/chat/completions,
…/messages) answer a one-token reply for a listed model (403 for one in `unserved`, 404 for one
not listed) and are counted: `--live` is the only thing that sends them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

OPENAI, AZURE, ANTHROPIC, OPENROUTER = "openai", "azure", "anthropic", "openrouter"
FAMILIES = (OPENAI, AZURE, ANTHROPIC, OPENROUTER)
PREFIX = {OPENAI: "/v1", AZURE: "/openai/v1", ANTHROPIC: "/v1", OPENROUTER: "/api/v1"}
BEHAVIOURS = frozenset({"ok", "revoked", "echo", "429", "429-once", "500-once", "garbage", "slow"})


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str] = field(repr=False)  # lower-case names; may hold keys
    body: Any = field(repr=False)


class FakeUpstream:
    """A fake provider API. `keys` maps each key to its behaviour; `models` are ids or full entries."""

    def __init__(self, family: str, keys: dict[str, str], models: Iterable[str | dict[str, Any]] = (),
                 *, page_size: int = 2, latency: float = 0.0, slow_seconds: float = 3.0,
                 garbage: bool = False, unserved: Iterable[str] = ()) -> None:
        if family not in FAMILIES:
            raise ValueError(f"unknown family {family!r}")
        if not set(keys.values()) <= BEHAVIOURS:
            raise ValueError(f"unknown behaviours {sorted(set(keys.values()) - BEHAVIOURS)}")
        self.family = family
        self.keys = dict(keys)
        self.models = [m if isinstance(m, dict) else {"id": m} for m in models]
        self.page_size = page_size
        self.latency = latency
        self.slow_seconds = slow_seconds
        self.garbage = garbage  # every answer an HTML page: not an API at all
        self.unserved = frozenset(unserved)  # listed, but a completion answers 403 (no access, no quota)
        self.seen: list[Seen] = []
        self._once: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------- lifecycle

    def start(self) -> FakeUpstream:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.upstream = self
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True,
                         name=f"fakeupstream-{self.family}").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        """The base_url a manifest gives this upstream (Anthropic's has no path: the client adds /v1)."""
        return self.origin if self.family == ANTHROPIC else self.origin + PREFIX[self.family]

    def count(self, method: str | None = None, suffix: str = "") -> int:
        with self._lock:
            return sum(1 for s in self.seen if (method is None or s.method == method) and s.path.endswith(suffix))

    # --------------------------------------------------------------- serving

    def answer(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: Any) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            self.seen.append(Seen(method, path, query, headers, body))
        if self.latency:
            time.sleep(self.latency)
        if self.garbage:
            return 200, "<html><body>Sign in to continue</body></html>", {"Content-Type": "text/html"}
        prefix = PREFIX[self.family]
        if not path.startswith(prefix + "/"):
            return 404, {"error": {"message": f"Unknown request URL: {method} {path}"}}, {}
        route = path[len(prefix):]
        if method == "GET" and route == "/models" and self.family == OPENROUTER:
            return 200, {"data": self.models}, {}  # OpenRouter lists its models to anyone
        if (method, route) not in {("GET", "/models"), ("GET", "/key"), ("POST", "/chat/completions"),
                                   ("POST", "/messages")}:
            return 404, {"error": {"message": f"Unknown request URL: {method} {path}"}}, {}
        if route == "/key" and self.family != OPENROUTER:
            return 404, {"error": {"message": "not found"}}, {}
        refused = self._authenticate(headers)
        if refused is not None:
            return refused
        key = self._key(headers)
        behaviour = self.keys[key]
        with self._lock:
            first = (behaviour, key, route) not in self._once
            self._once.add((behaviour, key, route))
        if behaviour == "slow":
            time.sleep(self.slow_seconds)
        if behaviour == "429" or (behaviour == "429-once" and first):
            return 429, {"error": {"message": "Rate limit reached; slow down."}}, {"Retry-After": "0.1"}
        if behaviour == "500-once" and first:
            return 500, {"error": {"message": "The server had an error."}}, {}
        if behaviour == "garbage":
            return 200, "<html><body>Welcome to our portal</body></html>", {"Content-Type": "text/html"}
        if method == "POST":
            model = body.get("model") if isinstance(body, dict) else None
            if model in self.unserved:
                return 403, {"error": {"message": f"Your organization has no access to {model}."}}, {}
            if model not in {m["id"] for m in self.models}:
                return 404, {"error": {"message": f"The model `{model}` does not exist."}}, {}
            return 200, self._completion(route, body), {}
        if route == "/key":
            return 200, {"data": {"label": "test key", "limit": None, "usage": 0}}, {}
        return 200, self._page(query), {}

    def _key(self, headers: dict[str, str]) -> str:
        if self.family == ANTHROPIC:
            return headers.get("x-api-key", "")
        if self.family == AZURE:
            return headers.get("api-key", "")
        return headers.get("authorization", "").removeprefix("Bearer ")

    def _authenticate(self, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]] | None:
        if self.family == ANTHROPIC and "anthropic-version" not in headers:
            return 400, {"type": "error", "error": {"type": "invalid_request_error",
                                                    "message": "anthropic-version: header is required"}}, {}
        key = self._key(headers)
        behaviour = self.keys.get(key)
        if behaviour == "echo":
            return 401, {"error": {"message": f"Incorrect API key provided: {key}. You can find your API key "
                                              "at https://example.invalid/account/api-keys."}}, {}
        if behaviour is None or behaviour == "revoked":
            if self.family == ANTHROPIC:
                return 401, {"type": "error", "error": {"type": "authentication_error",
                                                        "message": "invalid x-api-key"}}, {}
            return 401, {"error": {"message": "Incorrect API key provided.", "code": "invalid_api_key"}}, {}
        return None

    def _page(self, query: dict[str, str]) -> dict[str, Any]:
        if self.family != ANTHROPIC:
            return {"object": "list", "data": self.models}
        ids = [m["id"] for m in self.models]
        start = ids.index(query["after_id"]) + 1 if query.get("after_id") in ids else 0
        size = min(int(query.get("limit", "20")), self.page_size)
        page = self.models[start:start + size]
        return {"data": [{"type": "model", "display_name": m["id"], **m} for m in page],
                "has_more": start + size < len(ids),
                "first_id": page[0]["id"] if page else None, "last_id": page[-1]["id"] if page else None}

    def _completion(self, route: str, body: Any) -> dict[str, Any]:
        model = body.get("model") if isinstance(body, dict) else None
        if route == "/messages":
            return {"type": "message", "model": model, "content": [{"type": "text", "text": "OK"}]}
        return {"object": "chat.completion", "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "OK"}}]}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    upstream: FakeUpstream


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        split = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(split.query).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, payload, extra = self.server.upstream.answer(self.command, split.path, query, headers, body)
        send(self, status, payload, extra)

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `FakeUpstream.seen`."""


def send(handler: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str]) -> None:
    """Write one answer: a str as text (its Content-Type from `headers`), anything else as JSON."""
    headers = dict(headers)
    if isinstance(payload, str | bytes):
        data = payload.encode() if isinstance(payload, str) else payload
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
    else:
        data = json.dumps(payload).encode()
        headers["Content-Type"] = "application/json"
    try:
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
    except (ConnectionError, TimeoutError):
        handler.close_connection = True
