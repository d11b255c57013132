"""Wire-level pieces shared by the fake's handlers.

Errors in Coder's `codersdk.Response` shape, the parsed request a handler
receives, the reply it returns, and JSON decoding with Go's `encoding/json`
rules (unknown top-level fields ignored, `null` leaves a field unset, a value
of the wrong type fails the whole request).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

NOT_FOUND_MESSAGE = "Resource not found or you do not have access to this resource"
INVALID_JSON_MESSAGE = "Request body must be valid JSON."


@dataclass(frozen=True)
class FieldError:
    field: str
    detail: str


class ApiError(Exception):
    """An error answer: raised by handlers, rendered as a Coder `Response`."""

    def __init__(
        self,
        status: int,
        message: str,
        detail: str = "",
        validations: list[FieldError] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail
        self.validations = validations or []

    def body(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "detail": self.detail,
            "validations": [{"field": v.field, "detail": v.detail} for v in self.validations],
        }


def not_found() -> ApiError:
    return ApiError(404, NOT_FOUND_MESSAGE)


def invalid_json(detail: str) -> ApiError:
    return ApiError(400, INVALID_JSON_MESSAGE, detail)


def validation_failed(message: str, errors: list[FieldError]) -> ApiError:
    return ApiError(400, message, "\n".join(e.detail for e in errors), errors)


@dataclass
class Reply:
    """What a handler answers. `body` None means no body (204)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    """What a handler sees: query, path parameters, the raw body."""

    query: dict[str, str]
    params: dict[str, str]
    raw_body: bytes
    ignored_fields: frozenset[str] = frozenset()

    def json_object(self, struct: str) -> GoObject:
        """Decode the body into the Go struct `struct`, as httpapi.Read does."""
        if not self.raw_body.strip():
            raise invalid_json("EOF")
        value = parse_json(self.raw_body)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise invalid_json(
                f"json: cannot unmarshal {json_kind(value)} into Go value of type codersdk.{struct}"
            )
        kept = {k: v for k, v in value.items() if k not in self.ignored_fields}
        return GoObject(kept, struct)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"invalid character {name!r} looking for beginning of value")


def parse_json(raw: bytes) -> Any:
    """Parse JSON strictly (no NaN/Infinity, valid UTF-8), or raise a 400."""
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except ValueError as exc:
        raise invalid_json(str(exc)) from None


def json_kind(value: Any) -> str:
    """The JSON type name Go uses in UnmarshalTypeError messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_uuid(text: str) -> str | None:
    """The canonical form of a UUID string, or None when it is not one."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def new_id() -> str:
    return str(uuid.uuid4())


def now() -> str:
    """An RFC 3339 timestamp in UTC, as Go marshals time.Time."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class GoObject:
    """A JSON object read field by field with Go's decoding rules.

    Every getter returns None when the key is absent or `null` (a nil pointer
    in Go) and raises a 400 when the value has the wrong JSON type.
    """

    def __init__(self, data: dict[str, Any], struct: str) -> None:
        self.data = data
        self.struct = struct

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def _typed(self, key: str, go_type: str, accept: Callable[[Any], bool]) -> Any:
        value = self.data.get(key)
        if value is None:
            return None
        if not accept(value):
            raise self.type_error(key, value, go_type)
        return value

    def type_error(self, key: str, value: Any, go_type: str) -> ApiError:
        return invalid_json(
            f"json: cannot unmarshal {json_kind(value)} into Go struct field "
            f"{self.struct}.{key} of type {go_type}"
        )

    def string(self, key: str) -> str | None:
        value: str | None = self._typed(key, "string", lambda v: isinstance(v, str))
        return value

    def boolean(self, key: str) -> bool | None:
        value: bool | None = self._typed(key, "bool", lambda v: isinstance(v, bool))
        return value

    def integer(self, key: str, bits: int = 64) -> int | None:
        limit = 2 ** (bits - 1)
        value: int | None = self._typed(
            key, f"int{bits}", lambda v: is_int(v) and -limit <= v < limit
        )
        return value

    def uuid(self, key: str) -> str | None:
        text = self.string(key)
        if text is None:
            return None
        parsed = parse_uuid(text)
        if parsed is None:
            raise invalid_json(f"invalid UUID length: {len(text)}")
        return parsed

    def strings(self, key: str) -> list[str] | None:
        value: list[str] | None = self._typed(
            key, "[]string", lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v)
        )
        return value

    def string_map(self, key: str) -> dict[str, str] | None:
        value: dict[str, str] | None = self._typed(
            key,
            "map[string]string",
            lambda v: isinstance(v, dict) and all(isinstance(s, str) for s in v.values()),
        )
        return value

    def objects(
        self, key: str, struct: str, ignored: frozenset[str] = frozenset()
    ) -> list[GoObject] | None:
        """A list of objects; `ignored` keys are dropped from each (an older server)."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self.type_error(key, value, f"[]codersdk.{struct}")
        items: list[GoObject] = []
        for item in value:
            if item is None:
                item = {}
            if not isinstance(item, dict):
                raise self.type_error(key, item, f"codersdk.{struct}")
            items.append(GoObject({k: v for k, v in item.items() if k not in ignored}, struct))
        return items
