"""The service alone, with the in-process FakeProvider: cache, duplicates, single flight,
the provider budget, deadlines, row errors and cancellation."""

from __future__ import annotations

import threading
import time
from typing import Any

from backend.cache import ResponseCache
from backend.errors import ProviderError
from backend.pacing import ProviderBudget
from backend.providers.base import Completion, Job
from backend.schemas import WebhookRequest
from backend.service import RowPace, Service
from backend.tasks import load_templates
from tests.conftest import make_settings
from tests.fakes.provider import FakeProvider


def service(provider: FakeProvider | None = None, **settings: Any) -> Service:
    config = make_settings(**settings)
    return Service(
        config,
        provider or FakeProvider(),
        load_templates(None),
        ResponseCache(None, ttl=3600, max_entries=1000),
    )


def rows(*texts: str) -> list[dict[str, Any]]:
    return [{"id": i, "prompt": text} for i, text in enumerate(texts)]


def test_an_answer_is_cached_and_the_second_time_free() -> None:
    fake = FakeProvider()
    svc = service(fake)
    first = svc.process(WebhookRequest(prompt="Hello there."))
    again = svc.process(WebhookRequest(prompt="Hello   there."))  # same after normalising
    assert (first.cached, again.cached) == (False, True)
    assert again.body["summary"] == first.body["summary"] == "answer to Hello there."
    assert again.usage.input_tokens == 0 and fake.prompts() == ["Hello there."]


def test_batch_rows_in_order_duplicates_once_bad_rows_alone() -> None:
    fake = FakeProvider()
    answer = service(fake).process_batch([*rows("a one.", "b two.", "a one."), {"prompt": ""}, 7], {})
    results = answer["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert [r["ok"] for r in results] == [True, True, True, False, False]
    assert results[2]["summary"] == results[0]["summary"] and results[2]["usage"]["input_tokens"] == 0
    assert sorted(fake.prompts()) == ["a one.", "b two."]
    assert answer["stats"] == {
        "total": 5,
        "succeeded": 3,
        "failed": 2,
        "cached": 0,
        "usage": {"input_tokens": 4, "output_tokens": 6},
    }


def test_provider_errors_fail_their_row_and_are_not_cached() -> None:
    fake = FakeProvider().enqueue(ProviderError("openai failed (HTTP 500)."))
    svc = service(fake)
    first = svc.process_batch(rows("flaky."), {})["results"][0]
    assert first["ok"] is False and first["error"]["code"] == "provider_error"
    assert svc.process_batch(rows("flaky."), {})["results"][0]["ok"] is True
    assert len(fake.calls) == 2


def test_identical_rows_of_concurrent_batches_are_computed_once() -> None:
    fake = FakeProvider()
    fake.gate = threading.Event()
    svc = service(fake)
    answers: list[dict[str, Any]] = []
    batches = [
        threading.Thread(target=lambda: answers.append(svc.process_batch(rows("same."), {})))
        for _ in range(3)
    ]
    for thread in batches:
        thread.start()
    time.sleep(0.2)
    fake.gate.set()
    for thread in batches:
        thread.join(5)
    assert len(fake.calls) == 1
    assert all(a["results"][0]["ok"] for a in answers) and len(answers) == 3


def test_the_budget_caps_calls_in_flight_and_rows_wait_instead_of_failing() -> None:
    in_flight = 0
    most = 0
    lock = threading.Lock()

    def slow(job: Job) -> str:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        time.sleep(0.02)
        with lock:
            in_flight -= 1
        return "ok"

    fake = FakeProvider(default=slow)
    svc = service(fake, provider_concurrency=3)
    answer = svc.process_batch(rows(*(f"row {i}." for i in range(20))), {})
    assert answer["stats"]["succeeded"] == 20
    assert most == 3


def test_rows_unfinished_at_the_deadline_come_back_as_deadline_exceeded() -> None:
    fake = FakeProvider()
    fake.gate = threading.Event()  # never set: every call hangs until its own timeout
    answer = service(fake, request_timeout=5).process_batch(rows("slow."), {}, timeout=0.2)
    row = answer["results"][0]
    assert row["ok"] is False and row["error"]["code"] == "deadline_exceeded"
    assert fake.timeouts and fake.timeouts[0] <= 0.2  # the call was given what was left
    fake.gate.set()


def test_an_aborted_pace_cancels_rows_as_they_get_a_slot() -> None:
    fake = FakeProvider()
    answer = service(fake).process_batch(rows("a.", "b."), {}, pace=RowPace(abort=lambda: True))
    assert [r["error"]["code"] for r in answer["results"]] == ["cancelled", "cancelled"]
    assert fake.calls == []


def test_a_shared_budget_is_used_as_given() -> None:
    budget = ProviderBudget(4)
    svc = Service(
        make_settings(),
        FakeProvider(),
        load_templates(None),
        ResponseCache(None, ttl=0, max_entries=0),
        budget,
    )
    svc.process(WebhookRequest(prompt="One."))
    assert svc.budget is budget and budget.snapshot()["provider_in_flight"] == 0


def test_a_structured_result_skips_parsing() -> None:
    fake = FakeProvider().enqueue(Completion(text="", model="m", result=["a", "b"]))
    body = service(fake).process(WebhookRequest(prompt="Text.", type="keywords")).body
    assert body["result"] == ["a", "b"] and body["summary"] == "a, b"


def test_the_clock_and_executor_seams_are_used() -> None:
    """A batch runs on the injected executor and reads the injected clock for its deadline."""
    from concurrent.futures import ThreadPoolExecutor

    pools: list[int] = []
    now = [1000.0]

    def executor(workers: int) -> ThreadPoolExecutor:
        pools.append(workers)
        return ThreadPoolExecutor(max_workers=workers)

    def clock() -> float:
        return now[0]

    fake = FakeProvider()
    svc = Service(
        make_settings(request_timeout=7),
        fake,
        load_templates(None),
        ResponseCache(None, 3600, 1000),
        clock=clock,
        executor=executor,
    )
    assert svc.process_batch(rows("a.", "b.", "c."), {})["stats"]["succeeded"] == 3
    assert pools == [3]
    assert fake.timeouts == [7.0, 7.0, 7.0]  # the clock stood still: the whole timeout was left
