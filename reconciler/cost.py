"""cost: re-price a deployment's recorded usage under today's prices and under a plan's prices.

Pure. Money is exact: prices are integer micro-dollars per 1M tokens, costs are
`Decimal` micro-dollars (tokens x price / 1,000,000), never floats.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from reconciler.state import PRICE, Record, State

FORMAT_VERSION = "1"
TOKEN_FIELDS = ("input", "output", "cache_read", "cache_write")
MILLION = Decimal(1_000_000)
CENT = Decimal("0.01")


@dataclass
class Line:
    """The usage of one model of one provider in one organization, priced three ways."""

    organization: str
    provider: str
    provider_type: str
    model: str
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOKEN_FIELDS, 0))
    recorded: Decimal = Decimal(0)  # what the deployment recorded, in micro-dollars
    today: Decimal = Decimal(0)  # re-priced at the store's current prices
    proposed: Decimal = Decimal(0)  # re-priced at the prices the plan would set
    unpriced_today: int = 0  # tokens with no price at today's prices (costed as zero)
    unpriced_proposed: int = 0
    price_source_today: str = ""
    price_source_proposed: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "organization": self.organization, "provider": self.provider, "provider_type": self.provider_type,
            "model": self.model, "tokens": dict(self.tokens), "recorded_micros": str(self.recorded),
            "today_micros": str(self.today), "proposed_micros": str(self.proposed),
            "unpriced_tokens_today": self.unpriced_today, "unpriced_tokens_proposed": self.unpriced_proposed,
            "price_source_today": self.price_source_today, "price_source_proposed": self.price_source_proposed,
        }


@dataclass(frozen=True)
class Totals:
    recorded: Decimal
    today: Decimal
    proposed: Decimal
    unpriced_today: int
    unpriced_proposed: int

    @property
    def delta(self) -> Decimal:
        return self.proposed - self.today

    def percent(self) -> Decimal | None:
        if self.today == 0:
            return None
        return (self.delta * 100 / self.today).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)

    def to_dict(self) -> dict[str, Any]:
        percent = self.percent()
        return {"recorded_micros": str(self.recorded), "today_micros": str(self.today),
                "proposed_micros": str(self.proposed), "delta_micros": str(self.delta),
                "delta_percent": None if percent is None else str(percent),
                "unpriced_tokens_today": self.unpriced_today, "unpriced_tokens_proposed": self.unpriced_proposed}


@dataclass(frozen=True)
class CostReport:
    since: str
    until: str
    lines: tuple[Line, ...]
    note: str = ""  # why there is nothing to report, when there is not

    def totals(self, lines: Iterable[Line] | None = None) -> Totals:
        chosen = list(self.lines if lines is None else lines)
        return Totals(sum((x.recorded for x in chosen), Decimal(0)), sum((x.today for x in chosen), Decimal(0)),
                      sum((x.proposed for x in chosen), Decimal(0)), sum(x.unpriced_today for x in chosen),
                      sum(x.unpriced_proposed for x in chosen))

    def organizations(self) -> dict[str, Totals]:
        names = sorted({x.organization for x in self.lines})
        return {n: self.totals(x for x in self.lines if x.organization == n) for n in names}

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "since": self.since, "until": self.until, "note": self.note,
                "total": self.totals().to_dict(),
                "organizations": {k: v.to_dict() for k, v in self.organizations().items()},
                "models": [x.to_dict() for x in self.lines]}


def reprice(rows: Iterable[Mapping[str, Any]], actual: State, desired: State | None, *,
            since: str, until: str) -> CostReport:
    """Sum the spend rows per organization, provider and model, and price each line.

    `desired` is the manifests' state: its prices replace the store's for the
    keys it names (the plan writes those); None prices the change as no change.
    """
    lines: dict[tuple[str, str, str], Line] = {}
    for row in rows:
        ident = (str(row["organization"]), str(row["provider"]), str(row["model"]))
        line = lines.get(ident)
        if line is None:
            line = lines[ident] = Line(ident[0], ident[1], str(row["provider_type"]), ident[2])
        for name in TOKEN_FIELDS:
            line.tokens[name] += int(row["tokens"].get(name, 0))
        line.recorded += Decimal(int(row["cost_micros"]))
    for line in lines.values():
        key = (line.provider_type, line.model)
        today, line.price_source_today = _current_price(actual, key)
        proposed, line.price_source_proposed = today, line.price_source_today
        if desired is not None and key in desired.of(PRICE):
            proposed, line.price_source_proposed = desired.of(PRICE)[key], "the manifests"
        line.today, line.unpriced_today = _charge(line.tokens, today)
        line.proposed, line.unpriced_proposed = _charge(line.tokens, proposed)
    ordered = tuple(lines[k] for k in sorted(lines))
    return CostReport(since, until, ordered)


def _current_price(actual: State, key: tuple[str, str]) -> tuple[Record | None, str]:
    if key in actual.of(PRICE):
        return actual.of(PRICE)[key], "a custom price"
    booked = actual.default_prices.get(key)
    if booked is not None:
        return booked, "the price book"
    return None, "no price"


def _charge(tokens: Mapping[str, int], price: Record | None) -> tuple[Decimal, int]:
    """(micro-dollars, tokens that had no price)."""
    total, unpriced = Decimal(0), 0
    for name in TOKEN_FIELDS:
        count = tokens.get(name, 0)
        micros = None if price is None else price.get(name)
        if micros is None:
            unpriced += count
            continue
        total += Decimal(count) * Decimal(micros) / MILLION
    return total, unpriced


def dollars(micros: Decimal) -> str:
    """Micro-dollars as dollars and cents: `$12,340.00` (half-even to the cent; only for display)."""
    value = (micros / MILLION).quantize(CENT, rounding=ROUND_HALF_EVEN)
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"
