"""The limiter's set-up: keys never hold a token, the strategy, and which routes pay what."""

from __future__ import annotations

from flask import Flask

from backend import create_app
from backend.auth import client_id
from backend.limits import rate_key
from tests.conftest import TOKEN, make_settings


def limited_app(**settings: object) -> Flask:
    return create_app(make_settings(rate_limit_enabled=True, job_workers=0, **settings))


def test_the_key_is_a_hash_of_a_valid_token_or_the_address() -> None:
    app = limited_app()
    with app.test_request_context("/api/v1/webhook", headers={"X-API-Token": TOKEN}):
        assert rate_key() == f"token:{client_id(TOKEN)}" and TOKEN not in rate_key()
    with app.test_request_context(
        "/api/v1/webhook", headers={"X-API-Token": "wrong"}, environ_base={"REMOTE_ADDR": "10.1.2.3"}
    ):
        assert rate_key() == "addr:10.1.2.3"


def test_a_sliding_window_counter_in_memory_by_default() -> None:
    limiter = limited_app().extensions["flaskllm"].limiter
    assert limiter._strategy == "sliding-window-counter"  # flask-limiter has no public accessor
    assert limiter._storage_uri == "memory://"


def test_work_and_polling_have_separate_budgets() -> None:
    app = limited_app(rate_limit=2, poll_rate_limit=50)
    client = app.test_client()
    headers = {"X-API-Token": TOKEN}
    for _ in range(2):
        resp = client.post("/api/v1/webhook", json={"prompt": "Hi there."}, headers=headers)
        assert resp.status_code == 200
    assert client.post("/api/v1/batch", json={"items": [{"prompt": "x"}]}, headers=headers).status_code == 429
    assert client.post("/api/v1/jobs", json={"items": [{"prompt": "x"}]}, headers=headers).status_code == 429
    polled = client.get("/api/v1/jobs/0123456789abcdef0123456789", headers=headers)
    assert polled.status_code == 404  # not refused by the spent work budget
    assert polled.headers["X-RateLimit-Limit"] == "50"
    assert client.get("/api/v1/health").status_code == 200  # exempt


def test_limits_are_checked_once_per_request_by_the_route_decorator() -> None:
    app = limited_app(rate_limit=2)
    limiter = app.extensions["flaskllm"].limiter
    assert limiter._check_request_limit not in app.before_request_funcs.get(None, [])  # no 2nd pass
    checks = []
    real = limiter.limiter.hit

    def hit(*args: object, **kwargs: object) -> bool:
        checks.append(args)
        return bool(real(*args, **kwargs))

    limiter._limiter.hit = hit
    client = app.test_client()
    for expected in (200, 200, 429):
        resp = client.post("/api/v1/webhook", json={"prompt": "Hi there."}, headers={"X-API-Token": TOKEN})
        assert resp.status_code == expected
    assert len(checks) == 3
    assert resp.headers["X-RateLimit-Limit"] == "2" and int(resp.headers["Retry-After"]) >= 1
