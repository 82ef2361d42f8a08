"""One provider-concurrency budget per server process: rows wait for a slot, never fail for it.

Why: Excel sends work in bursts (a fill-down of 1,000 cells, a sheet as a job). Refusing
rows because many arrived together is what made a first user see 1,000 "Rate limited"
cells. Instead every provider call of the process (webhook, batch rows, job rows) takes
one of PROVIDER_CONCURRENCY slots and gives it back when the call ends; a lone batch may
use all of them, several callers queue for them first come, first served.

The window adapts like TCP's congestion window (AIMD): a provider 429 halves it (at most
once per second, since the concurrent calls of one burst all see the same 429) and holds
every new attempt until the provider's Retry-After has passed; each successful call then
grows it by 1/window, so it recovers by about one slot per round trip.

Cached and duplicate rows are answered before a slot is asked for: they never wait here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from backend.providers.retry import Throttle

log = logging.getLogger("backend.pacing")

CUT_INTERVAL = 1.0  # seconds: one 429 burst halves the window once


class ProviderBudget(Throttle):
    """A counting semaphore with an adaptive size, and the provider's 'not before' time."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        if limit < 1:
            raise ValueError("PROVIDER_CONCURRENCY must be at least 1")
        self.limit = limit
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._window = float(limit)
        self._in_flight = 0
        self._waiting = 0
        self._last_cut = -CUT_INTERVAL

    def acquire(self, deadline: float) -> bool:
        """Take a slot, waiting until `deadline` (monotonic) at most; False if none came."""
        with self._cond:
            if self._in_flight < int(self._window):
                self._in_flight += 1
                return True
            self._waiting += 1
            try:
                while self._in_flight >= int(self._window):
                    left = deadline - self._clock()
                    if left <= 0:
                        return False
                    self._cond.wait(left)
                self._in_flight += 1
                return True
            finally:
                self._waiting -= 1

    def release(self, succeeded: bool) -> None:
        """Give the slot back; a success grows a shrunken window by 1/window."""
        with self._cond:
            self._in_flight -= 1
            if succeeded and self._window < self.limit:
                self._window = min(float(self.limit), self._window + 1.0 / self._window)
                if self._window == self.limit:
                    log.info("provider concurrency recovered to %d", self.limit, extra=self._fields())
            free = int(self._window) - self._in_flight
            if free > 0:
                self._cond.notify(free)

    def hold(self, seconds: float) -> None:
        """The provider said 429: wait `seconds` before the next attempt and halve the window."""
        super().hold(seconds)
        with self._cond:
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
        with self._cond:
            return self._fields()

    def _fields(self) -> dict[str, int]:
        return {
            "provider_in_flight": self._in_flight,
            "provider_waiting": self._waiting,
            "provider_window": int(self._window),
            "provider_limit": self.limit,
        }
