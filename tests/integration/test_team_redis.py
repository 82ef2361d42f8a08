"""STATE_URL=redis://: named tokens, the ledger and the estimate's calibration in a real
redis-server, shared by two apps as by two machines."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from scripts.mock_llm import MockLLM
from tests.redis_server import RedisServer, redis_server_binary

ADMIN = "admin-token-0123456789-abcdefghijklmnopq"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    if redis_server_binary() is None:
        pytest.fail("redis-server is not installed: scripts/test.sh installs it")
    with RedisServer() as server:
        yield server.url


def test_two_apps_share_tokens_ledger_and_revocation_through_redis(
    make_app: Callable[..., Flask], mock: MockLLM, redis_url: str
) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    one = make_app(state_url=redis_url, admin_token=ADMIN)
    two = make_app(state_url=redis_url, admin_token=ADMIN)
    made = one.test_cli_runner().invoke(args=["tokens", "create", "dana", "--budget-usd", "9"])
    token = made.output.strip().splitlines()[-1]
    rows = [{"prompt": f"redis row {i} " + "word " * 20} for i in range(6)]
    for app in (one, two):  # the token made on one machine works on the other
        resp = app.test_client().post("/api/v1/batch", json={"items": rows}, headers={"X-API-Token": token})
        assert resp.status_code == 200
    ledger = two.test_client().get("/api/v1/usage", headers={"X-API-Token": ADMIN}).get_json()["tokens"]
    dana = next(t for t in ledger if t["name"] == "dana")
    assert dana["totals"]["requests"] == 2
    assert dana["totals"]["input_tokens"] == mock.stats()["input_tokens"]
    assert dana["budget"]["limit_usd"] == 9.0
    assert "dana" in two.test_cli_runner().invoke(args=["tokens", "list"]).output
    estimate = (
        one.test_client()
        .post(
            "/api/v1/estimate",
            json={"items": [{"prompt": f"fresh {i} " + "word " * 20} for i in range(4)]},
            headers={"X-API-Token": token},
        )
        .get_json()["estimate"]
    )
    per_row = mock.stats()["input_tokens"] / mock.calls()  # calibrated: tokens as the mock counts them
    assert abs(estimate["input_tokens"] - 4 * per_row) <= 0.15 * 4 * per_row
    assert two.test_cli_runner().invoke(args=["tokens", "revoke", "dana"]).exit_code == 0
    time.sleep(2.1)
    refused = one.test_client().post("/api/v1/batch", json={"items": rows}, headers={"X-API-Token": token})
    assert refused.status_code == 401
