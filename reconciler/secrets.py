"""Secret references, their resolution, and what a store may keep of a secret.

Plaintext lives only inside `SecretResolver.resolve()`'s return value, for as
long as a store needs it to write. Everything else holds a `Secret`: the
reference (desired side) and the store's *view* of the value (a keyed
fingerprint, Coder's masked form, or nothing for write-only fields).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.errors import SecretError

ENCRYPTION_KEY_ENV = "RECONCILER_ENCRYPTION_KEY"


@dataclass(frozen=True, eq=False)
class Secret:
    """A secret slot. Two slots are equal when their views agree or either cannot tell."""

    ref: str | None = None  # "env:NAME" or "file:PATH" on the desired side
    view: str | None = None  # the store's view of the value; None = cannot tell

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return self.view is None or other.view is None or self.view == other.view

    __hash__ = None  # type: ignore[assignment]

    @property
    def verifiable(self) -> bool:
        return self.view is not None

    def to_json(self) -> Any:
        """References are not secret: render them; a bare view is shown as sensitive."""
        if self.ref is not None:
            source, _, name = self.ref.partition(":")
            return {source: name}
        return "(sensitive)"


def ref_label(reference: Mapping[str, str]) -> str:
    """`{"env": "X"}` -> `"env:X"` (the form plans and messages use)."""
    (source, name), = reference.items()
    return f"{source}:{name}"


class SecretResolver:
    """Reads referenced secrets from the environment or from files (relative to the cwd)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ

    def resolve(self, ref: str) -> str:
        """The plaintext of `ref`; SecretError names the reference, never a value."""
        source, _, name = ref.partition(":")
        if source == "env":
            value = self.environ.get(name)
            if value is None:
                raise SecretError(f"secret reference {ref}: environment variable {name} is not set")
        elif source == "file":
            from reconciler.files import SECRET_FILE_BYTES, read_regular

            try:
                value = read_regular(name, SECRET_FILE_BYTES).decode("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
                raise SecretError(f"secret reference {ref}: cannot read the file: {reason}") from None
            value = value.removesuffix("\n").removesuffix("\r")
        else:
            raise SecretError(f"secret reference {ref}: unknown source {source!r}")
        if not _utf8(value):
            raise SecretError(f"secret reference {ref}: the value is not valid UTF-8 text")
        if not value:
            raise SecretError(f"secret reference {ref}: the secret is empty")
        if value != value.strip():
            raise SecretError(f"secret reference {ref}: the secret has leading or trailing whitespace")
        return value

    def try_resolve(self, ref: str) -> str | None:
        try:
            return self.resolve(ref)
        except SecretError:
            return None


def mask_secret(secret: str) -> str:
    """Coder's MaskSecret: reveal 4/2/1/0 characters at each end by length."""
    n = len(secret)
    reveal = 4 if n >= 20 else 2 if n >= 10 else 1 if n >= 5 else 0
    if n == 0:
        return ""
    if n <= 2 * reveal or reveal == 0:
        return "..."
    return secret[:reveal] + "..." + secret[-reveal:]


def fingerprint(salt: bytes, secret: str) -> str:
    """A keyed fingerprint: tells a changed secret without being reversible or guessable offline."""
    return "hmac-sha256:" + hmac.new(salt, secret.encode(), hashlib.sha256).hexdigest()


class Cipher:
    """AES-256-GCM with a list of keys: the first encrypts, all decrypt."""

    def __init__(self, keys: list[bytes]) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._keys = [(key_id(k), AESGCM(k)) for k in keys]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Cipher:
        environ = os.environ if environ is None else environ
        raw = environ.get(ENCRYPTION_KEY_ENV, "").strip()
        if not raw:
            raise SecretError(
                f"{ENCRYPTION_KEY_ENV} is not set: the store encrypts secrets at rest. "
                "Generate a key with `openssl rand -base64 32`."
            )
        keys = []
        for position, item in enumerate(raw.split(","), 1):
            try:
                key = base64.b64decode(item.strip(), validate=True)
            except (binascii.Error, ValueError):
                key = b""
            if len(key) != 32:
                raise SecretError(
                    f"{ENCRYPTION_KEY_ENV}: key {position} is not 32 bytes of base64 "
                    "(generate one with `openssl rand -base64 32`)"
                )
            keys.append(key)
        return cls(keys)

    @property
    def key_ids(self) -> list[str]:
        return [kid for kid, _ in self._keys]

    def encrypt(self, plaintext: str, context: str) -> str:
        kid, aead = self._keys[0]
        nonce = os.urandom(12)
        sealed = aead.encrypt(nonce, plaintext.encode(), context.encode())
        return f"v1:{kid}:" + base64.b64encode(nonce + sealed).decode()

    def decrypt(self, token: str, context: str) -> str:
        from cryptography.exceptions import InvalidTag

        version, kid, body = (token.split(":", 2) + ["", ""])[:3]
        aead = dict(self._keys).get(kid)
        if version != "v1" or aead is None:
            raise SecretError(
                f"{ENCRYPTION_KEY_ENV} does not hold the key that encrypted this secret "
                f"(key id {kid or 'unknown'}); add that key to the list"
            )
        blob = base64.b64decode(body)
        try:
            return aead.decrypt(blob[:12], blob[12:], context.encode()).decode()
        except InvalidTag:
            raise SecretError(f"a stored secret ({context}) failed authentication: altered or misplaced") from None


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"reconciler-key-id" + key).hexdigest()[:12]


def _utf8(value: str) -> bool:
    """Whether a value read from the environment is text (not bytes the OS could not decode)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


MIN_SECRET_RUN = 8  # a run of this many characters of a secret is redacted wherever it appears


def redact_runs(text: str, secrets: Iterable[str], replacement: str = "(redacted)") -> str:
    """`text` with every run of 8 or more characters of any secret replaced, in the secret's raw,
    JSON-escaped and URL-encoded forms: a server that echoes a key's prefix, or the key inside
    its own JSON, must not put it in an output."""
    from urllib.parse import quote

    grams: set[str] = set()
    for value in secrets:
        if len(value) < MIN_SECRET_RUN:
            continue
        for form in {value, json.dumps(value)[1:-1], quote(value, safe="")}:
            grams.update(form[i:i + MIN_SECRET_RUN] for i in range(len(form) - MIN_SECRET_RUN + 1))
    if not grams or len(text) < MIN_SECRET_RUN:
        return text
    marked = [False] * len(text)
    for i in range(len(text) - MIN_SECRET_RUN + 1):
        if text[i:i + MIN_SECRET_RUN] in grams:
            for j in range(i, i + MIN_SECRET_RUN):
                marked[j] = True
    if not any(marked):
        return text
    out, i = [], 0
    while i < len(text):
        if marked[i]:
            while i < len(text) and marked[i]:
                i += 1
            out.append(replacement)
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


CREDENTIAL_HEADERS = frozenset({
    "api-key", "x-api-key", "x-goog-api-key", "ocp-apim-subscription-key", "authorization",
    "proxy-authorization", "x-auth-token", "x-access-token", "cookie", "x-amz-security-token",
})
_CREDENTIAL_WORDS = ("key", "token", "secret", "auth", "password", "credential", "signature")


def credential_header(name: str) -> bool:
    """A header whose value is a credential: a known one, or a name that says so (api-key,
    x-goog-api-key, Ocp-Apim-Subscription-Key, …-token, …-secret, …auth…)."""
    lower = name.lower()
    return lower in CREDENTIAL_HEADERS or any(word in lower for word in _CREDENTIAL_WORDS)
