"""Per-token rate limits with flask-limiter.

RATE_LIMIT counts requests per minute per client, shared by /webhook, /batch and job
submission: a limit that protects the server from a runaway client, not the way rows are
paced (that is the provider budget, backend/pacing.py). A 100-row batch is one request, so
a 1,000-cell fill-down (10 batches) is far inside the default 60. Reading a job's status
and results has its own, generous budget (POLL_RATE_LIMIT), so polling never eats the
budget for work. A sliding-window counter keeps bursts at a window's edge in check at
the cost of two counters, far less than a moving window's log of every hit. The key is
the hash of a valid token (never the token), or the caller's address when no valid token
is presented, so guessing tokens is throttled too. Storage is a URI: memory:// per
process, redis:// shared by workers, with an in-memory fallback while Redis is unreachable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from backend.auth import identify
from backend.settings import Settings


def rate_key() -> str:
    client = identify(current_app.extensions["flaskllm"].tokens)
    return f"token:{client}" if client else f"addr:{get_remote_address()}"


def build_limiter(app: Flask, settings: Settings) -> Limiter:
    shared = settings.rate_limit_storage_uri.startswith(("redis", "rediss", "unix"))
    limiter = Limiter(
        key_func=rate_key,
        app=app,
        storage_uri=settings.rate_limit_storage_uri,
        storage_options={"socket_timeout": 1, "socket_connect_timeout": 1} if shared else {},
        headers_enabled=True,
        enabled=settings.rate_limit_enabled,
        swallow_errors=True,
        in_memory_fallback_enabled=shared,
        key_prefix="flaskllm",
        strategy="sliding-window-counter",
    )
    _without_request_pass(app, limiter)
    return limiter


def _without_request_pass(app: Flask, limiter: Limiter) -> None:
    """Drop flask-limiter's before-request pass: every limit here is a route decorator.

    flask-limiter resolves limits twice per request: in a before-request hook (for default
    and application-wide limits, and the in-memory fallback's) and in the route's decorator.
    This app sets none of the former, so the first pass never finds a limit, but it still
    costs about 45 µs of a cache hit's 500. The decorators check every limited route,
    the fallback storage included."""
    hooks = app.before_request_funcs.get(None, [])
    if limiter._check_request_limit in hooks:
        hooks.remove(limiter._check_request_limit)


def llm_limit(limiter: Limiter, settings: Settings) -> Callable[[Any], Any]:
    """The decorator for routes that spend provider money: one shared per-client budget."""
    return limiter.shared_limit(
        f"{settings.rate_limit} per minute",
        scope="llm",
        methods=["POST"],
        exempt_when=lambda: request.method == "OPTIONS",
    )


def poll_limit(limiter: Limiter, settings: Settings) -> Callable[[Any], Any]:
    """The decorator for job status and results: its own budget, apart from RATE_LIMIT."""
    return limiter.shared_limit(
        f"{settings.poll_rate_limit} per minute",
        scope="poll",
        exempt_when=lambda: request.method == "OPTIONS",
    )
