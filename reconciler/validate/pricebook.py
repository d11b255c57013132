"""Plan-time price checks: what validation alone cannot know, because it needs the store's price book.

Warnings, each at the manifest line it is about (codes RC5xx):
- RC501 an enabled model has no price anywhere (manifests, the store's custom prices, its price book);
- RC502 an openai-compat model has none: no price book covers openai-compat endpoints;
- RC503 a price in the manifests differs from the store's price book today (the pin no longer follows it);
- RC504 a price in the manifests equals the store's price book (it pins today's price; `pricing: book`
  follows the book instead).
RC503 and RC504 are not said of a Model or PriceCatalog annotated `reconciler/price-pin: "true"` (a pin
on purpose).
"""

from __future__ import annotations

from reconciler.diagnostics import Diagnostic, sort_diagnostics
from reconciler.manifest.model import Manifests
from reconciler.prices import PRICE_FIELDS, from_micros, to_micros
from reconciler.state import PRICE, Record, State

UNPRICEABLE = ("copilot",)  # cannot back models: nothing to price
PIN = "reconciler/price-pin"  # the annotation that says a pin is on purpose: no RC503/RC504


def price_book_diagnostics(manifests: Manifests, desired: State, actual: State) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    types = {p.name: p.type for p in manifests.providers}
    book = actual.default_prices
    for model in manifests.models:
        ptype = types.get(model.provider)
        if ptype is None or ptype in UNPRICEABLE or not model.enabled:
            continue
        key = (ptype, model.model)
        effective = desired.of(PRICE).get(key) or actual.of(PRICE).get(key) or book.get(key)
        if not _any(effective):
            code, why = ("RC502", "no price book covers openai-compat endpoints, so ") if ptype == "openai-compat" \
                else ("RC501", "")
            out.append(model.meta.doc.diagnostic(
                code, f"{ptype}/{model.model} has no price in the manifests, on the server or in the store's price "
                f"book: {why}its usage is costed as zero and invisible to budgets; add spec.pricing",
                ("spec", "model")))
        elif model.pricing and key in book and not _pinned(model.meta.annotations):
            given = {f: to_micros(v) for f, v in model.pricing.items()}
            out.extend(_against_book(model.meta.doc, ("spec", "pricing"), key, given, book[key]))
    pins: dict[int, list[tuple[int, str]]] = {}  # a catalog's entries that equal the book: one warning
    docs = {}
    on_purpose = {id(meta.doc) for meta in manifests.catalogs if _pinned(meta.annotations)}
    for entry in manifests.prices:
        key = (entry.provider, entry.model)
        if key in book and entry.fields and id(entry.doc) not in on_purpose:
            given = {f: to_micros(v) for f, v in entry.fields.items()}
            found = _against_book(entry.doc, ("spec", "prices", entry.index), key, given, book[key])
            if found[0].code == "RC504":
                pins.setdefault(id(entry.doc), []).append((entry.index, "/".join(key)))
                docs[id(entry.doc)] = entry.doc
            else:
                out.extend(found)
    for doc_id, entries in pins.items():
        first = min(entries)[0]
        names = ", ".join(name for _, name in sorted(entries)[:3]) + (", …" if len(entries) > 3 else "")
        out.append(docs[doc_id].diagnostic(
            "RC504", f"{len(entries)} price(s) of this catalog equal the store's price book ({names}): they pin "
            "today's prices and will not follow a change of the book; `pricing: book` on a model follows it",
            ("spec", "prices", first)))
    return sort_diagnostics(out)


def _against_book(doc, path, key, given: dict[str, int | None], booked: Record) -> list[Diagnostic]:  # type: ignore[no-untyped-def]
    differ = [f for f in PRICE_FIELDS if f in given and given[f] != booked.get(f)]
    name = "/".join(key)
    if differ:
        shown = ", ".join(f"{f} {_usd(given[f])} here, {_usd(booked.get(f))} in the book" for f in differ)
        return [doc.diagnostic("RC503", f"the price of {name} differs from the store's price book today ({shown}): "
                               "this pin does not follow the book; the store does not say since when it differs",
                               path)]
    return [doc.diagnostic("RC504", f"the price of {name} equals the store's price book: it pins today's price and "
                           "will not follow a change of the book; `pricing: book` on the model follows it instead",
                           path)]


def _pinned(annotations: dict[str, str]) -> bool:
    return str(annotations.get(PIN, "")).lower() == "true"


def _usd(micros: int | None) -> str:
    return "null" if micros is None else f"${from_micros(micros)}"


def _any(record: Record | None) -> bool:
    return record is not None and any(record.get(f) is not None for f in PRICE_FIELDS)
