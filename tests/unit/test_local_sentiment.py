"""Business-aware sentiment of the `local` provider, measured on labelled business e-mails.

The labelled sets in tests/data (one JSON object a line: text, label, kind):

- sentiment_emails.jsonl (49): written before the business rules, as the held-out set.
  First measurement, after tuning on the dev set only: 47/49 = 0.959.
- sentiment_emails_dev.jsonl (32): the rules in backend/providers/bizlexicon.py were
  developed against these.
- sentiment_emails_fresh.jsonl (48): two rounds of 24 written later, each measured once
  before the rules were touched again: 0.708 and 0.750. That is the honest estimate for
  unseen business mail; the other figures are optimistic, since the failures seen there
  led to (general) rules.

scripts/bench_local.py prints the current accuracy on each set.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from backend.providers.local import LocalProvider
from backend.providers.sentiment import BusinessSentiment

DATA = Path(__file__).resolve().parents[1] / "data"
LABELS = {"positive", "negative", "neutral", "mixed"}
SETS = ("sentiment_emails", "sentiment_emails_dev", "sentiment_emails_fresh")


def load(name: str) -> list[dict[str, Any]]:
    lines = (DATA / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def accuracy(scorer: BusinessSentiment, rows: list[dict[str, Any]]) -> float:
    return float(sum(scorer.score(row["text"])["label"] == row["label"] for row in rows) / len(rows))


@pytest.fixture(scope="module")
def scorer() -> BusinessSentiment:
    return BusinessSentiment()


@pytest.mark.parametrize("name", SETS)
def test_labelled_sets_are_well_formed_and_varied(name: str) -> None:
    rows = load(name)
    assert all(set(row) >= {"text", "label"} and row["label"] in LABELS for row in rows)
    assert {row["label"] for row in rows} == LABELS
    assert len({row["text"] for row in rows}) == len(rows)
    assert len({row.get("kind") for row in rows}) >= 8


def test_the_held_out_set_has_at_least_40_varied_emails() -> None:
    rows = load("sentiment_emails")
    assert len(rows) >= 40
    kinds = {row["kind"] for row in rows}
    assert {"price rise", "delay", "complaint", "thanks", "scheduling", "mixed"} <= kinds


def test_accuracy_on_the_held_out_set(scorer: BusinessSentiment) -> None:
    assert accuracy(scorer, load("sentiment_emails")) >= 0.8


def test_accuracy_on_all_labelled_emails(scorer: BusinessSentiment) -> None:
    rows = [row for name in SETS for row in load(name)]
    assert accuracy(scorer, rows) >= 0.8


def test_the_readme_price_rise_is_negative() -> None:
    text = (
        "Hi team, the supplier raised prices by 12% from 1 March. We must decide by Friday "
        "whether to renew the contract with Acme Corp."
    )
    assert LocalProvider(ner_model="none").sentiment(text)["label"] == "negative"


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Our prices will increase by 5% in June.", "negative"),
        ("We will not raise our prices this year.", "positive"),  # VADER's negation still works
        ("Sales grew 20% in the first quarter.", "positive"),
        ("Freight costs fell sharply last month.", "positive"),
        ("Margins dropped again in May.", "negative"),
        ("The invoice is now 60 days overdue.", "negative"),
        ("The launch is postponed to next year.", "negative"),
        ("We finished the migration ahead of schedule.", "positive"),
        ("Please find attached the support contract. Thanks!", "neutral"),  # courtesy only
        ("I hope you are well. The meeting is at 10 in room 3.", "neutral"),
        ("The design is great, but the delivery was two weeks late.", "mixed"),
    ],
)
def test_business_phrases(scorer: BusinessSentiment, text: str, label: str) -> None:
    assert scorer.score(text)["label"] == label


def test_lexicon_changes_stay_on_the_instance() -> None:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    BusinessSentiment()
    assert SentimentIntensityAnalyzer().lexicon["increase"] > 0  # VADER's own, untouched
