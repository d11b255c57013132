"""The `fake_coder` pytest fixture: a running FakeCoder with an org and a price book."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .server import FakeCoder

DEFAULT_ORGANIZATION = "coder"

# A small slice of Coder's embedded default price book (micro-dollars per 1M tokens).
DEFAULT_PRICE_BOOK: list[dict[str, Any]] = [
    {
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "input_price": 3_000_000,
        "output_price": 15_000_000,
        "cache_read_price": 300_000,
        "cache_write_price": 3_750_000,
    },
    {
        "provider": "anthropic",
        "model": "claude-haiku-4-5",
        "input_price": 1_000_000,
        "output_price": 5_000_000,
        "cache_read_price": 100_000,
        "cache_write_price": 1_250_000,
    },
    {
        "provider": "openai",
        "model": "gpt-5",
        "input_price": 1_250_000,
        "output_price": 10_000_000,
        "cache_read_price": 125_000,
        "cache_write_price": None,
    },
    {
        "provider": "openai",
        "model": "gpt-5-mini",
        "input_price": 250_000,
        "output_price": 2_000_000,
        "cache_read_price": 25_000,
        "cache_write_price": None,
    },
]


@pytest.fixture
def fake_coder() -> Iterator[FakeCoder]:
    with FakeCoder() as coder:
        coder.add_organization(DEFAULT_ORGANIZATION, is_default=True)
        coder.seed_default_prices(DEFAULT_PRICE_BOOK)
        yield coder
