"""Operating the service for a team, against the server as the README starts it
(`gunicorn wsgi:application`, shipped defaults: 2 gevent workers, SQLite state): tokens made
with the real `flask --app wsgi tokens` CLI, traffic over loopback, the mock LLM upstream.

What only a real server shows: two worker processes writing one ledger, a revocation
reaching both, /metrics adding up both (prometheus-client multiprocess mode), and a
provider dying under a running job.
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from backend.ledger import FREE_WRITE_DELAY
from scripts import benchlib
from scripts.mock_llm import MockLLM

pytestmark = pytest.mark.e2e
ADMIN = "admin-token-0123456789-abcdefghijklmnopq"


class Live:
    def __init__(self, server: benchlib.Server) -> None:
        self.server = server
        self.url = f"http://127.0.0.1:{server.port}"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`flask --app wsgi tokens ...` as an operator types it, on the server's settings."""
        return subprocess.run(
            [benchlib.PYTHON, "-m", "flask", "--app", "wsgi", "tokens", *args],
            cwd=benchlib.ROOT,
            env=self.server.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def create(self, name: str, *args: str) -> str:
        done = self.cli("create", name, *args)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    def post(self, path: str, token: str, body: Any) -> requests.Response:
        return requests.post(self.url + path, json=body, headers={"X-API-Token": token}, timeout=60)

    def get(self, path: str, token: str | None = None) -> requests.Response:
        headers = {"X-API-Token": token} if token else {}
        return requests.get(self.url + path, headers=headers, timeout=30)

    def usage(self) -> dict[str, dict[str, Any]]:
        tokens = self.get("/api/v1/usage", ADMIN).json()["tokens"]
        return {t["name"]: t for t in tokens}


@pytest.fixture
def live(mock: MockLLM, tmp_path: Path) -> Iterator[Live]:
    env = {
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": mock.openai_base_url,
        "ADMIN_TOKEN": ADMIN,
        "GUNICORN_WORKERS": "2",
    }
    with benchlib.gunicorn_shipped(env, str(tmp_path), tmp_path / "server.log") as server:
        yield Live(server)


def prompts(tag: str, n: int, words: int = 20) -> list[str]:
    return [f"{tag} message {i}: " + " ".join(f"w{(i * 7 + k) % 97}" for k in range(words)) for i in range(n)]


@pytest.mark.timeout(180)
def test_ledger_is_exact_under_two_workers_and_64_concurrent_batches(live: Live, mock: MockLLM) -> None:
    names = ["ana", "ben", "cleo"]
    tokens = {name: live.create(name) for name in names}
    pool = prompts("ledger", 300)  # batches overlap: cache hits, duplicates, shared flights
    rng = random.Random(7)
    plan = [(names[n % 3], rng.sample(pool, 12)) for n in range(64)]
    with ThreadPoolExecutor(64) as threads:
        answers = list(
            threads.map(
                lambda p: live.post("/api/v1/batch", tokens[p[0]], {"items": [{"prompt": t} for t in p[1]]}),
                plan,
            )
        )
    assert [a.status_code for a in answers] == [200] * 64
    assert all(a.json()["stats"]["succeeded"] == 12 for a in answers)
    time.sleep(FREE_WRITE_DELAY + 0.5)  # a batch answered all from the cache is written this late
    ledger = live.usage()
    stats = mock.stats()
    assert sum(ledger[n]["totals"]["input_tokens"] for n in names) == stats["input_tokens"]
    assert sum(ledger[n]["totals"]["output_tokens"] for n in names) == stats["output_tokens"]
    for name in names:
        sent = [rows for who, rows in plan if who == name]
        assert ledger[name]["totals"]["requests"] == len(sent)
        assert ledger[name]["totals"]["rows"] == 12 * len(sent)
    paid_rows = sum(ledger[n]["totals"]["rows"] - ledger[n]["totals"]["cached_rows"] for n in names)
    assert paid_rows == stats["calls"]  # every provider call is one paid row, none lost or doubled
    assert "ana" in live.cli("list").stdout

    # The estimate, calibrated by that traffic, is within 15 % of what the next run reports.
    fresh = [{"prompt": t} for t in prompts("estimate", 60, words=35)]
    estimate = live.post("/api/v1/estimate", tokens["ana"], {"items": fresh}).json()["estimate"]
    before = mock.stats()["input_tokens"]
    assert live.post("/api/v1/batch", tokens["ana"], {"items": fresh}).status_code == 200
    measured = mock.stats()["input_tokens"] - before
    assert estimate["to_run"] == 60
    assert abs(estimate["input_tokens"] - measured) <= 0.15 * measured, (estimate, measured)


@pytest.mark.timeout(120)
def test_a_budget_stops_its_token_while_the_others_go_on(live: Live) -> None:
    capped = live.create("capped", "--budget-usd", "0.02", "--period", "day")
    free = live.create("free")
    pool = prompts("budget", 400, words=40)
    statuses: dict[str, list[int]] = {"capped": [], "free": []}

    def run(name: str, token: str, offset: int) -> None:
        for n in range(12):
            rows = pool[offset + n * 8 : offset + n * 8 + 8]
            resp = live.post("/api/v1/batch", token, {"items": [{"prompt": t} for t in rows]})
            statuses[name].append(resp.status_code)
            if resp.status_code == 429:
                body = resp.json()["error"]
                assert body["code"] == "budget_exceeded" and "resets at" in body["message"]
                assert int(resp.headers["Retry-After"]) >= 1

    threads = [
        threading.Thread(target=run, args=("capped", capped, 0)),
        threading.Thread(target=run, args=("free", free, 200)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 429 in statuses["capped"] and statuses["capped"][0] == 200
    assert statuses["capped"][-1] == 429  # once spent, it stays refused
    assert statuses["free"] == [200] * 12
    ledger = live.usage()
    budget = ledger["capped"]["budget"]
    spent = ledger["capped"]["totals"]["cost_usd"]
    one_batch = 8 * (200 * 30 + 20 * 60) / 1e6  # generous: 8 rows of under 200 tokens at gpt-4 prices
    assert 0.02 <= spent <= 0.02 + one_batch  # rows already started when it crossed were paid
    assert budget["remaining_usd"] == 0.0


@pytest.mark.timeout(120)
def test_a_revoked_token_is_refused_by_every_worker_within_5_seconds(live: Live) -> None:
    token = live.create("leaver")
    for _ in range(6):  # both workers have seen (and remember) the token
        assert live.post("/api/v1/webhook", token, {"prompt": "still here"}).status_code == 200
    revoked = live.cli("revoke", "leaver")
    assert revoked.returncode == 0, revoked.stderr
    since = time.monotonic()
    while True:  # refused by both workers: ten in a row on new connections
        codes = [live.post("/api/v1/webhook", token, {"prompt": "still here"}).status_code for _ in range(10)]
        if codes == [401] * 10:
            break
        assert time.monotonic() - since < 5.0, f"a revoked token still worked after 5 s: {codes}"
        time.sleep(0.1)


def scrape(live: Live) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = live.get("/metrics")
    assert resp.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and all((k, labels[k]) in ls for k in labels))


@pytest.mark.timeout(120)
def test_metrics_parse_and_add_up_both_workers(live: Live) -> None:
    token = live.create("graphs")
    before = scrape(live)
    for n in range(10):  # new connections: both workers serve some
        rows = [{"prompt": t} for t in prompts(f"metrics{n}", 3)]
        assert live.post("/api/v1/batch", token, {"items": rows}).status_code == 200
    job = live.post(
        "/api/v1/jobs", token, {"items": [{"prompt": t} for t in prompts("metricjob", 40)]}
    ).json()["job"]
    while live.get(f"/api/v1/jobs/{job['id']}", token).json()["job"]["status"] != "done":
        time.sleep(0.1)
    after = scrape(live)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("flaskllm_requests_total", route="/api/v1/batch", status="200") == 10
    assert moved("flaskllm_request_seconds_count", route="/api/v1/batch") == 10
    assert moved("flaskllm_provider_calls_total", provider="openai", model="gpt-4", outcome="ok") == 70
    assert moved("flaskllm_cache_total", result="miss") >= 70
    assert moved("flaskllm_job_rows_total", stage="queued") == 40
    assert moved("flaskllm_job_rows_total", stage="done") == 40
    assert value(after, "flaskllm_job_rows_running") == 0
    assert value(after, "flaskllm_provider_in_flight") == 0
    assert moved("flaskllm_llm_tokens_total", token="graphs", direction="input") > 0
    assert moved("flaskllm_cost_usd_total", token="graphs") > 0


@pytest.mark.timeout(180)
def test_the_fallback_takes_over_when_the_primary_dies_and_hands_back_after_the_cooldown(
    mock: MockLLM, tmp_path: Path
) -> None:
    with MockLLM(latency_ms=0) as primary:
        primary.configure(latency_ms=15)
        env = {
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": primary.openai_base_url,
            "ANTHROPIC_API_KEY": "sk-ant-test",
            "ANTHROPIC_BASE_URL": mock.url,
            "LLM_FALLBACK": "anthropic",
            "FALLBACK_COOLDOWN": "3",
            "ADMIN_TOKEN": ADMIN,
        }
        with benchlib.gunicorn_shipped(env, str(tmp_path), tmp_path / "server.log") as server:
            live = Live(server)
            token = live.create("resilient")
            items = [{"prompt": t} for t in prompts("fallback", 240)]
            job = live.post("/api/v1/jobs", token, {"items": items}).json()["job"]
            while live.get(f"/api/v1/jobs/{job['id']}", token).json()["job"]["done"] < 40:
                time.sleep(0.02)
            primary.stop()  # the primary dies mid-run
            killed_at = mock.calls()
            while live.get(f"/api/v1/jobs/{job['id']}", token).json()["job"]["status"] != "done":
                time.sleep(0.1)
            rows = live.get(f"/api/v1/jobs/{job['id']}/results?limit=1000", token).json()["results"]
            assert all(r["ok"] for r in rows), next(r for r in rows if not r["ok"])
            by = {p: sum(1 for r in rows if r["provider"] == p) for p in ("openai", "anthropic")}
            assert by["openai"] >= 40 and by["anthropic"] > 0 and sum(by.values()) == 240
            assert mock.calls() > killed_at
            later = [live.post("/api/v1/webhook", token, {"prompt": t}).json() for t in prompts("later", 6)]
            assert {r["provider"] for r in later} == {"anthropic"}  # every later row: the fallback
            assert all(r["model"] == "claude-sonnet-5-5" for r in later)

            primary.start()  # back on the same port
            time.sleep(3.5)  # the cooldown
            back = [live.post("/api/v1/webhook", token, {"prompt": t}).json() for t in prompts("back", 8)]
            assert {r["provider"] for r in back} == {"openai"}
            models = {(m["provider"], m["model"]) for m in live.usage()["resilient"]["by_model"]}
            assert models == {("openai", "gpt-4"), ("anthropic", "claude-sonnet-5-5")}
