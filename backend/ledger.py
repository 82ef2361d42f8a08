"""The usage ledger's writer: a `Meter` per request or job chunk, flushed in one write.

A meter counts what its rows did (provider calls with their tokens, words and time;
rows answered for free from the cache, a duplicate or a shared flight) and writes it to
the state database once, when its request or chunk ends. A provider call that finishes
after that (a batch that returned at its deadline while a row was still running) is
written at once on its own, so every call the provider counted is in the ledger exactly
once. Cost is priced at write time, in nano-dollars (backend/prices.py).

Free usage is written a little later, in bulk. A request that called no provider (every row
from the cache, a duplicate or a shared flight) spent nothing, so no budget waits for it;
its counts are added to one pending batch per token and day, and written at most
FREE_WRITE_DELAY seconds later, by a timer, by a usage read in this process, or when the
process exits. A recalculation of 1,000 cached cells is then one write a second instead of
ten, and a cache hit costs no database transaction (about 90 µs of its 540 µs of CPU).
What a `kill -9` can lose is the last second of free counts, never a paid call.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable

from backend import metrics
from backend.auth import Caller
from backend.budgets import Budgets
from backend.prices import Prices
from backend.providers.base import Usage
from backend.state import StateStore, UsageBatch, utc_day

log = logging.getLogger("backend.ledger")
RESERVE_TOKENS_PER_WORD = 1.35  # a row's reservation against a budget (backend/estimate.py's prior)
RESERVE_OUTPUT_TOKENS = 90
FREE_WRITE_DELAY = 1.0  # seconds a free request's counts may wait to be written
_LEDGERS: weakref.WeakSet[Ledger] = weakref.WeakSet()  # written out at exit


@atexit.register
def _write_pending_at_exit() -> None:
    for ledger in list(_LEDGERS):
        ledger.flush()


def spent_nothing(batch: UsageBatch) -> bool:
    """No provider call in it: every row was answered free (or there were no rows)."""
    return all(c.rows == c.cached_rows and not c.input_tokens for c in batch.counts.values())


class Ledger:
    def __init__(
        self, store: StateStore, prices: Prices, budgets: Budgets, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.prices = prices
        self.budgets = budgets
        self.clock = clock
        self._pending: dict[tuple[str, str], UsageBatch] = {}  # free usage not yet written
        self._pending_lock = threading.Lock()
        self._timer: threading.Timer | None = None
        _LEDGERS.add(self)

    def meter(self, caller: Caller) -> Meter:
        return Meter(self, caller)

    def write(self, batch: UsageBatch) -> None:
        if spent_nothing(batch):
            self._hold(batch)
        else:
            self._write_now([batch])

    def flush(self) -> None:
        """Write the pending free usage now (before a usage read, at exit)."""
        with self._pending_lock:
            batches, self._pending = list(self._pending.values()), {}
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        if batches:
            self._write_now(batches)

    def _hold(self, batch: UsageBatch) -> None:
        with self._pending_lock:
            pending = self._pending.get((batch.token, batch.day))
            if pending is None:
                self._pending[batch.token, batch.day] = pending = UsageBatch(batch.token, batch.day)
            pending.requests += batch.requests
            for key, counts in batch.counts.items():
                pending.counts_for(*key).add(counts)
            if self._timer is None:
                self._timer = threading.Timer(FREE_WRITE_DELAY, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def _write_now(self, batches: Iterable[UsageBatch]) -> None:
        batches = list(batches)
        try:
            self.store.add_usage(batches)
        except Exception as exc:  # the ledger is down: the answer still goes out, the loss is logged
            for batch in batches:
                lost = {"token_name": batch.token, "error": type(exc).__name__, "requests": batch.requests}
                log.error("usage not recorded", extra=lost)
            return  # their spend stays counted against the budget in this process
        for batch in batches:
            self.budgets.written(batch.token, sum(c.cost_nano for c in batch.counts.values()))


class Meter:
    """One request's (or job chunk's) usage for one caller. Thread-safe: rows run in a pool."""

    def __init__(self, ledger: Ledger, caller: Caller) -> None:
        self.ledger = ledger
        self.caller = caller
        self._lock = threading.Lock()
        self._batch = self._new_batch()
        self._closed = False

    def _new_batch(self) -> UsageBatch:
        return UsageBatch(self.caller.name, utc_day(self.ledger.clock()))

    def request(self) -> None:
        with self._lock:
            self._batch.requests += 1

    def admit(self, model: str, words: int) -> int:
        """Before a provider call: BudgetExceeded once the caller's budget is spent, else
        the call's estimated cost, held against the budget until `called` or `release`."""
        if self.caller.budget_usd is None:
            return 0
        tokens = round(words * RESERVE_TOKENS_PER_WORD)
        reserve = self.ledger.prices.cost_nano(model, tokens, RESERVE_OUTPUT_TOKENS) or 0
        self.ledger.budgets.reserve(self.caller, reserve)
        return reserve

    def release(self, reserved: int) -> None:
        """The call failed: nothing was spent."""
        self.ledger.budgets.settle(self.caller, reserved, 0)

    def called(
        self,
        provider: str,
        model: str,
        task: str,
        usage: Usage,
        words: int,
        seconds: float,
        reserved: int = 0,
    ) -> None:
        cost = self.ledger.prices.cost_nano(model, usage.input_tokens, usage.output_tokens)
        self.ledger.budgets.settle(self.caller, reserved, cost or 0)
        with self._lock:
            counts = self._batch.counts_for(provider, model, task)
            counts.rows += 1
            counts.input_tokens += usage.input_tokens
            counts.output_tokens += usage.output_tokens
            counts.input_words += words
            counts.provider_ms += round(seconds * 1000)
            if cost is None:
                counts.unpriced_rows += 1
            else:
                counts.cost_nano += cost
            late = self._closed
        if late:
            self.close()

    def served_free(self, provider: str, model: str, task: str) -> None:
        with self._lock:
            counts = self._batch.counts_for(provider, model, task)
            counts.rows += 1
            counts.cached_rows += 1
            late = self._closed
        if late:
            self.close()

    def close(self) -> None:
        """Write what was counted; later counts are written as they come."""
        with self._lock:
            batch, self._batch = self._batch, self._new_batch()
            self._closed = True
        if not batch.empty():
            self.ledger.write(batch)
            used = Usage(
                sum(c.input_tokens for c in batch.counts.values()),
                sum(c.output_tokens for c in batch.counts.values()),
            )
            cost = sum(c.cost_nano for c in batch.counts.values())
            metrics.spend(batch.token, used, cost, sum(c.unpriced_rows for c in batch.counts.values()))
