"""Every row of design.md's error table, from every layer, in the one JSON error shape.

Provider failures are produced by the mock server's directives and reach the app through
the real openai and anthropic SDKs, so the SDKs' own exception classes are what the
backend has to map.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from backend import create_app
from backend.errors import APIError
from scripts.mock_llm import MockLLM
from tests.conftest import openai_settings
from tests.integration.conftest import HEADERS, ORIGIN, assert_error

URL = "/api/v1/webhook"
PROVIDERS = ["openai", "anthropic"]


@pytest.fixture(scope="module")
def shared_client(mock_llm: MockLLM) -> FlaskClient:
    """One app for the errors raised before any provider call."""
    settings = openai_settings(
        mock_llm,
        batch_max_items=3,
    )
    return create_app(settings).test_client()


@pytest.fixture
def api(shared_client: FlaskClient, mock: MockLLM) -> FlaskClient:
    return shared_client


def post(client: FlaskClient, prompt: str, **body: Any) -> Any:
    return client.post(URL, json={"prompt": prompt, **body}, headers=HEADERS)


# ------------------------------------------------------------------ request errors


def test_400_invalid_json(api: FlaskClient) -> None:
    assert_error(
        api.post(URL, data="{nope", content_type="application/json", headers=HEADERS), 400, "invalid_json"
    )


def test_400_invalid_input_lists_pydantic_errors(api: FlaskClient) -> None:
    body = assert_error(
        api.post(URL, json={"prompt": 5, "type": "nope"}, headers=HEADERS), 400, "invalid_input"
    )
    locs = {d["loc"] for d in body["error"]["details"]}
    assert {"prompt", "type"} <= locs


def test_401_unauthorized(api: FlaskClient) -> None:
    assert_error(api.post(URL, json={"prompt": "x"}, headers={"Origin": ORIGIN}), 401, "unauthorized")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/nope"),
        ("post", "/api/v2/webhook"),
        ("get", "/api/v1/webhook/extra"),
        ("post", "/api/v1/"),
    ],
)
def test_404_not_found(api: FlaskClient, method: str, path: str) -> None:
    assert_error(getattr(api, method)(path, headers=HEADERS), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("get", URL, "POST"),
        ("put", URL, "POST"),
        ("delete", "/api/v1/batch", "POST"),
        ("post", "/api/v1/health", "GET"),
    ],
)
def test_405_method_not_allowed(api: FlaskClient, method: str, path: str, allowed: str) -> None:
    resp = getattr(api, method)(path, headers=HEADERS)
    assert_error(resp, 405, "method_not_allowed")
    assert allowed in resp.headers["Allow"]


def test_413_payload_too_large(make_app: Callable[..., Flask]) -> None:
    app = make_app(max_prompt_length=10, batch_max_items=2)
    client = app.test_client()
    data = '{"prompt": "' + "z" * app.config["MAX_CONTENT_LENGTH"] + '"}'
    assert_error(
        client.post(URL, data=data, content_type="application/json", headers=HEADERS),
        413,
        "payload_too_large",
    )


def test_413_too_many_items(api: FlaskClient, mock: MockLLM) -> None:
    items = [{"prompt": f"row {i}"} for i in range(4)]
    body = assert_error(
        api.post("/api/v1/batch", json={"items": items}, headers=HEADERS), 413, "too_many_items"
    )
    assert "3" in body["error"]["message"]
    assert mock.calls() == 0


def test_415_unsupported_media_type(api: FlaskClient) -> None:
    assert_error(
        api.post(URL, data="prompt=x", content_type="application/x-www-form-urlencoded", headers=HEADERS),
        415,
        "unsupported_media_type",
    )


# ------------------------------------------------------------------ provider errors


@pytest.mark.parametrize("provider", PROVIDERS)
def test_429_from_the_provider_after_retries(
    make_app: Callable[..., Flask], mock: MockLLM, provider: str
) -> None:
    client = make_app(provider, max_retries=1).test_client()
    resp = post(client, "Busy? [[mock:fail_times=5,status=429,retry_after=0.2]]")
    assert_error(resp, 429, "rate_limited")
    assert int(resp.headers["Retry-After"]) >= 1
    assert mock.calls() == 2  # the first try and one retry, after the provider's Retry-After


@pytest.mark.parametrize("provider", PROVIDERS)
def test_429_then_success_is_200(make_app: Callable[..., Flask], mock: MockLLM, provider: str) -> None:
    client = make_app(provider, max_retries=1).test_client()
    resp = post(client, "Once busy. [[mock:fail_times=1,status=429,retry_after=0.1]]")
    assert resp.status_code == 200
    assert mock.calls() == 2


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("directive", "calls"),
    [
        ("status=500", 2),  # transient: retried once (max_retries=1), then 502
        ("status=503", 2),
        ("status=401", 1),  # the provider refused our key: not retried
        ("status=403", 1),
        ("status=400", 1),
        ("garbage", 1),
        ("wrong_schema", 1),
        ("drop", 2),  # connection cut mid-answer: retried as a connection error
    ],
)
def test_502_provider_error(
    make_app: Callable[..., Flask], mock: MockLLM, provider: str, directive: str, calls: int
) -> None:
    client = make_app(provider, max_retries=1).test_client()
    resp = post(client, f"Summarise this. [[mock:{directive}]]")
    body = assert_error(resp, 502, "provider_error")
    assert mock.calls() == calls
    assert "simulated" not in body["error"]["message"]  # upstream text is not passed through
    assert "Retry-After" not in resp.headers


def test_502_names_a_refused_key(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    body = assert_error(post(client, "x [[mock:status=401]]"), 502, "provider_error")
    assert "key" in body["error"]["message"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_502_when_the_provider_is_down(make_app: Callable[..., Flask], mock: MockLLM, provider: str) -> None:
    from tests.redis_server import free_port

    base = f"http://127.0.0.1:{free_port()}"
    urls = {"openai_base_url": base + "/v1"} if provider == "openai" else {"anthropic_base_url": base}
    client = make_app(provider, max_retries=0, **urls).test_client()
    assert_error(post(client, "anyone there?"), 502, "provider_error")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_transient_500_recovers_on_retry(
    make_app: Callable[..., Flask], mock: MockLLM, provider: str
) -> None:
    client = make_app(provider, max_retries=1).test_client()
    resp = post(client, "Flaky. [[mock:fail_times=1,status=500]]")
    assert resp.status_code == 200
    assert mock.calls() == 2


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("directive", ["delay=3", "hang"])
def test_504_provider_timeout(
    make_app: Callable[..., Flask], mock: MockLLM, provider: str, directive: str
) -> None:
    client = make_app(provider, request_timeout=1, max_retries=2).test_client()
    body = assert_error(post(client, f"Slow. [[mock:{directive}]]"), 504, "provider_timeout")
    assert "1 s" in body["error"]["message"]
    assert mock.calls() == 1  # a timeout used the whole budget: no retry


def test_504_from_an_upstream_gateway_timeout(make_app: Callable[..., Flask]) -> None:
    client = make_app(max_retries=0).test_client()
    assert_error(post(client, "x [[mock:status=504]]"), 504, "provider_timeout")


def test_provider_error_is_not_cached(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    client = make_app(max_retries=0).test_client()
    mock.configure(status=500)
    assert_error(post(client, "Same prompt."), 502, "provider_error")
    mock.configure(status=None)
    ok = post(client, "Same prompt.")
    assert ok.status_code == 200 and ok.get_json()["cached"] is False
    assert mock.calls() == 2


# ------------------------------------------------------------------ crashes


SECRET_CRASH_TEXT = "crash-detail-that-must-stay-in-the-server"


def test_500_from_a_route_that_raises(make_app: Callable[..., Flask]) -> None:
    app = make_app()

    @app.post("/api/v1/_boom")
    def boom() -> Any:
        raise RuntimeError(SECRET_CRASH_TEXT)

    resp = app.test_client().post("/api/v1/_boom", headers=HEADERS)
    body = assert_error(resp, 500, "internal_error")
    text = resp.get_data(as_text=True)
    assert SECRET_CRASH_TEXT not in text
    assert "RuntimeError" not in text and "File " not in text
    assert body["error"]["message"] == "Internal server error."


@pytest.mark.parametrize(
    "exc",
    [RuntimeError(SECRET_CRASH_TEXT), KeyError(SECRET_CRASH_TEXT), ZeroDivisionError(SECRET_CRASH_TEXT)],
)
def test_500_when_the_service_crashes(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch, exc: Exception
) -> None:
    app = make_app()
    service = app.extensions["flaskllm"].service

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise exc

    monkeypatch.setattr(service, "process", broken)
    resp = post(app.test_client(), "hello")
    assert_error(resp, 500, "internal_error")
    assert SECRET_CRASH_TEXT not in resp.get_data(as_text=True)
    assert type(exc).__name__ not in resp.get_data(as_text=True)


def test_crash_in_one_batch_row_fails_only_that_row(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app()
    service = app.extensions["flaskllm"].service
    real = service.provider.complete

    def sometimes(job: Any, timeout: float) -> Any:  # a bug in the provider layer, for one row
        if "crash" in job.text:
            raise RuntimeError(SECRET_CRASH_TEXT)
        return real(job, timeout)

    monkeypatch.setattr(service.provider, "complete", sometimes)
    resp = app.test_client().post(
        "/api/v1/batch", json={"items": [{"prompt": "fine"}, {"prompt": "crash here"}]}, headers=HEADERS
    )
    assert resp.status_code == 200
    rows = resp.get_json()["results"]
    assert rows[0]["ok"] is True
    assert rows[1]["ok"] is False and rows[1]["error"]["code"] == "internal_error"
    assert SECRET_CRASH_TEXT not in resp.get_data(as_text=True)


def test_api_error_subclasses_render_their_status(make_app: Callable[..., Flask]) -> None:
    app = make_app()

    class Teapot(APIError):
        status, code, message = 418, "teapot", "I am a teapot."

    @app.get("/api/v1/_teapot")
    def teapot() -> Any:
        raise Teapot(headers={"X-Extra": "1"})

    resp = app.test_client().get("/api/v1/_teapot", headers=HEADERS)
    assert_error(resp, 418, "teapot")
    assert resp.headers["X-Extra"] == "1"
