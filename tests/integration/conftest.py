"""Helpers shared by the integration tests: the one error shape, and posting with a token."""

from __future__ import annotations

from typing import Any

from werkzeug.test import TestResponse

from tests.conftest import TOKEN

ORIGIN = "https://excel.example.com"
HEADERS = {"X-API-Token": TOKEN, "Origin": ORIGIN}


def assert_error(resp: TestResponse, status: int, code: str) -> dict[str, Any]:
    """The response is the one JSON error shape, with a request id and the CORS header."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert set(body) == {"error", "request_id"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert set(body["error"]) <= {"code", "message", "details"}
    assert body["request_id"] and body["request_id"] == resp.headers["X-Request-ID"]
    assert resp.headers.get("Access-Control-Allow-Origin") in (ORIGIN, "*")
    assert "Traceback" not in resp.get_data(as_text=True)
    return body  # type: ignore[no-any-return]
