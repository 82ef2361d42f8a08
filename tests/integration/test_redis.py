"""Redis for real: the shared cache and the shared rate-limit budget across app instances,
and a Redis that dies and comes back mid-run.

Each "app instance" stands for a gunicorn worker on another machine: they share nothing
but the Redis server. The server is a real `redis-server` (see tests/redis_server.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from backend import cache as cache_module
from backend.cache import RedisStore
from scripts.mock_llm import MockLLM
from tests.conftest import OTHER_TOKEN, TOKEN
from tests.integration.conftest import HEADERS, ORIGIN, assert_error
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis

URL = "/api/v1/webhook"
TEXT = "Quarterly numbers are in. Revenue is up. Costs are flat. Please review."


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    redis_server.start()  # in case a test stopped it
    redis.Redis.from_url(redis_server.url).flushall()
    return redis_server.url


def ask(client: FlaskClient, prompt: str = TEXT, token: str = TOKEN, **fields: Any) -> Any:
    return client.post(
        URL, json={"prompt": prompt, **fields}, headers={"X-API-Token": token, "Origin": ORIGIN}
    )


def ok(client: FlaskClient, prompt: str = TEXT, **fields: Any) -> dict[str, Any]:
    resp = ask(client, prompt, **fields)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body: dict[str, Any] = resp.get_json()
    return body


def cache_keys(url: str) -> list[bytes]:
    return list(redis.Redis.from_url(url).scan_iter(match=RedisStore.PREFIX + "*"))


# ------------------------------------------------------------------ cache


def test_redis_cache_is_shared_by_two_apps(
    make_app: Callable[..., Flask], mock: MockLLM, redis_url: str
) -> None:
    worker1 = make_app(cache_url=redis_url).test_client()
    worker2 = make_app("openai", cache_url=redis_url).test_client()
    first = ok(worker1, type="keywords")
    assert first["cached"] is False
    hit = ok(worker2, type="keywords")
    assert hit["cached"] is True and hit["result"] == first["result"]
    assert mock.calls() == 1
    assert len(cache_keys(redis_url)) == 1
    ok(worker2, type="sentiment")
    assert ok(worker1, type="sentiment")["cached"] is True
    assert mock.calls() == 2


def test_redis_cache_survives_an_app_restart(
    make_app: Callable[..., Flask], mock: MockLLM, redis_url: str
) -> None:
    first = ok(make_app(cache_url=redis_url).test_client(), type="entities")
    mock.reset()
    again = ok(make_app(cache_url=redis_url).test_client(), type="entities")
    assert again["cached"] is True and again["result"] == first["result"]
    assert mock.calls() == 0


def test_redis_entries_expire_with_cache_ttl(make_app: Callable[..., Flask], redis_url: str) -> None:
    ok(make_app(cache_url=redis_url, cache_ttl=120).test_client())
    (key,) = cache_keys(redis_url)
    ttl = redis.Redis.from_url(redis_url).ttl(key)
    assert 0 < ttl <= 120


def test_redis_never_stores_errors(make_app: Callable[..., Flask], mock: MockLLM, redis_url: str) -> None:
    client = make_app(cache_url=redis_url, max_retries=0).test_client()
    assert ask(client, "Broken. [[mock:status=500]]").status_code == 502
    assert cache_keys(redis_url) == []


def test_no_prompt_text_in_redis(make_app: Callable[..., Flask], redis_url: str) -> None:
    """Keys are hashes; values are answers. The user's text is not a key."""
    ok(make_app(cache_url=redis_url).test_client(), "Secret-Phrase-Banana-2931 and more. Fine.")
    (key,) = cache_keys(redis_url)
    assert b"Banana" not in key


# ------------------------------------------------------------------ rate limits


def test_redis_rate_limit_is_shared_by_two_apps(make_app: Callable[..., Flask], redis_url: str) -> None:
    settings = {"rate_limit_enabled": True, "rate_limit": 3, "rate_limit_storage_uri": redis_url}
    worker1 = make_app(**settings).test_client()
    worker2 = make_app(**settings).test_client()
    assert ask(worker1).status_code == 200
    assert ask(worker2).status_code == 200
    resp = ask(worker1)
    assert resp.status_code == 200 and resp.headers["X-RateLimit-Remaining"] == "0"
    assert_error(ask(worker2), 429, "rate_limited")
    assert_error(ask(worker1), 429, "rate_limited")
    assert ask(worker2, token=OTHER_TOKEN).status_code == 200  # a token's budget, not a global one


def test_redis_rate_limit_counts_requests_across_apps(make_app: Callable[..., Flask], redis_url: str) -> None:
    settings = {"rate_limit_enabled": True, "rate_limit": 3, "rate_limit_storage_uri": redis_url}
    worker1 = make_app(**settings).test_client()
    worker2 = make_app(**settings).test_client()
    items = {"items": [{"prompt": "Row one. Fine."}, {"prompt": "Row two. Fine."}]}
    assert worker1.post("/api/v1/batch", json=items, headers=HEADERS).status_code == 200  # 1 request
    assert ask(worker2).status_code == 200
    assert ask(worker1).status_code == 200
    assert_error(ask(worker2), 429, "rate_limited")


def test_redis_rate_limit_stores_no_token(make_app: Callable[..., Flask], redis_url: str) -> None:
    client = make_app(rate_limit_enabled=True, rate_limit=3, rate_limit_storage_uri=redis_url).test_client()
    assert ask(client).status_code == 200
    stored = redis.Redis.from_url(redis_url).keys("*")
    keys = b" ".join(k if isinstance(k, bytes) else k.encode() for k in stored)
    assert keys and TOKEN.encode() not in keys


# ------------------------------------------------------------------ outage


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A server of this test's own, so stopping it cannot disturb the others."""
    with RedisServer() as server:
        yield server


def test_redis_dies_and_comes_back(
    make_app: Callable[..., Flask],
    mock: MockLLM,
    own_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(cache_module, "RETRY_STORE_AFTER", 0.2)
    url = own_server.url
    client = make_app(
        cache_url=url, rate_limit_enabled=True, rate_limit=100, rate_limit_storage_uri=url
    ).test_client()
    assert ok(client)["cached"] is False
    assert len(cache_keys(url)) == 1

    own_server.stop()
    assert not own_server.ping()
    assert ok(client)["cached"] is True  # L1 still answers
    for i in range(3):  # new prompts: the provider answers, Redis is skipped
        assert ok(client, f"During the outage {i}. Fine.")["cached"] is False
        assert ok(client, f"During the outage {i}. Fine.")["cached"] is True
    assert "response cache store unavailable" in caplog.text

    own_server.start()  # same port, empty (nothing persisted)
    assert cache_keys(url) == []
    give_up = time.monotonic() + 10
    n = 0
    while not cache_keys(url):  # the store is tried again RETRY_STORE_AFTER after the failure
        assert time.monotonic() < give_up, "the cache never went back to Redis"
        n += 1
        ok(client, f"After the outage {n}. Fine.")
        time.sleep(0.05)
    assert "response cache store is back" in caplog.text

    calls = mock.calls()
    other = make_app(cache_url=url).test_client()  # another machine sees what was stored since
    assert ok(other, f"After the outage {n}. Fine.")["cached"] is True
    assert mock.calls() == calls


def test_app_starts_while_redis_is_down(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    server = RedisServer()  # never started: nothing listens on its port
    try:
        client = make_app(
            cache_url=server.url, rate_limit_enabled=True, rate_limit=5, rate_limit_storage_uri=server.url
        ).test_client()
        assert ok(client)["cached"] is False
        assert ok(client)["cached"] is True
        assert client.get("/api/v1/health").status_code == 200
    finally:
        server.close()


def test_limits_hold_in_memory_while_the_limit_store_is_down(make_app: Callable[..., Flask]) -> None:
    server = RedisServer()  # never started: the limiter falls back to its in-memory storage
    try:
        limited = {"rate_limit_enabled": True, "rate_limit": 2, "rate_limit_storage_uri": server.url}
        client = make_app(**limited).test_client()
        assert [ask(client, f"Row {n}.").status_code for n in range(3)] == [200, 200, 429]
    finally:
        server.close()
