"""POST /api/v1/webhook end to end: the real openai / anthropic SDKs against the mock server.

Every bad input answers 400 in the one error shape; tokens work from the header, Bearer or the
query; request ids, preflight and security headers are checked on the way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from backend import create_app
from scripts.mock_llm import MockLLM
from tests.conftest import OTHER_TOKEN, TOKEN, openai_settings
from tests.integration.conftest import HEADERS, ORIGIN, assert_error

URL = "/api/v1/webhook"
EMAIL = "Hello team. Thank you for the great work on Project Phoenix with Acme Corp. Regards, Alice"


@pytest.fixture(scope="module")
def shared_client(mock_llm: MockLLM) -> FlaskClient:
    """One openai app for the tests that never reach the provider (apps are slow to build)."""
    settings = openai_settings(
        mock_llm,
        request_timeout=5,
        max_retries=1,
    )
    return create_app(settings).test_client()


@pytest.fixture
def api(shared_client: FlaskClient, mock: MockLLM) -> FlaskClient:
    return shared_client


def check_result_type(task: str, result: Any) -> None:
    if task in ("summary", "translation", "custom"):
        assert isinstance(result, str) and result
    elif task == "keywords":
        assert isinstance(result, list) and result and all(isinstance(k, str) for k in result)
    elif task == "sentiment":
        assert set(result) == {"label", "score"}
        assert result["label"] in ("positive", "negative", "neutral", "mixed")
        assert -1 <= result["score"] <= 1
    elif task == "entities":
        assert isinstance(result, list) and result
        assert all(set(e) == {"text", "label"} and isinstance(e["text"], str) for e in result)
    else:  # pragma: no cover
        raise AssertionError(task)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("task", ["summary", "keywords", "sentiment", "entities", "translation", "custom"])
def test_every_task_on_both_providers(
    make_app: Callable[..., Flask], mock: MockLLM, provider: str, task: str
) -> None:
    client = make_app(provider).test_client()
    body: dict[str, Any] = {"prompt": EMAIL, "type": task, "source": "email"}
    if task == "translation":
        body["language"] = "de"
    resp = client.post(URL, json=body, headers=HEADERS)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    data = resp.get_json()
    assert data["type"] == task
    assert data["provider"] == provider
    assert data["model"] == ("gpt-4" if provider == "openai" else "claude-sonnet-5-5")
    assert data["cached"] is False
    assert isinstance(data["summary"], str) and data["summary"]
    check_result_type(task, data["result"])
    assert data["usage"]["input_tokens"] > 0 and data["usage"]["output_tokens"] > 0
    assert isinstance(data["processing_time"], float)
    assert data["request_id"] == resp.headers["X-Request-ID"]
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert mock.calls() == 1
    path = "/v1/chat/completions" if provider == "openai" else "/v1/messages"
    assert mock.stats()["by_path"] == {path: 1}


def test_specific_results_from_the_mock(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    client = make_app().test_client()

    def result(**body: Any) -> Any:
        resp = client.post(URL, json={"prompt": EMAIL, **body}, headers=HEADERS)
        assert resp.status_code == 200
        return resp.get_json()

    assert result(type="sentiment")["result"] == {"label": "positive", "score": 0.8}
    assert result(type="sentiment")["summary"] == "positive (+0.80)"
    assert result(type="translation", language="FR")["result"].startswith("[fr] ")
    assert {"text": "Acme", "label": "ORG"} in result(type="entities")["result"]
    assert "phoenix" in result(type="keywords")["result"]
    default = result()
    assert default["type"] == "summary"
    assert default["summary"] == default["result"] == "Summary: Hello team."


def test_mock_reply_directive_is_passed_through(make_app: Callable[..., Flask]) -> None:
    client = make_app("anthropic").test_client()
    resp = client.post(
        URL, json={"prompt": "x [[mock:reply=exact, text]]", "type": "custom"}, headers=HEADERS
    )
    assert resp.get_json()["result"] == "exact, text"


def test_response_validates_against_the_schema(client: FlaskClient) -> None:
    from backend.schemas import WebhookResponse

    resp = client.post(URL, json={"prompt": EMAIL, "type": "entities"}, headers=HEADERS)
    WebhookResponse.model_validate(resp.get_json())


# ------------------------------------------------------------------ local provider


def test_local_provider_summary(local_client: FlaskClient) -> None:
    resp = local_client.post(URL, json={"prompt": EMAIL}, headers=HEADERS)
    assert resp.status_code == 200
    data = resp.get_json()
    assert data["provider"] == "local"
    assert data["model"] == "local-extractive"
    assert isinstance(data["summary"], str) and data["summary"]


@pytest.mark.parametrize("body", [{"type": "translation", "language": "de"}, {"type": "custom"}])
def test_local_provider_refuses_llm_only_tasks(local_client: FlaskClient, body: dict[str, str]) -> None:
    resp = local_client.post(URL, json={"prompt": EMAIL, **body}, headers=HEADERS)
    err = assert_error(resp, 400, "unsupported_by_provider")
    assert "OPENAI_API_KEY" in err["error"]["message"]


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   \n\t "}, "prompt"),
        ({"prompt": "x" * 4001}, "prompt"),
        ({"prompt": 42}, "prompt"),
        ({"prompt": None}, "prompt"),
        ({"prompt": ["a", "b"]}, "prompt"),
        ({"prompt": {"text": "a"}}, "prompt"),
        ({"prompt": True}, "prompt"),
        ({"prompt": "a\x00b"}, "prompt"),
        ({"prompt": "ok", "type": "poem"}, "type"),
        ({"prompt": "ok", "type": 3}, "type"),
        ({"prompt": "ok", "source": "fax"}, "source"),
        ({"prompt": "ok", "type": "translation", "language": "xx"}, "language"),
        ({"prompt": "ok", "type": "translation", "language": "german"}, "language"),
        ({"prompt": "ok", "type": "translation", "language": 7}, "language"),
        ({"prompt": "ok", "type": "translation"}, "language"),
        ({"prompt": "ok", "type": "translation", "language": None}, "language"),
        ({"prompt": "ok", "temperature": 2}, "temperature"),
    ],
)
def test_invalid_input(api: FlaskClient, mock: MockLLM, body: dict[str, Any], loc: str) -> None:
    resp = api.post(URL, json=body, headers=HEADERS)
    err = assert_error(resp, 400, "invalid_input")
    details = err["error"]["details"]
    assert details and all(set(d) == {"loc", "msg", "type"} for d in details)
    assert any(d["loc"] == loc or d["loc"].startswith(loc + ".") for d in details), details
    assert mock.calls() == 0


def test_oversized_prompt_message_names_the_limit(make_app: Callable[..., Flask]) -> None:
    client = make_app(max_prompt_length=50).test_client()
    err = assert_error(client.post(URL, json={"prompt": "y" * 51}, headers=HEADERS), 400, "invalid_input")
    assert err["error"]["message"] == "prompt: must be at most 50 characters"
    ok = client.post(URL, json={"prompt": "y" * 50}, headers=HEADERS)
    assert ok.status_code == 200


def test_error_details_never_echo_the_input(api: FlaskClient) -> None:
    resp = api.post(URL, json={"prompt": "ok", "source": "SECRET-SOURCE-VALUE"}, headers=HEADERS)
    assert_error(resp, 400, "invalid_input")
    assert "SECRET-SOURCE-VALUE" not in resp.get_data(as_text=True)


def test_language_and_type_are_normalised(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    resp = client.post(
        URL, json={"prompt": "Hi.", "type": " Translation ", "language": " DE "}, headers=HEADERS
    )
    assert resp.status_code == 200
    assert resp.get_json()["type"] == "translation"
    assert resp.get_json()["result"].startswith("[de]")


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        ('["prompt", "a list"]', "application/json", 400, "invalid_input"),
        ('"just a string"', "application/json", 400, "invalid_input"),
        ("null", "application/json", 400, "invalid_input"),
        ("42", "application/json", 400, "invalid_input"),
        ('{"prompt": "unterminated', "application/json", 400, "invalid_json"),
        ("{'prompt': 'single quotes'}", "application/json", 400, "invalid_json"),
        ("", "application/json", 400, "invalid_json"),
        ("   ", "application/json", 400, "invalid_json"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe binary", "application/json", 400, "invalid_json"),
        (b'{"prompt": "\xff\xfe"}', "application/json", 400, "invalid_json"),
        ("[" * 100_000, "application/json", 400, "invalid_json"),
        ("prompt=hello", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        ('{"prompt": "hello"}', "text/plain", 415, "unsupported_media_type"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "application/octet-stream", 415, "unsupported_media_type"),
        ('{"prompt": "hello"}', None, 415, "unsupported_media_type"),
    ],
)
def test_bodies_that_are_not_a_json_object(
    api: FlaskClient, data: str | bytes, content_type: str | None, status: int, code: str
) -> None:
    kwargs: dict[str, Any] = {"data": data, "headers": HEADERS}
    if content_type:
        kwargs["content_type"] = content_type
    assert_error(api.post(URL, **kwargs), status, code)


def test_multipart_form_is_415(api: FlaskClient) -> None:
    resp = api.post(URL, data={"prompt": "hello"}, headers=HEADERS)  # multipart/form-data
    assert_error(resp, 415, "unsupported_media_type")


def test_json_with_charset_and_vendor_type_are_accepted(client: FlaskClient) -> None:
    for ctype in ("application/json; charset=utf-8", "application/vnd.api+json"):
        resp = client.post(URL, data='{"prompt": "Hello there."}', content_type=ctype, headers=HEADERS)
        assert resp.status_code == 200, ctype


def test_body_over_the_size_limit_is_413(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    app = make_app(max_prompt_length=10, batch_max_items=1)
    limit = app.config["MAX_CONTENT_LENGTH"]
    client = app.test_client()
    big = '{"prompt": "' + "a" * (limit + 10) + '"}'
    assert_error(
        client.post(URL, data=big, content_type="application/json", headers=HEADERS), 413, "payload_too_large"
    )
    assert_error(
        client.post("/api/v1/batch", data=big, content_type="application/json", headers=HEADERS),
        413,
        "payload_too_large",
    )
    assert mock.calls() == 0


# ------------------------------------------------------------------ tokens


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"X-API-Token": TOKEN}, None),
        ({"X-API-Token": OTHER_TOKEN}, None),
        ({"Authorization": f"Bearer {TOKEN}"}, None),
        ({}, {"api_token": TOKEN}),
        ({}, {"api_token": OTHER_TOKEN}),
    ],
)
def test_token_accepted(
    local_client: FlaskClient, headers: dict[str, str], query: dict[str, str] | None
) -> None:
    resp = local_client.post(URL, json={"prompt": EMAIL}, headers=headers, query_string=query)
    assert resp.status_code == 200


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({}, None),
        ({"X-API-Token": ""}, None),
        ({"X-API-Token": "wrong"}, None),
        ({"X-API-Token": TOKEN[:-1]}, None),
        ({"X-API-Token": TOKEN + "x"}, None),
        ({"Authorization": f"Basic {TOKEN}"}, None),
        ({}, {"api_token": "wrong"}),
        ({}, {"token": TOKEN}),
        ({"X-API-Token": "wrong"}, {"api_token": TOKEN}),  # a wrong header is not rescued by the query
    ],
)
def test_token_refused(
    api: FlaskClient, mock: MockLLM, headers: dict[str, str], query: dict[str, str] | None
) -> None:
    resp = api.post(URL, json={"prompt": EMAIL}, headers={"Origin": ORIGIN, **headers}, query_string=query)
    err = assert_error(resp, 401, "unauthorized")
    assert err["error"]["message"] == "Missing or invalid API token."
    assert mock.calls() == 0


def test_auth_comes_before_validation(api: FlaskClient) -> None:
    assert_error(
        api.post(URL, data="not json", content_type="text/plain", headers={"Origin": ORIGIN}),
        401,
        "unauthorized",
    )


# ------------------------------------------------------------------ request ids, CORS, headers


def test_request_id_is_honoured(api: FlaskClient) -> None:
    resp = api.post(URL, json={"prompt": EMAIL}, headers={**HEADERS, "X-Request-ID": "excel-row-42.a:b"})
    assert resp.headers["X-Request-ID"] == "excel-row-42.a:b"
    assert resp.get_json()["request_id"] == "excel-row-42.a:b"
    err = api.post(URL, json={}, headers={**HEADERS, "X-Request-ID": "row-43"})
    assert err.get_json()["request_id"] == "row-43"


@pytest.mark.parametrize("incoming", [None, "", "has space", "x" * 65, "<script>", "a\tb"])
def test_request_id_is_generated(api: FlaskClient, incoming: str | None) -> None:
    headers = dict(HEADERS)
    if incoming is not None:
        headers["X-Request-ID"] = incoming
    resp = api.post(URL, json={"prompt": EMAIL}, headers=headers)
    rid = resp.headers["X-Request-ID"]
    assert rid and rid != incoming and len(rid) >= 16
    assert resp.get_json()["request_id"] == rid
    other = api.post(URL, json={"prompt": EMAIL}, headers=headers).headers["X-Request-ID"]
    assert other != rid


@pytest.mark.parametrize("path", [URL, "/api/v1/batch"])
def test_preflight_is_answered_without_auth(api: FlaskClient, mock: MockLLM, path: str) -> None:
    resp = api.options(
        path,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type, X-API-Token",
        },
    )
    assert resp.status_code in (200, 204)
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    allowed = {h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "x-api-token"} <= allowed
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert mock.calls() == 0


def test_cors_restricted_to_allowed_origins(make_app: Callable[..., Flask]) -> None:
    client = make_app(allowed_origins="https://good.example").test_client()
    good = client.post(URL, json={"prompt": EMAIL}, headers={**HEADERS, "Origin": "https://good.example"})
    assert good.headers["Access-Control-Allow-Origin"] == "https://good.example"
    bad = client.post(URL, json={"prompt": EMAIL}, headers={**HEADERS, "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in bad.headers
    err = client.post(URL, json={}, headers={**HEADERS, "Origin": "https://good.example"})
    assert err.headers["Access-Control-Allow-Origin"] == "https://good.example"


def test_rate_limit_and_request_id_headers_are_exposed_to_the_browser(api: FlaskClient) -> None:
    resp = api.post(URL, json={"prompt": EMAIL}, headers=HEADERS)
    exposed = {h.strip().lower() for h in resp.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"retry-after", "x-request-id", "x-ratelimit-remaining"} <= exposed


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("post", URL, {"prompt": EMAIL}), ("post", URL, {}), ("get", "/api/v1/health", None)],
)
def test_security_headers(api: FlaskClient, method: str, path: str, body: Any) -> None:
    resp = getattr(api, method)(path, json=body, headers=HEADERS)
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["Cache-Control"] == "no-store"


# ------------------------------------------------------------------ health


def test_health_without_auth(api: FlaskClient, mock: MockLLM) -> None:
    resp = api.get("/api/v1/health", headers={"Origin": ORIGIN})
    assert resp.status_code == 200
    data = resp.get_json()
    assert data["status"] == "ok"
    assert data["provider"] == "openai"
    assert data["environment"] == "testing"
    assert isinstance(data["version"], str) and data["version"]
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert mock.calls() == 0  # health never spends provider money


def test_health_reports_the_local_provider(local_client: FlaskClient) -> None:
    assert local_client.get("/api/v1/health").get_json()["provider"] == "local"
