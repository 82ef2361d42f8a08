"""The API behind Excel's formula surface (PROMPT, CLASSIFY, EXTRACT, KEYWORDS, a model per
call), through the real openai and anthropic SDKs against the mock, which honours
structured output (OpenAI json_schema, Anthropic forced tool use)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from scripts.mock_llm import MockLLM
from tests.conftest import TOKEN, make_settings

HEADERS = {"X-API-Token": TOKEN}
LABELS = ["billing", "shipping", "complaint", "other"]
PROVIDERS = ["openai", "anthropic"]


def batch(client: FlaskClient, items: list[dict[str, Any]], **defaults: Any) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"items": items}
    if defaults:
        body["defaults"] = defaults
    resp = client.post("/api/v1/batch", json=body, headers=HEADERS)
    assert resp.status_code == 200, resp.get_json()
    rows: list[dict[str, Any]] = resp.get_json()["results"]
    return rows


@pytest.mark.parametrize("provider", PROVIDERS)
def test_classify_answers_only_the_given_labels_through_structured_output(
    make_app: Callable[..., Flask], mock: MockLLM, provider: str
) -> None:
    client = make_app(provider).test_client()
    texts = [f"Mail {n}: the invoice was charged twice, billing please fix." for n in range(5)]
    texts += [f"Mail {n}: where is my parcel?" for n in range(5)]
    rows = batch(client, [{"prompt": t} for t in texts], type="classify", labels=LABELS)
    assert all(r["ok"] for r in rows), rows
    assert [r["result"] for r in rows[:5]] == ["billing"] * 5  # named in the text: chosen
    assert all(r["result"] in LABELS and r["summary"] == r["result"] for r in rows)
    assert mock.stats()["structured"] == 10  # every call asked for the schema


@pytest.mark.parametrize("provider", PROVIDERS)
def test_extract_returns_every_field_in_order(
    make_app: Callable[..., Flask], mock: MockLLM, provider: str
) -> None:
    client = make_app(provider).test_client()
    item = {"prompt": "Order from Ann. Amount: 120 EUR; due: 3 May", "type": "extract"}
    [row] = batch(client, [{**item, "fields": ["due", "amount", "customer"]}])
    assert row["ok"], row
    assert row["result"] == {"due": "3 May", "amount": "120 EUR", "customer": ""}
    assert list(row["result"]) == ["due", "amount", "customer"]
    assert row["summary"] == "due: 3 May; amount: 120 EUR; customer: "


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_answer_outside_the_schema_is_a_clear_row_error(
    make_app: Callable[..., Flask], mock: MockLLM, provider: str
) -> None:
    client = make_app(provider).test_client()
    rows = batch(
        client,
        [
            {"prompt": "Where is it? [[mock:off_schema]]", "type": "classify", "labels": LABELS},
            {"prompt": "Amount: 5 [[mock:off_schema]]", "type": "extract", "fields": ["amount"]},
            {"prompt": "Where is my parcel?", "type": "classify", "labels": LABELS},
        ],
    )
    assert [r["ok"] for r in rows] == [False, False, True]
    assert rows[0]["error"]["code"] == "invalid_answer"
    assert "not one of the labels" in rows[0]["error"]["message"]
    assert rows[1]["error"] == {
        "code": "invalid_answer",
        "message": "The LLM answer is missing the field 'amount'.",
    }
    again = batch(
        client, [{"prompt": "Where is it? [[mock:off_schema]]", "type": "classify", "labels": LABELS}]
    )
    assert again[0]["error"]["code"] == "invalid_answer"  # never cached


def test_keywords_honour_the_count(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    client = make_app().test_client()
    text = "Quarterly forecast meeting about warehouse capacity, shipping delays and pricing."
    rows = batch(
        client, [{"prompt": text, "type": "keywords", "count": 3}, {"prompt": text, "type": "keywords"}]
    )
    assert len(rows[0]["result"]) == 3
    assert 3 < len(rows[1]["result"]) <= 8  # the default count is 8
    assert mock.calls() == 2  # the count is part of the cache key


def test_prompt_takes_an_instruction_over_an_optional_context(
    make_app: Callable[..., Flask], mock: MockLLM
) -> None:
    client = make_app().test_client()
    table = "Region\tSales\nNorth\t10\nSouth\t12"
    rows = batch(
        client,
        [
            {"type": "prompt", "instruction": "Which region sold most?", "prompt": table},
            {"type": "prompt", "instruction": "Name a prime number."},
            {"type": "prompt", "prompt": table},
        ],
    )
    assert rows[0]["ok"] and "Region\tSales" in rows[0]["result"]  # the mock echoes the message
    assert rows[0]["result"].startswith("Echo: Instruction: Which region sold most?")
    assert rows[1]["ok"], rows[1]
    assert rows[2]["error"]["code"] == "invalid_input"
    assert rows[2]["error"]["message"] == "instruction: prompt needs an instruction"


def test_a_model_from_the_allow_list_is_used_and_keyed_apart(
    make_app: Callable[..., Flask], mock: MockLLM
) -> None:
    client = make_app(models="gpt-4o-mini, gpt-4.1").test_client()
    rows = batch(
        client,
        [
            {"prompt": "Same text."},
            {"prompt": "Same text.", "model": "gpt-4o-mini"},
            {"prompt": "Same text.", "model": "gpt-4"},
        ],
    )
    assert [r["model"] for r in rows] == ["gpt-4", "gpt-4o-mini", "gpt-4"]
    assert mock.stats()["by_model"] == {"gpt-4": 1, "gpt-4o-mini": 1}  # naming the default = the default
    resp = client.post("/api/v1/webhook", json={"prompt": "Hi.", "model": "gpt-5"}, headers=HEADERS)
    assert resp.status_code == 400
    assert resp.get_json()["error"]["message"] == "model: must be one of gpt-4, gpt-4o-mini, gpt-4.1"


def test_options_are_keyed_and_options_a_task_does_not_take_are_ignored(
    make_app: Callable[..., Flask], mock: MockLLM
) -> None:
    client = make_app().test_client()
    text = {"prompt": "Where is my parcel?"}
    first = batch(
        client,
        [
            {**text, "type": "classify", "labels": ["a", "b"]},
            {**text, "type": "classify", "labels": ["b", "c"]},
        ],
    )
    assert mock.calls() == 2 and all(r["ok"] for r in first)
    again = batch(client, [{**text, "type": "classify", "labels": ["a", "b"]}])
    assert again[0]["cached"] and mock.calls() == 2
    summaries = batch(
        client, [text, {**text, "labels": ["x", "y"], "fields": ["f"], "instruction": "ignored"}]
    )
    assert [r["cached"] for r in summaries] == [False, False] and summaries[1]["summary"] == summaries[0][
        "summary"
    ]
    assert mock.calls() == 3  # the second row is the first's duplicate: unused options dropped


def test_health_lists_tasks_with_their_needs_models_and_limits(make_app: Callable[..., Flask]) -> None:
    client = make_app(models="gpt-4o-mini").test_client()
    info = client.get("/api/v1/health").get_json()
    tasks = {t["name"]: t for t in info["tasks"]}
    assert tasks["classify"] == {
        "name": "classify",
        "result": "label",
        "takes": ["labels"],
        "needs": ["labels"],
        "supported": True,
    }
    assert tasks["extract"]["needs"] == ["fields"] and tasks["extract"]["result"] == "record"
    assert tasks["prompt"]["needs"] == ["instruction"]
    assert tasks["custom"]["takes"] == ["instruction"] and tasks["custom"]["needs"] == []
    assert tasks["translation"]["needs"] == ["language"]
    assert tasks["keywords"]["takes"] == ["count"] and tasks["keywords"]["needs"] == []
    assert info["models"] == ["gpt-4", "gpt-4o-mini"] and info["default_model"] == "gpt-4"
    assert info["limits"]["max_labels"] == 50 and info["limits"]["max_prompt_length"] == 4000


def test_the_local_provider_answers_what_it_honestly_can(local_client: FlaskClient) -> None:
    info = local_client.get("/api/v1/health").get_json()
    supported = {t["name"] for t in info["tasks"] if t["supported"]}
    assert supported == {"summary", "keywords", "sentiment", "entities"}
    assert info["models"] == ["local-extractive"]
    text = "Sarah from Acme Corp asked about the invoice for the Berlin warehouse project. Thanks, Tom"
    rows = batch(
        local_client,
        [
            {"prompt": text, "type": "keywords", "count": 2},
            {"prompt": text, "type": "entities"},
            {"prompt": text, "type": "classify", "labels": LABELS},
            {"prompt": text, "type": "extract", "fields": ["amount"]},
            {"type": "prompt", "instruction": "Summarise the table."},
        ],
    )
    assert len(rows[0]["result"]) == 2
    assert {"text": "Sarah", "label": "PERSON"} in rows[1]["result"]
    assert [r["error"]["code"] for r in rows[2:]] == ["unsupported_by_provider"] * 3


def test_an_added_task_declares_what_it_takes_through_its_placeholders(tmp_path: Path) -> None:
    from backend import create_app

    path = tmp_path / "extra.toml"
    path.write_text(
        '[priority]\nresult = "label"\nsystem = "Rank the urgency as one of {labels}."\n'
        '[reply]\noptional = ["language"]\nsystem = "Draft a reply in {language}, saying: {instruction}"\n',
        encoding="utf-8",
    )
    client = create_app(make_settings(prompt_templates=path)).test_client()
    tasks = {t["name"]: t for t in client.get("/api/v1/health").get_json()["tasks"]}
    assert tasks["priority"]["needs"] == ["labels"] and not tasks["priority"]["supported"]
    assert tasks["reply"]["takes"] == ["language", "instruction"] and tasks["reply"]["needs"] == [
        "instruction"
    ]
    resp = client.post("/api/v1/webhook", json={"prompt": "Urgent!", "type": "priority"}, headers=HEADERS)
    assert resp.get_json()["error"]["message"] == "labels: priority needs 2 to 50 labels"
