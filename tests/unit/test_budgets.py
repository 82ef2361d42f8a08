"""Budgets: the period's spend from the ledger, plus what this process has in flight."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.auth import Caller
from backend.budgets import Budgets
from backend.errors import BudgetExceeded
from backend.state import NANO, UsageBatch, build_state_store, utc_day

NOW = 1796256000.0 + 12 * 3600  # 2026-12-03 12:00 UTC


def budgets(tmp_path: Path) -> tuple[Budgets, object]:
    store = build_state_store(f"sqlite:///{tmp_path}/s.db", str(tmp_path))
    return Budgets(store, clock=lambda: NOW), store


def test_rows_in_flight_hold_their_estimate_so_a_burst_cannot_slip_under(tmp_path: Path) -> None:
    gate, _ = budgets(tmp_path)
    caller = Caller("c", "ana", budget_usd=1.0, period="day")
    for _ in range(4):
        gate.reserve(caller, NANO // 4)  # four rows of 0.25 USD start at once: the budget is held
    with pytest.raises(BudgetExceeded) as refused:
        gate.reserve(caller, NANO // 4)
    assert refused.value.resets_at == "2026-12-04T00:00:00Z"
    assert refused.value.retry_after == pytest.approx(12 * 3600)
    gate.settle(caller, NANO // 4, NANO // 10)  # one finished: it cost less than it held
    gate.reserve(caller, NANO // 4)  # so there is room again
    state = gate.state(caller)
    assert state is not None and state.spent_nano == 4 * (NANO // 4) + NANO // 10


def test_spend_written_to_the_ledger_is_read_back_and_not_counted_twice(tmp_path: Path) -> None:
    gate, store = budgets(tmp_path)
    caller = Caller("c", "ben", budget_usd=2.0, period="month")
    gate.reserve(caller, 10)
    gate.settle(caller, 10, NANO)  # 1 USD spent, not yet in the ledger
    batch = UsageBatch("ben", utc_day(NOW))
    batch.counts_for("openai", "gpt-4", "summary").cost_nano = NANO
    store.add_usage([batch])  # type: ignore[attr-defined]
    gate.written("ben", NANO)
    state = gate.state(caller)
    assert state is not None and state.spent_nano == NANO
    gate.check(caller)  # 1 of 2 USD: fine
    gate.reserve(caller, 0)
    gate.settle(caller, 0, NANO)
    with pytest.raises(BudgetExceeded):
        gate.check(caller)


def test_no_budget_is_never_refused(tmp_path: Path) -> None:
    gate, _ = budgets(tmp_path)
    free = Caller("c", "cleo")
    gate.reserve(free, 10**15)
    gate.settle(free, 10**15, 10**15)
    gate.check(free)
    assert gate.state(free) is None
