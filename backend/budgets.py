"""Budgets per named token: spend in the current period (UTC day or month) against a cap.

Spend is read from the usage ledger, so every worker and machine sees the same total, and
kept for SPEND_TTL seconds per process: a row asks before each provider call, and a
batch of 100 rows costs one ledger read. Within a request, the meter adds its own spend
not yet written (backend/ledger.py), so one long batch stops itself at the cap too; rows
already running when the cap is reached finish, and are paid.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from backend.auth import Caller
from backend.errors import BudgetExceeded
from backend.prices import usd
from backend.state import NANO, StateStore, period_bounds

SPEND_TTL = 0.5


@dataclass(frozen=True)
class BudgetState:
    limit_nano: int
    spent_nano: int
    period: str
    resets_at: datetime

    def as_dict(self) -> dict[str, object]:
        return {
            "limit_usd": usd(self.limit_nano),
            "spent_usd": usd(self.spent_nano),
            "remaining_usd": usd(max(0, self.limit_nano - self.spent_nano)),
            "period": self.period,
            "resets_at": iso(self.resets_at),
        }


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


class Budgets:
    def __init__(self, store: StateStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._spent: dict[tuple[str, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def spent_nano(self, name: str, period: str) -> int:
        """Priced spend of `name` in the current period (rows of unpriced models count 0)."""
        now = self.clock()
        first, last, _ = period_bounds(period, now)
        with self._lock:
            found = self._spent.get((name, first))
            if found is not None and now - found[0] < SPEND_TTL:
                return found[1]
        spent = sum(row.counts.cost_nano for row in self.store.usage(name, first, last))
        with self._lock:
            self._spent[(name, first)] = (now, spent)
        return spent

    def forget(self, name: str) -> None:
        """Drop this process's remembered spend of `name` (after it wrote to the ledger)."""
        with self._lock:
            for key in [k for k in self._spent if k[0] == name]:
                del self._spent[key]

    def state(self, caller: Caller, pending_nano: int = 0) -> BudgetState | None:
        if caller.budget_usd is None:
            return None
        _, _, resets = period_bounds(caller.period, self.clock())
        spent = self.spent_nano(caller.name, caller.period) + pending_nano
        return BudgetState(round(caller.budget_usd * NANO), spent, caller.period, resets)

    def check(self, caller: Caller, pending_nano: int = 0) -> None:
        """Raise BudgetExceeded once the period's spend has reached the budget."""
        state = self.state(caller, pending_nano)
        if state is not None and state.spent_nano >= state.limit_nano:
            raise BudgetExceeded(iso(state.resets_at), state.resets_at.timestamp() - self.clock())
