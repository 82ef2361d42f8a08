"""Keep-alive connections to one provider origin, reused most recently used first.

Why not the SDK transport's own httpcore pool: that pool re-examines every connection it
holds each time a request arrives or a response closes, and for each idle one asks the
socket whether the server has hung up (a poll). A gevent worker keeps up to
PROVIDER_CONCURRENCY connections per provider, so every call paid for about 45 of those
checks: profiled with the real SDK against the mock, the pool's bookkeeping was 28 % of a
batch row's CPU. Here a call takes the last connection put back and checks only that one.

The connections are still the SDK's: each is made by its pool's `create_connection`
(same TLS context, proxy, keep-alive expiry, socket options and network backend), and the
pool's limits hold because the provider budget caps the calls in flight per process.
"""

from __future__ import annotations

import threading
from typing import Any

try:  # httpcore2 in openai 3, httpcore before
    import httpcore2 as httpcore
except ImportError:  # pragma: no cover - older SDKs
    import httpcore  # type: ignore[no-redef]

KEEP_IDLE = 64  # idle connections kept; more in flight at once are closed when they finish


class KeepAlive:
    """`request()` like an httpcore pool's, for one origin, O(1) per call."""

    def __init__(self, pool: Any, url: str, keep_idle: int = KEEP_IDLE) -> None:
        self._pool = pool  # makes the connections; never sends on them itself
        self._origin = httpcore.URL(url).origin
        self._keep_idle = keep_idle
        self._idle: list[Any] = []
        self._lock = threading.Lock()

    def request(
        self,
        method: str,
        url: Any,
        headers: list[tuple[bytes, bytes]],
        content: bytes,
        extensions: dict[str, Any],
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Send one request to `url` (an httpcore URL or a string) and read the whole
        answer: (status, headers, body).

        A connection that fails is closed, and the error is httpcore's, as from its pool.
        A reused connection the server closed in the meantime fails fast; the provider's
        retries (and the next call, on a fresh connection) handle that as they handle a
        dropped connection from the pool."""
        request = httpcore.Request(method, url, headers=headers, content=content, extensions=extensions)
        connection = self._take()
        try:
            try:
                response = connection.handle_request(request)
            except httpcore.ConnectionNotAvailable:  # it changed state after the check: once more
                connection.close()
                connection = self._pool.create_connection(self._origin)
                response = connection.handle_request(request)
            try:
                body = response.read()
            finally:
                response.close()
        except BaseException:
            connection.close()
            raise
        self._give_back(connection)
        return response.status, response.headers, body

    def _take(self) -> Any:
        stale = []
        with self._lock:
            while self._idle:
                connection = self._idle.pop()
                if connection.is_idle() and not connection.has_expired():
                    break
                stale.append(connection)
            else:
                connection = None
        for old in stale:
            old.close()
        return connection if connection is not None else self._pool.create_connection(self._origin)

    def _give_back(self, connection: Any) -> None:
        if connection.is_idle():
            with self._lock:
                if len(self._idle) < self._keep_idle:
                    self._idle.append(connection)
                    return
        connection.close()
