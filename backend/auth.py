"""Who is calling: the API token from the `X-API-Token` header (or `api_token` query).

Three kinds of token: API_TOKEN (the unnamed token, several for rotation), named tokens
made with `flask --app wsgi tokens create` (backend/cli.py, kept hashed in the state
database), and ADMIN_TOKEN (reads everyone's usage). The presented token is hashed and
compared with every configured hash using `hmac.compare_digest`, without stopping at the first
match, so timing reveals neither which token nor how much of it matched. A failure
never says whether the token was missing or wrong.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from cachetools import TTLCache
from flask import g, request
from pydantic import SecretStr

from backend.errors import AdminTokenNotForWork, Unauthorized
from backend.state import UNNAMED, StateStore, TokenRecord

log = logging.getLogger("backend.auth")
ADMIN_NAME = "(admin)"
NAMED_TOKEN_TTL = 2.0  # seconds a named token's lookup is trusted: the revocation delay
TOUCH_EVERY = 60.0  # seconds between two last-use writes of one token in one process

F = TypeVar("F", bound=Callable[..., Any])
TOKEN_HEADER = "X-API-Token"  # noqa: S105 (a header name)
TOKEN_QUERY = "api_token"  # noqa: S105 (a parameter name)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def client_id(token: str) -> str:
    """A short, stable, non-reversible name for a token: safe in logs and rate-limit keys."""
    return _digest(token).hex()[:12]


@dataclass(frozen=True)
class Caller:
    """Who a valid token belongs to.

    `client` is the short hash of the token (job ownership, rate-limit key, logs); `name`
    is the ledger's name for it: a named token's name, or UNNAMED for API_TOKEN.
    """

    client: str
    name: str
    admin: bool = False
    budget_usd: float | None = None
    period: str = "month"


class TokenChecker:
    """Resolves a presented token to its `Caller`; holds hashes, never tokens.

    API_TOKEN and ADMIN_TOKEN are compared in constant time. Named tokens are looked up by
    digest in the state database, and the answer (found or not) is kept for
    NAMED_TOKEN_TTL seconds per process: a revoked token stops working within that time in
    every worker, and a burst of requests costs one lookup. Last use is written at most
    once a minute per token and process.
    """

    def __init__(
        self,
        tokens: Iterable[SecretStr],
        admin_token: SecretStr | None = None,
        store: StateStore | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._digests = [_digest(t.get_secret_value()) for t in tokens]
        self._admin = _digest(admin_token.get_secret_value()) if admin_token else None
        self.store = store
        self.clock = clock
        self._named: TTLCache[str, TokenRecord | None] = TTLCache(10_000, NAMED_TOKEN_TTL, timer=clock)
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()

    def matches(self, presented: str) -> bool:
        return self._configured(_digest(presented))

    def _configured(self, candidate: bytes) -> bool:
        found = False
        for digest in self._digests:
            found |= hmac.compare_digest(candidate, digest)
        return found

    def resolve(self, presented: str) -> Caller | None:
        """The caller a token stands for; the token is hashed once for every check."""
        candidate = _digest(presented)
        key = candidate.hex()  # the state database's digest; its head is the client id
        client = key[:12]
        if self._configured(candidate):
            return Caller(client, UNNAMED)
        if self._admin is not None and hmac.compare_digest(candidate, self._admin):
            return Caller(client, ADMIN_NAME, admin=True)
        record = self.named(key)
        if record is None:
            return None
        return Caller(client, record.name, budget_usd=record.budget_usd, period=record.period)

    def named(self, key: str) -> TokenRecord | None:
        """The live named token with this digest (hex sha256), trusted for NAMED_TOKEN_TTL."""
        if self.store is None:
            return None
        with self._lock:
            if key in self._named:
                return self._named[key]
        try:
            record = self.store.find_token(key)
        except Exception as exc:  # the state database is down: named tokens fail closed
            log.warning("token lookup failed", extra={"error": type(exc).__name__})
            return None
        with self._lock:
            self._named[key] = record
        if record is not None:
            self._touch(record.name)
        return record

    def _touch(self, name: str) -> None:
        now = self.clock()
        if now - self._touched.get(name, float("-inf")) < TOUCH_EVERY:
            return
        self._touched[name] = now
        try:
            assert self.store is not None
            self.store.touch_token(name, time.time())
        except Exception as exc:
            log.warning("token last-use not recorded", extra={"error": type(exc).__name__})


def presented_token() -> str | None:
    """The token the request carries: header first, then `Authorization: Bearer`, then query."""
    token = request.headers.get(TOKEN_HEADER)
    if not token:
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            token = auth[7:]
    if not token:
        token = request.args.get(TOKEN_QUERY)
    return token.strip() if token else None


def identify(checker: TokenChecker) -> str | None:
    """The caller's client id if its token is valid, else None (cached on `g`)."""
    caller = identify_caller(checker)
    return None if caller is None else caller.client


def identify_caller(checker: TokenChecker) -> Caller | None:
    """The caller if its token is valid, else None; resolved once per request (on `g`)."""
    if "caller" not in g:
        token = presented_token()
        g.caller = checker.resolve(token) if token else None
        g.client = g.caller.client if g.caller else None
        g.token_name = g.caller.name if g.caller else None
    caller: Caller | None = g.caller
    return caller


def require_token(get_checker: Callable[[], TokenChecker], *, admin: bool = False) -> Callable[[F], F]:
    """View decorator: 401 unless the request carries a valid token.

    The admin token reads usage and metrics only (`admin=True` views take both kinds);
    it cannot run work, so it never shows up in Excel or in a budget.
    """

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            caller = identify_caller(get_checker())
            if caller is None:
                raise Unauthorized()
            if caller.admin and not admin:
                raise AdminTokenNotForWork()
            return view(*args, **kwargs)

        wrapper.requires_token = True  # type: ignore[attr-defined]  # read by backend/openapi.py
        return wrapper  # type: ignore[return-value]

    return decorate
