"""Base-URL rules: what a provider's `base_url` may look like.

`check_base_url` returns (code, message) pairs; the rules pass places them.
Messages never repeat the URL or its path: a URL may carry credentials or
tokens. Only the scheme and the host are named.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

from reconciler.manifest.model import OPENAI_SHAPED

Problem = tuple[str, str]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# well-known host -> the exact OpenAI-compatible path prefix it needs ("*." = any subdomain)
WELL_KNOWN_PREFIXES: dict[str, str] = {
    "api.openai.com": "/v1",
    "*.openai.azure.com": "/openai/v1",
    "generativelanguage.googleapis.com": "/v1beta/openai",
    "openrouter.ai": "/api/v1",
    "ai-gateway.vercel.sh": "/v1",
}
ANTHROPIC_HOST = "api.anthropic.com"
LOOPBACK_NAMES = ("localhost",)
REQUEST_SUFFIXES = ("/chat/completions", "/responses", "/models", "/messages")
GATEWAY_ROUTES = ("/api/v2/aibridge/", "/api/v2/ai-gateway/")
ENCODED_SEPARATORS = ("%2f", "%2e", "%5c")  # '/', '.', '\'
PATH_CODES = ("RC301", "RC307", "RC308", "RC311")  # after these, prefix rules only add noise
APPENDED = "the gateway appends /chat/completions, /responses and /models to it"

_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_HOST_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")  # a top-level label no host name can have


class _Refused(Exception):
    """The URL cannot be analysed further."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.problem: Problem = (code, f"base_url {message}")


@dataclass(frozen=True)
class _Url:
    scheme: str
    host: str  # lower case, no trailing dot, no brackets
    ip: IPAddress | None
    path: str
    userinfo: bool
    query: bool


def check_base_url(url: str, provider_type: str) -> list[Problem]:
    """Every base-URL problem of `url` for a provider of `provider_type`."""
    try:
        parts = _split(url)
    except _Refused as refused:
        return [refused.problem]
    problems = _authority_problems(parts) + _path_problems(parts.path)
    if not any(code in PATH_CODES for code, _ in problems):
        problems += _prefix_problems(parts, provider_type)
    return problems


def plain_http_to_remote(url: str) -> bool:
    """True when `url` is plain http to a host other than a loopback one."""
    try:
        parts = _split(url)
    except _Refused:
        return False
    return parts.scheme == "http" and not _is_loopback(parts)


def _split(url: str) -> _Url:
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise _Refused("RC301", "contains spaces or control characters; remove them")
    if "\\" in url:
        raise _Refused("RC311", "contains a backslash, which clients read as '/'; use '/' only")
    if "://" not in url:
        raise _Refused("RC301", "must be an absolute URL such as https://api.example.com/v1")
    try:
        parts = urlsplit(url)
    except ValueError:
        if not url.isascii():
            raise _Refused("RC311", "has non-ASCII characters that read as delimiters") from None
        raise _Refused("RC301", "cannot be parsed (check an IPv6 address's brackets)") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise _Refused("RC301", f"scheme must be http or https, got {scheme!r}")
    _check_port(parts)
    hostport = parts.netloc.rpartition("@")[2]
    host, ip = _host(parts.hostname or "", bracketed=hostport.startswith("["))
    return _Url(scheme, host, ip, parts.path, "@" in parts.netloc, "?" in url or "#" in url)


def _check_port(parts: SplitResult) -> None:
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise _Refused("RC301", "port must be a number from 1 to 65535")


def _host(hostname: str, bracketed: bool) -> tuple[str, IPAddress | None]:
    host = hostname.removesuffix(".")
    if not host:
        raise _Refused("RC301", "has no host; write it as https://host/path")
    if bracketed:
        try:
            return host, ipaddress.IPv6Address(host)
        except ValueError:
            raise _Refused("RC301", "has an invalid IPv6 address in brackets") from None
    if not host.isascii():
        raise _Refused("RC311", "host has non-ASCII characters, which can imitate another host")
    if "%" in host:
        raise _Refused("RC311", "host is percent-encoded; write the host name plainly")
    try:
        return host, ipaddress.IPv4Address(host)
    except ValueError:
        pass
    labels = host.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        raise _Refused("RC311", f"host {host!r} is an IP address in a non-canonical form")
    for label in labels:
        _check_label(label)
    return host, None


def _check_label(label: str) -> None:
    if label.startswith("xn--"):
        try:
            decoded = label[4:].encode("ascii").decode("punycode")
        except UnicodeError:
            raise _Refused("RC301", "host has an invalid punycode (xn--) label") from None
        if not decoded.isascii():
            raise _Refused("RC311", "host is an IDN (xn--) name, which can imitate another host")
    elif not _HOST_LABEL.fullmatch(label):
        raise _Refused("RC301", "host is not a valid host name (letters, digits, hyphens, dots)")


def _authority_problems(parts: _Url) -> list[Problem]:
    problems = []
    if parts.userinfo:
        message = (
            "base_url must not carry credentials (user-info before '@'): remove them, "
            "put the key in api_keys as a secret reference, and rotate it if it was real"
        )
        problems.append(("RC302", message))
    if parts.query:
        problems.append(("RC303", "base_url must not carry a query (?...) or a fragment (#...)"))
    if parts.scheme == "http" and not _is_loopback(parts):
        message = f"plain http to {parts.host} is unencrypted; use https (http is for loopback)"
        problems.append(("RC304", message))
    return problems


def _is_loopback(parts: _Url) -> bool:
    return parts.host in LOOPBACK_NAMES or (parts.ip is not None and parts.ip.is_loopback)


def _path_problems(path: str) -> list[Problem]:
    problems = []
    if _BAD_PERCENT.search(path):
        problems.append(("RC301", "base_url path has a '%' that does not start a %XX encoding"))
    obfuscation = _obfuscation(path)
    if obfuscation:
        problems.append(("RC311", obfuscation))
    suffix, route = _request_suffix(path), _gateway_route(path)
    if suffix:
        message = f"base_url ends in {suffix}; remove it: the gateway appends request paths itself"
        problems.append(("RC307", message))
    if route:
        message = f"base_url points at a Coder AI Gateway route ({route}); point it upstream"
        problems.append(("RC308", message))
    return problems


def _obfuscation(path: str) -> str:
    """Why the path hides what it is, or "" when it does not."""
    if any(encoded in path.lower() for encoded in ENCODED_SEPARATORS):
        return "base_url path percent-encodes '/', '.' or '\\' (%2F, %2E, %5C); write it plainly"
    if any(segment in (".", "..") for segment in path.split("/")):
        return "base_url path has '.' or '..' segments; write the resolved path"
    revealed = unicodedata.normalize("NFKC", unquote(path))
    hidden = _request_suffix(revealed) or _gateway_route(revealed)
    if revealed != path and hidden and not (_request_suffix(path) or _gateway_route(path)):
        return f"base_url path hides {hidden} behind percent-encoding or look-alike characters"
    return ""


def _request_suffix(path: str) -> str:
    trimmed = path.rstrip("/").lower()
    return next((s for s in REQUEST_SUFFIXES if trimmed.endswith(s)), "")


def _gateway_route(path: str) -> str:
    lowered = path.lower() + "/"
    return next((r.rstrip("/") for r in GATEWAY_ROUTES if r in lowered), "")


def _prefix_problems(parts: _Url, provider_type: str) -> list[Problem]:
    if parts.ip is not None:
        return []
    path = parts.path.rstrip("/")
    if provider_type not in OPENAI_SHAPED:
        if parts.host == ANTHROPIC_HOST and (path.lower() + "/").startswith("/v1/"):
            message = f"base_url on {ANTHROPIC_HOST} must not carry /v1 (the client adds it)"
            return [("RC309", f"{message}; use https://{ANTHROPIC_HOST}")]
        return []
    prefix = _known_prefix(parts.host)
    if prefix is not None and path != prefix:
        message = f"base_url on {parts.host} needs exactly the path {prefix}: {APPENDED}"
        return [("RC305", message)]
    if prefix is None and not path:
        message = f"base_url has no path; OpenAI-compatible upstreams usually need /v1: {APPENDED}"
        return [("RC306", message)]
    return []


def _known_prefix(host: str) -> str | None:
    for pattern, prefix in WELL_KNOWN_PREFIXES.items():
        if host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return prefix
    return None
