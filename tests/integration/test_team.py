"""Operating for a team, through the app: token CLI, ledger, /usage, budgets, estimates,
/metrics access, with the real openai SDK against the mock LLM."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from backend import start_job_consumer
from backend.settings import ConfigurationError
from scripts.mock_llm import MockLLM
from tests.conftest import TOKEN, make_settings

ADMIN = "admin-token-0123456789-abcdefghijklmnopq"


def create_token(app: Flask, name: str, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=["tokens", "create", name, *args])
    assert result.exit_code == 0, result.output
    assert "not shown again" in result.output
    return str(result.output.strip().splitlines()[-1])


def cli(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["tokens", *args])


@pytest.fixture
def team_app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(admin_token=ADMIN)


def rows(n: int, tag: str, words: int = 8) -> list[dict[str, str]]:
    return [{"prompt": f"{tag} row {i} " + "word " * words} for i in range(n)]


def batch(client: FlaskClient, token: str, items: list[Any], **body: Any) -> Any:
    return client.post("/api/v1/batch", json={"items": items, **body}, headers={"X-API-Token": token})


def usage(client: FlaskClient, token: str, query: str = "") -> Any:
    return client.get(f"/api/v1/usage{query}", headers={"X-API-Token": token})


def test_cli_creates_lists_and_revokes_named_tokens(team_app: Flask) -> None:
    token = create_token(team_app, "alice", "--budget-usd", "2.5", "--period", "day")
    assert len(token) >= 32
    client = team_app.test_client()
    assert batch(client, token, rows(2, "a")).status_code == 200
    listed = cli(team_app, "list").output
    assert "alice" in listed and "2.5 USD/day" in listed and "active" in listed
    assert token not in listed
    assert "never" not in listed.splitlines()[1]  # last use was recorded
    assert "exists" in cli(team_app, "create", "alice").output
    assert cli(team_app, "create", "bad name").exit_code != 0
    assert cli(team_app, "revoke", "alice").exit_code == 0
    assert "No active token" in cli(team_app, "revoke", "alice").output
    assert "revoked" in cli(team_app, "list").output
    time.sleep(2.1)  # NAMED_TOKEN_TTL: what a worker may still trust
    assert batch(client, token, rows(1, "b")).status_code == 401


def test_empty_list_says_how_to_create(team_app: Flask) -> None:
    assert "tokens create NAME" in cli(team_app, "list").output


def test_ledger_counts_the_mocks_tokens_per_token_and_usage_shows_only_your_own(
    team_app: Flask, mock: MockLLM
) -> None:
    alice, bob = create_token(team_app, "alice"), create_token(team_app, "bob")
    client = team_app.test_client()
    first = batch(client, alice, rows(5, "a")).get_json()
    batch(client, alice, rows(5, "a"))  # all cached now: free
    batch(client, bob, [*rows(3, "b"), *rows(1, "b")])  # one duplicate row: free
    client.post("/api/v1/webhook", json={"prompt": "from the unnamed token"}, headers={"X-API-Token": TOKEN})
    mine = usage(client, alice).get_json()
    assert [t["name"] for t in mine["tokens"]] == ["alice"]
    totals = mine["tokens"][0]["totals"]
    assert totals["requests"] == 2
    assert (totals["rows"], totals["cached_rows"]) == (10, 5)
    assert totals["input_tokens"] == first["stats"]["usage"]["input_tokens"]
    assert totals["cost_usd"] == pytest.approx(
        (totals["input_tokens"] * 30 + totals["output_tokens"] * 60) / 1e6, abs=1e-9
    )
    everyone = usage(client, ADMIN).get_json()["tokens"]
    assert [t["name"] for t in everyone] == ["(unnamed)", "alice", "bob"]
    assert sum(t["totals"]["input_tokens"] for t in everyone) == mock.stats()["input_tokens"]
    assert sum(t["totals"]["output_tokens"] for t in everyone) == mock.stats()["output_tokens"]
    bob_totals = everyone[2]["totals"]
    assert (bob_totals["rows"], bob_totals["cached_rows"]) == (4, 1)
    assert everyone[1]["by_model"][0]["model"] == "gpt-4"
    assert everyone[1]["days"][0]["requests"] == 2


def test_usage_ranges(team_app: Flask) -> None:
    client = team_app.test_client()
    bad = usage(client, TOKEN, "?from=yesterday")
    assert bad.status_code == 400 and "from: must be a date" in bad.get_json()["error"]["message"]
    assert usage(client, TOKEN, "?to=2026-13-01").status_code == 400
    long = usage(client, TOKEN, "?from=2020-01-01&to=2026-01-01").get_json()
    assert (long["from"], long["to"]) == ("2025-01-01", "2026-01-01")  # a year at most
    empty = usage(client, TOKEN, "?from=2026-12-05&to=2026-12-01").get_json()
    assert empty["tokens"][0]["totals"]["rows"] == 0


def test_admin_token_reads_but_does_not_work(team_app: Flask) -> None:
    client = team_app.test_client()
    resp = batch(client, ADMIN, rows(1, "x"))
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "admin_token"
    assert usage(client, ADMIN).status_code == 200
    assert usage(client, "wrong").status_code == 401


def test_short_admin_token_is_refused_at_start() -> None:
    with pytest.raises((ConfigurationError, ValueError), match="ADMIN_TOKEN"):
        make_settings(admin_token="short")


def test_unknown_model_costs_unknown_not_zero(make_app: Callable[..., Flask], tmp_path: Any) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."other"]\ninput = 1\noutput = 1\n')
    app = make_app(prices_file=str(prices))
    name = create_token(app, "carol")
    client = app.test_client()
    assert batch(client, name, rows(2, "c")).status_code == 200
    totals = usage(client, name).get_json()["tokens"][0]["totals"]
    assert totals["input_tokens"] > 0
    assert totals["cost_usd"] is None and totals["unpriced_rows"] == 2


def test_a_budget_stops_its_token_and_cached_rows_stay_free(team_app: Flask) -> None:
    capped = create_token(team_app, "capped", "--budget-usd", "0.02", "--period", "day")
    other = create_token(team_app, "other")
    client = team_app.test_client()
    # gpt-4 at 30/60 USD per million tokens: about 0.004 USD a row, so the cap falls mid-batch;
    # rows hold their estimated cost while they run, so 8 rows starting at once cannot all slip under
    first = batch(client, capped, rows(8, "cap", words=30)).get_json()
    row = next(r for r in first["results"] if r["ok"])["usage"]
    row_cost = (row["input_tokens"] * 30 + row["output_tokens"] * 60) / 1e6
    codes = [r["error"]["code"] if not r["ok"] else "ok" for r in first["results"]]
    assert "ok" in codes and "budget_exceeded" in codes
    refused = next(r for r in first["results"] if not r["ok"])["error"]
    assert refused["resets_at"].endswith("T00:00:00Z") and refused["retry_after"] >= 1
    for n in range(10):  # what is left of the budget goes, then every request is refused
        resp = batch(client, capped, rows(2, f"new{n}", words=30))
        if resp.status_code == 429:
            break
    assert resp.status_code == 429
    assert resp.get_json()["error"]["code"] == "budget_exceeded"
    assert "resets at" in resp.get_json()["error"]["message"]
    assert int(resp.headers["Retry-After"]) >= 1
    spent = usage(client, capped).get_json()["tokens"][0]
    assert 0.02 <= spent["totals"]["cost_usd"] <= 0.02 + 1.1 * row_cost  # at most about one row over
    answered = [r for r in first["results"] if r["ok"]]
    again = batch(client, capped, [{"prompt": rows(8, "cap", words=30)[answered[0]["index"]]["prompt"]}])
    assert again.status_code == 200 and again.get_json()["results"][0]["cached"] is True
    hook = client.post("/api/v1/webhook", json={"prompt": "brand new"}, headers={"X-API-Token": capped})
    assert hook.status_code == 429
    assert batch(client, other, rows(3, "other", words=30)).status_code == 200
    budget = usage(client, capped).get_json()["tokens"][0]["budget"]
    assert budget["remaining_usd"] == 0.0 and budget["period"] == "day"


def test_a_job_crossing_its_budget_fails_the_rest_and_can_resume(team_app: Flask) -> None:
    capped = create_token(team_app, "jobcap", "--budget-usd", "0.003", "--period", "month")
    start_job_consumer(team_app)
    try:
        client = team_app.test_client()
        items = rows(12, "job", words=30)
        head = {"X-API-Token": capped}
        job = client.post("/api/v1/jobs", json={"items": items}, headers=head).get_json()["job"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            status = client.get(f"/api/v1/jobs/{job['id']}", headers=head).get_json()["job"]
            if status["status"] == "done":
                break
            time.sleep(0.05)
        results = client.get(f"/api/v1/jobs/{job['id']}/results", headers=head).get_json()["results"]
        failed = [r for r in results if not r["ok"]]
        assert failed and all(r["error"]["code"] == "budget_exceeded" for r in failed)
        assert any(r["ok"] for r in results)
        # Spent: a new job of new rows is refused; one with cached rows is taken, its cached rows served.
        assert client.post("/api/v1/jobs", json={"items": rows(2, "x")}, headers=head).status_code == 429
        done = [items[r["index"]] for r in results if r["ok"]]
        resumed = client.post(
            "/api/v1/jobs", json={"items": [done[0], items[failed[0]["index"]]]}, headers=head
        )
        assert resumed.status_code == 202
    finally:
        team_app.extensions["flaskllm"].consumer.stop(wait=5)


def test_estimate_prices_a_batch_before_it_runs(team_app: Flask, mock: MockLLM) -> None:
    client = team_app.test_client()
    head = {"X-API-Token": TOKEN}
    batch(client, TOKEN, rows(10, "warm", words=40))  # the ledger learns tokens per word
    mock.reset()
    items = [*rows(20, "fresh", words=40), *rows(3, "warm", words=40), {"prompt": ""}, "not a row"]
    estimate = client.post("/api/v1/estimate", json={"items": items}, headers=head).get_json()["estimate"]
    assert mock.calls() == 0  # no provider call
    assert (estimate["rows"], estimate["invalid"], estimate["cached"], estimate["to_run"]) == (25, 2, 3, 20)
    assert (estimate["provider"], estimate["model"]) == ("openai", "gpt-4")
    assert estimate["confirm"] is False  # 20 rows of gpt-4: under ESTIMATE_CONFIRM_USD
    assert estimate["budget"] is None
    batch(client, TOKEN, items)
    measured = mock.stats()["input_tokens"]
    assert abs(estimate["input_tokens"] - measured) <= 0.15 * measured
    assert estimate["cost_usd"] == pytest.approx(
        (estimate["input_tokens"] * 30 + estimate["output_tokens"] * 60) / 1e6, abs=1e-9
    )
    again = client.post("/api/v1/estimate", json={"items": items}, headers=head).get_json()["estimate"]
    assert (again["cached"], again["to_run"], again["cost_usd"]) == (23, 0, 0.0)


def test_estimate_asks_above_the_threshold_and_knows_unpriced_and_local(
    make_app: Callable[..., Flask], tmp_path: Any
) -> None:
    app = make_app(estimate_confirm_usd=0.001)
    client = app.test_client()
    head = {"X-API-Token": TOKEN}
    first = client.post("/api/v1/estimate", json={"items": rows(5, "x")}, headers=head).get_json()["estimate"]
    assert first["confirm"] is True and first["input_tokens"] > 0  # the prior: no ledger yet
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."other"]\ninput = 1\noutput = 1\n')
    unpriced = make_app(prices_file=str(prices), estimate_confirm_rows=3).test_client()
    found = unpriced.post("/api/v1/estimate", json={"items": rows(5, "y")}, headers=head).get_json()[
        "estimate"
    ]
    assert found["cost_usd"] is None and found["confirm"] is True
    local = make_app(provider="local").test_client()
    free = local.post("/api/v1/estimate", json={"items": rows(5, "z")}, headers=head).get_json()["estimate"]
    assert (free["cost_usd"], free["provider"]) == (0.0, "local")  # counted as it reports them, free
    assert free["input_tokens"] > 0
    nope = local.post(
        "/api/v1/estimate",
        json={"items": [{"prompt": "hi", "type": "translation", "language": "fr"}]},
        headers=head,
    ).get_json()["estimate"]
    assert nope["invalid"] == 1  # the local provider cannot translate: the run would fail it for free
    big = client.post("/api/v1/estimate", json={"items": rows(5001, "w")}, headers=head)
    assert big.status_code == 413


def test_estimate_shows_the_callers_budget(team_app: Flask) -> None:
    capped = create_token(team_app, "est", "--budget-usd", "0.0001", "--period", "day")
    estimate = (
        team_app.test_client()
        .post("/api/v1/estimate", json={"items": rows(3, "e")}, headers={"X-API-Token": capped})
        .get_json()["estimate"]
    )
    assert estimate["budget"]["limit_usd"] == 0.0001
    assert estimate["confirm"] is True  # more than the budget left


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_metrics_move_with_traffic_and_follow_metrics_access(make_app: Callable[..., Flask]) -> None:
    app = make_app(admin_token=ADMIN)
    name = create_token(app, "metered")
    client = app.test_client()
    before = client.get("/metrics").get_data(as_text=True)
    batch(client, name, rows(3, "m"))
    batch(client, name, rows(3, "m"))
    after = client.get("/metrics").get_data(as_text=True)
    route = {"route": "/api/v1/batch", "status": "200"}
    assert (
        metric(after, "flaskllm_requests_total", **route) - metric(before, "flaskllm_requests_total", **route)
        == 2
    )
    ok = {"provider": "openai", "model": "gpt-4", "outcome": "ok"}
    assert (
        metric(after, "flaskllm_provider_calls_total", **ok)
        - metric(before, "flaskllm_provider_calls_total", **ok)
        == 3
    )
    assert (
        metric(after, "flaskllm_cache_total", result="hit")
        - metric(before, "flaskllm_cache_total", result="hit")
        == 3
    )
    assert metric(after, "flaskllm_llm_tokens_total", token="metered", direction="input") > 0
    assert metric(after, "flaskllm_cost_usd_total", token="metered") > 0
    assert metric(after, "flaskllm_request_seconds_count", route="/api/v1/batch") >= 2
    remote = client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert remote.status_code == 403 and remote.get_json()["error"]["code"] == "forbidden"
    forwarded = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})  # via a local proxy
    assert forwarded.status_code == 403
    guarded = make_app(admin_token=ADMIN, metrics_access="admin").test_client()
    assert guarded.get("/metrics").status_code == 401
    assert guarded.get("/metrics", headers={"X-API-Token": TOKEN}).status_code == 401
    assert guarded.get("/metrics", headers={"X-API-Token": ADMIN}).status_code == 200
    assert make_app(metrics_access="off").test_client().get("/metrics").status_code == 404


def test_health_tells_the_kit_the_thresholds(make_app: Callable[..., Flask]) -> None:
    health = make_app(llm_fallback="local").test_client().get("/api/v1/health").get_json()
    assert health["confirm_above"] == {"cost_usd": 1.0, "rows": 2000}
    assert health["fallback"] == ["local"]
