"""LLM_FALLBACK: an ordered chain of providers, so the service stays up when one is down.

The first provider that is not cooling down gets the call, with its own retries
(backend/providers/retry.py). When it fails for reasons an other provider may not share
(timeout, connection error, 5xx: `ProviderError`, `ProviderTimeout`), it cools down for
FALLBACK_COOLDOWN seconds and the next one takes the same row at once. A wrong answer
(`InvalidAnswer`), a 429 (`RateLimited`) or a refused row are the row's own, and are not
retried elsewhere. After the cooldown the primary is asked first again: the first row that
succeeds there brings it back.

Each provider keeps a share of the row's time: the provider asked gets at most the time
left minus a reserve (a third, up to 10 s) for the next one, so a hanging primary cannot
use up the whole deadline. A fallback answers with its own model (a row's `model` names
one of the primary's). `route` names the provider that would answer now, so the cache key
is per provider and model (backend/service.py), and `Completion.provider` says who did.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from backend import metrics
from backend.errors import InvalidAnswer, ProviderError, ProviderTimeout
from backend.providers.base import Completion, Job, Provider

log = logging.getLogger("backend.providers.fallback")
MAX_RESERVE = 10.0


class FallbackProvider(Provider):
    name = "fallback"  # replaced per instance by the primary's name

    def __init__(
        self, chain: Sequence[Provider], cooldown: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if len(chain) < 2:
            raise ValueError("a fallback chain needs a primary and at least one fallback")
        self.chain = list(chain)
        self.primary = chain[0]
        self.name = self.primary.name  # type: ignore[misc]  # what /health and the allow-list show
        self.model = self.primary.model
        self.supported_tasks = self.primary.supported_tasks  # type: ignore[misc]
        self.cooldown = cooldown
        self.clock = clock
        self._cool_until: dict[int, float] = {}
        self._lock = threading.Lock()

    def _cooling(self, index: int, now: float) -> bool:
        with self._lock:
            return self._cool_until.get(index, 0.0) > now

    def _order(self) -> list[int]:
        """Providers not cooling, in chain order; if all are cooling, all of them."""
        now = self.clock()
        ready = [i for i in range(len(self.chain)) if not self._cooling(i, now)]
        return ready or list(range(len(self.chain)))

    def route(self, model: str | None) -> tuple[str, str]:
        first = self._order()[0]
        if first == 0:
            return self.primary.route(model)
        return self.chain[first].route(None)

    def complete(self, job: Job, timeout: float) -> Completion:
        ends = self.clock() + timeout
        order = self._order()
        failure: ProviderError | ProviderTimeout | None = None
        for position, index in enumerate(order):
            provider = self.chain[index]
            left = ends - self.clock()
            if left <= 0.05:
                break
            last = position == len(order) - 1
            share = left if last else left - min(MAX_RESERVE, left / 3)
            asked = job if index == 0 else replace(job, model=None)
            try:
                completion = provider.complete(asked, share)
            except InvalidAnswer:
                raise
            except (ProviderError, ProviderTimeout) as err:
                failure = err
                self._cool(index, err)
                if not last:
                    metrics.PROVIDER_CALLS.labels(
                        provider.name, asked.model or provider.model, err.code
                    ).inc()
                    continue
                raise
            with self._lock:
                self._cool_until.pop(index, None)
            return replace(completion, provider=provider.name)
        if failure is not None:
            raise failure
        raise ProviderTimeout("No provider answered in time.")

    def _cool(self, index: int, err: Exception) -> None:
        with self._lock:
            already = self._cool_until.get(index, 0.0) > self.clock()
            self._cool_until[index] = self.clock() + self.cooldown
        if not already:
            log.warning(
                "provider cooling down",
                extra={
                    "provider": self.chain[index].name,
                    "error": type(err).__name__,
                    "cooldown_s": self.cooldown,
                },
            )
