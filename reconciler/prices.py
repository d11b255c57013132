"""Prices: exact USD-per-1M-tokens decimals <-> integer micro-dollars, and the default price book.

Never through binary floats: a YAML float is read back through its shortest
repr (`3e-06` -> Decimal("0.000003")), which is the decimal the user wrote.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import cache, lru_cache
from importlib import resources
from typing import Any

PRICE_FIELDS = ("input", "output", "cache_read", "cache_write")
API_FIELDS = {f: f"{f}_price" for f in PRICE_FIELDS}  # Coder's names
MICROS = Decimal(1_000_000)


class PriceError(ValueError):
    """A price that is not a non-negative decimal exact to the micro-dollar."""


def to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise PriceError("a price must be a number, not a boolean")
    if isinstance(value, float):  # as written in YAML when a float could not hold it exactly
        text = getattr(value, "text", None)
        value = text.replace("_", "") if isinstance(text, str) else repr(value)
    try:
        number = Decimal(value) if isinstance(value, int | str) else Decimal("NaN")
    except InvalidOperation:
        raise PriceError(f"{value!r} is not a decimal number") from None
    if not number.is_finite():
        raise PriceError("a price must be a finite number")
    if number < 0:
        raise PriceError("a price must not be negative")
    return number


@lru_cache(maxsize=65_536, typed=True)  # typed: 1, 1.0 and True are different inputs
def to_micros(value: Any) -> int | None:
    """USD per 1M tokens (number or decimal string, or None) -> integer micro-dollars."""
    if value is None:
        return None
    micros = to_decimal(value) * MICROS
    if micros != micros.to_integral_value():
        raise PriceError(f"{value} has more than 6 decimal places (finer than a micro-dollar)")
    return int(micros)


def from_book(booked: dict[str, int | None] | None, multiplier: Decimal) -> dict[str, str | None]:
    """`pricing: book` (x multiplier): the book's fields as USD decimals, rounded half-even to the
    micro-dollar. A model the book lacks gets no fields (the plan then warns that it has no price)."""
    if booked is None:
        return {}
    out: dict[str, str | None] = {}
    for name in PRICE_FIELDS:
        micros = booked.get(name)
        scaled = (micros * multiplier).to_integral_value(rounding=ROUND_HALF_EVEN) if micros is not None else None
        out[name] = None if scaled is None else from_micros(int(scaled))
    return out


def from_micros(micros: int | None) -> str | None:
    """Integer micro-dollars -> the shortest exact decimal string ("3", "0.3", "3.75")."""
    if micros is None:
        return None
    text = format(Decimal(micros) / MICROS, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@cache
def default_price_book() -> dict[tuple[str, str], dict[str, int | None]]:
    """The price book bundled with reconciler (Coder's format: micro-dollars per 1M tokens)."""
    raw = resources.files("reconciler").joinpath("data/default_prices.json").read_text()
    return price_book_from_api(json.loads(raw))


def price_book_from_api(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, int | None]]:
    return {
        (row["provider"], row["model"]): {f: row.get(api) for f, api in API_FIELDS.items()}
        for row in rows
    }


def describe_price(record: dict[str, Any] | None) -> str:
    """`input $3, output $15 per 1M tokens`; `no price` for none at all."""
    if not record or all(record.get(name) is None for name in PRICE_FIELDS):
        return "no price"
    shown = [f"{name.replace('_', ' ')} ${from_micros(record[name])}" for name in PRICE_FIELDS
             if record.get(name) is not None]
    return ", ".join(shown) + " per 1M tokens"
