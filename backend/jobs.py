"""Durable jobs: a sheet's rows, stored in chunks, with their results and progress.

Everything lives in the task queue's own key-value store (Huey's storage: the SQLite file
of JOBS_URL, or Redis), so a job is exactly as durable as the queue that runs it, one
engine serves both backends, and no second database is needed. Keys per job, all under
`job:<id>`, where the id starts with its creation time in hex (so the SQLite purge of
expired jobs is one range delete):

    job:<id>               the job: owner (hash of its token), total, chunk size, defaults
    job:<id>:in:<c>        the rows of chunk c, as submitted
    job:<id>:out:<c>       their results; written once (put_if_empty), first writer wins
    job:<id>:sum:<c>       the chunk's counts, small, so a status read stays cheap
    job:<id>:claim:<c>     the lease of the worker running chunk c (expiry time)
    job:<id>:start, :cancel    when the first chunk started, when it was cancelled
    idem:<owner>:<hash>    "<id> <digest of the rows>" for Idempotency-Key

A chunk is finished when its `out` exists; `done` is the sum of finished chunks, so
counts can never be double-booked, even when a chunk runs twice after a crash.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from huey.constants import EmptyData

from backend.errors import IdempotencyConflict, InvalidInput, JobNotFound, RowCancelled

JOB_ID = re.compile(r"^[0-9a-f]{26}$")
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
RESULTS_DEFAULT_LIMIT = 500
RESULTS_MAX_LIMIT = 1000


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


def _loads(raw: Any) -> Any:
    if isinstance(raw, str):
        return json.loads(raw)
    return json.loads(bytes(raw).decode("utf-8", "surrogatepass"))


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_job_id(now: float) -> str:
    """26 hex digits: 10 of creation time, so ids sort by age, then 16 random."""
    return f"{int(now):010x}{secrets.token_hex(8)}"


def check_paging(after: int, limit: int) -> None:
    """The paging arguments any job allows (the job's own length is checked by `results`)."""
    if after < -1:
        raise InvalidInput("after: must be -1 (from the start) or a row index")
    if not 1 <= limit <= RESULTS_MAX_LIMIT:
        raise InvalidInput(f"limit: must be between 1 and {RESULTS_MAX_LIMIT}")


def rows_digest(items: list[Any], defaults: dict[str, Any]) -> str:
    """What an Idempotency-Key promises: these rows with these defaults."""
    return hashlib.sha256(_dumps({"items": items, "defaults": defaults})).hexdigest()


@dataclass(frozen=True)
class Chunk:
    """One queued unit of work: rows [start, start + len(rows)) of a job."""

    job_id: str
    number: int
    start: int
    rows: list[Any]
    defaults: dict[str, Any]
    created_at: float  # the job's: older jobs' rows get provider slots first
    owner: str = ""
    account: dict[str, Any] | None = None


class JobStore:
    """Jobs over a Huey storage's key-value API (`put_data`, `peek_many`, `put_if_empty`)."""

    def __init__(self, storage: Any, ttl: int, chunk_size: int, clock: Any = time.time) -> None:
        self.storage = storage
        self.ttl = ttl
        self.chunk_size = chunk_size
        self.clock = clock
        # Redis expires keys by itself (RedisExpireStorage); SQLite is purged by range.
        self._expiring = hasattr(storage, "_expire_time")

    # ------------------------------------------------------------------ raw access

    def _put(self, key: str, value: Any) -> None:
        if self._expiring:
            self.storage.put_data(key, _dumps(value), is_result=True)
        else:
            self.storage.put_data(key, _dumps(value))

    def _put_new(self, key: str, value: Any) -> bool:
        if self._expiring:
            return bool(self.storage.put_if_empty(key, _dumps(value), ttl=self.ttl))
        return bool(self.storage.put_if_empty(key, _dumps(value)))

    def _get(self, key: str) -> Any:
        raw = self.storage.peek_data(key)
        return None if raw is EmptyData else _loads(raw)

    def _get_many(self, keys: list[str]) -> dict[str, Any]:
        if not keys:
            return {}
        found = self.storage.peek_many(keys)
        return {
            (k.decode() if isinstance(k, bytes) else k): _loads(v)
            for k, v in found.items()
            if v is not None and v is not EmptyData
        }

    # ------------------------------------------------------------------ submit

    def create(
        self,
        owner: str,
        items: list[Any],
        defaults: dict[str, Any],
        idempotency_key: str | None,
        account: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], list[int], bool]:
        """Store a new job (or find the one this Idempotency-Key made).

        Returns the job, the chunk numbers to enqueue (none for an existing job) and
        whether it was created. The job's keys are written before the idempotency key is
        claimed, so whoever wins a race between two identical requests has a whole job.
        """
        digest = rows_digest(items, defaults)
        idem = None
        if idempotency_key is not None:
            if not IDEMPOTENCY_KEY.match(idempotency_key):
                raise InvalidInput("Idempotency-Key: 1 to 128 characters of A-Z a-z 0-9 . _ : -")
            idem = f"idem:{owner}:{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}"
            existing = self._existing(idem, owner, digest)
            if existing is not None:
                return existing, [], False
        now = self.clock()
        job_id = new_job_id(now)
        size = self.chunk_size
        chunks = math.ceil(len(items) / size)
        for c in range(chunks):
            self._put(f"job:{job_id}:in:{c}", items[c * size : (c + 1) * size])
        meta = {
            "id": job_id,
            "owner": owner,
            "total": len(items),
            "chunk_size": size,
            "chunks": chunks,
            "defaults": defaults,
            "created_at": now,
            "account": account,  # whose ledger and budget its rows count against
        }
        self._put(f"job:{job_id}", meta)
        if idem is not None and not self._put_new(idem, f"{job_id} {digest}"):
            existing = self._existing(idem, owner, digest)  # lost a race: the winner's job
            if existing is not None:
                return existing, [], False
        return self.status(meta), list(range(chunks)), True

    def _existing(self, idem: str, owner: str, digest: str) -> dict[str, Any] | None:
        found = self._get(idem)
        if found is None:
            return None
        job_id, _, their_digest = str(found).partition(" ")
        if their_digest != digest:
            raise IdempotencyConflict()
        meta = self._get(f"job:{job_id}")
        return None if meta is None or meta["owner"] != owner else self.status(meta)

    # ------------------------------------------------------------------ read

    def meta(self, owner: str, job_id: str) -> dict[str, Any]:
        """The job's stored record; 404 for an unknown id and for another token's job."""
        if not JOB_ID.match(job_id):
            raise JobNotFound("No job with this id: job ids are 26 hexadecimal characters.")
        meta = self._get(f"job:{job_id}")
        if meta is None or meta["owner"] != owner or self._expired(meta):
            raise JobNotFound()
        return dict(meta)

    def _expired(self, meta: dict[str, Any]) -> bool:
        return bool(self.clock() - float(meta["created_at"]) > self.ttl)

    def status(self, meta: dict[str, Any]) -> dict[str, Any]:
        """The JOB object: counts from the finished chunks, status, ETA."""
        job_id, chunks = meta["id"], meta["chunks"]
        keys = [f"job:{job_id}:sum:{c}" for c in range(chunks)]
        keys += [f"job:{job_id}:start", f"job:{job_id}:cancel"]
        found = self._get_many(keys)
        sums = [found[k] for k in keys[:chunks] if k in found]
        started = found.get(f"job:{job_id}:start")
        cancelled = found.get(f"job:{job_id}:cancel")
        done = sum(s["n"] for s in sums)
        total = meta["total"]
        if cancelled is not None:
            state = "cancelled"
        elif done >= total:
            state = "done"
        elif started is not None or sums:
            state = "running"
        else:
            state = "queued"
        stamps = [meta["created_at"], started, cancelled, *(s["at"] for s in sums)]
        return {
            "id": job_id,
            "status": state,
            "total": total,
            "done": done,
            "succeeded": sum(s["ok"] for s in sums),
            "failed": sum(s["failed"] for s in sums),
            "cached": sum(s["cached"] for s in sums),
            "created_at": _iso(meta["created_at"]),
            "updated_at": _iso(max(t for t in stamps if t is not None)),
            "eta_seconds": self._eta(state, started, done, total),
        }

    def _eta(self, state: str, started: float | None, done: int, total: int) -> float | None:
        if state in ("done", "cancelled"):
            return 0.0
        if started is None or done == 0:
            return None
        elapsed = max(0.001, float(self.clock()) - float(started))
        return round((total - done) * elapsed / done, 1)

    def results(
        self, meta: dict[str, Any], after: int, limit: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Finished rows with index > after, in order, stopping at the first unfinished one."""
        total, size = meta["total"], meta["chunk_size"]
        check_paging(after, limit)
        if after >= total:
            raise InvalidInput(f"after: must be between -1 and {total - 1} (the last row index)")
        start = after + 1
        first, last = start // size, min(meta["chunks"] - 1, (start + limit - 1) // size)
        keys = [f"job:{meta['id']}:out:{c}" for c in range(first, last + 1)]
        found = self._get_many(keys)
        rows: list[dict[str, Any]] = []
        for key in keys:
            chunk = found.get(key)
            if chunk is None:
                break
            rows.extend(r for r in chunk if r["index"] >= start)
        rows = rows[:limit]
        if not rows:
            return [], None if start >= total else after
        end = rows[-1]["index"]
        return rows, None if end >= total - 1 else end

    # ------------------------------------------------------------------ cancel

    def cancel(self, meta: dict[str, Any]) -> dict[str, Any]:
        """Cancel the rows not started: their chunks finish at once as `cancelled` rows.

        The flag is set first, so a worker that claims a chunk after this scan sees it.
        A chunk already running finishes and keeps its results.
        """
        job_id = meta["id"]
        current = self.status(meta)
        if current["status"] in ("done", "cancelled"):
            return current  # nothing left to cancel
        self._put_new(f"job:{job_id}:cancel", self.clock())
        live = self._get_many([f"job:{job_id}:claim:{c}" for c in range(meta["chunks"])])
        for c in range(meta["chunks"]):
            if f"job:{job_id}:claim:{c}" in live:
                continue
            chunk = self.chunk(meta, c)
            self.finish(chunk, self.cancelled_rows(chunk))
        return self.status(meta)

    @staticmethod
    def cancelled_rows(chunk: Chunk) -> list[dict[str, Any]]:
        error = RowCancelled().to_dict()
        return [
            {"index": chunk.start + i, "id": _row_id(raw), "ok": False, "error": error}
            for i, raw in enumerate(chunk.rows)
        ]

    def is_cancelled(self, job_id: str) -> bool:
        return self._get(f"job:{job_id}:cancel") is not None

    # ------------------------------------------------------------------ worker side

    def load(self, job_id: str) -> dict[str, Any] | None:
        meta = self._get(f"job:{job_id}")
        return None if meta is None or self._expired(meta) else dict(meta)

    def chunk(self, meta: dict[str, Any], number: int) -> Chunk:
        rows = self._get(f"job:{meta['id']}:in:{number}") or []
        return Chunk(
            meta["id"],
            number,
            number * meta["chunk_size"],
            rows,
            meta["defaults"],
            float(meta["created_at"]),
            meta["owner"],
            meta.get("account"),
        )

    def is_finished(self, job_id: str, number: int) -> bool:
        return bool(self.storage.has_data_for_key(f"job:{job_id}:out:{number}"))

    def claim(self, job_id: str, number: int, lease: float) -> bool:
        """Take chunk `number` for `lease` seconds; False while another worker's lease lives."""
        key = f"job:{job_id}:claim:{number}"
        now = self.clock()
        if not self._put_new(key, now + lease):
            held = self._get(key)
            if held is not None and float(held) > now:
                return False
            self._put(key, now + lease)  # the holder died: its lease ran out
        self._put_new(f"job:{job_id}:start", now)
        return True

    def renew(self, job_id: str, number: int, lease: float) -> None:
        self._put(f"job:{job_id}:claim:{number}", self.clock() + lease)

    def finish(self, chunk: Chunk, rows: list[dict[str, Any]]) -> bool:
        """Store a chunk's results once; the counts follow only for the first writer."""
        if not self._put_new(f"job:{chunk.job_id}:out:{chunk.number}", rows):
            return False
        ok = sum(1 for r in rows if r["ok"])
        self._put(
            f"job:{chunk.job_id}:sum:{chunk.number}",
            {
                "n": len(rows),
                "ok": ok,
                "failed": len(rows) - ok,
                "cached": sum(1 for r in rows if r["ok"] and r.get("cached")),
                "at": self.clock(),
            },
        )
        self.storage.delete_data(f"job:{chunk.job_id}:claim:{chunk.number}")
        return True

    def stale_chunks(self, meta: dict[str, Any], queued: set[int]) -> list[int] | None:
        """Unfinished chunks that nobody will run: lease ran out, or no lease and not `queued`.

        None once every chunk has finished.
        """
        job_id, chunks = meta["id"], meta["chunks"]
        keys = [f"job:{job_id}:sum:{c}" for c in range(chunks)]
        claims = [f"job:{job_id}:claim:{c}" for c in range(chunks)]
        found = self._get_many([*keys, *claims, f"job:{job_id}:cancel"])
        unfinished = [c for c in range(chunks) if keys[c] not in found]
        if not unfinished:
            return None
        now = self.clock()
        expired = [c for c in unfinished if claims[c] in found and float(found[claims[c]]) <= now]
        for c in expired:
            self.storage.delete_data(claims[c])
        lost = [c for c in unfinished if claims[c] not in found and c not in queued]
        return sorted([*expired, *lost])

    def purge_expired(self) -> None:
        """Delete jobs older than JOB_TTL from a SQLite store (Redis expires them itself).

        Job ids start with their creation time in hex, so "older than" is a key range; an
        idempotency record's value starts with its job id (as a JSON string).
        """
        if self._expiring or not hasattr(self.storage, "sql"):
            return
        oldest = f"{int(self.clock() - self.ttl):010x}"
        name = self.storage.name
        self.storage.sql(
            "delete from kv where queue = ? and key like 'idem:%' and cast(value as text) < ?",
            (name, '"' + oldest),
            True,
        )
        self.storage.sql(
            "delete from kv where queue = ? and key >= 'job:' and key < ?", (name, "job:" + oldest), True
        )


def _row_id(raw: Any) -> Any:
    row_id = raw.get("id") if isinstance(raw, dict) else None
    return row_id if isinstance(row_id, (str, int)) and not isinstance(row_id, bool) else None
