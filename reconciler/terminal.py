"""Terminal conventions decided without printing anything: whether to colour, and which of two
settings wins when one came from the command line and the other from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COLOR_CHOICES = ("auto", "always", "never")


def _set(environ: Mapping[str, str], name: str) -> bool:
    """A variable that is present and not empty (no-color.org: NO_COLOR= means unset)."""
    return bool(environ.get(name, ""))


def _forced(environ: Mapping[str, str]) -> bool:
    """FORCE_COLOR (force-color.org) or CLICOLOR_FORCE, present, non-empty and not `0`/`false`."""
    return any(_set(environ, name) and environ[name].strip().lower() not in ("0", "false")
               for name in ("FORCE_COLOR", "CLICOLOR_FORCE"))


def color_enabled(choice: str | None, stream: Any, environ: Mapping[str, str]) -> bool:
    """Colour on `stream`? In order: `--color always|never` (or RECONCILER_COLOR); NO_COLOR when
    non-empty turns it off; FORCE_COLOR / CLICOLOR_FORCE turn it on; else a terminal that is not
    TERM=dumb."""
    if choice == "always":
        return True
    if choice == "never":
        return False
    if _set(environ, "NO_COLOR"):
        return False
    if _forced(environ):
        return True
    tty = hasattr(stream, "isatty") and stream.isatty()
    return bool(tty) and environ.get("TERM") != "dumb"
