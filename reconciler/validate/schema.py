"""The schema pass: each document against its kind's JSON Schema (Draft 2020-12).

jsonschema is the validator of record and writes the messages. For large
runs a compiled validator (fastjsonschema) decides valid/invalid first, and
only the documents it rejects go through jsonschema for their messages.

Messages never repeat a value from the document: a value in the wrong place
may be a secret.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from reconciler.diagnostics import Diagnostic
from reconciler.manifest.loader import KINDS, UNSAFE_CHAR, Document, quoted
from reconciler.manifest.loader import Path as DocPath

SCHEMA_FILES = {kind: f"{kind.lower()}.schema.json" for kind in KINDS}
FAST_PATH_MIN_DOCUMENTS = 200  # below this, compiling costs more than it saves
FAST_PATH_MIN_ITEMS = 200  # ... unless one document is that big (a PriceCatalog's entries)
FAST_PATH_OPTIONS = "use_default=False;"

# the secret positions of a Provider document: a reference belongs there, never a value
SECRET_POSITIONS = (("spec", "api_keys", "*"), ("spec", "settings", "bedrock", "access_key"),
                    ("spec", "settings", "bedrock", "access_key_secret"))
SECRET_LIST = ("spec", "api_keys")  # a value here instead of a list is a secret too
SECRET_SOURCES = ("env", "file")
HEADERS = ("spec", "settings", "upstream_headers")  # their text is checked by rule RC417
_DOLLAR = re.compile(r"(?<!\\)\$")


def schema_dir() -> Path:
    """`reconciler/schemas` inside an installed wheel, else the repository's `schemas/`."""
    packaged = Path(str(resources.files("reconciler"))) / "schemas"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "schemas"


@cache
def load_schema(kind: str) -> dict[str, Any]:
    with open(schema_dir() / SCHEMA_FILES[kind], encoding="utf-8") as fh:
        schema: dict[str, Any] = json.load(fh)
    return schema


@cache
def _validator(kind: str) -> Any:
    from jsonschema import Draft202012Validator, validators

    ecma = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})
    return ecma(load_schema(kind))


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    """`pattern` as JSON Schema means it (ECMA-262): `$` ends the text, where Python's `$` also
    matches before a final newline (so "openai\\n" would pass `^[a-z]+$`). fastjsonschema agrees."""
    from jsonschema import ValidationError

    if validator.is_type(instance, "string") and not _end_anchored(pattern).search(instance):
        yield ValidationError(f"does not match {pattern!r}")


@cache
def _end_anchored(pattern: str) -> re.Pattern[str]:
    return re.compile(_DOLLAR.sub(r"\\Z", pattern))


@cache
def _compiled(kind: str) -> Any:
    """fastjsonschema's validator; its generated code is cached on disk by schema digest."""
    import copy
    import hashlib

    schema = load_schema(kind)
    # the options are part of the key: code generated with other options must not be reused
    digest = hashlib.sha256((FAST_PATH_OPTIONS + json.dumps(schema, sort_keys=True)).encode()).hexdigest()[:16]
    cache_dir = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "reconciler"
    cached = cache_dir / f"schema-{kind.lower()}-{digest}.py"
    try:
        code = cached.read_text(encoding="utf-8")
    except OSError:
        import fastjsonschema

        # a copy: compile rewrites its input; no defaults: the validator must not change the documents
        code = fastjsonschema.compile_to_code(copy.deepcopy(schema), use_default=False)
        _store_quietly(cached, code)
    namespace: dict[str, Any] = {}
    exec(compile(code, str(cached), "exec"), namespace)  # our own schema's generated validator
    entry = re.search(r"^def (\w+)", code, re.MULTILINE)  # the first function validates the root
    if entry is None:
        raise RuntimeError(f"unexpected code generated for the {kind} schema")
    return namespace[entry.group(1)]


def _store_quietly(path: Path, text: str) -> None:
    """A cache that cannot be written is only slower, never an error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


def combined_schema() -> dict[str, Any]:
    """One schema for any manifest document, dispatching on `kind` (for editor settings)."""
    branches = []
    for kind in KINDS:
        schema = load_schema(kind)
        branches.append({
            "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
            "then": {"$ref": schema["$id"]},
        })
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://reconciler.dev/schemas/v1/manifest.schema.json",
        "title": "reconciler manifest",
        "description": "Any reconciler/v1 manifest document: Provider, Model, PriceCatalog, Overrides or Settings.",
        "type": "object",
        "required": ["apiVersion", "kind"],
        "properties": {"kind": {"enum": list(KINDS), "description": "The kind of object the document defines."}},
        "allOf": branches,
        "$defs": {kind: load_schema(kind) for kind in KINDS},
    }


def check_documents(documents: list[Document], fast: bool | None = None) -> tuple[list[Document], list[Diagnostic]]:
    """(the documents that pass, diagnostics for the others). `fast` True runs the compiled
    validator first on every document; by default, on many documents or a big one. Either way the
    outcome is the same: it only decides quickly which documents pass."""
    many = len(documents) >= FAST_PATH_MIN_DOCUMENTS if fast is None else fast
    valid: list[Document] = []
    problems: list[Diagnostic] = []
    for doc in documents:
        own = _plaintext_secrets(doc) + _unsafe_text(doc)  # what JSON Schema cannot say
        if not own and (many or _big(doc)) and _passes_fast(doc):
            valid.append(doc)
            continue
        found = own + _schema_errors(doc)
        if found:
            problems += found
        else:
            valid.append(doc)
    return valid, problems


def _big(doc: Document) -> bool:
    """A document whose size, not the number of documents, makes the compiled validator pay."""
    spec = doc.data.get("spec") if isinstance(doc.data, dict) else None
    prices = spec.get("prices") if isinstance(spec, dict) else None
    return isinstance(prices, list) and len(prices) >= FAST_PATH_MIN_ITEMS


def _passes_fast(doc: Document) -> bool:
    try:
        _compiled(doc.kind)(doc.data)
    except Exception:  # JsonSchemaException, from the generated code's own namespace
        return False
    return True


def _plaintext_secrets(doc: Document) -> list[Diagnostic]:
    """A value where a reference belongs; a reference with other fields (`value:`) counts as one."""
    if doc.kind != "Provider":
        return []
    found = []
    for path, value in _at(doc.data, SECRET_LIST):
        if _is_plaintext(value):
            expected = "a list of secret references such as {env: NAME} or {file: PATH}"
            found.append(doc.diagnostic("RC202", _secret_message(path, expected), path))
    for pattern in SECRET_POSITIONS:
        for path, value in _at(doc.data, pattern):
            if not isinstance(value, dict):
                expected = "a secret reference such as {env: NAME} or {file: PATH}"
            elif any(k not in SECRET_SOURCES for k in value):
                expected = "a secret reference with one field, env or file, and nothing else"
            else:
                continue
            found.append(doc.diagnostic("RC202", _secret_message(path, expected), path))
    return found


def _is_plaintext(value: Any) -> bool:
    return value is not None and not isinstance(value, list | dict)


def _secret_message(path: DocPath, expected: str) -> str:
    return (
        f"{_last(path)} must be {expected}, never the secret itself "
        "(the value is not shown here); if it was a real key, rotate it"
    )


def _unsafe_text(doc: Document) -> list[Diagnostic]:
    """Strings with control characters or bidirectional overrides (the loader flags such documents)."""
    if not doc.unsafe_text:
        return []
    found = []
    for path, is_key, char in _unsafe_strings(doc.data, ()):
        if path[: len(HEADERS)] == HEADERS:
            continue
        what = "key" if is_key else "text"
        message = (
            f"{_last(path)}: the {what} holds U+{ord(char):04X}, a control character or a "
            "bidirectional override, which can hide or disguise text on a screen; remove it"
        )
        found.append(doc.diagnostic("RC201", message, path, key=is_key))
    return found


def _unsafe_strings(data: Any, path: DocPath) -> Iterator[tuple[DocPath, bool, str]]:
    """(path, whether it is a key, the first unsafe character) of each unsafe string in `data`."""
    if isinstance(data, str):
        found = UNSAFE_CHAR.search(data)
        if found:
            yield path, False, found.group()
    elif isinstance(data, dict):
        for key, value in data.items():
            found = UNSAFE_CHAR.search(key)
            if found:
                yield (*path, key), True, found.group()
            yield from _unsafe_strings(value, (*path, key))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from _unsafe_strings(item, (*path, index))


def _at(data: Any, pattern: tuple[str, ...], path: DocPath = ()) -> list[tuple[DocPath, Any]]:
    if not pattern:
        return [(path, data)]
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        items = list(enumerate(data)) if isinstance(data, list) else []
        return [hit for i, item in items for hit in _at(item, rest, (*path, i))]
    if isinstance(data, dict) and head in data:
        return _at(data[head], rest, (*path, head))
    return []


def _reported_as_secret(path: DocPath, error: Any) -> bool:
    """Whether `_plaintext_secrets` already reports this schema error, without the value."""
    if path == SECRET_LIST:
        return _is_plaintext(error.instance)
    at_position = any(
        len(path) == len(pattern) and all(p == "*" or p == q for p, q in zip(pattern, path, strict=True))
        for pattern in SECRET_POSITIONS
    )
    return at_position and (not isinstance(error.instance, dict) or error.validator == "additionalProperties")


def _schema_errors(doc: Document) -> list[Diagnostic]:
    problems = []
    for error in _validator(doc.kind).iter_errors(doc.data):
        path = tuple(error.absolute_path)
        if doc.kind == "Provider" and _reported_as_secret(path, error):
            continue  # reported as RC202, without the value
        if error.validator == "additionalProperties":
            allowed = set(error.schema.get("properties", {}))
            for extra in sorted(k for k in error.instance if k not in allowed):
                hint = difflib.get_close_matches(extra, sorted(allowed), n=1)
                suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
                message = f"unknown field {quoted(extra)}{suggestion}"
                problems.append(doc.diagnostic("RC201", message, (*path, extra), key=True))
            continue
        if "propertyNames" in error.relative_schema_path:  # a key is wrong: point at it
            message = f"key {quoted(error.instance)} in {describe(error)}"
            problems.append(doc.diagnostic("RC201", message, (*path, error.instance), key=True))
            continue
        problems.append(doc.diagnostic("RC201", describe(error), path, key=error.validator == "required"))
    return problems


def describe(error: Any) -> str:
    """A message for a jsonschema error that names the rule, not the value."""
    rule, expected, where = error.validator, error.validator_value, _last(tuple(error.absolute_path))
    subject = where or "the document"
    if rule == "required":  # jsonschema reports each missing field as its own error, named in its message
        missing = [k for k in expected if not isinstance(error.instance, dict) or k not in error.instance]
        if not missing:
            return "missing a required field"
        named = next((k for k in missing if str(error.message).startswith(repr(k))), missing[0])
        return f"{subject} is missing required field {named!r}"
    if rule == "type":
        wanted = " or ".join(expected) if isinstance(expected, list) else expected
        return f"{subject} must be {_article(wanted)}, not {_article(_json_type(error.instance))}"
    if rule == "enum":
        return f"{subject} must be one of: {', '.join(str(v) for v in expected)}"
    if rule == "const":
        return f"{subject} must be {expected!r}"
    if rule == "pattern":
        return f"{subject} must match the pattern {expected}"
    limits = {
        "minimum": "at least", "maximum": "at most", "exclusiveMinimum": "greater than",
        "exclusiveMaximum": "less than",
    }
    if rule in limits:
        return f"{subject} must be {limits[rule]} {expected}"
    sizes = {
        "minLength": ("at least", "characters"), "maxLength": ("at most", "characters"),
        "minItems": ("at least", "items"), "maxItems": ("at most", "items"),
        "minProperties": ("at least", "entries"), "maxProperties": ("at most", "entries"),
    }
    if rule in sizes:
        bound, unit = sizes[rule]
        return f"{subject} must have {bound} {expected} {unit}"
    if rule in ("anyOf", "oneOf"):
        options = [s.get("description") or s.get("type") or "an alternative" for s in expected]
        return f"{subject} must be one of: " + "; ".join(str(o) for o in options)
    return f"{subject} does not satisfy the schema rule {rule!r}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _article(noun: str) -> str:
    return noun if noun == "null" else ("an " if noun[:1] in "aeiou" else "a ") + noun


def _last(path: tuple[str | int, ...]) -> str:
    from reconciler.diagnostics import format_path

    return format_path(path)
