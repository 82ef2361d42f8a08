"""The provider budget: slots, waiting instead of failing, AIMD on 429, and its use by batches."""

from __future__ import annotations

import threading
import time

import pytest

from backend.pacing import INTERACTIVE, ProviderBudget, job_priority


def test_slots_up_to_the_limit_then_wait_until_the_deadline() -> None:
    budget = ProviderBudget(2)
    assert budget.acquire(time.monotonic() + 1)
    assert budget.acquire(time.monotonic() + 1)
    started = time.monotonic()
    assert not budget.acquire(time.monotonic() + 0.05)  # full: waits, then gives up at the deadline
    assert time.monotonic() - started >= 0.04
    assert budget.snapshot() == {
        "provider_in_flight": 2,
        "provider_waiting": 0,
        "provider_window": 2,
        "provider_limit": 2,
    }


def test_a_waiting_caller_gets_the_released_slot() -> None:
    budget = ProviderBudget(1)
    assert budget.acquire(time.monotonic() + 1)
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(budget.acquire(time.monotonic() + 5)))
    waiter.start()
    for _ in range(100):
        if budget.snapshot()["provider_waiting"] == 1:
            break
        time.sleep(0.01)
    assert budget.snapshot()["provider_waiting"] == 1
    budget.release(succeeded=True)
    waiter.join(2)
    assert got == [True]
    assert budget.snapshot()["provider_in_flight"] == 1


def test_429_halves_once_per_burst_and_successes_recover_it() -> None:
    now = [100.0]
    budget = ProviderBudget(32, clock=lambda: now[0])
    budget.hold(0.0)
    budget.hold(0.0)  # the same burst: no second cut
    assert budget.snapshot()["provider_window"] == 16
    now[0] += 1.5
    budget.hold(0.0)
    assert budget.snapshot()["provider_window"] == 8
    for _ in range(9):  # about one slot per round trip of successes
        assert budget.acquire(now[0] + 1)
        budget.release(succeeded=True)
    assert budget.snapshot()["provider_window"] == 9
    for _ in range(2000):
        assert budget.acquire(now[0] + 1)
        budget.release(succeeded=True)
    assert budget.snapshot()["provider_window"] == 32  # never above the configured limit


def test_failures_do_not_grow_the_window() -> None:
    now = [0.0]
    budget = ProviderBudget(4, clock=lambda: now[0])
    budget.hold(0.0)
    for _ in range(50):
        assert budget.acquire(now[0] + 1)
        budget.release(succeeded=False)
    assert budget.snapshot()["provider_window"] == 2


def test_the_window_never_drops_below_one() -> None:
    now = [0.0]
    budget = ProviderBudget(2, clock=lambda: now[0])
    for _ in range(5):
        now[0] += 2
        budget.hold(0.0)
    assert budget.snapshot()["provider_window"] == 1
    assert budget.acquire(now[0] + 1)


def test_hold_delays_the_next_attempt() -> None:
    budget = ProviderBudget(4)
    budget.hold(0.05)
    started = time.monotonic()
    assert budget.wait(time.monotonic() + 1)
    assert time.monotonic() - started >= 0.04


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="PROVIDER_CONCURRENCY"):
        ProviderBudget(0)


def test_waiters_are_served_by_priority_then_arrival() -> None:
    budget = ProviderBudget(1)
    assert budget.acquire(time.monotonic() + 1)
    order: list[str] = []
    lock = threading.Lock()

    def wait_for_slot(name: str, priority: tuple[float, ...]) -> None:
        assert budget.acquire(time.monotonic() + 5, priority)
        with lock:
            order.append(name)
        budget.release(succeeded=True)

    threads = []
    for name, priority in (
        ("job row 7", job_priority(10.0, 7)),
        ("job row 2", job_priority(10.0, 2)),
        ("newer job", job_priority(20.0, 0)),
        ("excel", INTERACTIVE),
    ):
        threads.append(threading.Thread(target=wait_for_slot, args=(name, priority)))
        threads[-1].start()
        while budget.snapshot()["provider_waiting"] < len(threads):
            time.sleep(0.005)
    budget.release(succeeded=True)
    for thread in threads:
        thread.join(5)
    assert order == ["excel", "job row 2", "job row 7", "newer job"]


def test_a_waiter_that_gave_up_is_skipped() -> None:
    budget = ProviderBudget(1)
    assert budget.acquire(time.monotonic() + 1)
    assert not budget.acquire(time.monotonic() + 0.02)  # gives up
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(budget.acquire(time.monotonic() + 5)))
    waiter.start()
    while budget.snapshot()["provider_waiting"] < 1:
        time.sleep(0.005)
    budget.release(succeeded=True)
    waiter.join(5)
    assert got == [True]
    assert budget.snapshot()["provider_in_flight"] == 1 and budget.snapshot()["provider_waiting"] == 0
