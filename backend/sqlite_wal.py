"""WAL mode for a SQLite file that several processes may open at the same moment.

Gunicorn starts its workers together, and each opens the cache and state files. The first
connection switches a new file to WAL (it stays so); SQLite answers the losers of that race
"database is locked" at once, without its busy wait. Taken as fatal, that stopped a worker
from booting, and gunicorn then stopped the whole server.
"""

from __future__ import annotations

import sqlite3
import time


def use_wal(conn: sqlite3.Connection, patience: float) -> None:
    """Put `conn`'s file in WAL mode, retrying a lost race for up to `patience` seconds."""
    ends = time.monotonic() + patience
    while True:
        try:
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= ends:
                raise
            time.sleep(0.01)
