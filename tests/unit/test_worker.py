"""The job queue on a real Huey SQLite file, run by hand (no threads) or by the Consumer:
chunks, the watchdog's recovery of lost and expired chunks, cancellation, start and stop."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from huey import SqliteHuey

from backend.cache import ResponseCache
from backend.jobs import JobStore
from backend.service import Service
from backend.tasks import load_templates
from backend.worker import Consumer, JobQueue, build_huey
from tests.conftest import make_settings
from tests.fakes.provider import FakeProvider


@pytest.fixture
def fake() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def queue(tmp_path: Path, fake: FakeProvider) -> JobQueue:
    huey = SqliteHuey("test", filename=str(tmp_path / "jobs.sqlite3"), results=False)
    service = Service(make_settings(), fake, load_templates(None), ResponseCache(None, 3600, 1000))
    return JobQueue(huey, JobStore(huey.storage, ttl=3600, chunk_size=2), service)


def submit(queue: JobQueue, n: int) -> dict[str, Any]:
    items = [{"id": i, "prompt": f"Row {i}."} for i in range(n)]
    job, chunks, _ = queue.store.create("alice", items, {}, None)
    queue.submit(job["id"], chunks)
    return job


def run_queued(queue: JobQueue) -> int:
    """Execute what is in the queue now, as a consumer thread would; returns how many."""
    done = 0
    while (task := queue.huey.dequeue()) is not None:
        queue.huey.execute(task)
        done += 1
    return done


def pending(queue: JobQueue) -> list[str]:
    """Names of the queued tasks (a watchdog look with an ETA waits in the queue too)."""
    return sorted(task.name for task in queue.huey.pending())


def status(queue: JobQueue, job_id: str) -> dict[str, Any]:
    return queue.store.status(queue.store.meta("alice", job_id))


def test_a_job_is_one_task_per_chunk_and_runs_to_done(queue: JobQueue, fake: FakeProvider) -> None:
    job = submit(queue, 5)
    assert pending(queue) == ["flaskllm.chunk"] * 3 + ["flaskllm.watch"]  # 2 + 2 + 1 rows
    assert run_queued(queue) == 4
    assert queue.huey.scheduled_count() == 1  # the watchdog, moved to the schedule until due
    done = status(queue, job["id"])
    assert (done["status"], done["succeeded"]) == ("done", 5)
    assert sorted(fake.prompts()) == [f"Row {i}." for i in range(5)]


def test_a_chunk_lost_with_its_worker_is_queued_again_by_the_watchdog(queue: JobQueue) -> None:
    job = submit(queue, 4)
    lost = queue.huey.dequeue()  # taken by a worker that died before claiming it
    assert lost is not None
    run_queued(queue)
    assert status(queue, job["id"])["done"] == 2
    queue.watch(job["id"])
    assert pending(queue) == ["flaskllm.chunk", "flaskllm.watch"]  # the lost chunk, the next look
    run_queued(queue)
    assert status(queue, job["id"])["status"] == "done"
    before = queue.huey.scheduled_count()
    queue.watch(job["id"])  # over: no further look is scheduled
    assert pending(queue) == [] and queue.huey.scheduled_count() == before


def test_an_expired_lease_is_taken_over(queue: JobQueue) -> None:
    job = submit(queue, 2)
    assert queue.store.claim(job["id"], 0, lease=0.0)  # a worker took it, then went silent
    time.sleep(0.01)
    run_queued(queue)  # the queued copy sees the expired lease and runs it
    assert status(queue, job["id"])["status"] == "done"


def test_a_live_lease_stops_a_duplicate(queue: JobQueue, fake: FakeProvider) -> None:
    job = submit(queue, 2)
    assert queue.store.claim(job["id"], 0, lease=60)  # another worker is on it
    run_queued(queue)
    assert fake.calls == [] and status(queue, job["id"])["done"] == 0
    queue.renew_leases()  # holds none itself: nothing to renew


def test_a_cancelled_job_runs_no_rows(queue: JobQueue, fake: FakeProvider) -> None:
    job = submit(queue, 4)
    assert queue.store.claim(job["id"], 0, lease=60)
    queue.store.cancel(queue.store.meta("alice", job["id"]))
    queue.store.storage.delete_data(f"job:{job['id']}:claim:0")  # its worker died
    run_queued(queue)
    rows, _ = queue.store.results(queue.store.meta("alice", job["id"]), -1, 10)
    assert [r["error"]["code"] for r in rows] == ["cancelled"] * 4
    assert fake.calls == []


def test_the_consumer_runs_jobs_in_threads_and_stops(queue: JobQueue) -> None:
    consumer = Consumer(queue, threads=2)
    consumer.start()
    try:
        assert consumer.running
        job = submit(queue, 6)
        ends = time.monotonic() + 10
        while status(queue, job["id"])["status"] != "done":
            assert time.monotonic() < ends
            time.sleep(0.02)
    finally:
        consumer.stop(wait=5)
    assert not consumer.running
    Consumer(queue, threads=0).start()  # JOB_WORKERS=0: starts nothing


def test_jobs_url_schemes(tmp_path: Path) -> None:
    default = build_huey(make_settings(jobs_url=""), str(tmp_path / "instance"))
    assert isinstance(default, SqliteHuey) and (tmp_path / "instance" / "jobs.sqlite3").exists()
    with pytest.raises(ValueError, match="JOBS_URL"):
        build_huey(make_settings(jobs_url="postgres://x"), str(tmp_path))
