"""Saved plans: `plan --out FILE` writes one, `apply FILE` applies exactly it or refuses.

The file holds the changes (records with secret references, never values),
the fingerprint of the store state the plan was made against, and an HMAC
over all of it under the plan key, so that a file altered by anyone who lacks
the key (the usual reader of a CI artifact) is refused, as is a changed store.

The plan key: `RECONCILER_PLAN_KEY` (any secret of 32 characters or more),
else one derived from each of `RECONCILER_ENCRYPTION_KEY`'s keys (the first
signs, all verify). With neither, `plan --out` writes an unsigned plan, to
read or keep as an artifact (a pull-request job has no keys), and `apply`
refuses it: an unsigned plan would be a suggestion, not a contract.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import math
import os
import tempfile
from collections.abc import Mapping
from typing import Any

from reconciler import __version__
from reconciler.changes import Change
from reconciler.diagnostics import Diagnostic
from reconciler.errors import OutputError, PlanFileError
from reconciler.plan import FORMAT_VERSION, Plan, PlanOptions

MARKER = "reconciler-plan"


PLAN_KEY_ENV = "RECONCILER_PLAN_KEY"
ENCRYPTION_KEY_ENV = "RECONCILER_ENCRYPTION_KEY"
MIN_PLAN_KEY_CHARS = 32
MAX_PLAN_BYTES = 256 * 1024 * 1024
MAX_NESTING = 64
NO_KEY = (f"saved plans are signed, and no key is set: set {PLAN_KEY_ENV} (a secret of {MIN_PLAN_KEY_CHARS}+ "
          f"characters, the same where the plan is made and where it is applied) or {ENCRYPTION_KEY_ENV}")


def plan_keys(environ: Mapping[str, str] | None = None) -> list[bytes]:
    """The keys that may sign a plan, the signing one first; PlanFileError when none is set."""
    env = os.environ if environ is None else environ
    given = env.get(PLAN_KEY_ENV, "")
    if given:
        if len(given) < MIN_PLAN_KEY_CHARS:
            raise PlanFileError(f"{PLAN_KEY_ENV} is too short: use a secret of {MIN_PLAN_KEY_CHARS} characters or more")
        return [_derive(given)]
    material = [part.strip() for part in env.get(ENCRYPTION_KEY_ENV, "").split(",") if part.strip()]
    if not material:
        raise PlanFileError(NO_KEY)
    return [_derive(part) for part in material]


def _derive(material: str) -> bytes:
    return hmac.new(material.encode("utf-8", "surrogatepass"), b"reconciler saved plan v1", hashlib.sha256).digest()


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _signature(body: dict[str, Any], key: bytes) -> str:
    return "hmac-sha256:" + hmac.new(key, _canonical(body), hashlib.sha256).hexdigest()


def save_plan(plan: Plan, store_url: str, path: str, environ: Mapping[str, str] | None = None) -> bool:
    """Write the plan; signed (True) when a plan key is set, else unsigned (False: apply refuses it)."""
    try:
        key: bytes | None = plan_keys(environ)[0]
    except PlanFileError:
        key = None
    body = {
        "kind": MARKER,
        "format_version": FORMAT_VERSION,
        "tool_version": __version__,
        "store": store_url,
        "state_fingerprint": plan.fingerprint(),
        "options": {
            "prune": plan.options.prune,
            "max_deletes": plan.options.max_deletes,
            "select": list(plan.options.select),
            "rotate_secrets": plan.options.rotate_secrets,
            "target": list(plan.options.target),
        },
        "plan": plan.to_dict(),
        "changes": [c.to_saved() for c in plan.changes],
        "warnings": [d.to_dict() for d in plan.warnings],
    }
    head = {"kind": MARKER, "signature": _signature(body, key) if key else None}  # first: `is_plan_file` reads the head
    ordered = {**head, **{name: _sorted(body[name]) for name in sorted(body) if name not in head}}
    write_atomic(path, json.dumps(ordered, indent=2) + "\n")
    return key is not None


def _sorted(value: Any) -> Any:
    """`value` with the keys of every mapping in sorted order, as `sort_keys` would write them."""
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def is_plan_file(path: str) -> bool:
    if not os.path.isfile(path) or path.endswith((".yaml", ".yml")):
        return False
    with open(path, "rb") as fh:
        head = fh.read(4096)
    return MARKER.encode() in head or (head.lstrip()[:1] == b"{" and (b'"signature"' in head or b'"checksum"' in head))


def load_plan(path: str, environ: Mapping[str, str] | None = None) -> tuple[Plan, str]:
    """(the plan, the store URL it was made for); PlanFileError says why a file is refused."""
    plan, store, _ = _read(path, environ, verify=True)
    return plan, store


def read_saved(path: str, environ: Mapping[str, str] | None = None) -> tuple[Plan, str, str]:
    """(the plan, its store, what is known of its signature) for `show`: no key needed."""
    return _read(path, environ, verify=False)


def _read(path: str, environ: Mapping[str, str] | None, verify: bool) -> tuple[Plan, str, str]:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_PLAN_BYTES + 1)
    except OSError as exc:
        raise PlanFileError(f"{path}: cannot read the plan file: {exc.strerror or exc}") from None
    if len(raw) > MAX_PLAN_BYTES:
        raise PlanFileError(f"{path}: larger than {MAX_PLAN_BYTES // (1024 * 1024)} MiB: not a plan this tool wrote")
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else type(exc).__name__
        raise PlanFileError(f"{path}: not a readable plan file ({reason})") from None
    if not isinstance(body, dict) or body.get("kind") != MARKER:
        raise PlanFileError(f"{path}: not a reconciler plan file")
    recorded = body.pop("signature", None)
    signature = _check_signature(path, body, recorded, environ, verify)
    if _depth(body) > MAX_NESTING:
        raise PlanFileError(f"{path}: malformed plan file (nested too deeply)")
    if body.get("format_version") != FORMAT_VERSION:
        raise PlanFileError(f"{path}: plan format {body.get('format_version')!r} is not supported")
    try:
        options = body["options"]
        plan = Plan(
            changes=[Change.from_saved(c) for c in body["changes"]],
            state_fingerprint=str(body["state_fingerprint"]),
            options=PlanOptions(
                prune=bool(options["prune"]),
                max_deletes=int(options["max_deletes"]),
                select=tuple(_selector_text(s) for s in options["select"]),
                rotate_secrets=bool(options["rotate_secrets"]),
                target=tuple(str(t) for t in options.get("target", [])),
            ),
            unmanaged=[str(u) for u in body["plan"].get("unmanaged", [])],
            not_selected=[str(u) for u in body["plan"].get("not_selected", [])],
            notes=[str(n) for n in body["plan"].get("notes", [])],
            refusal=str(body["plan"].get("refusal", "")),
        )
        plan.warnings = [_diagnostic(d) for d in body.get("warnings", [])]
        plan.sources = {f"{c['kind']}/{c['key']}": _source(c["source"]) for c in body["plan"].get("changes", [])
                        if "source" in c}
        plan.provenance = {f"{c['kind']}/{c['key']}": _last_written(c["last_written"])
                           for c in body["plan"].get("changes", []) if "last_written" in c}
        for change in plan.changes:
            change.check_shape()
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PlanFileError(f"{path}: malformed plan file ({type(exc).__name__}: {str(exc)[:200]})") from None
    return plan, str(body.get("store", "")), signature


def _diagnostic(saved: Any) -> Diagnostic:
    return Diagnostic(str(saved["file"]), int(saved["line"]), int(saved["column"]), str(saved["severity"]),
                      str(saved["code"]), str(saved["message"]), str(saved.get("path", "")))


def _source(saved: Any) -> dict[str, Any]:
    out = {"manifest": str(saved["manifest"]), "file": str(saved["file"]), "line": int(saved["line"])}
    if "detail" in saved:
        out["detail"] = str(saved["detail"])
    if "derived" in saved:
        out["derived"] = [str(name) for name in saved["derived"]]
    return out


def _last_written(saved: Any) -> dict[str, Any]:
    if saved is None:
        return {}
    out = {"apply": int(saved["apply"]), "who": str(saved["who"]), "when": str(saved["when"])}
    if saved.get("commit"):
        out["commit"] = str(saved["commit"])
    return out


def _selector_text(saved: Any) -> str:
    """A selector as saved: its text (older plans saved a [label, value] pair)."""
    if isinstance(saved, list) and len(saved) == 2:
        return f"{saved[0]}={saved[1]}"
    if not isinstance(saved, str):
        raise TypeError(f"a selector is a string, not {type(saved).__name__}")
    return saved


def _check_signature(path: str, body: dict[str, Any], recorded: Any, environ: Mapping[str, str] | None,
                     verify: bool) -> str:
    """What is known of the signature; with `verify`, PlanFileError unless it is valid."""
    if recorded is None:
        if verify:
            raise PlanFileError(f"{path}: the plan is not signed (it was made without a plan key): apply only "
                                f"signed plans; make it again with {PLAN_KEY_ENV} or {ENCRYPTION_KEY_ENV} set")
        return "not signed (apply refuses it)"
    try:
        keys = plan_keys(environ)
    except PlanFileError:
        if verify:
            raise
        return "present, not checked (no key set here)"
    if isinstance(recorded, str) and any(hmac.compare_digest(recorded, _signature(body, key)) for key in keys):
        return "verified"
    if verify:
        raise PlanFileError(
            f"{path}: the plan file's signature does not match: it was altered after it was written, or it was "
            f"signed with another key ({PLAN_KEY_ENV} / {ENCRYPTION_KEY_ENV} must be the same as where it was made)")
    return "does NOT match (altered, or another key): apply refuses it"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_NESTING:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    if isinstance(value, float) and not math.isfinite(value):
        return MAX_NESTING + 1
    return level


def write_atomic(path: str, text: str, mode: int = 0o644, what: str = "") -> None:
    """Write `text` to `path`, as the kind of file that is there allows:

    - a new path or a regular file: via a temporary file and a rename, so readers never see half a
      file (through a symbolic link: the file it points at, and the link stays);
    - a character device or a pipe (`/dev/stdout`, a FIFO): straight into it;
    - anything else (a directory, a socket, a block device): refused, with the reason.
    OSError becomes OutputError, which names the path.
    """
    try:
        _write(path, text, mode)
    except OSError as exc:
        raise OutputError(f"cannot write {what + ' ' if what else ''}{path}: {exc.strerror or exc}") from None


def _write(path: str, text: str, mode: int) -> None:
    import stat

    try:
        info = os.stat(path)  # through a link: /dev/stdout is one, to a pipe or a terminal
    except FileNotFoundError:
        info = None
    if info is not None and (stat.S_ISCHR(info.st_mode) or stat.S_ISFIFO(info.st_mode)):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        return
    if info is not None and not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise OSError(errno.EINVAL, f"it is {kind}")
    target = os.path.realpath(path) if os.path.islink(path) else path  # the file a link points at
    directory = os.path.dirname(os.path.abspath(target))
    os.makedirs(directory, exist_ok=True)
    # The temporary name must not end like the target: collectors that read `*.prom` or `*.json`
    # from a directory (node-exporter's textfile collector) would pick up half a file.
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(target)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
