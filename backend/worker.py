"""The task queue behind jobs: Huey (SQLite file or Redis), its tasks, and the consumer.

Why Huey: it has exactly the two backends FlaskLLM needs (SqliteHuey for one machine,
RedisHuey for several), a tiny API, and its storage doubles as the job store
(backend/jobs.py). A job is queued as one task per chunk of JOB_CHUNK_SIZE rows, so every
worker process, on any machine, takes chunks of the same job.

Durability: Huey's queue and schedule are in the SQLite file or Redis, so queued chunks
survive `kill -9`. A chunk being run holds a lease, renewed every few seconds by its
worker; a watchdog task per job (on Huey's durable schedule) re-queues any chunk whose
lease ran out without results, i.e. whose worker died. A re-run row whose answer reached
the response cache is served from it, so only the calls in flight at the crash are paid
twice.

The consumer (`Consumer`) is a few threads calling Huey's own `dequeue`/`execute` and
`read_schedule`: unlike `huey_consumer`, it installs no signal handlers, so it can run
inside a gunicorn worker (the default deployment needs no extra process) as well as in
`python -m backend worker`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from huey import Huey, RedisExpireHuey, SqliteHuey

from backend import metrics
from backend.auth import Caller
from backend.errors import InternalError, log_crash
from backend.jobs import Chunk, JobStore
from backend.ledger import Ledger, Meter
from backend.pacing import job_priority
from backend.service import RowPace, Service
from backend.settings import Settings

log = logging.getLogger("backend.worker")
logging.getLogger("huey").setLevel(logging.WARNING)  # one INFO line per task otherwise

LEASE_SECONDS = 15.0  # a chunk whose worker is silent this long is run again
WATCH_SECONDS = 10.0  # how often a job's watchdog looks for such chunks
CANCEL_CHECK_SECONDS = 0.5  # how stale a chunk's view of "cancelled" may be
CHUNK_TIMEOUT_FACTOR = 4  # a chunk's rows may take this many REQUEST_TIMEOUTs in all


def build_huey(settings: Settings, instance_path: str) -> Huey:
    """SqliteHuey on JOBS_URL's file (default: instance/jobs.sqlite3) or RedisExpireHuey."""
    url = settings.jobs_url
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisExpireHuey("flaskllm", url=url, results=False, expire_time=settings.job_ttl)
    if url and not url.startswith("sqlite:///"):
        raise ValueError(f"JOBS_URL must be sqlite:///path or redis://...; got {url.split(':', 1)[0]}:")
    path = Path(url[len("sqlite:///") :]) if url else Path(instance_path) / "jobs.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("flaskllm", filename=str(path), results=False, timeout=10)


class JobQueue:
    """Submits jobs as chunk tasks and runs those tasks with the app's Service."""

    def __init__(self, huey: Huey, store: JobStore, service: Service, ledger: Ledger | None = None) -> None:
        self.huey = huey
        self.store = store
        self.service = service
        self.ledger = ledger
        self.wake = threading.Event()  # a submit in this process wakes its idle consumer
        self._leases: set[tuple[str, int]] = set()
        self._leases_lock = threading.Lock()
        self._run_chunk = huey.task(name="flaskllm.chunk")(self.run_chunk)
        self._watch = huey.task(name="flaskllm.watch")(self.watch)

    def submit(self, job_id: str, chunks: list[int]) -> None:
        """Queue a new job's chunks, then its watchdog."""
        for number in chunks:
            self.huey.enqueue(self._run_chunk.s(job_id, number))
        self._watch.schedule(args=(job_id,), delay=WATCH_SECONDS)
        self.wake.set()

    # ------------------------------------------------------------------ tasks

    def run_chunk(self, job_id: str, number: int) -> None:
        """Run one chunk's rows through the service, unless it ran already or was cancelled."""
        meta = self.store.load(job_id)
        if meta is None or self.store.is_finished(job_id, number):
            return
        if not self.store.claim(job_id, number, LEASE_SECONDS):
            return  # a live worker has it (a duplicate from the watchdog)
        chunk = self.store.chunk(meta, number)
        with self._leases_lock:
            self._leases.add((job_id, number))
        try:
            rows = self._rows(chunk)
            if self.store.finish(chunk, rows):
                log.info(
                    "job chunk done",
                    extra={
                        "job": job_id,
                        "chunk": number,
                        "rows": len(rows),
                        "pid": os.getpid(),
                        **self.service.budget.snapshot(),
                    },
                )
        finally:
            with self._leases_lock:
                self._leases.discard((job_id, number))

    def _rows(self, chunk: Chunk) -> list[dict[str, Any]]:
        if self.store.is_cancelled(chunk.job_id):
            return self.store.cancelled_rows(chunk)
        timeout = self.service.settings.request_timeout * CHUNK_TIMEOUT_FACTOR
        meter = self._meter(chunk)
        metrics.JOB_ROWS_RUNNING.inc(len(chunk.rows))
        try:
            pace = RowPace(
                job_priority(chunk.created_at, chunk.start), self._cancel_check(chunk.job_id), meter
            )
            answer = self.service.process_batch(chunk.rows, chunk.defaults, timeout=timeout, pace=pace)
            rows: list[dict[str, Any]] = answer["results"]
        except Exception as exc:  # a bug must fail the rows, not lose the chunk forever
            log_crash(log, exc, "job chunk crashed")
            error = InternalError().to_dict()
            rows = [{"index": i, "id": None, "ok": False, "error": error} for i in range(len(chunk.rows))]
        finally:
            metrics.JOB_ROWS_RUNNING.dec(len(chunk.rows))
            if meter is not None:
                meter.close()
        metrics.JOB_ROWS.labels("done").inc(len(rows))
        for row in rows:
            row["index"] += chunk.start
        return rows

    def _meter(self, chunk: Chunk) -> Meter | None:
        """The ledger meter of the token that submitted the job (its budget applies)."""
        if self.ledger is None or chunk.account is None:
            return None
        account = chunk.account
        caller = Caller(
            chunk.owner, account["name"], budget_usd=account["budget_usd"], period=account["period"]
        )
        return self.ledger.meter(caller)

    def _cancel_check(self, job_id: str) -> Callable[[], bool]:
        """Whether the job was cancelled, asked by each row as it gets a provider slot; the
        store is read at most twice a second per chunk."""
        seen = {"at": 0.0, "cancelled": False}

        def cancelled() -> bool:
            now = time.monotonic()
            if not seen["cancelled"] and now - seen["at"] >= CANCEL_CHECK_SECONDS:
                seen["at"], seen["cancelled"] = now, self.store.is_cancelled(job_id)
            return bool(seen["cancelled"])

        return cancelled

    def watch(self, job_id: str) -> None:
        """Re-queue chunks whose worker died; look again in WATCH_SECONDS until the job is over.

        A chunk is lost if its lease ran out, or if it has no lease and is not in the queue
        (its worker died between taking it and claiming it). A chunk re-queued by mistake
        costs nothing: its claim or its results stop the second run.
        """
        meta = self.store.load(job_id)
        if meta is None:
            return
        stale = self.store.stale_chunks(meta, self._queued_chunks(job_id))
        if stale is None:  # every chunk has finished: the chain ends
            return
        self._watch.schedule(args=(job_id,), delay=WATCH_SECONDS)
        for number in stale:
            log.warning("job chunk re-queued: its worker stopped", extra={"job": job_id, "chunk": number})
            self.huey.enqueue(self._run_chunk.s(job_id, number))

    def _queued_chunks(self, job_id: str) -> set[int]:
        queued = set()
        for message in self.huey.storage.enqueued_items():
            try:
                task = self.huey.deserialize_task(message)
            except Exception:  # noqa: S112 - a task of another version is not ours to judge
                continue
            if task.name == "flaskllm.chunk" and task.args and task.args[0] == job_id:
                queued.add(int(task.args[1]))
        return queued

    def renew_leases(self) -> None:
        with self._leases_lock:
            held = list(self._leases)
        for job_id, number in held:
            self.store.renew(job_id, number, LEASE_SECONDS)


class Consumer:
    """Threads that take chunk tasks from the queue, plus one for the schedule and leases."""

    def __init__(self, queue: JobQueue, threads: int) -> None:
        self.queue = queue
        self.threads = threads
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._last_purge = float("-inf")  # purge at the first tick

    @property
    def running(self) -> bool:
        return bool(self._workers) and not self._stop.is_set()

    def start(self) -> None:
        if self._workers or self.threads <= 0:
            return
        self._stop.clear()
        for n in range(self.threads):
            self._workers.append(threading.Thread(target=self._work, name=f"jobs-{n}", daemon=True))
        self._workers.append(threading.Thread(target=self._tick, name="jobs-schedule", daemon=True))
        for thread in self._workers:
            thread.start()
        log.info("job consumer started", extra={"threads": self.threads})

    def stop(self, wait: float = 0.0) -> None:
        """Stop taking tasks; give running chunks up to `wait` seconds to finish."""
        self._stop.set()
        self.queue.wake.set()
        ends = time.monotonic() + wait
        for thread in self._workers:
            thread.join(max(0.0, ends - time.monotonic()))
        self._workers = []

    def _work(self) -> None:
        huey = self.queue.huey
        idle = 0.05
        while not self._stop.is_set():
            try:
                task = huey.dequeue()
                if task is None:
                    self.queue.wake.wait(idle)
                    self.queue.wake.clear()
                    idle = min(1.0, idle * 2)
                    continue
                idle = 0.05
                huey.execute(task)
            except Exception as exc:  # the queue's store failed: keep going, slowly
                log_crash(log, exc, "job consumer error")
                self._stop.wait(1.0)

    def _tick(self) -> None:
        """Once a second: due scheduled tasks onto the queue, leases renewed, old jobs purged."""
        huey = self.queue.huey
        last_renew = 0.0
        while not self._stop.wait(1.0):
            try:
                for task in huey.read_schedule():
                    huey.enqueue(task)
                now = time.monotonic()
                if now - last_renew >= LEASE_SECONDS / 3:
                    self.queue.renew_leases()
                    last_renew = now
                if now - self._last_purge >= 3600:
                    self.queue.store.purge_expired()
                    self._last_purge = now
            except Exception as exc:
                log_crash(log, exc, "job scheduler error")
