"""The usage ledger's writer: a `Meter` per request or job chunk, flushed in one write.

A meter counts what its rows did (provider calls with their tokens, words and time;
rows answered for free from the cache, a duplicate or a shared flight) and writes it to
the state database once, when its request or chunk ends. A provider call that finishes
after that (a batch that returned at its deadline while a row was still running) is
written at once on its own, so every call the provider counted is in the ledger exactly
once. Cost is priced at write time, in nano-dollars (backend/prices.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from backend import metrics
from backend.auth import Caller
from backend.budgets import Budgets
from backend.prices import Prices
from backend.providers.base import Usage
from backend.state import StateStore, UsageBatch, utc_day

log = logging.getLogger("backend.ledger")
RESERVE_TOKENS_PER_WORD = 1.35  # a row's reservation against a budget (backend/estimate.py's prior)
RESERVE_OUTPUT_TOKENS = 90


class Ledger:
    def __init__(
        self, store: StateStore, prices: Prices, budgets: Budgets, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.prices = prices
        self.budgets = budgets
        self.clock = clock

    def meter(self, caller: Caller) -> Meter:
        return Meter(self, caller)

    def write(self, batch: UsageBatch) -> None:
        try:
            self.store.add_usage([batch])
        except Exception as exc:  # the ledger is down: the answer still goes out, the loss is logged
            log.error(
                "usage not recorded",
                extra={"token_name": batch.token, "error": type(exc).__name__, "requests": batch.requests},
            )
            return  # its spend stays counted against the budget in this process
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
