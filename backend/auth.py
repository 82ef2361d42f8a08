"""Who is calling: the API token from the `X-API-Token` header (or `api_token` query).

Several tokens may be configured (rotation). The presented token is hashed and compared
with every configured hash using `hmac.compare_digest`, without stopping at the first
match, so timing reveals neither which token nor how much of it matched. A failure
never says whether the token was missing or wrong.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request
from pydantic import SecretStr

from backend.errors import Unauthorized

F = TypeVar("F", bound=Callable[..., Any])
TOKEN_HEADER = "X-API-Token"  # noqa: S105 (a header name)
TOKEN_QUERY = "api_token"  # noqa: S105 (a parameter name)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def client_id(token: str) -> str:
    """A short, stable, non-reversible name for a token: safe in logs and rate-limit keys."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:12]


class TokenChecker:
    """Holds the hashes of the configured tokens, never the tokens themselves."""

    def __init__(self, tokens: Iterable[SecretStr]) -> None:
        self._digests = [_digest(t.get_secret_value()) for t in tokens]

    def matches(self, presented: str) -> bool:
        candidate = _digest(presented)
        found = False
        for digest in self._digests:
            found |= hmac.compare_digest(candidate, digest)
        return found


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
    if "client" not in g:
        token = presented_token()
        g.client = client_id(token) if token and checker.matches(token) else None
    client: str | None = g.client
    return client


def require_token(get_checker: Callable[[], TokenChecker]) -> Callable[[F], F]:
    """View decorator: 401 unless the request carries a configured token."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if identify(get_checker()) is None:
                raise Unauthorized()
            return view(*args, **kwargs)

        wrapper.requires_token = True  # type: ignore[attr-defined]  # read by backend/openapi.py
        return wrapper  # type: ignore[return-value]

    return decorate
