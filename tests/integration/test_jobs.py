"""Jobs through the app: the real openai SDK against the mock, Huey on a SQLite file, the
embedded consumer running in this process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from backend import start_job_consumer
from scripts.mock_llm import MockLLM
from tests.conftest import OTHER_TOKEN, TOKEN
from tests.integration.conftest import assert_error

H = {"X-API-Token": TOKEN}
OTHER = {"X-API-Token": OTHER_TOKEN}


@pytest.fixture
def jobs_app(make_app: Callable[..., Flask]) -> Iterator[Callable[..., Flask]]:
    """`jobs_app(**settings)`: an app whose job consumer runs; stopped after the test."""
    started: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        app = make_app(**{"job_chunk_size": 4, **overrides})
        start_job_consumer(app)
        started.append(app)
        return app

    yield build
    for app in started:
        app.extensions["flaskllm"].consumer.stop(wait=5)


def rows(n: int, prefix: str = "Row") -> list[dict[str, Any]]:
    return [{"id": f"A{i + 2}", "prompt": f"{prefix} {i}: please confirm the order."} for i in range(n)]


def submit(client: FlaskClient, items: list[Any], key: str | None = None, **body: Any) -> Any:
    headers = {**H, **({"Idempotency-Key": key} if key else {})}
    return client.post("/api/v1/jobs", json={"items": items, **body}, headers=headers)


def wait_done(client: FlaskClient, job_id: str, timeout: float = 20) -> dict[str, Any]:
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        job: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}", headers=H).get_json()["job"]
        if job["status"] in ("done", "cancelled") and job["done"] == job["total"]:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def all_results(client: FlaskClient, job_id: str, limit: int = 7) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after: int | None = -1
    while after is not None:
        page = client.get(f"/api/v1/jobs/{job_id}/results?after={after}&limit={limit}", headers=H).get_json()
        out += page["results"]
        after = page["next"]
    return out


def test_a_job_runs_every_row_and_pages_its_results_in_order(jobs_app: Any, mock: MockLLM) -> None:
    client = jobs_app().test_client()
    items = [*rows(10), {"prompt": ""}, "not an object"]
    resp = submit(client, items, defaults={"type": "summary"})
    assert resp.status_code == 202
    job = resp.get_json()["job"]
    assert job["status"] in ("queued", "running") and job["total"] == 12
    assert set(job) == {
        "id",
        "status",
        "total",
        "done",
        "succeeded",
        "failed",
        "cached",
        "created_at",
        "updated_at",
        "eta_seconds",
    }
    done = wait_done(client, job["id"])
    assert (done["status"], done["done"], done["succeeded"], done["failed"]) == ("done", 12, 10, 2)
    assert done["eta_seconds"] == 0
    results = all_results(client, job["id"])
    assert [r["index"] for r in results] == list(range(12))
    assert [r["id"] for r in results[:3]] == ["A2", "A3", "A4"]
    assert all(r["ok"] for r in results[:10])
    assert results[10]["error"]["code"] == "invalid_input" and results[11]["error"]["code"] == "invalid_input"
    assert mock.calls() == 10


def test_results_while_running_never_end_early(jobs_app: Any, mock: MockLLM) -> None:
    client = jobs_app(job_workers=1).test_client()
    items = rows(8, "[[mock:delay=0.3]] Slow")
    job_id = submit(client, items).get_json()["job"]["id"]
    page = client.get(f"/api/v1/jobs/{job_id}/results", headers=H).get_json()
    assert page["next"] is not None  # rows still running: never null
    assert page["next"] == (page["results"][-1]["index"] if page["results"] else -1)
    assert len(all_results(client, job_id)) == 8


def test_cached_and_duplicate_rows_cost_nothing(jobs_app: Any, mock: MockLLM) -> None:
    client = jobs_app().test_client()
    first = submit(client, rows(6) + rows(2)).get_json()["job"]["id"]  # two duplicates
    assert wait_done(client, first)["succeeded"] == 8
    assert mock.calls() == 6
    again = submit(client, rows(6)).get_json()["job"]["id"]
    job = wait_done(client, again)
    assert (job["cached"], mock.calls()) == (6, 6)


def test_idempotency_key_attaches_to_the_same_job(jobs_app: Any, mock: MockLLM) -> None:
    client = jobs_app().test_client()
    first = submit(client, rows(5), key="sheet1-A2:A6")
    assert first.status_code == 202
    again = submit(client, rows(5), key="sheet1-A2:A6")
    assert again.status_code == 200
    assert again.get_json()["job"]["id"] == first.get_json()["job"]["id"]
    assert_error(submit(client, rows(4), key="sheet1-A2:A6"), 409, "idempotency_conflict")
    other_headers = {**OTHER, "Idempotency-Key": "sheet1-A2:A6"}
    other = client.post("/api/v1/jobs", json={"items": rows(5)}, headers=other_headers)
    assert other.status_code == 202  # another token's key is another key
    assert other.get_json()["job"]["id"] != first.get_json()["job"]["id"]
    wait_done(client, first.get_json()["job"]["id"])
    assert mock.calls() == 5


def test_a_job_is_invisible_to_other_tokens(jobs_app: Any) -> None:
    client = jobs_app().test_client()
    job_id = submit(client, rows(2)).get_json()["job"]["id"]
    for method, path in (("get", ""), ("get", "/results"), ("delete", "")):
        resp = getattr(client, method)(f"/api/v1/jobs/{job_id}{path}", headers=OTHER)
        assert_error(resp, 404, "not_found")
    assert client.get(f"/api/v1/jobs/{job_id}").status_code == 401


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/jobs/0123456789abcdef0123456789", 404, "not_found"),
        ("/api/v1/jobs/not-a-job", 404, "not_found"),
        ("/api/v1/jobs/{id}/results?after=-2", 400, "invalid_input"),
        ("/api/v1/jobs/{id}/results?after=99", 400, "invalid_input"),
        ("/api/v1/jobs/{id}/results?after=x", 400, "invalid_input"),
        ("/api/v1/jobs/{id}/results?limit=0", 400, "invalid_input"),
        ("/api/v1/jobs/{id}/results?limit=1001", 400, "invalid_input"),
        ("/api/v1/jobs/{id}/results?limit=" + "9" * 5000, 400, "invalid_input"),
    ],
)
def test_bad_ids_and_paging_get_clear_errors(jobs_app: Any, path: str, status: int, code: str) -> None:
    client = jobs_app(job_workers=0).test_client()
    job_id = submit(client, rows(3)).get_json()["job"]["id"]
    assert_error(client.get(path.format(id=job_id), headers=H), status, code)


def test_bad_submissions_get_clear_errors(jobs_app: Any) -> None:
    client = jobs_app(job_workers=0, job_max_items=5).test_client()
    body = assert_error(submit(client, rows(6)), 413, "too_many_items")
    assert "at most 5 rows per job" in body["error"]["message"]
    assert_error(submit(client, []), 400, "invalid_input")
    assert_error(client.post("/api/v1/jobs", json={"items": "x"}, headers=H), 400, "invalid_input")
    extra_field = {"items": rows(1), "x": 1}
    assert_error(client.post("/api/v1/jobs", json=extra_field, headers=H), 400, "invalid_input")
    assert_error(submit(client, rows(1), key="spaces are not allowed"), 400, "invalid_input")
    assert_error(submit(client, rows(1), key="k" * 129), 400, "invalid_input")
    assert_error(client.post("/api/v1/jobs", data="x", headers=H), 415, "unsupported_media_type")


def test_cancel_stops_rows_not_started_and_keeps_finished_ones(jobs_app: Any, mock: MockLLM) -> None:
    client = jobs_app(job_workers=1, job_chunk_size=2).test_client()
    items = rows(2) + rows(8, "[[mock:delay=0.2]] Slow")
    job_id = submit(client, items).get_json()["job"]["id"]
    deadline = time.monotonic() + 10
    while client.get(f"/api/v1/jobs/{job_id}", headers=H).get_json()["job"]["done"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    resp = client.delete(f"/api/v1/jobs/{job_id}", headers=H)
    assert resp.status_code == 200 and resp.get_json()["job"]["status"] == "cancelled"
    job = wait_done(client, job_id)
    results = all_results(client, job_id)
    assert len(results) == 10 and all(r["ok"] for r in results[:2])
    cancelled = [r for r in results if not r["ok"]]
    assert cancelled and all(r["error"]["code"] == "cancelled" for r in cancelled)
    assert mock.calls() < 10 and job["status"] == "cancelled"
    again = client.delete(f"/api/v1/jobs/{job_id}", headers=H).get_json()["job"]
    assert again["status"] == "cancelled"


def test_polling_is_not_charged_against_rate_limit(jobs_app: Any) -> None:
    client = jobs_app(rate_limit_enabled=True, rate_limit=2).test_client()
    job_id = submit(client, rows(2)).get_json()["job"]["id"]
    for _ in range(30):
        assert client.get(f"/api/v1/jobs/{job_id}", headers=H).status_code == 200
        assert client.get(f"/api/v1/jobs/{job_id}/results", headers=H).status_code == 200
    assert submit(client, rows(1)).status_code == 202
    assert_error(submit(client, rows(1, "Another")), 429, "rate_limited")


def test_polling_has_its_own_limit(jobs_app: Any) -> None:
    client = jobs_app(rate_limit_enabled=True, poll_rate_limit=3, job_workers=0).test_client()
    job_id = submit(client, rows(1)).get_json()["job"]["id"]
    for _ in range(3):
        assert client.get(f"/api/v1/jobs/{job_id}", headers=H).status_code == 200
    assert_error(client.get(f"/api/v1/jobs/{job_id}", headers=H), 429, "rate_limited")


def test_a_job_submitted_with_no_consumer_waits_queued_then_runs(jobs_app: Any, mock: MockLLM) -> None:
    """Scale-out: the web process runs no rows (JOB_WORKERS=0); a worker on the same queue does."""
    web = jobs_app(job_workers=0)
    client = web.test_client()
    job_id = submit(client, rows(5)).get_json()["job"]["id"]
    time.sleep(0.3)
    assert client.get(f"/api/v1/jobs/{job_id}", headers=H).get_json()["job"]["status"] == "queued"
    worker = jobs_app(jobs_url=web.extensions["flaskllm"].settings.jobs_url)
    assert worker.extensions["flaskllm"].consumer.running
    assert wait_done(client, job_id)["succeeded"] == 5
    assert mock.calls() == 5


def test_cors_allows_job_headers_and_delete(jobs_app: Any) -> None:
    client = jobs_app(job_workers=0).test_client()
    resp = client.options(
        "/api/v1/jobs/0123456789abcdef0123456789",
        headers={
            "Origin": "https://excel.officeapps.live.com",
            "Access-Control-Request-Method": "DELETE",
            "Access-Control-Request-Headers": "idempotency-key,x-api-token",
        },
    )
    assert resp.status_code in (200, 204)
    assert "DELETE" in resp.headers["Access-Control-Allow-Methods"]
    assert "idempotency-key" in resp.headers["Access-Control-Allow-Headers"].lower()


def test_health_reports_job_limits(jobs_app: Any) -> None:
    body = jobs_app(job_workers=0).test_client().get("/api/v1/health").get_json()
    assert (body["job_max_items"], body["provider_concurrency"], body["batch_max_items"]) == (5000, 32, 100)
