"""What the logs say: one JSON access line per request, and never a prompt or a token.

Two views of the same records: pytest's `caplog` at the root logger (what any handler an
operator adds would receive, httpx's and the SDKs' INFO lines included), and the app's
own JSON handler on the `backend` logger, whose stream is swapped for a buffer so the
exact bytes it would write to stderr can be read back.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from backend import observability
from backend.auth import client_id
from scripts.mock_llm import MockLLM
from tests.conftest import TOKEN
from tests.integration.conftest import ORIGIN

PHRASE = "Zanzibar-Quokka-Marmalade-4417"
WRONG_TOKEN = "wrong-token-Xylophone-99887766554433"
URL = "/api/v1/webhook"


class Logs:
    """Everything logged during a test, as caplog text and as the JSON handler's lines."""

    def __init__(self, caplog: pytest.LogCaptureFixture, stream: io.StringIO) -> None:
        self.caplog = caplog
        self.stream = stream

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line.strip()]

    def everything(self) -> str:
        parts = [self.caplog.text, self.stream.getvalue()]
        for record in self.caplog.records:
            parts.append(json.dumps(vars(record), default=str))  # extras and args too
        return "\n".join(parts)

    def access(self, request_id: str) -> list[dict[str, Any]]:
        return [
            line
            for line in self.json_lines()
            if line["logger"] == "backend.access" and line.get("request_id") == request_id
        ]

    def assert_clean(self, *secrets: str) -> None:
        text = self.everything()
        for secret in (PHRASE, TOKEN, WRONG_TOKEN, *secrets):
            assert secret not in text, f"{secret!r} leaked into the logs"


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[Logs]:
    observability.configure_logging("INFO")
    handler = next(h for h in logging.getLogger("backend").handlers if getattr(h, "_flaskllm", False))
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    old = handler.setStream(buffer)
    caplog.set_level(logging.INFO)  # root: httpx, openai, anthropic, werkzeug records too
    try:
        yield Logs(caplog, buffer)
    finally:
        handler.setStream(old)


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(max_retries=0)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def call(client: FlaskClient, body: Any, *, via: str = "header", token: str = TOKEN, **kwargs: Any) -> Any:
    headers = {"Origin": ORIGIN}
    query = None
    if via == "header":
        headers["X-API-Token"] = token
    elif via == "bearer":
        headers["Authorization"] = f"Bearer {token}"
    else:
        query = {"api_token": token}
    return client.post(kwargs.pop("url", URL), json=body, headers=headers, query_string=query, **kwargs)


def assert_access_line(logs: Logs, resp: Any, status: int, *, authed: bool = True) -> dict[str, Any]:
    request_id = resp.headers["X-Request-ID"]
    lines = logs.access(request_id)
    assert len(lines) == 1, lines
    line = lines[0]
    assert line["level"] == "info"
    assert line["status"] == status == resp.status_code
    assert line["route"] in (URL, "/api/v1/batch")
    assert line["method"] == "POST"
    assert isinstance(line["latency_ms"], (int, float)) and line["latency_ms"] >= 0
    assert line["client"] == (client_id(TOKEN) if authed else None)
    records = [
        r
        for r in logs.caplog.records
        if r.name == "backend.access" and getattr(r, "request_id", None) == request_id
    ]
    assert len(records) == 1  # the same single record reaches the root
    return line


@pytest.mark.parametrize("via", ["header", "bearer", "query"])
def test_success_logs_one_line_without_prompt_or_token(
    logs: Logs, client: FlaskClient, mock: MockLLM, via: str
) -> None:
    resp = call(client, {"prompt": f"Please summarise: {PHRASE}. Thanks.", "type": "keywords"}, via=via)
    assert resp.status_code == 200
    assert mock.calls() == 1
    line = assert_access_line(logs, resp, 200)
    assert line["task"] == "keywords"
    assert line["provider"] == "openai" and line["model"] == "gpt-4"
    assert line["cached"] is False
    assert line["input_tokens"] > 0 and line["output_tokens"] > 0
    logs.assert_clean()


def test_cache_hit_is_logged_as_cached(logs: Logs, client: FlaskClient) -> None:
    call(client, {"prompt": PHRASE})
    resp = call(client, {"prompt": PHRASE}, via="query")
    assert assert_access_line(logs, resp, 200)["cached"] is True
    logs.assert_clean()


@pytest.mark.parametrize("via", ["header", "query"])
def test_provider_failure_logs_no_prompt(logs: Logs, client: FlaskClient, via: str) -> None:
    resp = call(client, {"prompt": f"{PHRASE} [[mock:status=500]]"}, via=via)
    assert resp.status_code == 502
    line = assert_access_line(logs, resp, 502)
    assert line["error_code"] == "provider_error"
    logs.assert_clean()


def test_provider_refusing_its_key_logs_no_secret(logs: Logs, client: FlaskClient) -> None:
    resp = call(client, {"prompt": f"{PHRASE} [[mock:status=401]]"}, via="query")
    assert resp.status_code == 502
    assert_access_line(logs, resp, 502)
    logs.assert_clean("sk-test")  # the provider key of make_app


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": PHRASE * 200},  # too long
        {"prompt": PHRASE, "type": PHRASE},
        {"prompt": PHRASE, "source": PHRASE},
        {"prompt": PHRASE, "language": PHRASE, "type": "translation"},
        {"prompt": PHRASE, PHRASE: PHRASE},  # unknown field
        {"prompt": [PHRASE]},
        {"prompt": PHRASE + "\x00"},
    ],
)
def test_validation_errors_log_no_input(logs: Logs, client: FlaskClient, body: dict[str, Any]) -> None:
    resp = call(client, body, via="query")
    assert resp.status_code == 400
    line = assert_access_line(logs, resp, 400)
    assert line["error_code"] == "invalid_input"
    logs.assert_clean()
    if PHRASE not in body:  # the answer may name an unknown field, but never echoes a value
        assert PHRASE not in resp.get_data(as_text=True)


def test_malformed_json_logs_no_body(logs: Logs, client: FlaskClient) -> None:
    resp = client.post(
        URL, data='{"prompt": "' + PHRASE, content_type="application/json", query_string={"api_token": TOKEN}
    )
    assert resp.status_code == 400
    assert_access_line(logs, resp, 400)
    logs.assert_clean()


@pytest.mark.parametrize("via", ["header", "query"])
def test_wrong_token_is_not_logged(logs: Logs, client: FlaskClient, via: str) -> None:
    resp = call(client, {"prompt": PHRASE}, via=via, token=WRONG_TOKEN)
    assert resp.status_code == 401
    line = assert_access_line(logs, resp, 401, authed=False)
    assert line["error_code"] == "unauthorized"
    logs.assert_clean()


def test_crash_logs_the_stack_but_not_the_prompt(
    logs: Logs, app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = app.extensions["flaskllm"].service

    def broken(item: Any, deadline: Any = None, pace: Any = None) -> Any:
        raise ValueError(f"cannot handle {item.prompt!r}")  # a bug whose message quotes input

    monkeypatch.setattr(service, "process", broken)
    resp = call(client, {"prompt": PHRASE}, via="query")
    assert resp.status_code == 500
    assert_access_line(logs, resp, 500)
    logs.assert_clean()
    crash = [line for line in logs.json_lines() if line["level"] == "error"]
    assert len(crash) == 1
    assert crash[0]["request_id"] == resp.headers["X-Request-ID"]
    assert "ValueError" in json.dumps(crash[0])
    assert "broken" in json.dumps(crash[0])  # the stack: where the bug is


def test_batch_row_crash_logs_no_prompt(
    logs: Logs, app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = app.extensions["flaskllm"].service

    def broken(job: Any, timeout: float) -> Any:  # a bug whose message quotes the prompt
        raise KeyError(job.text)

    monkeypatch.setattr(service.provider, "complete", broken)
    resp = call(client, {"items": [{"prompt": PHRASE, "id": "r1"}]}, via="query", url="/api/v1/batch")
    assert resp.status_code == 200
    assert resp.get_json()["results"][0]["error"]["code"] == "internal_error"
    line = assert_access_line(logs, resp, 200)
    assert line["rows"] == 1
    logs.assert_clean()
    assert any(line["level"] == "error" and "KeyError" in json.dumps(line) for line in logs.json_lines())


def test_batch_logs_rows_without_prompts(logs: Logs, client: FlaskClient) -> None:
    items = [{"prompt": f"{PHRASE} {i}"} for i in range(3)] + [{"prompt": f"{PHRASE} [[mock:status=500]]"}]
    resp = call(client, {"items": items}, via="header", url="/api/v1/batch")
    assert resp.status_code == 200
    line = assert_access_line(logs, resp, 200)
    assert line["rows"] == 4
    logs.assert_clean()


def test_every_json_line_is_json(logs: Logs, client: FlaskClient) -> None:
    call(client, {"prompt": PHRASE})
    call(client, {"prompt": ""})
    lines = logs.stream.getvalue().splitlines()
    assert lines
    for raw in lines:
        entry = json.loads(raw)
        assert {"ts", "level", "logger", "msg"} <= set(entry)


def test_health_is_logged_without_client(logs: Logs, client: FlaskClient) -> None:
    resp = client.get("/api/v1/health", query_string={"api_token": TOKEN})
    lines = logs.access(resp.headers["X-Request-ID"])
    assert len(lines) == 1 and lines[0]["route"] == "/api/v1/health" and lines[0]["status"] == 200
    logs.assert_clean()
