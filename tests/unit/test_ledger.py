"""The ledger's writer: paid usage at once, free usage (cache hits) in bulk a moment later."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from backend import create_app
from backend import ledger as ledger_module
from backend.auth import Caller
from backend.budgets import Budgets
from backend.ledger import Ledger
from backend.prices import Prices
from backend.providers.base import Usage
from backend.state import StateStore, UsageBatch, build_state_store, utc_day
from tests.conftest import TOKEN, make_settings

ROOT = Path(__file__).resolve().parents[2]
ANA = Caller("c1", "ana")


class CountingStore:
    """The real SQLite store, counting its writes."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.writes: list[list[UsageBatch]] = []

    def add_usage(self, batches: Iterable[UsageBatch]) -> None:
        batches = list(batches)
        self.writes.append(batches)
        self.store.add_usage(batches)

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


@pytest.fixture
def store(tmp_path: Path) -> CountingStore:
    return CountingStore(build_state_store(f"sqlite:///{tmp_path}/state.sqlite3", str(tmp_path)))


def ledger_on(store: CountingStore) -> Ledger:
    real: StateStore = store  # type: ignore[assignment]  # duck-typed: the store's methods
    return Ledger(real, Prices.load(None), Budgets(real))


def cache_hit(ledger: Ledger, caller: Caller = ANA) -> None:
    meter = ledger.meter(caller)
    meter.request()
    meter.served_free("openai", "gpt-4o-mini", "summary")
    meter.close()


def totals(store: CountingStore, name: str) -> tuple[int, int, int]:
    day = utc_day(time.time())
    rows = store.usage(name, day, day)  # type: ignore[operator]
    requests = store.requests(name, day, day)  # type: ignore[operator]
    return (
        sum(requests.values()),
        sum(r.counts.rows for r in rows),
        sum(r.counts.cached_rows for r in rows),
    )


def test_free_requests_are_written_together_once_the_delay_passes(
    store: CountingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger_module, "FREE_WRITE_DELAY", 0.3)
    ledger = ledger_on(store)
    for _ in range(50):
        cache_hit(ledger)
    cache_hit(ledger, Caller("c2", "bob"))
    assert store.writes == []  # nothing paid: no request waited on a write
    deadline = time.monotonic() + 5
    while not store.writes and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(store.writes) == 1 and len(store.writes[0]) == 2  # one write, one batch per token
    assert totals(store, "ana") == (50, 50, 50)
    assert totals(store, "bob") == (1, 1, 1)


def test_a_paid_request_is_written_at_once_and_flush_writes_the_free_ones(store: CountingStore) -> None:
    ledger = ledger_on(store)
    cache_hit(ledger)
    meter = ledger.meter(ANA)
    meter.request()
    meter.called("openai", "gpt-4o-mini", "summary", Usage(100, 10), words=70, seconds=0.2)
    meter.close()
    assert len(store.writes) == 1 and totals(store, "ana") == (1, 1, 0)  # the paid one only
    ledger.flush()
    assert totals(store, "ana") == (2, 2, 1)
    ledger.flush()  # nothing left: no empty write
    assert len(store.writes) == 2


def test_usage_read_in_the_same_process_includes_free_requests_at_once(tmp_path: Path) -> None:
    app = create_app(make_settings(state_url=f"sqlite:///{tmp_path}/state.sqlite3"))
    client = app.test_client()
    body = {"prompt": "A short note about the quarterly figures."}
    assert client.post("/api/v1/webhook", json=body, headers={"X-API-Token": TOKEN}).status_code == 200
    assert client.post("/api/v1/webhook", json=body, headers={"X-API-Token": TOKEN}).status_code == 200
    mine = client.get("/api/v1/usage", headers={"X-API-Token": TOKEN}).get_json()["tokens"][0]["totals"]
    assert (mine["requests"], mine["rows"], mine["cached_rows"]) == (2, 2, 1)


def test_free_usage_still_pending_is_written_when_the_process_exits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.sqlite3"
    script = f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from backend import ledger as module
        module.FREE_WRITE_DELAY = 3600.0  # only the exit can write it
        from backend.auth import Caller
        from backend.budgets import Budgets
        from backend.prices import Prices
        from backend.state import build_state_store
        store = build_state_store({url!r}, {str(tmp_path)!r})
        ledger = module.Ledger(store, Prices.load(None), Budgets(store))
        for _ in range(3):
            meter = ledger.meter(Caller("c1", "ana"))
            meter.request()
            meter.served_free("openai", "gpt-4o-mini", "summary")
            meter.close()
    """
    subprocess.run([sys.executable, "-c", textwrap.dedent(script)], check=True, timeout=60)
    store = CountingStore(build_state_store(url, str(tmp_path)))
    assert totals(store, "ana") == (3, 3, 3)


def test_a_ledger_that_cannot_write_logs_the_loss_and_the_answer_still_goes_out(
    store: CountingStore, caplog: pytest.LogCaptureFixture
) -> None:
    def down(batches: Iterable[UsageBatch]) -> None:
        raise OSError("disk full")

    store.add_usage = down  # type: ignore[method-assign]
    ledger = ledger_on(store)
    cache_hit(ledger)
    cache_hit(ledger, Caller("c2", "bob"))
    ledger.flush()
    lost = [r for r in caplog.records if r.getMessage() == "usage not recorded"]
    assert sorted(r.token_name for r in lost) == ["ana", "bob"]  # type: ignore[attr-defined]
    assert all(r.error == "OSError" for r in lost)  # type: ignore[attr-defined]
