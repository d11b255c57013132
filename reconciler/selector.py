"""Label selectors as kubectl users type them (`--select`).

    team=platform,tier=frontier   both must hold (AND); `==` is the same as `=`
    team!=platform                the label is absent or has another value
    team in (platform,data)       the label is present with one of the values
    team notin (research)         the label is absent or has none of the values
    team                          the label is present (any value)
    !team                         the label is absent

Several `--select` options are ANDed too. Keys and values are runs of any
characters except whitespace and `,()=!`; spaces around operators and commas
are allowed. A malformed selector raises `SelectorError` saying where.
Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

EQUALS, NOT_EQUALS, IN, NOT_IN, EXISTS, NOT_EXISTS = "=", "!=", "in", "notin", "exists", "!"
_TOKEN = re.compile(r"\s*(==|!=|=|!|,|\(|\)|[^\s,()=!]+)")
_WORD = re.compile(r"[^\s,()=!]+")


class SelectorError(ValueError):
    """A selector that does not parse; the message says what and where."""


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, Any]) -> bool:
        present = self.key in labels
        value = str(labels[self.key]) if present else None
        if self.op == EQUALS:
            return value == self.values[0]
        if self.op == NOT_EQUALS:
            return value != self.values[0]
        if self.op == IN:
            return value in self.values
        if self.op == NOT_IN:
            return value not in self.values
        if self.op == EXISTS:
            return present
        return not present

    def text(self) -> str:
        if self.op in (EQUALS, NOT_EQUALS):
            return f"{self.key}{self.op}{self.values[0]}"
        if self.op in (IN, NOT_IN):
            return f"{self.key} {self.op} ({','.join(self.values)})"
        return self.key if self.op == EXISTS else f"!{self.key}"


@dataclass(frozen=True)
class Selector:
    """Requirements that must all hold; no requirement selects everything."""

    requirements: tuple[Requirement, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.requirements)

    def matches(self, labels: Mapping[str, Any]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    def text(self) -> str:
        return ",".join(r.text() for r in self.requirements)


def parse_all(texts: Iterable[str]) -> Selector:
    """The AND of several selectors (one per `--select`)."""
    requirements: list[Requirement] = []
    for text in texts:
        requirements += parse(text).requirements
    return Selector(tuple(requirements))


def parse(text: str) -> Selector:
    tokens = _tokens(text)
    if not tokens:
        raise SelectorError(f"{text!r}: an empty selector (give e.g. team=platform)")
    parser = _Parser(text, tokens)
    requirements = [parser.requirement()]
    while parser.peek() is not None:
        parser.expect(",")
        requirements.append(parser.requirement())
    return Selector(tuple(requirements))


def _tokens(text: str) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:  # unreachable: every non-space character starts some token
            raise SelectorError(f"{text!r}: unexpected character at column {position + 1}")
        out.append((match.group(1), match.start(1)))
        position = match.end()
    return out


class _Parser:
    def __init__(self, text: str, tokens: list[tuple[str, int]]) -> None:
        self.text, self.tokens, self.at = text, tokens, 0

    def peek(self) -> str | None:
        return self.tokens[self.at][0] if self.at < len(self.tokens) else None

    def take(self) -> str | None:
        token = self.peek()
        self.at += 1
        return token

    def fail(self, wanted: str) -> SelectorError:
        if self.at >= len(self.tokens):
            return SelectorError(f"{self.text!r}: expected {wanted} at the end")
        token, column = self.tokens[self.at]
        return SelectorError(f"{self.text!r}: expected {wanted} at column {column + 1}, found {token!r}")

    def expect(self, token: str) -> None:
        if self.peek() != token:
            raise self.fail(repr(token))
        self.at += 1

    def word(self, what: str) -> str:
        token = self.peek()
        if token is None or not _WORD.fullmatch(token):
            raise self.fail(what)
        self.at += 1
        return token

    def requirement(self) -> Requirement:
        if self.peek() == "!":
            self.take()
            return Requirement(self.word("a label key after '!'"), NOT_EXISTS)
        key = self.word("a label key")
        op = self.peek()
        if op is None or op == ",":
            return Requirement(key, EXISTS)
        if op in ("=", "==", "!="):
            self.take()
            return Requirement(key, NOT_EQUALS if op == "!=" else EQUALS, (self.word("a value"),))
        if op in ("in", "notin"):
            self.take()
            return Requirement(key, IN if op == "in" else NOT_IN, self.values())
        raise self.fail("'=', '==', '!=', 'in', 'notin' or ','")

    def values(self) -> tuple[str, ...]:
        self.expect("(")
        values = [self.word("a value")]
        while self.peek() == ",":
            self.take()
            values.append(self.word("a value"))
        self.expect(")")
        return tuple(values)
