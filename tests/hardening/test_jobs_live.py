"""Jobs on real servers: `kill -9` of the whole gunicorn deployment mid-job, and scale-out
with a real redis-server and two `python -m backend worker` processes.

The deployment is started the way the README starts it (`gunicorn wsgi:application`,
gunicorn.conf.py read by gunicorn itself) with the shipped defaults: only a token and the
provider are set, and the cache and job files go to a fresh folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from scripts import benchlib
from scripts.mock_llm import MockLLM
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
H = {"X-API-Token": benchlib.TOKEN}


def provider_env(mock: MockLLM) -> dict[str, str]:
    return {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": mock.openai_base_url}


def emails(n: int, tag: str) -> list[dict[str, Any]]:
    return [
        {"id": f"A{i + 2}", "prompt": f"Mail {tag}-{i}: the delivery is late, please advise."}
        for i in range(n)
    ]


def submit(port: int, items: list[dict[str, Any]], key: str | None = None) -> requests.Response:
    headers = {**H, **({"Idempotency-Key": key} if key else {})}
    return requests.post(
        f"http://127.0.0.1:{port}/api/v1/jobs", json={"items": items}, headers=headers, timeout=30
    )


def job_status(port: int, job_id: str) -> dict[str, Any]:
    resp = requests.get(f"http://127.0.0.1:{port}/api/v1/jobs/{job_id}", headers=H, timeout=10)
    assert resp.status_code == 200, resp.text
    job: dict[str, Any] = resp.json()["job"]
    return job


def wait_until(port: int, job_id: str, done: int, timeout: float) -> dict[str, Any]:
    ends = time.monotonic() + timeout
    while True:
        job = job_status(port, job_id)
        if job["done"] >= done:
            return job
        assert time.monotonic() < ends, f"stuck at {job}"
        time.sleep(0.1)


def every_result(port: int, job_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    after: int | None = -1
    while after is not None:
        page = requests.get(
            f"http://127.0.0.1:{port}/api/v1/jobs/{job_id}/results",
            params={"after": after, "limit": 1000},
            headers=H,
            timeout=10,
        ).json()
        rows += page["results"]
        after = page["next"]
    return rows


@pytest.mark.timeout(180)
def test_kill_9_of_the_whole_server_loses_no_row(mock: MockLLM, tmp_path: Path) -> None:
    mock.configure(latency_ms=200)  # 800 rows take >= 2.5 s even on 64 slots: time to kill mid-job
    items = emails(800, "kill")
    log = tmp_path / "server.log"
    with benchlib.gunicorn_shipped(provider_env(mock), str(tmp_path), log) as server:
        resp = submit(server.port, items, "sheet-kill")
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["job"]["id"]
        before = wait_until(server.port, job_id, 150, 60)
        assert before["done"] < 800, "the job finished before the kill: make it longer"
        server.kill_all()
    with benchlib.gunicorn_shipped(provider_env(mock), str(tmp_path), log) as server:
        again = submit(server.port, items, "sheet-kill")
        assert again.status_code == 200 and again.json()["job"]["id"] == job_id  # re-run attaches
        restarted = time.monotonic()
        job = wait_until(server.port, job_id, 800, 120)
        print(f"finished {time.monotonic() - restarted:.1f} s after the restart")
        rows = every_result(server.port, job_id)
    assert (job["status"], job["succeeded"], job["failed"]) == ("done", 800, 0)
    assert [r["index"] for r in rows] == list(range(800))
    assert all(r["ok"] for r in rows)
    by_prompt = mock.stats()["by_prompt"]
    paid_twice = sum(1 for n in by_prompt.values() if n > 1)
    # Only calls the kill cut short are paid again: at most one provider budget per worker.
    limit = 2 * 32
    print(f"kill -9 at {before['done']}/800 rows: {paid_twice} rows paid twice")
    assert paid_twice <= limit, paid_twice
    assert mock.calls() <= 800 + limit


@pytest.fixture
def redis_url() -> Iterator[str]:
    with RedisServer() as server:
        yield server.url.replace("/0", "/2")


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "wb")  # noqa: SIM115 (owned by the process; closed with it)
    return subprocess.Popen(
        [sys.executable, "-m", "backend", "worker"], cwd=ROOT, env=env, stdout=out, stderr=out
    )


@pytest.mark.redis
@pytest.mark.timeout(120)
def test_two_worker_processes_on_redis_share_one_job(mock: MockLLM, redis_url: str, tmp_path: Path) -> None:
    """The web deployment runs no rows (JOB_WORKERS=0); two workers elsewhere take them all."""
    mock.configure(latency_ms=30)
    state = tempfile.mkdtemp(prefix="flaskllm-redis-jobs-")
    env = {**provider_env(mock), "JOBS_URL": redis_url}
    web_env = {**env, "JOB_WORKERS": "0"}
    worker_env = benchlib.shipped_env({**env, "LOG_LEVEL": "INFO"}, state)
    logs = [tmp_path / "worker1.log", tmp_path / "worker2.log"]
    workers = [start_worker(worker_env, log) for log in logs]
    try:
        with benchlib.gunicorn_shipped(web_env, state) as server:
            resp = submit(server.port, emails(400, "redis"))
            assert resp.status_code == 202, resp.text
            job_id = resp.json()["job"]["id"]
            job = wait_until(server.port, job_id, 400, 90)
            rows = every_result(server.port, job_id)
    finally:
        for proc in workers:
            proc.terminate()
        codes = [proc.wait(timeout=40) for proc in workers]
    assert (job["status"], job["succeeded"]) == ("done", 400)
    assert len(rows) == 400 and all(r["ok"] for r in rows)
    chunks = []
    for log in logs:
        done = [
            json.loads(line)
            for line in log.read_text().splitlines()
            if line.startswith("{") and '"job chunk done"' in line
        ]
        chunks.append(sum(d["rows"] for d in done if d["job"] == job_id))
    assert sum(chunks) == 400 and all(n > 0 for n in chunks), chunks  # both took rows
    assert codes == [0, 0]  # SIGTERM: a clean stop
    assert mock.calls() == 400
