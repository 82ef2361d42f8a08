"""Request models on their own: limits from the validation context, clear messages."""

from __future__ import annotations

from typing import Any

import pytest

from backend.errors import InvalidInput
from backend.schemas import BatchItem, BatchRequest, JobRequest, WebhookRequest, validate

CONTEXT = {"max_prompt_length": 20, "task_types": ("summary", "keywords", "translation")}


def check(model: Any, data: Any) -> Any:
    return validate(model, data, CONTEXT)


def message(model: Any, data: Any) -> str:
    with pytest.raises(InvalidInput) as caught:
        check(model, data)
    return caught.value.message


def test_defaults_and_normal_values() -> None:
    item = check(WebhookRequest, {"prompt": "Hi there."})
    assert (item.type, item.language, item.source) == ("summary", None, None)
    assert check(WebhookRequest, {"prompt": "Hi.", "source": "email"}).source == "email"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "x" * 21}, "at most 20 characters"),
        ({"prompt": "a\x00b"}, "NUL"),
        ({"prompt": "\ud800"}, "lone surrogate"),
        ({"prompt": "Hi.", "type": "poem"}, "type"),
        ({"prompt": "Hi.", "type": "translation"}, "translation needs a target language"),
        ({"prompt": "Hi.", "language": "xx"}, "language"),
        ({"prompt": "Hi.", "extra": 1}, "extra"),
        ({"prompt": 5}, "prompt"),
    ],
)
def test_bad_items_say_what_is_wrong(data: dict[str, Any], expected: str) -> None:
    assert expected in message(WebhookRequest, data)


def test_a_batch_row_echoes_string_or_integer_ids() -> None:
    assert check(BatchItem, {"prompt": "Hi.", "id": "A2"}).id == "A2"
    assert check(BatchItem, {"prompt": "Hi.", "id": 7}).id == 7
    assert "id" in message(BatchItem, {"prompt": "Hi.", "id": [1]})


@pytest.mark.parametrize("model", [BatchRequest, JobRequest])
def test_envelopes_take_any_rows_but_need_one(model: Any) -> None:
    envelope = check(model, {"items": [{"prompt": "Hi."}, "a bare cell", None]})
    assert len(envelope.items) == 3  # rows are validated one by one later
    assert "items" in message(model, {"items": []})
    assert "items" in message(model, {"items": "x"})
    assert "defaults" in message(model, {"items": [{}], "defaults": {"type": "poem"}})


FORMULAS = {
    "max_prompt_length": 50,
    "task_types": ("summary", "classify", "extract", "prompt", "keywords"),
    "task_specs": {
        "summary": ((), ()),
        "classify": (("labels",), ("labels",)),
        "extract": (("fields",), ("fields",)),
        "prompt": (("instruction",), ("instruction",)),
        "keywords": (("count",), ()),
    },
    "models": ("m-1", "m-2"),
    "default_count": 8,
}


def formula(data: dict[str, Any]) -> Any:
    return validate(WebhookRequest, data, FORMULAS)


def formula_error(data: dict[str, Any]) -> str:
    with pytest.raises(InvalidInput) as caught:
        formula(data)
    return caught.value.message


def test_labels_and_fields_are_trimmed_and_repeats_dropped() -> None:
    item = formula({"prompt": "x", "type": "classify", "labels": [" Billing ", "billing", "Ship  ping"]})
    assert item.labels == ["Billing", "Ship ping"]
    assert formula({"prompt": "x", "type": "extract", "fields": ["a", "A", "b"]}).fields == ["a", "b"]
    assert formula_error({"prompt": "x", "type": "classify", "labels": ["a", "  "]}) == (
        "labels: every label must be a non-empty text"
    )
    assert "at least 2 items" in formula_error({"prompt": "x", "type": "classify", "labels": ["a"]})
    assert formula_error({"prompt": "x", "type": "extract"}) == "fields: extract needs 1 to 20 field names"


def test_count_is_a_json_integer_with_a_default() -> None:
    assert formula({"prompt": "x", "type": "keywords"}).count == 8
    assert formula({"prompt": "x", "type": "keywords", "count": 3.0}).count == 3
    for bad in ("3", True, 2.5):
        assert formula_error({"prompt": "x", "type": "keywords", "count": bad}) == "count: must be an integer"
    assert formula({"prompt": "x", "count": 3}).count is None  # summary takes no count


def test_models_come_from_the_allow_list_exactly() -> None:
    assert formula({"prompt": "x", "model": "m-2"}).model == "m-2"
    assert formula_error({"prompt": "x", "model": " m-2"}) == "model: must be one of m-1, m-2"


def test_only_a_task_that_needs_an_instruction_may_have_no_text() -> None:
    item = formula({"type": "prompt", "instruction": " Name a colour. "})
    assert (item.prompt, item.instruction) == ("", "Name a colour.")
    assert (
        formula_error({"type": "prompt", "instruction": "   "}) == "instruction: prompt needs an instruction"
    )
    assert formula_error({"type": "summary", "instruction": "Be brief."}) == "prompt: must not be empty"
    assert "at most 50" in formula_error({"type": "prompt", "instruction": "x" * 51})
