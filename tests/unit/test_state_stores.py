"""The state database's two backends behave the same: tokens by digest, an additive ledger.

SQLite runs on a temp file, Redis on a real throw-away redis-server (tests/redis_server.py):
the point is what concurrent writers and a second process see, which only real stores show.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from backend.cache import SQLiteStore
from backend.state import (
    StateError,
    StateStore,
    TokenRecord,
    UsageBatch,
    UsageCounts,
    build_state_store,
    check_name,
    days_between,
    digest,
    period_bounds,
    utc_day,
)
from backend.state_sqlite import SQLiteStateStore
from tests.concurrently import all_at_once
from tests.redis_server import RedisServer, redis_server_binary


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    if redis_server_binary() is None:
        pytest.fail("redis-server is not installed: scripts/test.sh installs it")
    with RedisServer() as server:
        yield server.url


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    if request.param == "sqlite":
        yield build_state_store(f"sqlite:///{tmp_path}/state.sqlite3", str(tmp_path))
    else:
        url: str = request.getfixturevalue("redis_url")
        made = build_state_store(url, str(tmp_path))
        made.redis.flushdb()  # type: ignore[attr-defined]
        yield made


def record(name: str, token: str, budget: float | None = None, period: str = "month") -> TokenRecord:
    return TokenRecord(name, digest(token), budget, period, 1_000.0)


def test_tokens_are_found_by_digest_and_never_stored_in_clear(store: StateStore) -> None:
    store.create_token(record("alice", "secret-a", 5.0, "day"))
    store.create_token(record("bob", "secret-b"))
    found = store.find_token(digest("secret-a"))
    assert found is not None
    assert (found.name, found.budget_usd, found.period) == ("alice", 5.0, "day")
    assert store.find_token(digest("nope")) is None
    assert [r.name for r in store.list_tokens()] == ["alice", "bob"]
    assert all("secret" not in repr(r) for r in store.list_tokens())


def test_revoke_then_recreate_under_the_same_name(store: StateStore) -> None:
    store.create_token(record("alice", "one"))
    with pytest.raises(StateError, match="exists"):
        store.create_token(record("alice", "two"))
    assert store.revoke_token("alice", 2_000.0)
    assert not store.revoke_token("alice", 2_001.0)  # already revoked
    assert not store.revoke_token("nobody", 2_001.0)
    assert store.find_token(digest("one")) is None
    listed = store.list_tokens()[0]
    assert listed.revoked_at == 2_000.0
    store.create_token(record("alice", "two"))
    assert store.find_token(digest("two")) is not None
    assert store.find_token(digest("one")) is None


def test_last_use_is_recorded(store: StateStore) -> None:
    store.create_token(record("alice", "one"))
    assert store.list_tokens()[0].last_used_at is None
    store.touch_token("alice", 3_000.5)
    assert store.list_tokens()[0].last_used_at == 3_000.5


def batch(token: str, day: str, requests: int = 1, **counts: int) -> UsageBatch:
    made = UsageBatch(token, day, requests)
    made.counts_for("openai", "gpt-4", "summary").add(UsageCounts(**counts))
    return made


def test_ledger_adds_up_per_token_day_and_model(store: StateStore) -> None:
    store.add_usage([batch("alice", "2026-12-01", rows=2, input_tokens=10, output_tokens=4, cost_nano=7)])
    store.add_usage([batch("alice", "2026-12-01", rows=1, cached_rows=1)])
    store.add_usage([batch("bob", "2026-12-02", rows=3, input_tokens=5, unpriced_rows=3)])
    store.add_usage([UsageBatch("carol", "2026-12-02")])  # empty: nothing written
    rows = store.usage(None, "2026-12-01", "2026-12-31")
    assert [(r.token, r.day) for r in rows] == [("alice", "2026-12-01"), ("bob", "2026-12-02")]
    alice = rows[0].counts
    assert (alice.rows, alice.cached_rows, alice.input_tokens, alice.output_tokens, alice.cost_nano) == (
        3,
        1,
        10,
        4,
        7,
    )
    assert store.usage("bob", "2026-12-01", "2026-12-01") == []
    assert store.requests(None, "2026-12-01", "2026-12-31") == {
        ("alice", "2026-12-01"): 2,
        ("bob", "2026-12-02"): 1,
    }
    assert store.requests("bob", "2026-12-01", "2026-12-31") == {("bob", "2026-12-02"): 1}
    totals = store.model_totals("openai", "gpt-4")["summary"]
    assert (totals.rows, totals.input_tokens, totals.unpriced_rows) == (6, 15, 3)
    assert store.model_totals("anthropic", "claude") == {}


def test_concurrent_writers_lose_no_count(store: StateStore) -> None:
    """16 threads x 50 writes each, as 2 workers x 64 batches do: the sums are exact."""

    def write(n: int) -> None:
        for i in range(50):
            store.add_usage([batch(f"t{n % 3}", "2026-12-03", rows=1, input_tokens=i, cost_nano=1)])

    threads = [threading.Thread(target=write, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = store.usage(None, "2026-12-03", "2026-12-03")
    assert sum(r.counts.rows for r in rows) == 800
    assert sum(r.counts.input_tokens for r in rows) == 16 * sum(range(50))
    assert sum(r.counts.cost_nano for r in rows) == 800
    assert sum(store.requests(None, "2026-12-03", "2026-12-03").values()) == 800


def test_names_periods_and_days() -> None:
    assert check_name("alice.smith-2") == "alice.smith-2"
    for bad in ("", "-x", "a b", "(unnamed)", "x" * 65):
        with pytest.raises(StateError):
            check_name(bad)
    ts = 1796256000.0 + 3600  # 2026-12-03 01:00 UTC
    assert utc_day(ts) == "2026-12-03"
    assert period_bounds("day", ts)[:2] == ("2026-12-03", "2026-12-03")
    first, last, resets = period_bounds("month", ts)
    assert (first, last, resets.isoformat()) == ("2026-12-01", "2026-12-31", "2027-01-01T00:00:00+00:00")
    assert days_between("2026-12-30", "2027-01-02") == [
        "2026-12-30",
        "2026-12-31",
        "2027-01-01",
        "2027-01-02",
    ]


def test_state_url_must_be_sqlite_or_redis(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="STATE_URL"):
        build_state_store("postgres://x", str(tmp_path))
    default = build_state_store("", str(tmp_path))
    default.add_usage([batch("a", "2026-12-01", rows=1)])
    assert (tmp_path / "state.sqlite3").exists()


@pytest.mark.parametrize("store_class", ["state", "cache"])
def test_workers_opening_a_fresh_file_at_the_same_moment_all_start(tmp_path: Path, store_class: str) -> None:
    """Gunicorn starts its workers together, and each opens the state and cache files. The
    first connection switches a new file to WAL; SQLite answers the others "database is
    locked" at once, without its busy wait, and a worker that took that as fatal failed to
    boot (seen in the benchmark: the whole server stopped)."""

    def open_it(path: Path) -> object:
        return SQLiteStateStore(path).list_tokens() if store_class == "state" else SQLiteStore(path).get("k")

    failures: list[BaseException] = []
    for attempt in range(20):
        failures += all_at_once(partial(open_it, tmp_path / f"fresh-{attempt}.sqlite3"), threads=6)
    assert failures == []
