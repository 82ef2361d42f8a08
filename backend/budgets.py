"""Budgets per named token: spend in the current period (UTC day or month) against a cap.

Spend is read from the usage ledger, so every worker and machine sees the same total, and
kept for SPEND_TTL seconds per process: a row asks before each provider call, and a
batch of 100 rows costs one ledger read. On top of that, each process adds what its own
rows have spent but not yet written to the ledger, and a reservation for every row in
flight (its estimated cost), so 32 rows starting at once cannot all slip under the cap:
a row starts only while spent + in flight is below the budget. Rows already running when
the cap is reached finish, and are paid.
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
        self._in_flight: dict[str, int] = {}  # reservations of rows running in this process
        self._unwritten: dict[str, int] = {}  # spent by this process, not yet in the ledger
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

    def written(self, name: str, nano: int) -> None:
        """`nano` of `name`'s spend reached the ledger: read it from there from now on."""
        with self._lock:
            self._unwritten[name] = self._unwritten.get(name, 0) - nano
            for key in [k for k in self._spent if k[0] == name]:
                del self._spent[key]

    def state(self, caller: Caller) -> BudgetState | None:
        """The caller's budget, with what this process spent and has in flight."""
        if caller.budget_usd is None:
            return None
        _, _, resets = period_bounds(caller.period, self.clock())
        spent = self.spent_nano(caller.name, caller.period)
        with self._lock:
            spent += self._unwritten.get(caller.name, 0) + self._in_flight.get(caller.name, 0)
        return BudgetState(round(caller.budget_usd * NANO), spent, caller.period, resets)

    def check(self, caller: Caller) -> None:
        """Raise BudgetExceeded once the period's spend has reached the budget."""
        state = self.state(caller)
        if state is not None and state.spent_nano >= state.limit_nano:
            raise BudgetExceeded(iso(state.resets_at), state.resets_at.timestamp() - self.clock())

    def reserve(self, caller: Caller, nano: int) -> None:
        """Before a provider call: admit it (or raise BudgetExceeded) and hold its estimate."""
        if caller.budget_usd is None:
            return
        spent = self.spent_nano(caller.name, caller.period)
        limit = round(caller.budget_usd * NANO)
        with self._lock:  # check and hold at once: concurrent rows see each other
            held = self._unwritten.get(caller.name, 0) + self._in_flight.get(caller.name, 0)
            admitted = spent + held < limit
            if admitted:
                self._in_flight[caller.name] = self._in_flight.get(caller.name, 0) + nano
        if not admitted:
            _, _, resets = period_bounds(caller.period, self.clock())
            raise BudgetExceeded(iso(resets), resets.timestamp() - self.clock())

    def settle(self, caller: Caller, reserved: int, spent: int) -> None:
        """A call ended: its reservation goes, what it really cost waits for the ledger."""
        if caller.budget_usd is None:
            return
        with self._lock:
            self._in_flight[caller.name] = self._in_flight.get(caller.name, 0) - reserved
            self._unwritten[caller.name] = self._unwritten.get(caller.name, 0) + spent
