"""The mock LLM server, driven through the real openai and anthropic SDKs.

Why through the SDKs: the backend's tests trust this server to look exactly like the providers,
so these tests prove the SDKs parse its answers and map its failures to their own exceptions.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from scripts.mock_llm import MockLLM, parse_directives

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server() -> Iterator[MockLLM]:
    with MockLLM() as mock:
        yield mock


@pytest.fixture
def mock(server: MockLLM) -> MockLLM:
    server.reset()
    return server


@pytest.fixture(scope="module")
def oai_client(server: MockLLM) -> openai.OpenAI:
    return openai.OpenAI(api_key="x", base_url=server.openai_base_url, max_retries=0, timeout=5)


@pytest.fixture(scope="module")
def ant_client(server: MockLLM) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="x", base_url=server.url, max_retries=0, timeout=5)


@pytest.fixture
def oai(mock: MockLLM, oai_client: openai.OpenAI) -> openai.OpenAI:
    """The real OpenAI SDK, no retries, pointed at a freshly reset mock."""
    return oai_client


@pytest.fixture
def ant(mock: MockLLM, ant_client: anthropic.Anthropic) -> anthropic.Anthropic:
    return ant_client


def ask(client: openai.OpenAI, user: str, system: str | None = None, **kw: Any) -> str:
    messages: list[Any] = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": user})
    reply = client.chat.completions.create(model="gpt-test", messages=messages, **kw)
    return str(reply.choices[0].message.content)


def ask_claude(client: anthropic.Anthropic, user: str, system: Any = None) -> str:
    extra = {"system": system} if system is not None else {}
    reply = client.messages.create(
        model="claude-test", max_tokens=50, messages=[{"role": "user", "content": user}], **extra
    )
    block = reply.content[0]
    assert block.type == "text"
    return str(block.text)


def http(mock: MockLLM, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(mock.url + path, data=data, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


# --- deterministic answers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("This is unacceptable, I am furious.", {"label": "negative", "score": -0.7}),
        ("Thank you, great work!", {"label": "positive", "score": 0.8}),
        ("The meeting is at noon.", {"label": "neutral", "score": 0.0}),
    ],
)
def test_sentiment(oai: openai.OpenAI, text: str, expected: dict[str, Any]) -> None:
    assert json.loads(ask(oai, text, "Classify the SENTIMENT of the text")) == expected


def test_openai_completion_shape_and_usage(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "a b c"}],
    )
    assert reply.object == "chat.completion" and reply.model == "gpt-4o-mini"
    assert reply.id and reply.created > 0
    choice = reply.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert choice.message.content == "Echo: a b c"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (5, 4)
    assert reply.usage.total_tokens == 9


def test_task_types(oai: openai.OpenAI) -> None:
    text = "Alice from Contoso emailed Bob. Contoso needs the quarterly forecast tomorrow."
    assert json.loads(ask(oai, text, "Extract keywords as JSON")) == [
        "quarterly",
        "forecast",
        "tomorrow",
        "contoso",
        "emailed",
    ]
    assert json.loads(ask(oai, text, "Extract named entities")) == [
        {"text": n, "label": "MISC"} for n in ("Alice", "Contoso", "Bob")
    ]
    assert ask(oai, text, "Summarize this") == ("Summary: Alice from Contoso emailed Bob.")
    assert ask(oai, "Hallo", "Translate the text into de (ISO code)") == "[de] Hallo"
    assert ask(oai, "Hallo", "Translate, language code: fr") == "[fr] Hallo"
    assert ask(oai, "Hallo", "Translate it please") == "[??] Hallo"
    assert ask(oai, "x" * 200, "You are helpful") == "Echo: " + "x" * 120
    # No system message: the task is read from the user text itself.
    assert ask(oai, "sentiment please: I love it") == '{"label": "positive", "score": 0.8}'


def test_path_without_v1_prefix(mock: MockLLM) -> None:
    client = openai.OpenAI(api_key="x", base_url=mock.url, max_retries=0)
    assert ask(client, "hello") == "Echo: hello"
    assert mock.stats()["by_path"] == {"/chat/completions": 1}


def test_anthropic_message(ant: anthropic.Anthropic) -> None:
    reply = ant.messages.create(
        model="claude-x",
        max_tokens=20,
        system="Extract keywords",
        messages=[{"role": "user", "content": "Budget review"}],
    )
    assert (reply.type, reply.role, reply.model) == ("message", "assistant", "claude-x")
    assert reply.stop_reason == "end_turn"
    assert reply.content[0].type == "text" and json.loads(reply.content[0].text) == [
        "budget",
        "review",
    ]
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (4, 2)
    blocks = [{"type": "text", "text": "Rate the sentiment"}]
    assert json.loads(ask_claude(ant, "worst service ever", blocks))["label"] == "negative"


# --- per-request directives ------------------------------------------------------------------


def test_parse_directives() -> None:
    found, text = parse_directives("Hi [[mock:status=429,retry_after=1.5]] there [[mock:drop]]")
    assert found == {"status": 429, "retry_after": 1.5, "mode": "drop"}
    assert text == "Hi there"
    assert parse_directives("[[mock:delay=0.1,reply=a, b]]")[0] == {"delay": 0.1, "reply": "a, b"}


def test_directive_is_stripped_and_reply(oai: openai.OpenAI) -> None:
    assert ask(oai, "hello [[mock:delay=0]] world") == "Echo: hello world"
    assert ask(oai, "x [[mock:reply=exact, with commas]]") == "exact, with commas"


@pytest.mark.parametrize(
    ("status", "oai_exc", "ant_exc"),
    [
        (400, openai.BadRequestError, anthropic.BadRequestError),
        (401, openai.AuthenticationError, anthropic.AuthenticationError),
        (404, openai.NotFoundError, anthropic.NotFoundError),
        (429, openai.RateLimitError, anthropic.RateLimitError),
        (500, openai.InternalServerError, anthropic.InternalServerError),
        (503, openai.InternalServerError, anthropic.InternalServerError),
    ],
)
def test_status_directive(
    oai: openai.OpenAI,
    ant: anthropic.Anthropic,
    status: int,
    oai_exc: type[openai.APIStatusError],
    ant_exc: type[anthropic.APIStatusError],
) -> None:
    with pytest.raises(oai_exc) as err:
        ask(oai, f"row 7 [[mock:status={status}]]")
    assert err.value.status_code == status
    assert set(err.value.response.json()["error"]) == {"message", "type", "param", "code"}
    with pytest.raises(ant_exc) as aerr:
        ask_claude(ant, f"row 7 [[mock:status={status}]]")
    body = aerr.value.response.json()
    assert body["type"] == "error" and set(body["error"]) == {"type", "message"}


def test_retry_after_header(oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    with pytest.raises(openai.RateLimitError) as err:
        ask(oai, "[[mock:status=429,retry_after=2]] hi")
    assert err.value.response.headers["retry-after"] == "2"
    with pytest.raises(anthropic.RateLimitError) as aerr:
        ask_claude(ant, "hi [[mock:status=429, retry_after=0.5]]")
    assert aerr.value.response.headers["retry-after"] == "0.5"


def test_garbage_and_wrong_schema(oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    with pytest.raises((ValueError, openai.APIError)):
        ask(oai, "hi [[mock:garbage]]")
    with pytest.raises((ValueError, anthropic.APIError)):
        ask_claude(ant, "hi [[mock:garbage]]")
    reply = oai.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "[[mock:wrong_schema]]"}]
    )
    assert not reply.choices  # the SDK does not validate: callers must check the shape


def test_drop_is_a_connection_error(oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    with pytest.raises(openai.APIConnectionError):
        ask(oai, "hi [[mock:drop]]")
    with pytest.raises(anthropic.APIConnectionError):
        ask_claude(ant, "hi [[mock:drop]]")
    assert ask(oai, "still serving") == "Echo: still serving"


def test_delay_and_timeout(oai: openai.OpenAI) -> None:
    started = time.monotonic()
    assert ask(oai, "slow [[mock:delay=0.3]]") == "Echo: slow"
    assert time.monotonic() - started >= 0.3
    with pytest.raises(openai.APITimeoutError):
        ask(oai.with_options(timeout=0.2), "slower [[mock:delay=3]]")
    with pytest.raises(openai.APITimeoutError):
        ask(oai.with_options(timeout=0.2), "never [[mock:hang]]")


def test_fail_times_per_prompt(oai: openai.OpenAI, mock: MockLLM) -> None:
    row = "row 3 [[mock:fail_times=2,status=429]]"
    for _ in range(2):
        with pytest.raises(openai.RateLimitError):
            ask(oai, row)
    assert ask(oai, "row 4") == "Echo: row 4"  # other rows are unaffected
    assert ask(oai, row) == "Echo: row 3"
    stats = mock.stats()
    assert stats["calls"] == 4 and sorted(stats["by_prompt"].values()) == [1, 3]
    mock.reset()  # reset also forgets how often a prompt was seen, so it fails again
    with pytest.raises(openai.RateLimitError):
        ask(oai, row)


# --- global config and control endpoints -----------------------------------------------------


def test_global_config(oai: openai.OpenAI, ant: anthropic.Anthropic, mock: MockLLM) -> None:
    mock.configure(status=503, retry_after=1)
    with pytest.raises(openai.InternalServerError) as err:
        ask(oai, "a")
    assert err.value.response.headers["retry-after"] == "1"
    with pytest.raises(anthropic.InternalServerError):
        ask_claude(ant, "a")
    assert ask(oai, "b [[mock:status=200]]") == "Echo: b"  # per-request wins
    mock.configure(status=None, retry_after=None, mode="garbage", fail_times=1)  # partial
    with pytest.raises((ValueError, openai.APIError)):
        ask(oai, "c")
    assert ask(oai, "c") == "Echo: c"  # recovered after one failure
    mock.reset()
    mock.configure(fail_times=2)  # alone: two HTTP 500s, then fine
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            ask(oai, "d")
    assert ask(oai, "d") == "Echo: d"
    mock.configure(latency_ms=150)
    started = time.monotonic()
    ask(oai, "e")
    assert time.monotonic() - started >= 0.15


def test_control_endpoints(oai: openai.OpenAI, mock: MockLLM) -> None:
    assert http(mock, "/_mock/health") == (200, {"ok": True})
    ask(oai, "one")
    status, stats = http(mock, "/_mock/stats")
    assert status == 200 and stats["calls"] == 1
    assert stats["by_path"] == {"/v1/chat/completions": 1}
    assert list(stats["by_prompt"]) == ["7692c3ad3540bb80"]  # sha256("one")[:16]
    status, config = http(mock, "/_mock/config", {"mode": "drop", "latency_ms": 5})
    assert status == 200 and config["mode"] == "drop" and config["latency_ms"] == 5
    with pytest.raises(openai.APIConnectionError):
        ask(oai, "two")
    assert http(mock, "/_mock/config", {"mode": "nonsense"})[0] == 400
    assert http(mock, "/_mock/config", {"colour": "red"})[0] == 400
    assert http(mock, "/_mock/reset", {}) == (200, {"ok": True})
    assert mock.calls() == 0 and mock.stats()["config"]["mode"] == "ok"
    assert http(mock, "/nope")[0] == 404


def test_concurrent_requests(oai: openai.OpenAI, mock: MockLLM) -> None:
    mock.configure(latency_ms=200)
    results: list[str] = []
    threads = [threading.Thread(target=lambda i=i: results.append(ask(oai, f"n{i}"))) for i in range(64)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == sorted(f"Echo: n{i}" for i in range(64))
    assert time.monotonic() - started < 2  # served in parallel, not 64 x 200 ms
    assert mock.calls() == 64


# --- lifecycle -------------------------------------------------------------------------------


def test_stop_and_start_on_same_port() -> None:
    with MockLLM() as mock:
        client = openai.OpenAI(api_key="x", base_url=mock.openai_base_url, max_retries=0)
        assert ask(client, "up") == "Echo: up"  # leaves a keep-alive connection in the pool
        port = mock.port
        started = time.monotonic()
        mock.stop()
        assert time.monotonic() - started < 1
        with pytest.raises(openai.APIConnectionError):
            ask(client, "down")
        mock.start()
        assert mock.port == port
        assert ask(client, "back") == "Echo: back"
        assert mock.calls() == 2  # counters survive a restart


def test_stop_releases_hanging_requests() -> None:
    with MockLLM() as mock:
        client = openai.OpenAI(api_key="x", base_url=mock.openai_base_url, max_retries=0)
        errors: list[Exception] = []

        def hang() -> None:
            try:
                ask(client, "[[mock:hang]]")
            except openai.APIError as exc:
                errors.append(exc)

        thread = threading.Thread(target=hang)
        thread.start()
        time.sleep(0.2)
        mock.stop()
        thread.join(timeout=3)
        assert not thread.is_alive()
        assert isinstance(errors[0], openai.APIConnectionError)


def test_cli_prints_url_and_exits_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "scripts/mock_llm.py", "--port", "0", "--latency-ms", "1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("MOCK_LLM_LISTENING http://127.0.0.1:")
        url = line.split()[1]
        with urllib.request.urlopen(url + "/_mock/health", timeout=5) as resp:
            assert json.loads(resp.read()) == {"ok": True}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert proc.stdout.read() == ""  # exactly one line on stdout
    finally:
        if proc.poll() is None:
            proc.kill()
