"""Per-token rate limits with flask-limiter.

One budget of RATE_LIMIT units per minute per client, shared by /webhook and /batch;
a batch costs one unit per row. The key is the hash of a valid token (never the token),
or the caller's address when no valid token is presented, so guessing tokens is
throttled too. Storage is a URI: memory:// per process, redis:// shared by workers,
with an in-memory fallback while Redis is unreachable.
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
        strategy="moving-window",
    )
    return limiter


def llm_limit(limiter: Limiter, settings: Settings, cost: Callable[[], int]) -> Callable[[Any], Any]:
    """The decorator for routes that spend provider money: one shared per-client budget."""
    return limiter.shared_limit(
        f"{settings.rate_limit} per minute",
        scope="llm",
        cost=cost,
        methods=["POST"],
        exempt_when=lambda: request.method == "OPTIONS",
    )
