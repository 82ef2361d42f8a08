"""Fault injection: the provider, the cache file and Redis fail while the app serves.

Each case drives the real SDK (openai) against the mock LLM, or the real SQLite file and
a real redis-server, and checks the same four promises: the service keeps answering with
the right status, nothing waits past its deadline (the pytest-timeout marks fail a hang),
every row of a batch comes back (each index once, in order), and the service recovers by
itself once the fault ends. Recovery is polled, never slept for a guessed time.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from scripts.mock_llm import MockLLM
from tests.conftest import TOKEN
from tests.redis_server import RedisServer, redis_server_binary

AUTH = {"X-API-Token": TOKEN}
STORE_RETRY = 1.0  # seconds a failed cache store is left alone (5 in production): a faster test


def client_of(app: Flask) -> FlaskClient:
    app.extensions["flaskllm"].service.cache.retry_after = STORE_RETRY
    return app.test_client()


def webhook(client: FlaskClient, prompt: str) -> Any:
    return client.post("/api/v1/webhook", json={"prompt": prompt}, headers=AUTH)


def batch(client: FlaskClient, prompts: list[str]) -> list[dict[str, Any]]:
    """Post a batch; assert it answers 200 with every row, in order, exactly once."""
    response = client.post("/api/v1/batch", json={"items": [{"prompt": p} for p in prompts]}, headers=AUTH)
    assert response.status_code == 200, response.data
    rows: list[dict[str, Any]] = response.get_json()["results"]
    assert [row["index"] for row in rows] == list(range(len(prompts)))
    return rows


def until(condition: Callable[[], bool], interval: float = 0.2) -> None:
    """Poll `condition` until it holds; the test's timeout mark bounds the wait."""
    while not condition():
        time.sleep(interval)


def code(response: Any) -> str:
    return str(response.get_json()["error"]["code"])


# --- the provider --------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_provider_unreachable_then_back(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    client = make_app(request_timeout=3).test_client()
    mock.stop()  # connection refused
    try:
        response = webhook(client, "The provider is down. Please call me.")
        assert response.status_code == 502 and code(response) == "provider_error"
        rows = batch(client, ["Row one. Call me.", "Row two. Write me.", "Row three. Thanks."])
        assert all(not row["ok"] and row["error"]["code"] == "provider_error" for row in rows)
        assert client.get("/api/v1/health").status_code == 200
    finally:
        mock.start()
    response = webhook(client, "The provider is down. Please call me.")  # errors are not cached
    assert response.status_code == 200 and response.get_json()["cached"] is False
    assert all(row["ok"] for row in batch(client, ["Row one. Call me.", "Row two. Write me."]))


@pytest.mark.timeout(15)
def test_provider_hangs_past_request_timeout(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    client = make_app(request_timeout=1, max_retries=2, batch_timeout=5).test_client()
    response = webhook(client, "[[mock:hang]] Nobody answers.")
    assert response.status_code == 504 and code(response) == "provider_timeout"
    rows = batch(client, ["[[mock:hang]] Stuck row.", "A fine row. Thanks.", "[[mock:delay=0.3]] Slow row."])
    assert [row["ok"] for row in rows] == [False, True, True]
    assert rows[0]["error"]["code"] == "provider_timeout"
    assert webhook(client, "Back to normal. Thanks.").status_code == 200


@pytest.mark.timeout(15)
def test_batch_deadline_returns_every_row(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    """BATCH_TIMEOUT shorter than REQUEST_TIMEOUT: the batch answers at its deadline, complete."""
    client = make_app(request_timeout=10, batch_timeout=1, provider_concurrency=2).test_client()
    prompts = ["[[mock:hang]] Stuck one.", "[[mock:hang]] Stuck two.", "Fine row. Thanks.", "Another. Ok."]
    rows = batch(client, prompts)
    assert [row["ok"] for row in rows[:2]] == [False, False]
    assert {row["error"]["code"] for row in rows[:2]} <= {"deadline_exceeded", "provider_timeout"}
    assert all(row["ok"] or row["error"]["code"] == "deadline_exceeded" for row in rows[2:])


@pytest.mark.timeout(15)
def test_connection_dropped_mid_body(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    client = make_app(max_retries=1).test_client()
    response = webhook(client, "[[mock:drop]] Cut off.")
    assert response.status_code == 502 and code(response) == "provider_error"
    recovered = webhook(client, "[[mock:fail_times=1,drop]] Cut off once, then fine.")
    assert recovered.status_code == 200  # the retry got through
    assert mock.stats()["calls"] == 4  # two drops, one drop + its successful retry
    rows = batch(client, ["[[mock:drop]] Cut.", "Fine row. Thanks."])
    assert [row["ok"] for row in rows] == [False, True]


@pytest.mark.timeout(15)
@pytest.mark.parametrize("mode", ["wrong_schema", "garbage"])
def test_provider_answers_200_with_nonsense(make_app: Callable[..., Flask], mock: MockLLM, mode: str) -> None:
    client = make_app().test_client()
    response = webhook(client, f"[[mock:{mode}]] Hello.")
    assert response.status_code == 502 and code(response) == "provider_error"
    rows = batch(client, [f"[[mock:{mode}]] Row.", "Fine row. Thanks."])
    assert [row["ok"] for row in rows] == [False, True]
    assert webhook(client, "Hello. Fine now.").status_code == 200


@pytest.mark.timeout(15)
def test_provider_429_with_retry_after_then_recovers(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    client = make_app(request_timeout=5, max_retries=2).test_client()
    prompt = "[[mock:fail_times=1,status=429,retry_after=1]] Busy, then fine."
    response = webhook(client, prompt)
    assert response.status_code == 200, response.data
    assert sum(mock.stats()["by_prompt"].values()) == 2  # the 429, then the retry after 1 s


@pytest.mark.timeout(15)
def test_provider_429_longer_than_the_deadline_is_passed_on(
    make_app: Callable[..., Flask], mock: MockLLM
) -> None:
    client = make_app(request_timeout=2, max_retries=2).test_client()
    response = webhook(client, "[[mock:status=429,retry_after=30]] Come back later.")
    assert response.status_code == 429 and code(response) == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 1
    rows = batch(client, ["Another row. Thanks.", "One more. Ok."])  # the process-wide throttle holds
    assert all(not row["ok"] and row["error"]["code"] == "rate_limited" for row in rows)


# --- the SQLite cache file -------------------------------------------------------------------

Workers = tuple[FlaskClient, FlaskClient, Path, Callable[[], FlaskClient]]


@pytest.fixture
def two_workers(make_app: Callable[..., Flask], tmp_path: Path) -> Workers:
    """Two apps sharing one SQLite file, like two gunicorn workers on one machine, and a
    way to start another one later."""
    path = tmp_path / "cache.sqlite3"

    def worker() -> FlaskClient:
        return client_of(make_app(cache_url=f"sqlite:///{path}"))

    first, second = worker(), worker()
    assert webhook(first, "Warm the cache. Thanks.").get_json()["cached"] is False
    assert webhook(second, "Warm the cache. Thanks.").get_json()["cached"] is True  # via the file
    return first, second, path, worker


def shared_again(first: FlaskClient, second: FlaskClient) -> Callable[[], bool]:
    """A probe: an answer computed by `first` is found by `second`, i.e. the file works."""
    counter = iter(range(10_000))

    def probe() -> bool:
        prompt = f"Recovery probe {next(counter)} {time.monotonic()}. Thanks."
        status = webhook(first, prompt).status_code
        if status == 429:  # a limiter still on its exhausted in-memory fallback: not yet
            return False
        assert status == 200
        response = webhook(second, prompt)
        assert response.status_code == 200
        return bool(response.get_json()["cached"])

    return probe


@pytest.mark.timeout(20)
def test_sqlite_file_deleted_while_serving(two_workers: Workers) -> None:
    first, second, path, worker = two_workers
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    assert webhook(first, "After the delete. Thanks.").status_code == 200
    assert all(row["ok"] for row in batch(second, ["Row after delete. Ok.", "Another. Ok."]))
    # The old workers still share the unlinked file; a worker started now opens the path, so
    # it only sees their answers once they have reopened the path too.
    third = worker()
    until(shared_again(first, third))
    until(shared_again(second, third))
    assert path.exists()


@pytest.mark.timeout(30)
def test_sqlite_file_locked_by_another_process(two_workers: Workers) -> None:
    first, second, path, _ = two_workers
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None);"
            " c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); sys.stdin.read()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        for i in range(3):
            assert webhook(first, f"While locked {i}. Thanks.").status_code == 200
        assert webhook(second, "Warm the cache. Thanks.").status_code == 200
        assert all(row["ok"] for row in batch(second, ["Locked row. Ok.", "Another. Ok."]))
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    until(shared_again(first, second))


@pytest.mark.timeout(30)
def test_sqlite_file_corrupted_while_serving(two_workers: Workers) -> None:
    first, second, path, _ = two_workers
    for suffix in ("", "-wal"):
        damaged = path.with_name(path.name + suffix)
        size = damaged.stat().st_size
        with damaged.open("r+b") as handle:  # same inode, garbage content
            handle.write(b"garbage!" * (size // 8 + 1))
    for i in range(3):
        assert webhook(first, f"After the damage {i}. Thanks.").status_code == 200
    assert all(row["ok"] for row in batch(second, ["Damaged row. Ok.", "Another. Ok."]))
    until(shared_again(first, second))
    assert list(path.parent.glob("cache.sqlite3.corrupt-*"))  # moved aside, not deleted


# --- Redis (cache and rate limits) ----------------------------------------------------------


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    if redis_server_binary() is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    with RedisServer() as server:
        yield server


@pytest.mark.redis
@pytest.mark.timeout(45)
def test_redis_killed_mid_run_and_restarted(
    make_app: Callable[..., Flask], redis_server: RedisServer
) -> None:
    limit = 30
    first, second = (
        client_of(
            make_app(
                cache_url=redis_server.url,
                rate_limit_storage_uri=redis_server.url,
                rate_limit_enabled=True,
                rate_limit=limit,
            )
        )
        for _ in range(2)
    )
    store = redis.Redis.from_url(redis_server.url)
    assert webhook(first, "Before the outage. Thanks.").status_code == 200
    assert webhook(second, "Before the outage. Thanks.").get_json()["cached"] is True
    assert store.keys("*LIMITER*") and store.keys("flaskllm:cache:*")

    redis_server.stop()  # SIGKILL
    assert webhook(first, "During the outage. Thanks.").status_code == 200
    assert all(row["ok"] for row in batch(first, ["Outage row one. Ok.", "Outage row two. Ok."]))
    statuses = [webhook(first, f"Outage request {i}. Ok.").status_code for i in range(limit)]
    # The webhook and the batch above were 2 requests: limits kept, in memory.
    assert set(statuses) == {200, 429} and statuses.index(429) == limit - 2
    throttled = webhook(first, "One more. Ok.")
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1

    redis_server.start()  # same port, empty
    until(shared_again(first, second), interval=0.5)
    assert store.keys("*LIMITER*")  # the limiter writes to Redis again
