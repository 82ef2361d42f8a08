"""One provider-concurrency budget per server process: rows wait for a slot, never fail for it.

Why: Excel sends work in bursts (a fill-down of 1,000 cells, a sheet as a job). Refusing
rows because many arrived together is what made a first user see 1,000 "Rate limited"
cells. Instead every provider call of the process (webhook, batch rows, job rows) takes
one of PROVIDER_CONCURRENCY slots and gives it back when the call ends; a lone batch may
use all of them, several callers queue for them (interactive requests first, then job rows
in order).

The window adapts like TCP's congestion window (AIMD): a provider 429 halves it (at most
once per second, since the concurrent calls of one burst all see the same 429) and holds
every new attempt until the provider's Retry-After has passed; each successful call then
grows it by 1/window, so it recovers by about one slot per round trip.

Cached and duplicate rows are answered before a slot is asked for: they never wait here.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

from backend import metrics
from backend.providers.retry import Throttle, Timing

log = logging.getLogger("backend.pacing")

CUT_INTERVAL = 1.0  # seconds: one 429 burst halves the window once

Priority = tuple[float, ...]  # lower first
INTERACTIVE: Priority = (0.0,)  # webhook and batch: a person in Excel is waiting


def job_priority(created_at: float, row: int) -> Priority:
    """Job rows after interactive ones; older jobs first, then row order."""
    return (1.0, created_at, float(row))


class ProviderBudget(Throttle):
    """A counting semaphore with an adaptive size, and the provider's 'not before' time.

    Waiting callers are served by priority, then arrival: interactive requests (priority
    (0,), the default) before job rows, and a job's rows in row order, so its chunks finish
    one after another and progress and results arrive steadily instead of all at the end.
    A freed slot is handed straight to the next waiter, so none can be overtaken.
    """

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(Timing(clock=clock))
        if limit < 1:
            raise ValueError("PROVIDER_CONCURRENCY must be at least 1")
        self.limit = limit
        self._clock = clock
        self._mutex = threading.Lock()
        self._window = float(limit)
        self._in_flight = 0
        self._queue: list[tuple[Priority, int, threading.Event]] = []  # heap of waiters
        self._gone: set[int] = set()  # waiters that gave up, still in the heap
        self._arrivals = itertools.count()
        self._last_cut = -CUT_INTERVAL

    def acquire(self, deadline: float, priority: Priority = INTERACTIVE) -> bool:
        """Take a slot, waiting until `deadline` (monotonic) at most; False if none came."""
        with self._mutex:
            if self._in_flight < int(self._window) and len(self._queue) == len(self._gone):
                self._in_flight += 1
                return True
            ticket = next(self._arrivals)
            granted = threading.Event()
            heapq.heappush(self._queue, (priority, ticket, granted))
        metrics.WAITING.inc()  # only rows that really wait: the fast path above counts nothing
        try:
            if granted.wait(max(0.0, deadline - self._clock())):
                return True
            with self._mutex:
                if granted.is_set():  # the slot came just as the wait ended
                    return True
                self._gone.add(ticket)
                return False
        finally:
            metrics.WAITING.dec()

    def release(self, succeeded: bool) -> None:
        """Give the slot back; a success grows a shrunken window by 1/window."""
        with self._mutex:
            self._in_flight -= 1
            if succeeded and self._window < self.limit:
                self._window = min(float(self.limit), self._window + 1.0 / self._window)
                if self._window == self.limit:
                    log.info("provider concurrency recovered to %d", self.limit, extra=self._fields())
            while self._queue and self._in_flight < int(self._window):
                _, ticket, granted = heapq.heappop(self._queue)
                if ticket in self._gone:
                    self._gone.discard(ticket)
                    continue
                self._in_flight += 1
                granted.set()

    def hold(self, seconds: float) -> None:
        """The provider said 429: wait `seconds` before the next attempt and halve the window."""
        super().hold(seconds)
        with self._mutex:
            now = self._clock()
            if now - self._last_cut < CUT_INTERVAL:
                return
            self._last_cut = now
            self._window = max(1.0, self._window / 2)
            log.warning(
                "provider rate limit: concurrency cut to %d for %.1f s",
                int(self._window),
                seconds,
                extra=self._fields(),
            )

    def snapshot(self) -> dict[str, int]:
        """Calls in flight, rows waiting for a slot, and the current and configured size."""
        with self._mutex:
            return self._fields()

    def _fields(self) -> dict[str, int]:
        return {
            "provider_in_flight": self._in_flight,
            "provider_waiting": len(self._queue) - len(self._gone),
            "provider_window": int(self._window),
            "provider_limit": self.limit,
        }
