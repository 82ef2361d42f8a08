"""One provider call under one deadline: bounded retries on transient failures only.

The SDKs' own retry loops are switched off (max_retries=0) because their timeout is per
attempt: REQUEST_TIMEOUT must bound the whole call, retries and back-off included.
Transient = connection error, 408/409, 429, 5xx. A 429's Retry-After is honoured, and
recorded on a `Throttle` shared by every thread of the process, so a batch slows down
as a whole instead of every row hammering a provider that said "wait".
"""

from __future__ import annotations

import random
import threading
import time
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from backend.errors import APIError, ProviderError, ProviderTimeout, RateLimited
from backend.providers.base import Completion, Job, Provider

T = TypeVar("T")

TRANSIENT_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


@dataclass(frozen=True)
class Timing:
    """Where the retry loop reads the time, sleeps, and draws its back-off jitter.

    A seam, so tests run the loop on a fake clock that advances when it "sleeps",
    with no jitter, instead of patching this module's `time` and `random`.
    """

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = field(default=lambda: random.uniform(0.8, 1.2))


REAL_TIME = Timing()


class Throttle:
    """A process-wide 'not before' time set by the provider's Retry-After."""

    def __init__(self, timing: Timing = REAL_TIME) -> None:
        self._lock = threading.Lock()
        self._not_before = 0.0
        self._timing = timing

    def hold(self, seconds: float) -> None:
        with self._lock:
            self._not_before = max(self._not_before, self._timing.clock() + seconds)

    def wait(self, deadline: float) -> bool:
        """Sleep until the provider may be called again; False if that is past `deadline`."""
        now = self._timing.clock()
        delay = self._not_before - now
        if delay <= 0:
            return True
        if now + delay >= deadline:
            return False
        self._timing.sleep(delay)
        return True


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds from a Retry-After / retry-after-ms header, if the provider sent one."""
    if headers is None:
        return None
    try:
        millis = headers.get("retry-after-ms")
        if millis is not None:
            return max(0.0, float(millis) / 1000)
        value = headers.get("retry-after")
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


class SDKErrors:
    """The exception classes of one SDK (openai and anthropic name them alike)."""

    def __init__(self, module: Any) -> None:
        self.timeout: type[Exception] = module.APITimeoutError
        self.connection: type[Exception] = module.APIConnectionError
        self.status: type[Exception] = module.APIStatusError
        self.base: type[Exception] = module.APIError


def call_with_retries(
    attempt: Callable[[float], T],
    *,
    errors: SDKErrors,
    provider: str,
    timeout: float,
    max_retries: int,
    throttle: Throttle,
    timing: Timing = REAL_TIME,
) -> T:
    """Run `attempt(seconds_left)` until it succeeds, fails for good, or time runs out.

    `throttle.wait` takes a deadline on `timing.clock`: give both the same clock.
    """
    clock = timing.clock
    deadline = clock() + timeout
    tries = 0
    while True:
        if not throttle.wait(deadline):
            raise RateLimited(
                f"{provider} asked us to slow down; retry later.",
                retry_after=max(0.0, deadline - clock()) + 1,
            )
        left = max(0.0, deadline - clock())
        if left <= 0.05:
            raise ProviderTimeout(f"{provider} did not answer within {round(timeout, 1):g} s.")
        try:
            return attempt(left)
        except errors.timeout as exc:
            raise ProviderTimeout(f"{provider} did not answer within {round(timeout, 1):g} s.") from exc
        except errors.connection as exc:
            failure: APIError = ProviderError(f"Could not reach {provider}.")
            wait = _backoff(tries, timing.jitter())
            cause: Exception = exc
        except errors.status as exc:
            status = int(getattr(exc, "status_code", 0) or 0)
            after = retry_after_seconds(getattr(getattr(exc, "response", None), "headers", None))
            failure = _status_error(provider, status, after)
            if status not in TRANSIENT_STATUS:
                raise failure from exc
            wait = after if after is not None else _backoff(tries, timing.jitter())
            if status == 429:
                throttle.hold(wait)
            cause = exc
        except (errors.base, ValueError) as exc:  # malformed body: SDK error or a bare JSONDecodeError
            raise ProviderError(f"{provider} answered with something that is not a valid response.") from exc
        tries += 1
        if tries > max_retries or clock() + wait >= deadline:
            raise failure from cause
        timing.sleep(wait)


def _backoff(tries: int, jitter: float) -> float:
    """Exponential back-off times a jitter factor (0.8..1.2): 0.25, 0.5, 1, 2 s ... capped at 8 s."""
    return float(min(8.0, 0.25 * 2**tries) * jitter)


def _status_error(provider: str, status: int, retry_after: float | None) -> APIError:
    if status == 429:
        return RateLimited(
            f"{provider} is rate limiting this service; retry later.", retry_after=retry_after or 5
        )
    if status in (401, 403):
        return ProviderError(f"{provider} refused the service's API key (HTTP {status}); tell the operator.")
    if status in (408, 504):
        return ProviderTimeout(f"{provider} timed out (HTTP {status}).")
    return ProviderError(f"{provider} failed (HTTP {status}).")


class SDKProvider(Provider):
    """A provider backed by an official SDK client: the retry loop is shared, the call is not."""

    errors: SDKErrors

    def __init__(
        self,
        client: Any,
        model: str,
        max_retries: int = 2,
        throttle: Throttle | None = None,
        timing: Timing = REAL_TIME,
    ) -> None:
        self.client = client
        self.model = model
        self.max_retries = max_retries
        self.timing = timing
        # The app passes its ProviderBudget here, so a 429 also shrinks the concurrency.
        self.throttle = throttle or Throttle(timing)

    def complete(self, job: Job, timeout: float) -> Completion:
        return call_with_retries(
            lambda seconds_left: self.attempt(job, seconds_left),
            errors=self.errors,
            provider=self.name,
            timeout=timeout,
            max_retries=self.max_retries,
            throttle=self.throttle,
            timing=self.timing,
        )

    @abstractmethod
    def attempt(self, job: Job, seconds_left: float) -> Completion:
        """One SDK call, bounded by `seconds_left`."""
