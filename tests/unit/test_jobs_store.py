"""JobStore on a real Huey SQLite storage with a hand-moved clock: leases, lost chunks,
results paging, cancel and the purge of expired jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from huey import SqliteHuey
from huey.constants import EmptyData

from backend.errors import IdempotencyConflict, InvalidInput, JobNotFound
from backend.jobs import JobStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> JobStore:
    huey = SqliteHuey("test", filename=str(tmp_path / "jobs.sqlite3"), results=False)
    return JobStore(huey.storage, ttl=3600, chunk_size=3, clock=clock)


def items(n: int) -> list[dict[str, Any]]:
    return [{"id": i, "prompt": f"row {i}"} for i in range(n)]


def finish_ok(store: JobStore, meta: dict[str, Any], number: int) -> None:
    chunk = store.chunk(meta, number)
    rows = [{"index": chunk.start + i, "id": i, "ok": True, "cached": i == 0} for i in range(len(chunk.rows))]
    assert store.finish(chunk, rows)


def test_create_splits_into_chunks_and_counts_finished_ones(store: JobStore, clock: Clock) -> None:
    job, chunks, created = store.create("alice", items(7), {"type": "summary"}, None)
    assert created and chunks == [0, 1, 2] and job["status"] == "queued" and job["eta_seconds"] is None
    meta = store.meta("alice", job["id"])
    assert [len(store.chunk(meta, c).rows) for c in chunks] == [3, 3, 1]
    assert store.claim(job["id"], 0, lease=15)
    clock.now += 10
    finish_ok(store, meta, 0)
    status = store.status(meta)
    assert (status["status"], status["done"], status["succeeded"], status["cached"]) == ("running", 3, 3, 1)
    assert status["eta_seconds"] == pytest.approx(4 * 10 / 3, abs=0.1)
    finish_ok(store, meta, 1)
    finish_ok(store, meta, 2)
    assert store.status(meta)["status"] == "done"


def test_a_chunk_is_finished_once_and_counted_once(store: JobStore) -> None:
    job, _, _ = store.create("alice", items(3), {}, None)
    meta = store.meta("alice", job["id"])
    chunk = store.chunk(meta, 0)
    first = [{"index": i, "id": i, "ok": True} for i in range(3)]
    assert store.finish(chunk, first)
    assert not store.finish(chunk, [{"index": i, "id": i, "ok": False} for i in range(3)])
    assert store.status(meta)["succeeded"] == 3


def test_leases_block_others_until_they_run_out(store: JobStore, clock: Clock) -> None:
    job, _, _ = store.create("alice", items(6), {}, None)
    meta = store.meta("alice", job["id"])
    assert store.claim(job["id"], 0, lease=15)
    assert not store.claim(job["id"], 0, lease=15)  # a live worker holds it
    clock.now += 10
    store.renew(job["id"], 0, lease=15)
    clock.now += 10
    assert not store.claim(job["id"], 0, lease=15)  # renewed: still alive
    assert store.stale_chunks(meta, queued={1}) == []  # 0 is held, 1 is waiting in the queue
    clock.now += 20
    assert store.stale_chunks(meta, queued={1}) == [0]  # its worker died
    assert store.claim(job["id"], 0, lease=15)  # the re-run takes it


def test_a_chunk_neither_queued_nor_claimed_is_lost(store: JobStore) -> None:
    job, _, _ = store.create("alice", items(6), {}, None)
    meta = store.meta("alice", job["id"])
    assert store.stale_chunks(meta, queued={0}) == [1]
    finish_ok(store, meta, 0)
    finish_ok(store, meta, 1)
    assert store.stale_chunks(meta, queued=set()) is None  # over: the watchdog stops


def test_results_stop_at_the_first_unfinished_chunk(store: JobStore) -> None:
    job, _, _ = store.create("alice", items(9), {}, None)
    meta = store.meta("alice", job["id"])
    finish_ok(store, meta, 0)
    finish_ok(store, meta, 2)  # chunk 1 still running
    rows, after = store.results(meta, -1, 500)
    assert [r["index"] for r in rows] == [0, 1, 2] and after == 2
    assert store.results(meta, 2, 500) == ([], 2)  # nothing new yet: next is the `after` given
    finish_ok(store, meta, 1)
    rows, after = store.results(meta, 2, 4)
    assert [r["index"] for r in rows] == [3, 4, 5, 6] and after == 6
    rows, after = store.results(meta, 6, 500)
    assert [r["index"] for r in rows] == [7, 8] and after is None


@pytest.mark.parametrize(("after", "limit"), [(-2, 10), (9, 10), (0, 0), (0, 1001)])
def test_results_reject_out_of_range_paging(store: JobStore, after: int, limit: int) -> None:
    job, _, _ = store.create("alice", items(9), {}, None)
    with pytest.raises(InvalidInput):
        store.results(store.meta("alice", job["id"]), after, limit)


def test_idempotency_key_per_owner_and_rows(store: JobStore) -> None:
    first, _, created = store.create("alice", items(4), {}, "key-1")
    again, chunks, created_again = store.create("alice", items(4), {}, "key-1")
    assert created and not created_again and chunks == [] and again["id"] == first["id"]
    with pytest.raises(IdempotencyConflict):
        store.create("alice", items(5), {}, "key-1")
    with pytest.raises(IdempotencyConflict):
        store.create("alice", items(4), {"type": "keywords"}, "key-1")
    bob, _, _ = store.create("bob", items(4), {}, "key-1")
    assert bob["id"] != first["id"]


def test_other_owners_and_bad_ids_are_not_found(store: JobStore) -> None:
    job, _, _ = store.create("alice", items(1), {}, None)
    for owner, job_id in (("bob", job["id"]), ("alice", "x" * 26), ("alice", "0" * 26)):
        with pytest.raises(JobNotFound):
            store.meta(owner, job_id)


def test_cancel_finishes_unclaimed_chunks_as_cancelled(store: JobStore) -> None:
    job, _, _ = store.create("alice", items(9), {}, None)
    meta = store.meta("alice", job["id"])
    finish_ok(store, meta, 0)
    assert store.claim(job["id"], 1, lease=15)  # running now: it keeps going
    status = store.cancel(meta)
    assert status["status"] == "cancelled" and status["done"] == 6
    rows, after = store.results(meta, 2, 500)
    assert rows == [] and after == 2  # chunk 1 still running
    cancelled = store.results(meta, -1, 500)[0][:3]
    assert all(r["ok"] for r in cancelled)
    assert store.is_cancelled(job["id"])
    finish_ok(store, meta, 1)
    rows, after = store.results(meta, 2, 500)
    assert [r["ok"] for r in rows] == [True] * 3 + [False] * 3 and after is None
    assert [r["error"]["code"] for r in rows[3:]] == ["cancelled"] * 3


def test_cancel_of_a_finished_job_changes_nothing(store: JobStore) -> None:
    job, _, _ = store.create("alice", items(2), {}, None)
    meta = store.meta("alice", job["id"])
    finish_ok(store, meta, 0)
    assert store.cancel(meta)["status"] == "done"


def test_purge_deletes_expired_jobs_and_their_keys(store: JobStore, clock: Clock) -> None:
    old, _, _ = store.create("alice", items(4), {}, "old-key")
    clock.now += 3000
    new, _, _ = store.create("alice", items(4), {}, "new-key")
    clock.now += 1000  # the first is now older than the TTL (3600 s)
    with pytest.raises(JobNotFound):
        store.meta("alice", old["id"])  # expired is gone for readers at once
    store.purge_expired()
    assert store.load(old["id"]) is None
    assert store.storage.peek_data(f"job:{old['id']}:in:0") is EmptyData
    assert store.meta("alice", new["id"])["total"] == 4
    again, _, created = store.create("alice", items(4), {}, "old-key")
    assert created and again["id"] != old["id"]  # the expired key can be used afresh
