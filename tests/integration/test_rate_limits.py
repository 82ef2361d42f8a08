"""Per-client rate limits: a budget per token, a batch row is a unit, /health is free.

RATE_LIMIT is per minute, so within one test no budget refills: counts are exact.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from scripts.mock_llm import MockLLM
from tests.conftest import OTHER_TOKEN, TOKEN
from tests.integration.conftest import ORIGIN, assert_error

URL = "/api/v1/webhook"


def hdr(token: str | None = TOKEN) -> dict[str, str]:
    return {"Origin": ORIGIN, **({"X-API-Token": token} if token else {})}


def ask(client: FlaskClient, token: str | None = TOKEN, prompt: str = "Hello there. Fine.", **kw: Any) -> Any:
    return client.post(URL, json={"prompt": prompt}, headers=hdr(token), **kw)


def rows(n: int) -> dict[str, Any]:
    return {"items": [{"prompt": f"Row {i}. Fine."} for i in range(n)]}


@pytest.fixture
def limited(make_app: Callable[..., Flask]) -> FlaskClient:
    return make_app(rate_limit_enabled=True, rate_limit=3).test_client()


def test_budget_per_token(limited: FlaskClient, mock: MockLLM) -> None:
    for n in range(3):
        resp = ask(limited)
        assert resp.status_code == 200
        assert resp.headers["X-RateLimit-Limit"] == "3"
        assert resp.headers["X-RateLimit-Remaining"] == str(2 - n)
    assert_error(ask(limited), 429, "rate_limited")
    for _ in range(3):  # the second token has its own budget
        assert ask(limited, OTHER_TOKEN).status_code == 200
    assert_error(ask(limited, OTHER_TOKEN), 429, "rate_limited")
    assert mock.calls() == 1  # same prompt: one call, the rest cache hits (which still count)


def test_token_in_query_shares_the_header_budget(limited: FlaskClient) -> None:
    assert ask(limited).status_code == 200
    assert ask(limited, None, query_string={"api_token": TOKEN}).status_code == 200
    assert (
        limited.post(URL, json={"prompt": "x"}, headers={"Authorization": f"Bearer {TOKEN}"}).status_code
        == 200
    )
    assert_error(ask(limited, None, query_string={"api_token": TOKEN}), 429, "rate_limited")


def test_429_shape_and_headers(limited: FlaskClient) -> None:
    for _ in range(3):
        ask(limited)
    resp = ask(limited)
    body = assert_error(resp, 429, "rate_limited")
    assert "3 per 1 minute" in body["error"]["message"]
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert resp.headers["X-RateLimit-Limit"] == "3"
    assert resp.headers["X-RateLimit-Remaining"] == "0"
    assert int(resp.headers["X-RateLimit-Reset"]) > 0
    exposed = resp.headers["Access-Control-Expose-Headers"]
    assert "Retry-After" in exposed and "X-RateLimit-Remaining" in exposed


def test_a_batch_is_one_request_however_many_rows(limited: FlaskClient, mock: MockLLM) -> None:
    resp = limited.post("/api/v1/batch", json=rows(3), headers=hdr())
    assert resp.status_code == 200
    assert resp.headers["X-RateLimit-Remaining"] == "2"
    big = {"items": [{"prompt": f"row {i}"} for i in range(50)]}
    assert limited.post("/api/v1/batch", json=big, headers=hdr()).status_code == 200
    assert ask(limited).status_code == 200
    assert_error(limited.post("/api/v1/batch", json=rows(1), headers=hdr()), 429, "rate_limited")
    assert mock.calls() == 3 + 50 + 1


def test_cached_batch_still_counts_as_one_request_only(limited: FlaskClient, mock: MockLLM) -> None:
    assert limited.post("/api/v1/batch", json=rows(3), headers=hdr()).status_code == 200
    resp = limited.post("/api/v1/batch", json=rows(3), headers=hdr())
    assert resp.get_json()["stats"]["cached"] == 3
    assert resp.headers["X-RateLimit-Remaining"] == "1"
    assert mock.calls() == 3


def test_invalid_batch_costs_one_unit(limited: FlaskClient) -> None:
    bodies: list[dict[str, Any]] = [{"items": "nope"}, {"items": []}, {"nothing": 1}]
    for body in bodies:
        assert limited.post("/api/v1/batch", json=body, headers=hdr()).status_code == 400
    assert ask(limited).status_code == 429


def test_too_many_items_costs_one_unit(make_app: Callable[..., Flask]) -> None:
    client = make_app(rate_limit_enabled=True, rate_limit=3, batch_max_items=2).test_client()
    assert_error(client.post("/api/v1/batch", json=rows(5), headers=hdr()), 413, "too_many_items")
    assert ask(client).status_code == 200
    assert ask(client).status_code == 200
    assert ask(client).status_code == 429


def test_health_is_exempt(limited: FlaskClient) -> None:
    for _ in range(3):
        ask(limited)
    for _ in range(10):
        resp = limited.get("/api/v1/health", headers=hdr())
        assert resp.status_code == 200
    assert ask(limited).status_code == 429


def test_preflight_is_exempt(limited: FlaskClient) -> None:
    for _ in range(5):
        resp = limited.options(
            URL,
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-api-token",
            },
        )
        assert resp.status_code in (200, 204)
    for _ in range(3):
        assert ask(limited).status_code == 200


def test_switched_off(make_app: Callable[..., Flask]) -> None:
    client = make_app(rate_limit_enabled=False, rate_limit=1).test_client()
    for _ in range(5):
        assert ask(client).status_code == 200
    assert client.post("/api/v1/batch", json=rows(5), headers=hdr()).status_code == 200


def test_switched_off_from_the_environment(
    mock: MockLLM, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from backend import create_app
    from backend.settings import Settings

    monkeypatch.setenv("RATE_LIMIT_ENABLED", "false")
    monkeypatch.setenv("RATE_LIMIT", "1")
    monkeypatch.setenv("API_TOKEN", TOKEN)
    monkeypatch.setenv("LLM_PROVIDER", "local")
    monkeypatch.setenv("CACHE_URL", "memory://")
    monkeypatch.setenv("JOBS_URL", f"sqlite:///{tmp_path / 'jobs.sqlite3'}")  # not the checkout's instance/
    monkeypatch.setenv("STATE_URL", f"sqlite:///{tmp_path / 'state.sqlite3'}")
    client = create_app(Settings(_env_file=None)).test_client()
    for _ in range(4):
        assert ask(client).status_code == 200


def test_unauthenticated_calls_are_limited_by_address(limited: FlaskClient) -> None:
    guesser = {"REMOTE_ADDR": "203.0.113.7"}
    for _ in range(3):
        assert_error(ask(limited, "guess", environ_base=guesser), 401, "unauthorized")
    assert_error(ask(limited, "guess", environ_base=guesser), 429, "rate_limited")
    assert_error(ask(limited, None, environ_base=guesser), 429, "rate_limited")
    # another address has its own budget; a valid token from the blocked address is keyed by token
    assert_error(ask(limited, "guess", environ_base={"REMOTE_ADDR": "203.0.113.8"}), 401, "unauthorized")
    assert ask(limited, TOKEN, environ_base=guesser).status_code == 200


def test_app_instances_do_not_share_memory_budgets(make_app: Callable[..., Flask]) -> None:
    one = make_app(rate_limit_enabled=True, rate_limit=1).test_client()
    two = make_app(rate_limit_enabled=True, rate_limit=1).test_client()
    assert ask(one).status_code == 200
    assert ask(two).status_code == 200
    assert ask(one).status_code == 429
