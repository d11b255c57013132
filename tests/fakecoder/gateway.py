"""The AI Gateway's passthrough route of the fake Coder: `/api/v2/ai-gateway/<provider-name>/v1/…`.

As in Coder (enterprise/coderd/aibridge.go mounts the aibridged handler on `/api/v2/ai-gateway/*`;
enterprise/aibridged/http.go authenticates it): the Coder token comes in `Authorization: Bearer`
(or `X-Api-Key`), a request without one answers 400 "no authentication key provided" and a
token Coder does not know 403 "unauthorized", both as plain text. The request then goes to the
named provider's base URL with the first key Coder holds for it, in that type's auth header,
and the upstream's answer comes back as it is. A provider Coder does not have: 404 "route not
supported". Only the unbilled model listing and completions (`--live`) are forwarded.
"""

from __future__ import annotations

import hmac
import re
from typing import Any

PREFIX = "/api/v2/ai-gateway/"
_ROUTE = re.compile(r"/api/v2/ai-gateway/(?P<name>[^/]+)/v1(?P<rest>/models|/chat/completions|/messages)")
FORWARDED_HEADERS = ("anthropic-version", "content-type")


def handles(path: str) -> bool:
    return path.startswith(PREFIX)


def serve(coder: Any, method: str, path: str, query: str, raw: bytes,
          headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
    """(status, body as text, headers: Content-Type says what the text is)."""
    import httpx

    auth = headers.get("authorization", "")
    token = auth[len("Bearer "):].strip() if auth.startswith("Bearer ") else headers.get("x-api-key", "").strip()
    if not token:
        return 400, "no authentication key provided\n", {}
    if not hmac.compare_digest(token.encode(), coder.token.encode()):
        return 403, "unauthorized\n", {}
    match = _ROUTE.fullmatch(path)
    with coder.state.lock:
        provider = None if match is None else next(
            (p for p in coder.state.providers.values() if p.name == match["name"] and not p.deleted and p.enabled),
            None)
        target = None if provider is None else (provider.type, provider.base_url.rstrip("/"),
                                                provider.api_keys[0].secret if provider.api_keys else "")
    if match is None or target is None:
        return 404, f"route not supported: {method} {path}\n", {}
    ptype, base_url, key = target
    root = base_url + "/v1" if ptype == "anthropic" else base_url
    sent = {name: headers[name] for name in FORWARDED_HEADERS if name in headers}
    if ptype == "anthropic":
        sent["x-api-key"] = key
    elif ptype == "azure":
        sent["api-key"] = key
    else:
        sent["Authorization"] = f"Bearer {key}"
    url = root + match["rest"] + (f"?{query}" if query else "")
    try:
        answer = httpx.request(method, url, headers=sent, content=raw or None, timeout=30)
    except httpx.TransportError:
        return 502, {"error": {"message": "upstream unreachable"}}, {}
    kept = {k.title(): v for k, v in answer.headers.items() if k.lower() in ("retry-after", "content-type")}
    return answer.status_code, answer.text, kept
