"""POST /api/v1/batch: per-row results in order, defaults, dedupe, stats, deadline, throttling.

One bad row never fails the batch; the envelope itself can. Upstream calls are counted
by the mock server, so "answered without a provider call" is a fact, not a guess.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from backend.schemas import BatchItem, BatchResponse
from scripts.mock_llm import MockLLM
from tests.integration.conftest import HEADERS, assert_error

URL = "/api/v1/batch"


def batch(client: FlaskClient, items: Any, **envelope: Any) -> Any:
    return client.post(URL, json={"items": items, **envelope}, headers=HEADERS)


def ok_batch(client: FlaskClient, items: Any, **envelope: Any) -> dict[str, Any]:
    resp = batch(client, items, **envelope)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    data: dict[str, Any] = resp.get_json()
    BatchResponse.model_validate(data)
    assert [r["index"] for r in data["results"]] == list(range(len(items)))
    assert data["request_id"] == resp.headers["X-Request-ID"]
    return data


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_rows_in_order_with_ids_and_per_row_failures(
    make_app: Callable[..., Flask], mock: MockLLM, provider: str
) -> None:
    client = make_app(provider, max_retries=0).test_client()
    items = [
        {"id": "a", "prompt": "First e-mail. It is long."},
        {"id": 2, "prompt": "Broken. [[mock:status=500]]"},
        {"id": "c", "prompt": "I love it, thank you!", "type": "sentiment"},
        {"prompt": "No id here. Really."},
        {"id": "e", "prompt": "Garbage. [[mock:garbage]]"},
        {"id": "f", "prompt": "Meet Alice at Acme.", "type": "entities"},
    ]
    data = ok_batch(client, items)
    rows = data["results"]
    assert [r["id"] for r in rows] == ["a", 2, "c", None, "e", "f"]
    assert [r["ok"] for r in rows] == [True, False, True, True, False, True]
    assert rows[0]["summary"] == "Summary: First e-mail." and rows[0]["type"] == "summary"
    assert rows[1]["error"]["code"] == "provider_error"
    assert rows[2]["result"] == {"label": "positive", "score": 0.8}
    assert rows[3]["summary"] == "Summary: No id here."
    assert rows[4]["error"]["code"] == "provider_error"
    assert {"text": "Alice", "label": "PERSON"} in rows[5]["result"]
    for row in rows:
        if row["ok"]:
            assert row["provider"] == provider and row["cached"] is False
            assert set(row) >= {"summary", "type", "result", "model", "usage"}
        else:
            assert set(row) == {"index", "id", "ok", "error"}
    assert mock.calls() == 6


def test_stats(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    client = make_app(max_retries=0).test_client()
    ok_batch(client, [{"prompt": "Warm the cache. Now."}])
    items = [
        {"prompt": "Warm the cache. Now."},  # cached
        {"prompt": "Fresh one. Here."},
        {"prompt": "Fails. [[mock:status=500]]"},
        {"prompt": ""},  # invalid row
    ]
    data = ok_batch(client, items)
    stats = data["stats"]
    assert {k: stats[k] for k in ("total", "succeeded", "failed", "cached")} == {
        "total": 4,
        "succeeded": 2,
        "failed": 2,
        "cached": 1,
    }
    assert data["results"][0]["cached"] is True
    assert data["results"][0]["usage"] == {"input_tokens": 0, "output_tokens": 0}
    fresh = data["results"][1]["usage"]
    assert stats["usage"] == fresh  # only the row that was paid for counts
    assert fresh["input_tokens"] > 0
    assert isinstance(data["processing_time"], float)


def test_defaults_apply_to_rows_that_omit_a_field(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    client = make_app().test_client()
    items = [
        {"prompt": "Guten Morgen, Team."},
        {"prompt": "Hello team, see you soon.", "language": "fr"},
        {"prompt": "I love this, thank you.", "type": "sentiment"},
        {"prompt": "Meet Alice at Acme.", "type": "entities", "source": "chat"},
    ]
    data = ok_batch(client, items, defaults={"type": "translation", "language": "de", "source": "email"})
    rows = data["results"]
    assert all(r["ok"] for r in rows), rows
    assert rows[0]["type"] == "translation" and rows[0]["result"].startswith("[de] ")
    assert rows[1]["type"] == "translation" and rows[1]["result"].startswith("[fr] ")  # row wins
    assert rows[2]["type"] == "sentiment" and rows[2]["result"]["label"] == "positive"
    assert rows[3]["type"] == "entities"


def test_defaults_source_is_part_of_the_row(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    """A default source changes the prompt sent, so it is part of the cache key too."""
    client = make_app().test_client()
    ok_batch(client, [{"prompt": "Same text. Twice."}], defaults={"source": "email"})
    again = ok_batch(client, [{"prompt": "Same text. Twice."}], defaults={"source": "meeting"})
    assert again["results"][0]["cached"] is False
    hit = ok_batch(client, [{"prompt": "Same text. Twice.", "source": "email"}])
    assert hit["results"][0]["cached"] is True
    assert mock.calls() == 2


def test_translation_default_without_language_fails_those_rows_only(
    make_app: Callable[..., Flask], mock: MockLLM
) -> None:
    client = make_app().test_client()
    items = [{"prompt": "Hallo."}, {"prompt": "Bonjour.", "language": "en"}]
    rows = ok_batch(client, items, defaults={"type": "translation"})["results"]
    assert rows[0]["ok"] is False and rows[0]["error"]["code"] == "invalid_input"
    assert rows[1]["ok"] is True and rows[1]["result"].startswith("[en] ")


@pytest.mark.parametrize(
    "bad_row",
    [
        {"prompt": ""},
        {"prompt": "   "},
        {"prompt": 12},
        {"prompt": None},
        {},
        {"prompt": "ok", "type": "poem"},
        {"prompt": "ok", "language": "xx"},
        {"prompt": "ok", "type": "translation"},
        {"prompt": "ok", "source": "fax"},
        {"prompt": "ok", "colour": "red"},
        {"prompt": "ok", "id": {"nested": True}},
        {"prompt": "ok", "id": 1.5},
        {"prompt": "x" * 4001},
    ],
)
def test_row_validation_error_fails_that_row_only(
    make_app: Callable[..., Flask], mock: MockLLM, bad_row: dict[str, Any]
) -> None:
    client = make_app().test_client()
    items = [
        {"prompt": "Before. Yes.", "id": 1},
        {"id": "bad", **bad_row},
        {"prompt": "After. Yes.", "id": 3},
    ]
    if "id" in bad_row:
        items[1] = bad_row
    rows = ok_batch(client, items)["results"]
    assert rows[0]["ok"] is True and rows[2]["ok"] is True
    assert rows[1]["ok"] is False
    assert rows[1]["error"]["code"] == "invalid_input"
    assert rows[1]["error"]["details"]
    if "id" not in bad_row:
        assert rows[1]["id"] == "bad"
    assert mock.calls() == 2


@pytest.mark.parametrize("bad_row", ["just a string", 42, None, ["a", "list"], True])
def test_row_that_is_not_an_object_fails_that_row_only(
    make_app: Callable[..., Flask], mock: MockLLM, bad_row: Any
) -> None:
    client = make_app().test_client()
    rows = ok_batch(client, [{"prompt": "Fine. Yes."}, bad_row, {"prompt": "Also fine. Yes."}])["results"]
    assert [r["ok"] for r in rows] == [True, False, True]
    assert rows[1]["error"]["code"] == "invalid_input"
    assert rows[1]["id"] is None


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "invalid_input"),
        ({"items": []}, "invalid_input"),
        ({"items": None}, "invalid_input"),
        ({"items": "prompt"}, "invalid_input"),
        ({"items": {"prompt": "x"}}, "invalid_input"),
        ({"prompt": "not a batch"}, "invalid_input"),
        ({"items": [{"prompt": "x"}], "extra": 1}, "invalid_input"),
        ({"items": [{"prompt": "x"}], "defaults": {"type": "poem"}}, "invalid_input"),
        ({"items": [{"prompt": "x"}], "defaults": {"prompt": "not a default"}}, "invalid_input"),
        ({"items": [{"prompt": "x"}], "defaults": "summary"}, "invalid_input"),
        ({"items": [{"prompt": "x"}], "defaults": {"language": "xx"}}, "invalid_input"),
    ],
)
def test_bad_envelope_is_400(
    make_app: Callable[..., Flask], mock: MockLLM, body: dict[str, Any], code: str
) -> None:
    client = make_app().test_client()
    assert_error(client.post(URL, json=body, headers=HEADERS), 400, code)
    assert mock.calls() == 0


@pytest.mark.parametrize(
    ("data", "code"),
    [('{"items": [', "invalid_json"), ("", "invalid_json"), ('[{"prompt": "x"}]', "invalid_input")],
)
def test_malformed_envelope(make_app: Callable[..., Flask], data: str, code: str) -> None:
    client = make_app().test_client()
    assert_error(client.post(URL, data=data, content_type="application/json", headers=HEADERS), 400, code)


def test_batch_needs_a_token(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    client = make_app().test_client()
    resp = client.post(URL, json={"items": [{"prompt": "x"}]}, headers={"Origin": HEADERS["Origin"]})
    assert_error(resp, 401, "unauthorized")


def test_too_many_items(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    client = make_app(batch_max_items=5).test_client()
    assert ok_batch(client, [{"prompt": f"Row {i}."} for i in range(5)])["stats"]["total"] == 5
    calls = mock.calls()
    body = assert_error(batch(client, [{"prompt": f"Row {i}."} for i in range(6)]), 413, "too_many_items")
    assert "5" in body["error"]["message"]
    assert mock.calls() == calls


def test_health_reports_the_batch_limit(make_app: Callable[..., Flask]) -> None:
    assert make_app(batch_max_items=7).test_client().get("/api/v1/health").get_json()["batch_max_items"] == 7


# ------------------------------------------------------------------ dedupe


def test_identical_rows_cost_one_upstream_call(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    client = make_app().test_client()
    items = [{"id": i, "prompt": "The very same e-mail. Every row."} for i in range(10)]
    data = ok_batch(client, items)
    assert mock.calls() == 1
    rows = data["results"]
    assert all(r["ok"] for r in rows)
    assert [r["id"] for r in rows] == list(range(10))
    assert len({r["summary"] for r in rows}) == 1
    paid = [r for r in rows if r["usage"]["input_tokens"] > 0]
    assert len(paid) == 1  # usage counted once
    assert data["stats"]["usage"] == paid[0]["usage"]
    assert data["stats"]["succeeded"] == 10


def test_rows_differing_in_whitespace_are_duplicates(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    client = make_app().test_client()
    items = [
        {"prompt": "Same  text.\nHere."},
        {"prompt": " Same text. Here. "},
        {"prompt": "Same text. Here."},
    ]
    assert all(r["ok"] for r in ok_batch(client, items)["results"])
    assert mock.calls() == 1


def test_rows_differing_in_task_are_not_duplicates(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    client = make_app().test_client()
    items = [
        {"prompt": "Same text. Here."},
        {"prompt": "Same text. Here.", "type": "keywords"},
        {"prompt": "Same text. Here.", "type": "translation", "language": "de"},
        {"prompt": "Same text. Here.", "type": "translation", "language": "fr"},
    ]
    rows = ok_batch(client, items)["results"]
    assert all(r["ok"] for r in rows)
    assert mock.calls() == 4


def test_duplicate_of_a_failing_row_fails_too(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    client = make_app(max_retries=0).test_client()
    items = [{"prompt": "Bad. [[mock:status=500]]"}] * 3
    rows = ok_batch(client, items)["results"]
    assert [r["ok"] for r in rows] == [False, False, False]
    assert mock.calls() == 1


def test_second_identical_batch_is_all_cached(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    client = make_app().test_client()
    items = [{"prompt": f"Row number {i}. Done."} for i in range(4)]
    ok_batch(client, items)
    assert mock.calls() == 4
    data = ok_batch(client, items)
    assert mock.calls() == 4
    assert data["stats"]["cached"] == 4
    assert all(r["cached"] for r in data["results"])
    assert data["stats"]["usage"] == {"input_tokens": 0, "output_tokens": 0}


# ------------------------------------------------------------------ deadline and throttling


def test_deadline_cuts_slow_rows_and_keeps_fast_ones(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    app = make_app(batch_timeout=1.0, request_timeout=5, max_retries=0)
    client = app.test_client()
    items = [
        {"id": "fast1", "prompt": "Quick one. Yes."},
        {"id": "slow1", "prompt": "Slow one. [[mock:delay=3]]"},
        {"id": "fast2", "prompt": "Another quick one. Yes."},
        {"id": "slow2", "prompt": "Slow two. [[mock:delay=3]]"},
    ]
    rows = ok_batch(client, items)["results"]
    by_id = {r["id"]: r for r in rows}
    assert by_id["fast1"]["ok"] and by_id["fast2"]["ok"]
    for slow in ("slow1", "slow2"):
        assert by_id[slow]["ok"] is False
        assert by_id[slow]["error"]["code"] == "deadline_exceeded"
    service = app.extensions["flaskllm"].service
    for item in items:
        key = service.key_for(
            BatchItem.model_validate({"prompt": item["prompt"]}, context=service.validation_context)
        )
        cached = service.cache.get(key)
        assert (cached is None) == item["id"].startswith("slow"), item


def test_row_cut_by_the_deadline_says_so_even_when_noticed_late(
    make_app: Callable[..., Flask], mock: MockLLM
) -> None:
    """The pool may notice the deadline after the row's own (deadline-capped) call gave up.

    `wait` is made to return only when every row has finished, as a busy machine would:
    the slow row's provider call, cut at the batch deadline, must still read
    deadline_exceeded (send it again), not provider_timeout (the provider is slow).
    """
    import concurrent.futures

    def late_wait(futures: Any, timeout: float | None = None) -> Any:
        return concurrent.futures.wait(futures)  # every row ends by itself at the deadline

    app = make_app(batch_timeout=1.0, request_timeout=5, max_retries=0)
    app.extensions["flaskllm"].service.wait_for = late_wait  # the service's seam, no patching
    client = app.test_client()
    rows = ok_batch(client, [{"prompt": "Fast. Yes."}, {"prompt": "Slow. [[mock:delay=3]]"}])["results"]
    assert rows[0]["ok"] is True
    assert rows[1]["ok"] is False
    assert rows[1]["error"]["code"] == "deadline_exceeded"


def test_provider_timeout_inside_a_batch_is_still_provider_timeout(
    make_app: Callable[..., Flask], mock: MockLLM
) -> None:
    """REQUEST_TIMEOUT shorter than the batch deadline: the provider was slow, not the batch."""
    client = make_app(batch_timeout=30, request_timeout=1, max_retries=0).test_client()
    rows = ok_batch(client, [{"prompt": "Fast. Yes."}, {"prompt": "Slow. [[mock:delay=3]]"}])["results"]
    assert rows[0]["ok"] is True
    assert rows[1]["error"]["code"] == "provider_timeout"


def test_deadline_rows_are_sent_again_next_time(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    client = make_app(batch_timeout=1.0, request_timeout=5, max_retries=0).test_client()
    slow = [{"prompt": "Slow. [[mock:delay=3]]"}]
    assert ok_batch(client, slow)["results"][0]["error"]["code"] == "deadline_exceeded"
    calls = mock.calls()
    assert ok_batch(client, slow)["results"][0]["ok"] is False
    assert mock.calls() == calls + 1  # not served from a cache: asked again


def test_provider_429_slows_the_pool_instead_of_failing_rows(
    make_app: Callable[..., Flask], mock: MockLLM
) -> None:
    client = make_app(max_retries=1, provider_concurrency=4).test_client()
    items = [
        {"id": i, "prompt": f"Row {i}. [[mock:fail_times=1,status=429,retry_after=0.2]]"} for i in range(6)
    ]
    data = ok_batch(client, items)
    assert all(r["ok"] for r in data["results"]), data["results"]
    assert data["stats"]["succeeded"] == 6
    assert mock.calls() == 12  # each row: one 429, then one success


def test_one_provider_wide_429_is_absorbed(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    client = make_app(max_retries=2, provider_concurrency=2).test_client()
    mock.configure(fail_times=2, status=429, retry_after=0.2)
    data = ok_batch(client, [{"prompt": f"Row {i}. Fine."} for i in range(5)])
    assert all(r["ok"] for r in data["results"]), data["results"]
    assert mock.calls() == 7


def test_local_provider_batch(local_client: FlaskClient) -> None:
    rows = ok_batch(
        local_client,
        [
            {"prompt": "We agreed on the budget. The launch is in May. Thanks."},
            {"prompt": "Translate me.", "type": "translation", "language": "de"},
            {"prompt": "I am very happy with this great result!", "type": "sentiment"},
        ],
    )["results"]
    assert rows[0]["ok"] and rows[0]["provider"] == "local"
    assert rows[1]["ok"] is False and rows[1]["error"]["code"] == "unsupported_by_provider"
    assert rows[2]["ok"] and rows[2]["result"]["label"] in ("positive", "mixed")
