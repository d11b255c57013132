"""FakeCoder: a strict in-process stand-in for Coder's AI configuration REST API.

Runs a ThreadingHTTPServer on 127.0.0.1 in a daemon thread, records every
request, and can inject faults, latency, missing endpoints (an older server)
and silently dropped request fields.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import re
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import access, gateway, models, organizations, overrides, people, prices, providers
from .state import State
from .wire import ApiError, Reply, Request

TOKEN_HEADER = "Coder-Session-Token"
COLLECTIONS = frozenset({"providers", "models", "prices", "overrides", "toggle"})
DROPPABLE_KINDS = frozenset({"provider", "model", "price", "override"})

Handler = Callable[[State, Request], Reply]


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern[str]
    methods: Mapping[str, Handler]
    collection: str | None = None  # what `missing_endpoints` names
    kind: str | None = None  # what `drop_fields` names
    public: bool = False  # no session token needed


def _route(template: str, methods: Mapping[str, Handler], **options: Any) -> Route:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return Route(re.compile(regex), methods, **options)


ROUTES = (
    _route("/api/v2/buildinfo", {"GET": organizations.get_buildinfo}, public=True),
    _route("/api/v2/users/me", {"GET": organizations.get_me}),
    _route("/api/v2/organizations", {"GET": organizations.list_organizations}),
    _route("/api/v2/organizations/{org}", {"GET": organizations.get_organization}),
    _route(
        "/api/v2/ai/providers",
        {"GET": providers.list_providers, "POST": providers.create_provider},
        collection="providers",
        kind="provider",
    ),
    _route(
        "/api/v2/ai/providers/{provider}",
        {
            "GET": providers.get_provider,
            "PATCH": providers.update_provider,
            "DELETE": providers.delete_provider,
        },
        collection="providers",
        kind="provider",
    ),
    _route(
        "/api/v2/organizations/{org}/chats/models",
        {"GET": models.list_models, "POST": models.create_model},
        collection="models",
        kind="model",
    ),
    _route(
        "/api/v2/organizations/{org}/chats/models/{model}",
        {"GET": models.get_model, "PATCH": models.update_model, "DELETE": models.delete_model},
        collection="models",
        kind="model",
    ),
    _route(
        "/api/experimental/ai/model-prices",
        {"GET": prices.list_prices, "POST": prices.upsert_prices},
        collection="prices",
        kind="price",
    ),
    _route(
        "/api/v2/organizations/{org}/chats/model-overrides",
        {"GET": overrides.list_overrides},
        collection="overrides",
        kind="override",
    ),
    _route(
        "/api/v2/organizations/{org}/chats/model-overrides/{context}",
        {"PUT": overrides.put_override},
        collection="overrides",
        kind="override",
    ),
    _route(
        "/api/v2/chats/config/personal-model-overrides",
        {"GET": overrides.get_toggle, "PUT": overrides.put_toggle},
        collection="toggle",
    ),
    *(_route(template, methods) for template, methods in people.ROUTES),
    *(_route(template, methods) for template, methods in access.ROUTES),
)


def _route_not_found() -> ApiError:
    return ApiError(404, "Route not found.")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it.

    `status` is 0 for a dropped connection; header names are lower-cased.
    """

    method: str
    path: str
    query: dict[str, str]
    body: Any = field(repr=False)  # parsed JSON, None when empty or not JSON; may hold secrets
    status: int
    headers: dict[str, str] = field(repr=False)


@dataclass
class Fault:
    """An injected failure for the next `times` requests that match."""

    times: int
    method: str | None
    path_prefix: str | None
    status: int | None
    retry_after: float | str | None
    body: Any
    drop_connection: bool
    delay: float | None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (
            self.path_prefix is None or path.startswith(self.path_prefix)
        )

    def reply(self, status: int) -> Reply:
        headers = {}
        if self.retry_after is not None:
            retry = self.retry_after
            headers["Retry-After"] = retry if isinstance(retry, str) else format(retry, "g")
        body = self.body
        if body is None:
            body = ApiError(status, f"{HTTPStatus(status).phrase}.", "Injected fault.").body()
        return Reply(status, body, headers)


def _parse_body(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


class FakeCoder:
    """A fake Coder deployment. Use as a context manager, or call start()/stop()."""

    def __init__(self, token: str = "secret-token", *, version: str = "v2.38.0") -> None:
        self.token = token
        self.state = State(version=version)
        self.latency = 0.0
        self.server_errors: list[str] = []  # tracebacks of unexpected handler failures
        self._missing_endpoints: frozenset[str] = frozenset()
        self._drop_fields: dict[str, frozenset[str]] = {}
        self._requests: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> FakeCoder:
        if self._server is not None:
            raise RuntimeError("FakeCoder is already running")
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="fakecoder",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> FakeCoder:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeCoder is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -------------------------------------------------------- configuration

    @property
    def version(self) -> str:
        return self.state.version

    @version.setter
    def version(self, value: str) -> None:
        self.state.version = value

    @property
    def missing_endpoints(self) -> frozenset[str]:
        return self._missing_endpoints

    @missing_endpoints.setter
    def missing_endpoints(self, names: Iterable[str]) -> None:
        missing = frozenset(names)
        if not missing <= COLLECTIONS:
            raise ValueError(f"unknown collections {sorted(missing - COLLECTIONS)}")
        self._missing_endpoints = missing

    @property
    def drop_fields(self) -> dict[str, frozenset[str]]:
        return dict(self._drop_fields)

    @drop_fields.setter
    def drop_fields(self, fields: Mapping[str, Iterable[str]]) -> None:
        if not set(fields) <= DROPPABLE_KINDS:
            raise ValueError(f"unknown kinds {sorted(set(fields) - DROPPABLE_KINDS)}")
        self._drop_fields = {kind: frozenset(names) for kind, names in fields.items()}

    def add_organization(self, name: str, is_default: bool = False) -> str:
        return self.state.add_organization(name, is_default).id

    def as_org_admin(self, *organizations: str, username: str = "ci-bot") -> None:
        """The token becomes an organization admin's: its organizations' models, nothing deployment-wide."""
        with self.state.lock:
            ids = [o.id for o in self.state.organizations.values() if o.name in organizations]
            self.state.permissions = {p.format(org=org) for org in ids for p in access.ORG_ADMIN}
            self.state.username = username

    def seed_default_prices(self, entries: Iterable[dict[str, Any]]) -> None:
        prices.seed_default_prices(self.state, entries)

    @property
    def secrets_seen(self) -> list[str]:
        """Plaintext API keys and bedrock secrets received; the repr hides them."""
        return self.state.secrets_seen

    def inject(
        self,
        status: int | None = None,
        *,
        times: int = 1,
        method: str | None = None,
        path_prefix: str | None = None,
        retry_after: float | str | None = None,
        body: Any = None,
        drop_connection: bool = False,
        delay: float | None = None,
    ) -> None:
        """Fail the next `times` matching requests.

        `status` answers with that status (and `body`, default a Coder error);
        `drop_connection` closes the socket without an answer; `delay` sleeps
        first, then answers with `status` or, without one, handles the request
        normally (the write still happens after the client gave up).
        """
        if status is None and not drop_connection and delay is None:
            raise ValueError("inject needs status, drop_connection or delay")
        if status is not None and drop_connection:
            raise ValueError("status and drop_connection exclude each other")
        if times < 1:
            raise ValueError("times must be at least 1")
        fault = Fault(times, method, path_prefix, status, retry_after, body, drop_connection, delay)
        with self._lock:
            self._faults.append(fault)

    # ------------------------------------------------------------ recording

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def reset_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def count(self, method: str | None = None, path_prefix: str | None = None) -> int:
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method.upper())
            and (path_prefix is None or r.path.startswith(path_prefix))
        )

    # -------------------------------------------------------------- serving

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _dispatch(
        self, method: str, path: str, query: dict[str, str], raw: bytes, token: str | None
    ) -> Reply:
        try:
            route, params = self._match(path)
            handler = route.methods.get(method)
            if handler is None:
                allow = ", ".join(sorted(route.methods))
                return Reply(405, ApiError(405, "Method not allowed.").body(), {"Allow": allow})
            if not route.public:
                self._authenticate(token)
            ignored = self._drop_fields.get(route.kind or "", frozenset())
            request = Request(query, params, raw, ignored)
            with self.state.lock:
                return handler(self.state, request)
        except ApiError as error:
            return Reply(error.status, error.body())
        except Exception:
            self.server_errors.append(traceback.format_exc())
            return Reply(
                500, ApiError(500, "Internal error.", "See FakeCoder.server_errors.").body()
            )

    def _match(self, path: str) -> tuple[Route, dict[str, str]]:
        for route in ROUTES:
            match = route.pattern.fullmatch(path)
            if match is not None:
                if route.collection in self._missing_endpoints:
                    raise _route_not_found()
                return route, match.groupdict()
        raise _route_not_found()

    def _authenticate(self, token: str | None) -> None:
        if token is None:
            raise ApiError(
                401,
                "You must be logged in to use this endpoint.",
                f"Missing the {TOKEN_HEADER} header.",
            )
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            raise ApiError(
                401,
                "You must be logged in to use this endpoint.",
                "The session token is invalid or has expired.",
            )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver listens with a backlog of 5: more clients connecting at once would see their
    # SYNs dropped and retried a second later, which no real Coder does
    request_queue_size = 128

    def __init__(self, coder: FakeCoder) -> None:
        self.coder = coder
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _RequestHandler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        with self._connections_lock:
            self._connections.add(sock)
        return sock, address

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake idle keep-alive handler threads so they close their sockets."""
        with self._connections_lock:
            connections = list(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return  # the client went away; not the server's problem
        self.coder.server_errors.append(traceback.format_exc())


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are written separately
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read `FakeCoder.requests` instead."""

    def _serve(self) -> None:
        coder = self.server.coder
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        split = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        method = self.command

        fault = coder._take_fault(method, split.path)
        if coder.latency:
            time.sleep(coder.latency)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)

        def record(status: int) -> None:
            coder._record(
                RecordedRequest(
                    method,
                    split.path,
                    query,
                    _parse_body(raw),
                    status,
                    {name.lower(): value for name, value in self.headers.items()},
                )
            )

        if fault is not None and fault.drop_connection:
            record(0)
            self.close_connection = True
            return
        if fault is not None and fault.status is not None:
            reply = fault.reply(fault.status)
        elif gateway.handles(split.path):
            headers = {name.lower(): value for name, value in self.headers.items()}
            reply = Reply(*gateway.serve(coder, method, split.path, split.query, raw, headers))
        else:
            reply = coder._dispatch(method, split.path, query, raw, self.headers.get(TOKEN_HEADER))
        record(reply.status)
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        if reply.body is None:
            payload, content_type = b"", None
        elif isinstance(reply.body, str):
            payload = reply.body.encode()
            content_type = reply.headers.pop("Content-Type", "text/plain; charset=utf-8")
        else:
            payload, content_type = json.dumps(reply.body).encode(), "application/json"
        try:
            self.send_response(reply.status)
            if content_type is not None:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
