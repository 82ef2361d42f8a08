"""The retry loop: which failures are retried, Retry-After, the shared throttle, one deadline.

An in-process fake SDK (exception classes shaped like openai's and anthropic's) drives
`call_with_retries`; `time.sleep` is recorded instead of slept, so every wait is checked
exactly and nothing here depends on the machine's speed. The integration tests drive the
real SDKs against the mock server.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import pytest

from backend.errors import InvalidAnswer, ProviderError, ProviderTimeout, RateLimited
from backend.providers import retry
from backend.providers.anthropic import AnthropicProvider
from backend.providers.base import Completion, Job, Usage
from backend.providers.openai import OpenAIProvider
from backend.providers.retry import SDKErrors, Throttle, Timing, call_with_retries, retry_after_seconds


class FakeBase(Exception):
    pass


class FakeConnection(FakeBase):
    pass


class FakeTimeout(FakeConnection):  # as in both SDKs: a timeout is a connection error
    pass


class FakeStatus(FakeBase):
    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status_code = status
        self.response = types.SimpleNamespace(headers=headers or {})


FAKE_SDK = SDKErrors(
    types.SimpleNamespace(
        APITimeoutError=FakeTimeout,
        APIConnectionError=FakeConnection,
        APIStatusError=FakeStatus,
        APIError=FakeBase,
    )
)


class Clock:
    """A fake clock for the retry loop's `Timing` seam: sleeping advances it; no jitter."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.timing = Timing(clock=self.monotonic, sleep=self.sleep, jitter=lambda: 1.0)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def scripted(*outcomes: Any) -> tuple[Callable[[float], str], list[float]]:
    """An attempt function that raises or returns `outcomes` in order; records seconds_left."""
    seen: list[float] = []
    queue = list(outcomes)

    def attempt(seconds_left: float) -> str:
        seen.append(seconds_left)
        outcome = queue.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return str(outcome)

    return attempt, seen


def run(
    clock: Clock,
    attempt: Callable[[float], str],
    *,
    timeout: float = 10.0,
    max_retries: int = 2,
    throttle: Throttle | None = None,
) -> str:
    return call_with_retries(
        attempt,
        errors=FAKE_SDK,
        provider="fake",
        timeout=timeout,
        max_retries=max_retries,
        throttle=throttle or Throttle(clock.timing),
        timing=clock.timing,
    )


def test_success_needs_one_call(clock: Clock) -> None:
    attempt, seen = scripted("ok")
    assert run(clock, attempt) == "ok"
    assert seen == [10.0]
    assert clock.sleeps == []


@pytest.mark.parametrize("status", [500, 502, 503, 529, 409])
def test_transient_status_is_retried_then_succeeds(clock: Clock, status: int) -> None:
    attempt, seen = scripted(FakeStatus(status), "ok")
    assert run(clock, attempt) == "ok"
    assert len(seen) == 2
    assert clock.sleeps == [0.25]  # first back-off step


def test_backoff_doubles(clock: Clock) -> None:
    attempt, _ = scripted(FakeStatus(500), FakeStatus(500), FakeStatus(500), "ok")
    assert run(clock, attempt, max_retries=3) == "ok"
    assert clock.sleeps == [0.25, 0.5, 1.0]


def test_retries_are_bounded(clock: Clock) -> None:
    attempt, seen = scripted(FakeStatus(500), FakeStatus(500), FakeStatus(500), "never")
    with pytest.raises(ProviderError) as info:
        run(clock, attempt, max_retries=2)
    assert len(seen) == 3
    assert info.value.status == 502
    assert "500" in info.value.message


def test_zero_retries_means_one_call(clock: Clock) -> None:
    attempt, seen = scripted(FakeStatus(503), "never")
    with pytest.raises(ProviderError):
        run(clock, attempt, max_retries=0)
    assert len(seen) == 1


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_client_errors_are_not_retried(clock: Clock, status: int) -> None:
    attempt, seen = scripted(FakeStatus(status), "never")
    with pytest.raises(ProviderError):
        run(clock, attempt)
    assert len(seen) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_refused_key_is_a_provider_error_not_retried(clock: Clock, status: int) -> None:
    attempt, seen = scripted(FakeStatus(status), "never")
    with pytest.raises(ProviderError) as info:
        run(clock, attempt)
    assert len(seen) == 1
    assert "key" in info.value.message
    assert info.value.status == 502  # the caller's token was fine; the operator's key was not


@pytest.mark.parametrize("status", [408, 504])
def test_upstream_timeouts_become_provider_timeout(clock: Clock, status: int) -> None:
    attempt, _ = scripted(FakeStatus(status), FakeStatus(status), FakeStatus(status))
    with pytest.raises(ProviderTimeout) as info:
        run(clock, attempt)
    assert info.value.status == 504


def test_sdk_timeout_is_not_retried(clock: Clock) -> None:
    attempt, seen = scripted(FakeTimeout(), "never")
    with pytest.raises(ProviderTimeout):
        run(clock, attempt)
    assert len(seen) == 1


def test_connection_errors_are_retried(clock: Clock) -> None:
    attempt, seen = scripted(FakeConnection(), FakeConnection(), FakeConnection())
    with pytest.raises(ProviderError) as info:
        run(clock, attempt)
    assert len(seen) == 3
    assert "reach" in info.value.message


@pytest.mark.parametrize("exc", [FakeBase("bad body"), ValueError("Expecting value")])
def test_malformed_answers_are_provider_errors(clock: Clock, exc: Exception) -> None:
    attempt, seen = scripted(exc, "never")
    with pytest.raises(ProviderError):
        run(clock, attempt)
    assert len(seen) == 1


def test_retry_after_is_honoured(clock: Clock) -> None:
    attempt, _ = scripted(FakeStatus(429, {"retry-after": "1.5"}), "ok")
    assert run(clock, attempt) == "ok"
    assert clock.sleeps == [1.5]


def test_retry_after_ms_wins(clock: Clock) -> None:
    attempt, _ = scripted(FakeStatus(429, {"retry-after-ms": "200", "retry-after": "9"}), "ok")
    assert run(clock, attempt) == "ok"
    assert clock.sleeps == [pytest.approx(0.2)]


def test_rate_limit_after_retries_is_429_with_retry_after(clock: Clock) -> None:
    attempt, seen = scripted(*[FakeStatus(429, {"retry-after": "2"})] * 3)
    with pytest.raises(RateLimited) as info:
        run(clock, attempt, max_retries=2)
    assert len(seen) == 3
    assert info.value.status == 429
    assert info.value.headers["Retry-After"] == "2"


def test_wait_past_the_deadline_gives_up_at_once(clock: Clock) -> None:
    attempt, seen = scripted(FakeStatus(429, {"retry-after": "30"}), "never")
    with pytest.raises(RateLimited):
        run(clock, attempt, timeout=5)
    assert len(seen) == 1
    assert clock.sleeps == []


def test_each_attempt_gets_only_the_time_left(clock: Clock) -> None:
    attempt, seen = scripted(FakeStatus(500), FakeStatus(500), "ok")
    assert run(clock, attempt, timeout=3.0) == "ok"
    assert seen == [3.0, 2.75, 2.25]  # one deadline for the whole call, back-off included


def test_no_attempt_when_no_time_is_left(clock: Clock) -> None:
    attempt, seen = scripted("never")
    with pytest.raises(ProviderTimeout):
        run(clock, attempt, timeout=0.01)
    assert seen == []


def test_throttle_is_shared_by_later_calls(clock: Clock) -> None:
    throttle = Throttle(clock.timing)
    attempt, _ = scripted(FakeStatus(429, {"retry-after": "2"}), "ok")
    assert run(clock, attempt, throttle=throttle) == "ok"
    assert clock.sleeps == [2.0]
    # another call, made while the provider's "wait" is still in force, waits first
    throttle.hold(1.0)
    other, seen = scripted("ok")
    assert run(clock, other, throttle=throttle) == "ok"
    assert clock.sleeps == [2.0, 1.0]
    assert seen == [9.0]  # the wait counts against that call's deadline


def test_throttle_past_the_deadline_answers_429_without_calling(clock: Clock) -> None:
    throttle = Throttle(clock.timing)
    throttle.hold(60)
    attempt, seen = scripted("never")
    with pytest.raises(RateLimited) as info:
        run(clock, attempt, timeout=5, throttle=throttle)
    assert seen == []
    assert int(info.value.headers["Retry-After"]) >= 1


def test_throttle_wait(clock: Clock) -> None:
    throttle = Throttle(clock.timing)
    assert throttle.wait(deadline=clock.now + 1)  # nothing held: no sleep
    throttle.hold(0.5)
    throttle.hold(0.2)  # a shorter hold never shortens the wait
    assert throttle.wait(deadline=clock.now + 1)
    assert clock.sleeps == [0.5]
    throttle.hold(5)
    assert not throttle.wait(deadline=clock.now + 1)
    assert clock.sleeps == [0.5]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (None, None),
        ({}, None),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
        ({"retry-after-ms": "soon"}, None),
    ],
)
def test_retry_after_seconds(headers: dict[str, str] | None, expected: float | None) -> None:
    assert retry_after_seconds(headers) == expected


def test_backoff_is_capped() -> None:
    assert retry._backoff(0, 1.2) == pytest.approx(0.3)
    assert retry._backoff(20, 1.2) == pytest.approx(9.6)
    assert all(0.8 <= retry.REAL_TIME.jitter() <= 1.2 for _ in range(100))


# ------------------------------------------------------------------ answer shapes (fake clients)

JOB = Job(task="summary", text="t", system="s", user="u")


def fake_client(path: str, response: Any) -> Any:
    """An object where `client.<path>.create(**kw)` returns `response`."""
    obj = types.SimpleNamespace(create=lambda **kw: response)
    for part in reversed(path.split(".")):
        obj = types.SimpleNamespace(**{part: obj})
    return obj


def fake_openai_client(body: Any) -> Any:
    """An object whose `post(path, ...)` answers like the SDK's raw HTTP response with `body`."""
    sent: list[dict[str, Any]] = []

    def post(path: str, **kw: Any) -> Any:
        sent.append({"path": path, **kw})
        return types.SimpleNamespace(json=lambda: body)

    return types.SimpleNamespace(post=post, sent=sent)


def test_openai_answer_is_read() -> None:
    body = {
        "model": "gpt-x",
        "choices": [{"message": {"content": "hello"}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
    }
    client = fake_openai_client(body)
    provider = OpenAIProvider(client, "gpt-4", 0)
    assert provider.complete(JOB, 5) == Completion(text="hello", model="gpt-x", usage=Usage(3, 1))
    (call,) = client.sent
    assert call["path"] == "/chat/completions" and call["body"]["model"] == "gpt-4"
    assert call["body"]["messages"] == [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    assert 0 < call["options"]["timeout"] <= 5


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "choices": [], "usage": None},
        {"model": "m", "usage": None},
        {"model": "m", "choices": [{"message": {"content": None}}]},
        {"model": "m", "choices": [{"message": "text"}]},
        ["not", "an", "object"],
    ],
)
def test_openai_wrong_shapes_are_provider_errors(body: Any) -> None:
    provider = OpenAIProvider(fake_openai_client(body), "gpt-4", 0)
    with pytest.raises(ProviderError):
        provider.complete(JOB, 5)


def test_anthropic_answer_is_read() -> None:
    response = types.SimpleNamespace(
        model="claude-x",
        content=[
            types.SimpleNamespace(type="text", text="hel"),
            types.SimpleNamespace(type="text", text="lo"),
        ],
        usage=types.SimpleNamespace(input_tokens=4, output_tokens=2),
    )
    provider = AnthropicProvider(fake_client("messages", response), "claude", 0)
    assert provider.complete(JOB, 5) == Completion(text="hello", model="claude-x", usage=Usage(4, 2))


@pytest.mark.parametrize(
    "content",
    [[], [types.SimpleNamespace(type="tool_use", id="x")], None],
)
def test_anthropic_wrong_shapes_are_provider_errors(content: Any) -> None:
    response = types.SimpleNamespace(model="m", content=content, usage=None)
    provider = AnthropicProvider(fake_client("messages", response), "claude", 0)
    with pytest.raises(ProviderError):
        provider.complete(JOB, 5)


def test_openai_structured_output_asks_for_the_schema_and_a_refusal_is_an_invalid_answer() -> None:
    schema = {"type": "object", "properties": {"label": {"type": "string", "enum": ["a", "b"]}}}
    job = Job(task="classify", text="t", system="s", user="u", model="gpt-mini", schema=schema)
    refusal = {
        "model": "m",
        "choices": [{"message": {"content": None, "refusal": "I can't help with that."}}],
    }
    client = fake_openai_client(refusal)
    with pytest.raises(InvalidAnswer, match="refused"):
        OpenAIProvider(client, "gpt-4", 0).complete(job, 5)
    (call,) = client.sent
    assert call["body"]["model"] == "gpt-mini"
    assert call["body"]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "classify_answer", "schema": schema, "strict": True},
    }


def test_anthropic_structured_output_reads_the_tool_call_and_ignores_text_around_it() -> None:
    blocks = [
        types.SimpleNamespace(type="text", text="Sure, here it is."),
        types.SimpleNamespace(type="tool_use", input={"label": "b"}),
    ]
    usage = types.SimpleNamespace(input_tokens=4, output_tokens=2)
    response = types.SimpleNamespace(content=blocks, usage=usage, model="claude-x")
    job = Job(task="classify", text="t", system="s", user="u", schema={"type": "object"})
    answer = AnthropicProvider(fake_client("messages", response), "claude", 0).complete(job, 5)
    assert answer.text == '{"label": "b"}' and answer.usage == Usage(4, 2)
