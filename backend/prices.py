"""The price table: USD per million input and output tokens, per model, kept as data.

`backend/prices.toml` ships with the service; PRICES_FILE replaces it. Read once at start-up
and checked then, so a typo stops the server with a clear message instead of pricing every
row at 0. `cost_nano` answers in integer nano-dollars, so the ledger's sums are exact.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_PRICES = Path(__file__).with_name("prices.toml")


@dataclass(frozen=True)
class Price:
    input_per_million: float
    output_per_million: float


class Prices:
    def __init__(self, table: dict[str, Price]) -> None:
        self.table = table
        self._by_length = sorted(table, key=len, reverse=True)

    @classmethod
    def load(cls, path: Path | None = None) -> Prices:
        source = path or DEFAULT_PRICES
        try:
            data: dict[str, Any] = tomllib.loads(source.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"PRICES_FILE {source}: cannot be read as TOML ({exc})") from None
        models = data.get("models")
        if not isinstance(models, dict):
            raise ValueError(f'PRICES_FILE {source}: needs [models."<name>"] tables with input and output')
        table: dict[str, Price] = {}
        for name, entry in models.items():
            try:
                price = Price(float(entry["input"]), float(entry["output"]))
            except (TypeError, KeyError, ValueError):
                raise ValueError(
                    f"PRICES_FILE {source}: model {name!r} needs numbers `input` and `output` "
                    "(USD per million tokens)"
                ) from None
            if price.input_per_million < 0 or price.output_per_million < 0:
                raise ValueError(f"PRICES_FILE {source}: model {name!r} has a negative price")
            table[str(name)] = price
        return cls(table)

    def find(self, model: str) -> Price | None:
        """The model's price: exact name, else the longest listed name it starts with."""
        price = self.table.get(model)
        if price is not None:
            return price
        for name in self._by_length:
            if model.startswith(name):
                return self.table[name]
        return None

    def cost_nano(self, model: str, input_tokens: int, output_tokens: int) -> int | None:
        """Nano-dollars for these tokens, or None when the model has no price.

        USD per million tokens is nano-dollars per 1/1000 token: price * tokens * 1000.
        """
        price = self.find(model)
        if price is None:
            return None
        return round(
            price.input_per_million * input_tokens * 1000 + price.output_per_million * output_tokens * 1000
        )


def usd(nano: int) -> float:
    return round(nano / 1_000_000_000, 9)
