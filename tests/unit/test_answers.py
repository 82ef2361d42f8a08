"""Reading model answers tolerantly and validating them against the row's options."""

from __future__ import annotations

from typing import Any

import pytest

from backend.answers import answer_schema, parse_answer, text_form
from backend.errors import InvalidAnswer, ProviderError

# ------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    "answer",
    [
        '["alpha", "beta", "gamma"]',
        '```json\n["alpha", "beta", "gamma"]\n```',
        '```\n["alpha", "beta", "gamma"]\n```',
        'Here are the keywords:\n["alpha", "beta", "gamma"]\nHope this helps.',
        '{"keywords": ["alpha", "beta", "gamma"]}',
        "- alpha\n- beta\n- gamma",
        "1. alpha\n2) beta\n* gamma",
        "alpha, beta, gamma",
        '"alpha"\n"beta"\n"gamma"',
        '["alpha", " ", "beta", "gamma"]',
    ],
)
def test_string_list_answers(answer: str) -> None:
    assert parse_answer("string_list", answer) == ["alpha", "beta", "gamma"]


def test_string_list_numbers_become_strings() -> None:
    assert parse_answer("string_list", '[2024, 3.5, "q3"]') == ["2024", "3.5", "q3"]


@pytest.mark.parametrize(
    ("answer", "label", "score"),
    [
        ('{"label": "negative", "score": -0.7}', "negative", -0.7),
        ('```json\n{"label": "Positive", "score": 0.9}\n```', "positive", 0.9),
        ('Sure! {"label": "mixed", "score": 0.1} is my answer.', "mixed", 0.1),
        ('{"label": "positive", "score": 7}', "positive", 1.0),  # clamped
        ('{"label": "negative", "score": "very"}', "negative", 0.0),
        ("positive", "positive", 0.5),
        ("Negative.", "negative", -0.5),
        ("neutral (score 0.05)", "neutral", 0.05),
        ("The sentiment is negative, -0.8", "negative", -0.8),
    ],
)
def test_sentiment_answers(answer: str, label: str, score: float) -> None:
    result = parse_answer("sentiment", answer)
    assert result == {"label": label, "score": pytest.approx(score)}
    assert -1 <= result["score"] <= 1


@pytest.mark.parametrize(
    "answer",
    ["", "I cannot tell.", "positive or negative, hard to say", '{"label": "angry", "score": -1}'],
)
def test_unreadable_sentiment_is_a_provider_error(answer: str) -> None:
    with pytest.raises(ProviderError) as info:
        parse_answer("sentiment", answer)
    assert info.value.status == 502


@pytest.mark.parametrize(
    "answer",
    [
        '[{"text": "Acme Corp", "label": "ORG"}, {"text": "Alice", "label": "person"}]',
        '```json\n[{"text": "Acme Corp", "label": "ORG"}, {"text": "Alice", "label": "PERSON"}]\n```',
        '{"entities": [{"text": "Acme Corp", "label": "ORG"}, {"text": "Alice", "label": "PERSON"}]}',
        "- Acme Corp (ORG)\n- Alice (PERSON)",
        "Acme Corp: ORG\nAlice - PERSON",
    ],
)
def test_entity_answers(answer: str) -> None:
    assert parse_answer("entity_list", answer) == [
        {"text": "Acme Corp", "label": "ORG"},
        {"text": "Alice", "label": "PERSON"},
    ]


def test_entity_without_label_is_other_and_empty_text_dropped() -> None:
    assert parse_answer("entity_list", '[{"text": "Bob"}, {"text": " ", "label": "X"}]') == [
        {"text": "Bob", "label": "OTHER"}
    ]


@pytest.mark.parametrize("answer", ["[]", "", "none"])
def test_no_entities_is_an_empty_list(answer: str) -> None:
    assert parse_answer("entity_list", answer) == []


def test_unreadable_entities_are_a_provider_error() -> None:
    with pytest.raises(ProviderError):
        parse_answer("entity_list", "I found some interesting names in there!")


@pytest.mark.parametrize("answer", ["", "   \n  "])
def test_empty_text_is_a_provider_error(answer: str) -> None:
    with pytest.raises(ProviderError):
        parse_answer("text", answer)


def test_text_is_stripped() -> None:
    assert parse_answer("text", "  A summary.\n") == "A summary."


def test_unknown_kind_is_a_provider_error() -> None:
    with pytest.raises(ProviderError):
        parse_answer("html", "<p>")


@pytest.mark.parametrize(
    ("result", "text"),
    [
        ("plain", "plain"),
        (["a", "b"], "a, b"),
        ({"label": "negative", "score": -0.5}, "negative (-0.50)"),
        ([{"text": "Acme", "label": "ORG"}, {"text": "Bob", "label": "PERSON"}], "Acme (ORG); Bob (PERSON)"),
        ([], ""),
    ],
)
def test_text_form_is_always_a_string(result: Any, text: str) -> None:
    assert text_form(result) == text


# ------------------------------------------------------------------ typed answers (formula surface)


@pytest.mark.parametrize(
    "answer",
    ['{"label": "Shipping"}', "shipping", " SHIPPING. ", '```json\n{"label": "shipping"}\n```', '"shipping"'],
)
def test_a_label_answer_is_one_of_the_labels_as_spelt_by_the_caller(answer: str) -> None:
    assert parse_answer("label", answer, labels=["Billing", "Shipping"]) == "Shipping"


def test_a_label_outside_the_labels_is_an_invalid_answer() -> None:
    with pytest.raises(InvalidAnswer, match="not one of the labels"):
        parse_answer("label", '{"label": "refund"}', labels=["billing", "shipping"])


def test_a_record_has_every_field_in_order_as_text() -> None:
    answer = '{"Amount": 120, "due": null, "paid": true, "items": ["a"], "extra": "x"}'
    record = parse_answer("record", answer, fields=["due", "amount", "paid", "items"])
    assert record == {"due": "", "amount": "120", "paid": "true", "items": '["a"]'}
    assert list(record) == ["due", "amount", "paid", "items"]
    assert text_form(record, "record") == 'due: ; amount: 120; paid: true; items: ["a"]'


@pytest.mark.parametrize(
    ("answer", "message"), [('{"due": "x"}', "missing the field 'amount'"), ("no json", "not a JSON")]
)
def test_a_record_missing_a_field_is_an_invalid_answer(answer: str, message: str) -> None:
    with pytest.raises(InvalidAnswer, match=message):
        parse_answer("record", answer, fields=["due", "amount"])


def test_a_string_list_is_cut_to_the_count() -> None:
    assert parse_answer("string_list", '{"items": ["a", "b", "c"]}', count=2) == ["a", "b"]


def test_schemas_are_closed_objects_for_strict_structured_output() -> None:
    assert answer_schema("text") is None
    for kind, extra in [
        ("string_list", {}),
        ("sentiment", {}),
        ("entity_list", {}),
        ("label", {"labels": ["a", "b"]}),
        ("record", {"fields": ["x", "y"]}),
    ]:
        schema = answer_schema(kind, **extra)
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert schema["required"] == list(schema["properties"])
    assert answer_schema("label", labels=["a", "b"])["properties"]["label"]["enum"] == ["a", "b"]
    assert list(answer_schema("record", fields=["x", "y"])["properties"]) == ["x", "y"]
