"""Two-level response cache, so Excel recalculating a sheet never pays for an answer twice.

L1 is a per-process `cachetools.TTLCache`. L2 is shared by every worker and survives a
restart, chosen by CACHE_URL:

    memory://             L1 only
    sqlite:///path.db     one machine, several gunicorn / PythonAnywhere workers (default:
                          a file in the app's instance folder; WAL, short busy timeout)
    redis://host:port/0   several machines

L2 is an optimisation, never a dependency: an unreadable, locked or corrupt file, or Redis
going away, logs one warning and the cache runs on L1 until the store answers again.
Only successes are stored; errors never are.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import queue
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlparse

from cachetools import TTLCache

from backend.sqlite_wal import use_wal

log = logging.getLogger("backend.cache")
T = TypeVar("T")

POOL_SIZE = 16  # idle SQLite connections kept per process
RETRY_STORE_AFTER = 5.0  # seconds a failed L2 is left alone before it is tried again


def cache_key(
    *,
    provider: str,
    model: str,
    task: str,
    language: str | None,
    source: str | None,
    template_version: int,
    prompt: str,
    options: dict[str, Any] | None = None,
) -> str:
    """sha256 over everything that changes the answer; whitespace differences do not.

    `options` are the task's other inputs (instruction, labels, fields, count): each set
    one is added by name, so a row without them keeps the key it always had.
    """
    normalised = " ".join(prompt.split())
    parts = [provider, model, task, language or "", source or "", str(template_version), normalised]
    for name, value in sorted((options or {}).items()):
        if value is not None:
            parts.append(f"{name}={json.dumps(value, ensure_ascii=False)}")
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


class Store(Protocol):
    """A shared L2: get/set JSON text by key, raising on any trouble."""

    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str, ttl: int) -> None: ...


def _is_corrupt(exc: sqlite3.Error) -> bool:
    """SQLITE_CORRUPT or SQLITE_NOTADB: the file is damaged (a lock or a full disk is not)."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF in (11, 26)
    return "malformed" in str(exc) or "not a database" in str(exc)


class SQLiteStore:
    """A SQLite file shared by the processes of one machine.

    Connections come from a small pool, one borrower at a time (sqlite3 connections are not
    thread-safe). The file's inode is checked every few seconds so a file deleted or
    replaced under a running server is reopened instead of writing into an unlinked inode
    forever.
    """

    def __init__(self, path: Path, busy_timeout: float = 0.2) -> None:
        self.path = path
        # Short by default: a cache that waits long on a lock would stall the request (and,
        # under gevent, its whole worker); on timeout the cache answers from L1 instead.
        self.busy_timeout = busy_timeout
        self._pool: queue.LifoQueue[tuple[int, sqlite3.Connection]] = queue.LifoQueue(POOL_SIZE)
        self._generation = 0
        self._inode: int | None = None
        self._checked = 0.0
        self._writes = 0

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
        use_wal(conn, self.busy_timeout)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS responses"
            " (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires REAL NOT NULL)"
        )
        inode = os.stat(self.path).st_ino
        if inode != self._inode:
            if self._inode is not None:  # a new file: every other thread's connection is stale
                self._generation += 1
            self._inode = inode
        return conn

    def _check_file(self) -> None:
        """Every few seconds: a file deleted or replaced under us makes every pooled
        connection stale (a new generation)."""
        now = time.monotonic()
        if now - self._checked > 2.0:
            self._checked = now
            try:
                inode: int | None = os.stat(self.path).st_ino
            except OSError:
                inode = None
            if inode != self._inode:
                self._generation += 1

    @contextlib.contextmanager
    def _borrow(self) -> Iterator[sqlite3.Connection]:
        """A connection from the pool (or a new one), back in the pool afterwards.

        A pool, not one connection per thread: under gevent every batch row runs in its own
        greenlet, and a connection per greenlet meant opening the file (and its WAL check)
        for nearly every cache lookup. A connection that saw an error is closed, not reused.
        """
        self._check_file()
        conn: sqlite3.Connection | None = None
        while conn is None:
            try:
                generation, conn = self._pool.get_nowait()
            except queue.Empty:
                conn = self._connect()
                generation = self._generation
            else:
                if generation != self._generation:
                    conn.close()
                    conn = None
        try:
            yield conn
        except BaseException:
            conn.close()
            raise
        if generation == self._generation:
            try:
                self._pool.put_nowait((generation, conn))
                return
            except queue.Full:
                pass
        conn.close()

    def _reset(self, exc: sqlite3.Error | None = None) -> None:
        """Drop this thread's connection so the next call starts afresh.

        A corrupt file can only be rebuilt, never repaired in place: it is moved aside (kept
        for a post-mortem) and every thread of this process reconnects to a new, empty file;
        other processes follow when they see the inode change.
        """
        if exc is not None and _is_corrupt(exc):
            stamp = time.strftime("%Y%m%d-%H%M%S")
            for suffix in ("", "-wal", "-shm"):
                path = self.path.with_name(self.path.name + suffix)
                with contextlib.suppress(OSError):
                    path.rename(path.with_name(f"{path.name}.corrupt-{stamp}"))
            self._generation += 1
            log.warning("response cache file was corrupt; moved aside and started afresh")

    def get(self, key: str) -> str | None:
        try:
            with self._borrow() as conn:
                row = conn.execute(
                    "SELECT value FROM responses WHERE key = ? AND expires > ?", (key, time.time())
                ).fetchone()
        except sqlite3.Error as exc:
            self._reset(exc)
            raise
        return row[0] if row else None

    def set(self, key: str, value: str, ttl: int) -> None:
        try:
            with self._borrow() as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO responses (key, value, expires) VALUES (?, ?, ?)",
                    (key, value, time.time() + ttl),
                )
                self._writes += 1
                if self._writes % 1000 == 0:
                    conn.execute("DELETE FROM responses WHERE expires <= ?", (time.time(),))
        except sqlite3.Error as exc:
            self._reset(exc)
            raise


class RedisStore:
    """Redis for several machines; short socket timeouts so an outage cannot stall requests."""

    PREFIX = "flaskllm:cache:"

    def __init__(self, url: str) -> None:
        import redis  # the [redis] extra; imported only when configured

        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)

    def get(self, key: str) -> str | None:
        value = self.client.get(self.PREFIX + key)
        return value.decode("utf-8") if isinstance(value, bytes) else None

    def set(self, key: str, value: str, ttl: int) -> None:
        self.client.set(self.PREFIX + key, value, ex=max(1, ttl))


# What one L1 entry costs beyond its text (sys.getsizeof): its key, a 64-character sha256
# hex string (113 bytes), and TTLCache's links and dict slot (about 200 bytes; measured with
# tracemalloc). L1 keeps each answer as its JSON text, not the parsed dict: a parsed answer
# costs its JSON length plus about 1,040 bytes, so text holds the same answers in about 40 %
# of the memory, for one json.loads (a few microseconds) per L1 hit.
L1_ENTRY_OVERHEAD = 320
DEFAULT_L1_BYTES = 32 * 1024 * 1024


def _entry_size(text: str) -> int:
    return sys.getsizeof(text) + L1_ENTRY_OVERHEAD


def _parsed(text: str) -> dict[str, Any] | None:
    """A stored answer, or None for text that is not one (a damaged or foreign L2 value)."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class ResponseCache:
    """L1 in front of an optional L2 that is skipped for a while after it fails.

    L1 is bounded twice: by entries (CACHE_MAX_ENTRIES) and by the bytes its answers take
    (CACHE_L1_BYTES), so a run of long unique answers cannot grow a worker without limit.
    Every get parses the stored text afresh, so no caller can change another's answer.
    """

    def __init__(
        self, store: Store | None, ttl: int, max_entries: int, max_bytes: int = DEFAULT_L1_BYTES
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.enabled = ttl > 0 and max_entries > 0
        self.max_entries = max(1, max_entries)
        self._l1: TTLCache[str, str] = TTLCache(
            maxsize=max(1, max_bytes), ttl=max(1, ttl), getsizeof=_entry_size
        )
        self._lock = threading.Lock()
        self._store_down_until = 0.0
        self.retry_after = RETRY_STORE_AFTER  # per instance, so a test can wait less

    def get(self, key: str) -> dict[str, Any] | None:
        if not self.enabled:
            return None
        with self._lock:
            text = self._l1.get(key)
        if text is not None:
            return _parsed(text)
        text = self._store_call(lambda store: store.get(key))
        if not text:
            return None
        value = _parsed(text)
        if value is not None:
            self._remember(key, text)
        return value

    def set(self, key: str, value: dict[str, Any]) -> None:
        if not self.enabled:
            return
        text = json.dumps(value, ensure_ascii=False)
        self._remember(key, text)
        self._store_call(lambda store: store.set(key, text, self.ttl))

    def _remember(self, key: str, text: str) -> None:
        """Keep `text` in L1, evicting the least recently used entries to stay in bounds."""
        with self._lock:
            if _entry_size(text) > self._l1.maxsize:  # bigger than all of L1: served from L2 only
                self._l1.pop(key, None)
                return
            while key not in self._l1 and len(self._l1) >= self.max_entries:
                self._l1.popitem()
            self._l1[key] = text

    @property
    def l1_bytes(self) -> int:
        """The estimated bytes L1 holds now (what CACHE_L1_BYTES bounds)."""
        with self._lock:
            return int(self._l1.currsize)

    def _store_call(self, call: Callable[[Store], T]) -> T | None:
        """`call(store)`, or None when there is no store or it failed recently (L1 only then)."""
        if self.store is None or time.monotonic() < self._store_down_until:
            return None
        try:
            result = call(self.store)
        except Exception as exc:  # any store failure degrades to L1 only
            if self._store_down_until == 0.0:
                log.warning("response cache store unavailable, serving without it: %s", type(exc).__name__)
            self._store_down_until = time.monotonic() + self.retry_after
            return None
        if self._store_down_until:
            log.warning("response cache store is back")
            self._store_down_until = 0.0
        return result


def build_cache(
    url: str, ttl: int, max_entries: int, instance_path: str, max_bytes: int = DEFAULT_L1_BYTES
) -> ResponseCache:
    """The cache CACHE_URL describes; an empty URL means a SQLite file in the instance folder."""
    url = url or f"sqlite:///{Path(instance_path) / 'response-cache.sqlite3'}"
    scheme = urlparse(url).scheme
    store: Store | None
    if scheme == "memory":
        store = None
    elif scheme == "sqlite":
        path = url.removeprefix("sqlite:///")
        store = SQLiteStore(Path(path).expanduser())
    elif scheme in ("redis", "rediss", "unix"):
        store = RedisStore(url)
    else:
        raise ValueError(f"CACHE_URL={url!r}: use memory://, sqlite:///path or redis://host:port/db")
    return ResponseCache(store, ttl, max_entries, max_bytes)
