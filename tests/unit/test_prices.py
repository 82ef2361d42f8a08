"""The price table: exact and prefix matches, unknown models unpriced, bad files refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.prices import Prices, usd


def test_shipped_table_prices_known_models_and_leaves_others_unknown() -> None:
    prices = Prices.load()
    assert prices.cost_nano("gpt-4", 1_000_000, 0) == 30 * 10**9
    assert prices.cost_nano("gpt-4", 0, 1_000) == 60 * 10**6
    assert prices.find("gpt-4o-2024-08-06") == prices.table["gpt-4o"]  # longest prefix, not gpt-4
    assert prices.find("gpt-4o-mini-2024-07-18") == prices.table["gpt-4o-mini"]
    assert prices.cost_nano("local-extractive", 500, 500) == 0
    assert prices.cost_nano("mystery-model", 10, 10) is None
    assert usd(1_500_000_000) == 1.5


def test_prices_file_replaces_the_table(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text('[models."house-model"]\ninput = 1.0\noutput = 2.0\n')
    prices = Prices.load(path)
    assert prices.cost_nano("house-model", 1_000, 1_000) == 3_000_000
    assert prices.cost_nano("gpt-4", 1, 1) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not toml [", "cannot be read"),
        ("[other]\nx = 1\n", "needs"),
        ('[models."m"]\ninput = "cheap"\noutput = 1\n', "needs numbers"),
        ('[models."m"]\ninput = -1\noutput = 1\n', "negative"),
    ],
)
def test_a_bad_prices_file_stops_the_start(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        Prices.load(path)
    with pytest.raises(ValueError, match="cannot be read"):
        Prices.load(tmp_path / "missing.toml")
