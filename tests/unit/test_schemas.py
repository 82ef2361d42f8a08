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
