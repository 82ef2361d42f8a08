"""The state database in one SQLite file (the default: instance/state.sqlite3).

Connections come from a small pool rather than one per thread: under gevent a "thread"
is a greenlet per request, and a connection per request would cost more than the query.
Every write is one IMMEDIATE transaction with a long busy timeout (5 s): the ledger must
not drop a count because another worker held the lock for a moment.
"""

from __future__ import annotations

import queue
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from backend.sqlite_wal import use_wal
from backend.state import StateError, TokenRecord, UsageBatch, UsageCounts, UsageRow

BUSY_TIMEOUT = 5.0
POOL_SIZE = 8

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS tokens (name TEXT PRIMARY KEY, digest TEXT NOT NULL UNIQUE,"
    " budget_usd REAL, period TEXT NOT NULL, created_at REAL NOT NULL, revoked_at REAL,"
    " last_used_at REAL)",
    "CREATE TABLE IF NOT EXISTS requests (token TEXT NOT NULL, day TEXT NOT NULL,"
    " requests INTEGER NOT NULL, PRIMARY KEY (token, day))",
    "CREATE TABLE IF NOT EXISTS usage (token TEXT NOT NULL, day TEXT NOT NULL,"
    " provider TEXT NOT NULL, model TEXT NOT NULL, task TEXT NOT NULL,"
    + "".join(f" {name} INTEGER NOT NULL DEFAULT 0," for name in UsageCounts.FIELDS)
    + " PRIMARY KEY (token, day, provider, model, task))",
    # model_totals (every estimate) sums one provider and model over all tokens and days
    "CREATE INDEX IF NOT EXISTS usage_by_model ON usage (provider, model)",
)
_COLUMNS = ", ".join(UsageCounts.FIELDS)
_ADD = ", ".join(f"{name} = {name} + excluded.{name}" for name in UsageCounts.FIELDS)
_UPSERT_USAGE = (
    f"INSERT INTO usage (token, day, provider, model, task, {_COLUMNS})"  # noqa: S608 (fixed names)
    f" VALUES (?, ?, ?, ?, ?, {', '.join('?' * len(UsageCounts.FIELDS))})"
    f" ON CONFLICT (token, day, provider, model, task) DO UPDATE SET {_ADD}"
)


def _record(row: tuple[object, ...]) -> TokenRecord:
    name, token_digest, budget, period, created, revoked, used = row
    return TokenRecord(
        str(name),
        str(token_digest),
        None if budget is None else float(str(budget)),
        str(period),
        float(str(created)),
        None if revoked is None else float(str(revoked)),
        None if used is None else float(str(used)),
    )


class SQLiteStateStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue(POOL_SIZE)
        with self._conn() as conn:
            for statement in SCHEMA:
                conn.execute(statement)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
        use_wal(conn, BUSY_TIMEOUT)
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = self._connect()
        try:
            yield conn
        except BaseException:
            conn.close()  # its state is unknown: never hand it out again
            raise
        try:
            self._pool.put_nowait(conn)
        except queue.Full:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._conn() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # ------------------------------------------------------------------ tokens

    def create_token(self, record: TokenRecord) -> None:
        with self._write() as conn:
            row = conn.execute("SELECT revoked_at FROM tokens WHERE name = ?", (record.name,)).fetchone()
            if row is not None and row[0] is None:
                raise StateError(f"A token named {record.name!r} exists; revoke it first.")
            conn.execute("DELETE FROM tokens WHERE name = ?", (record.name,))
            conn.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, ?, ?, NULL, NULL)",
                (record.name, record.digest, record.budget_usd, record.period, record.created_at),
            )

    def find_token(self, token_digest: str) -> TokenRecord | None:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT * FROM tokens WHERE digest = ? AND revoked_at IS NULL", (token_digest,)
            ).fetchone()
        return None if row is None else _record(row)

    def list_tokens(self) -> list[TokenRecord]:
        with self._conn() as conn:
            rows = conn.execute("SELECT * FROM tokens ORDER BY name").fetchall()
        return [_record(row) for row in rows]

    def revoke_token(self, name: str, now: float) -> bool:
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", (now, name)
            )
            return cursor.rowcount > 0

    def touch_token(self, name: str, now: float) -> None:
        with self._conn() as conn:
            conn.execute("UPDATE tokens SET last_used_at = ? WHERE name = ?", (now, name))

    # ------------------------------------------------------------------ ledger

    def add_usage(self, batches: Iterable[UsageBatch]) -> None:
        batches = [b for b in batches if not b.empty()]
        if not batches:
            return
        with self._write() as conn:
            for batch in batches:
                if batch.requests:
                    conn.execute(
                        "INSERT INTO requests VALUES (?, ?, ?) ON CONFLICT (token, day)"
                        " DO UPDATE SET requests = requests + excluded.requests",
                        (batch.token, batch.day, batch.requests),
                    )
                for (provider, model, task), counts in batch.counts.items():
                    conn.execute(
                        _UPSERT_USAGE, (batch.token, batch.day, provider, model, task, *counts.values())
                    )

    def requests(self, token: str | None, first: str, last: str) -> dict[tuple[str, str], int]:
        sql = "SELECT token, day, requests FROM requests WHERE day >= ? AND day <= ?"
        args: tuple[str, ...] = (first, last)
        if token is not None:
            sql, args = sql + " AND token = ?", (*args, token)
        with self._conn() as conn:
            rows = conn.execute(sql, args).fetchall()
        return {(str(t), str(d)): int(n) for t, d, n in rows}

    def usage(self, token: str | None, first: str, last: str) -> list[UsageRow]:
        sql = f"SELECT token, day, provider, model, task, {_COLUMNS} FROM usage WHERE day >= ? AND day <= ?"  # noqa: S608
        args: tuple[str, ...] = (first, last)
        if token is not None:
            sql, args = sql + " AND token = ?", (*args, token)
        with self._conn() as conn:
            rows = conn.execute(sql + " ORDER BY token, day, provider, model, task", args).fetchall()
        return [
            UsageRow(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), UsageCounts(*map(int, r[5:])))
            for r in rows
        ]

    def model_totals(self, provider: str, model: str) -> dict[str, UsageCounts]:
        sums = ", ".join(f"SUM({name})" for name in UsageCounts.FIELDS)
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT task, {sums} FROM usage WHERE provider = ? AND model = ? GROUP BY task",  # noqa: S608
                (provider, model),
            ).fetchall()
        return {str(r[0]): UsageCounts(*(int(v or 0) for v in r[1:])) for r in rows}
