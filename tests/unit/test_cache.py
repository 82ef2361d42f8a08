"""The response cache: keys, L1, the SQLite L2, and degrading when the L2 fails."""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from backend import cache as cache_module
from backend.cache import RedisStore, ResponseCache, SQLiteStore, build_cache, cache_key

BASE: dict[str, Any] = {
    "provider": "openai",
    "model": "gpt-4",
    "task": "summary",
    "language": None,
    "source": None,
    "template_version": 1,
    "prompt": "Please summarise this e-mail.",
}
BODY = {"summary": "ok", "type": "summary", "result": "ok", "provider": "openai", "model": "gpt-4"}


class MemoryStore:
    """An in-process L2 that can be told to fail, and counts calls."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.fail = False
        self.calls = 0

    def get(self, key: str) -> str | None:
        self.calls += 1
        if self.fail:
            raise ConnectionError("store down")
        return self.data.get(key)

    def set(self, key: str, value: str, ttl: int) -> None:
        self.calls += 1
        if self.fail:
            raise ConnectionError("store down")
        self.data[key] = value


# ------------------------------------------------------------------ keys


def test_key_is_stable_hex_sha256() -> None:
    key = cache_key(**BASE)
    assert key == cache_key(**BASE)
    assert len(key) == 64 and int(key, 16) >= 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("provider", "anthropic"),
        ("model", "gpt-4o"),
        ("task", "keywords"),
        ("language", "de"),
        ("source", "email"),
        ("template_version", 2),
        ("prompt", "Please summarise this letter."),
    ],
)
def test_every_part_changes_the_key(field: str, value: Any) -> None:
    assert cache_key(**{**BASE, field: value}) != cache_key(**BASE)


@pytest.mark.parametrize(
    "prompt",
    [
        "  Please summarise this e-mail.",
        "Please  summarise\nthis\te-mail.  ",
        "Please summarise this e-mail.\n",
    ],
)
def test_whitespace_does_not_change_the_key(prompt: str) -> None:
    assert cache_key(**{**BASE, "prompt": prompt}) == cache_key(**BASE)


def test_parts_cannot_run_into_each_other() -> None:
    a = cache_key(**{**BASE, "provider": "open", "model": "aigpt-4"})
    b = cache_key(**{**BASE, "provider": "openai", "model": "gpt-4"})
    assert a != b


# ------------------------------------------------------------------ L1 + L2


def test_memory_only_cache_round_trip() -> None:
    cache = ResponseCache(None, ttl=60, max_entries=10)
    assert cache.get("k") is None
    cache.set("k", BODY)
    assert cache.get("k") == BODY


@pytest.mark.parametrize(("ttl", "entries"), [(0, 10), (60, 0)])
def test_cache_can_be_switched_off(ttl: int, entries: int) -> None:
    store = MemoryStore()
    cache = ResponseCache(store, ttl=ttl, max_entries=entries)
    cache.set("k", BODY)
    assert cache.get("k") is None
    assert store.calls == 0


def test_l2_hit_fills_l1() -> None:
    store = MemoryStore()
    store.data["k"] = json.dumps(BODY)
    cache = ResponseCache(store, ttl=60, max_entries=10)
    assert cache.get("k") == BODY
    calls = store.calls
    assert cache.get("k") == BODY
    assert store.calls == calls  # second read served by L1


def test_set_writes_through_to_l2() -> None:
    store = MemoryStore()
    ResponseCache(store, ttl=60, max_entries=10).set("k", BODY)
    assert json.loads(store.data["k"]) == BODY
    assert ResponseCache(store, ttl=60, max_entries=10).get("k") == BODY  # another process


@pytest.mark.parametrize("stored", ["not json {", "[1, 2]", '"text"', "null", ""])
def test_unreadable_l2_values_are_misses(stored: str) -> None:
    store = MemoryStore()
    store.data["k"] = stored
    assert ResponseCache(store, ttl=60, max_entries=10).get("k") is None


def test_failing_store_degrades_to_l1_and_is_retried_later(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(cache_module, "RETRY_STORE_AFTER", 3600.0)
    store = MemoryStore()
    cache = ResponseCache(store, ttl=60, max_entries=10)
    store.fail = True
    with caplog.at_level(logging.WARNING, logger="backend.cache"):
        cache.set("a", BODY)  # L2 fails: no exception
        assert cache.get("a") == BODY  # L1 still serves
        assert cache.get("missing") is None
        cache.set("b", BODY)
    assert store.calls == 1  # left alone after the first failure
    warnings = [r for r in caplog.records if r.name == "backend.cache"]
    assert len(warnings) == 1
    assert "store down" not in caplog.text  # exception type only, never its message


def test_store_retried_after_the_pause(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(cache_module, "RETRY_STORE_AFTER", 0.0)
    store = MemoryStore()
    cache = ResponseCache(store, ttl=60, max_entries=10)
    store.fail = True
    cache.set("a", BODY)
    store.fail = False
    with caplog.at_level(logging.WARNING, logger="backend.cache"):
        cache.set("b", BODY)  # no pause configured: the very next call tries again
    assert "b" in store.data
    assert "back" in caplog.records[-1].getMessage()
    store.fail = True
    with caplog.at_level(logging.WARNING, logger="backend.cache"):
        cache.set("c", BODY)  # a second outage is reported again
    assert "unavailable" in caplog.records[-1].getMessage()


# ------------------------------------------------------------------ SQLite


def test_sqlite_store_shared_by_two_instances(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "c.db"
    SQLiteStore(path).set("k", "v", 60)
    assert SQLiteStore(path).get("k") == "v"
    assert SQLiteStore(path).get("other") is None


def test_sqlite_store_honours_ttl(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "c.db")
    store.set("gone", "v", 0)
    assert store.get("gone") is None


def test_sqlite_store_from_many_threads(tmp_path: Path) -> None:
    # A generous lock wait: this is about a connection per thread, not about the short
    # default timeout, which a loaded machine can exceed (the cache then falls back to L1).
    store = SQLiteStore(tmp_path / "c.db", busy_timeout=10)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                store.set(f"{n}-{i}", str(i), 60)
                assert store.get(f"{n}-{i}") == str(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_sqlite_garbage_file_raises_sqlite_error(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    path.write_bytes(b"this is not a database" * 200)
    with pytest.raises(sqlite3.Error):
        SQLiteStore(path).get("k")


def test_garbage_sqlite_file_degrades_the_cache(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    path.write_bytes(b"\x00\xffgarbage" * 1000)
    cache = ResponseCache(SQLiteStore(path), ttl=60, max_entries=10)
    cache.set("k", BODY)
    assert cache.get("k") == BODY


def test_sqlite_file_deleted_under_the_store_is_recreated(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    store = SQLiteStore(path)
    store.set("k", "v", 60)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    store._checked = 0.0  # the periodic inode check is due
    store.set("k2", "v2", 60)
    assert path.exists()
    assert SQLiteStore(path).get("k2") == "v2"


# ------------------------------------------------------------------ build_cache


def test_build_cache_by_url(tmp_path: Path) -> None:
    assert build_cache("memory://", 60, 10, str(tmp_path)).store is None
    sqlite_cache = build_cache(f"sqlite:///{tmp_path}/x.db", 60, 10, str(tmp_path))
    assert isinstance(sqlite_cache.store, SQLiteStore)
    assert sqlite_cache.store.path == tmp_path / "x.db"
    assert isinstance(build_cache("redis://127.0.0.1:1/0", 60, 10, str(tmp_path)).store, RedisStore)


def test_default_cache_is_a_file_in_the_instance_folder(tmp_path: Path) -> None:
    cache = build_cache("", 60, 10, str(tmp_path / "instance"))
    assert isinstance(cache.store, SQLiteStore)
    assert cache.store.path.parent == tmp_path / "instance"
    cache.set("k", BODY)
    assert cache.store.path.exists()


def test_unknown_cache_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="CACHE_URL"):
        build_cache("memcached://x", 60, 10, str(tmp_path))


def test_unreachable_redis_degrades(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Redis that is not there is an L1-only cache, not an error (port 1: refused)."""
    monkeypatch.setattr(cache_module, "RETRY_STORE_AFTER", 3600.0)
    cache = build_cache("redis://127.0.0.1:1/0", 60, 10, str(tmp_path))
    cache.set("k", BODY)
    assert cache.get("k") == BODY
    assert cache.get("other") is None


def test_l1_bytes_is_what_its_answers_really_take() -> None:
    """CACHE_L1_BYTES bounds a worker's memory only if the estimate is honest: measured
    with tracemalloc for answers of 0.2 to 4 KB, ASCII and not, under real sha256 keys."""
    cache = ResponseCache(None, ttl=60, max_entries=10**6, max_bytes=10**9)
    bodies = [
        {**BODY, "summary": ("Zusammenfassung über Größe " if n % 2 else "summary ") * (5 + n % 150), "n": n}
        for n in range(3000)
    ]
    keys = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(3000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for key, body in zip(keys, bodies, strict=True):
            cache.set(key, body)
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    keys_memory = sum(len(k) + 49 for k in keys)  # the keys exist outside the cache too
    assert 0.85 <= (used + keys_memory) / cache.l1_bytes <= 1.15


def test_an_answer_changed_by_its_caller_stays_as_stored() -> None:
    cache = ResponseCache(None, ttl=60, max_entries=10, max_bytes=10**6)
    cache.set("k", {**BODY, "usage": {"input_tokens": 3}})
    first = cache.get("k")
    assert first is not None
    first["usage"]["input_tokens"] = 0
    first["summary"] = "changed"
    assert cache.get("k") == {**BODY, "usage": {"input_tokens": 3}}


def test_l1_is_bounded_in_bytes_and_entries() -> None:
    cache = ResponseCache(None, ttl=60, max_entries=1000, max_bytes=20_000)
    for n in range(100):
        cache.set(f"k{n}", {"summary": "x" * 1000, "n": n})
    assert cache.l1_bytes <= 20_000
    assert cache.get("k99") == {"summary": "x" * 1000, "n": 99}  # the newest stay
    assert cache.get("k0") is None  # the oldest went
    cache.set("huge", {"summary": "y" * 30_000})  # bigger than all of L1: not kept, nothing evicted for it
    assert cache.get("huge") is None and cache.get("k99") is not None
    few = ResponseCache(None, ttl=60, max_entries=3, max_bytes=10**6)
    for n in range(5):
        few.set(f"k{n}", {"n": n})
    assert [few.get(f"k{n}") is not None for n in range(5)] == [False, False, True, True, True]
