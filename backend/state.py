"""The app's state database: named API tokens and the usage ledger.

Why a database and not settings: tokens are created and revoked while the server runs
(`flask --app wsgi tokens ...`), and the ledger is written by every worker process. One
store holds both, chosen by STATE_URL:

    (empty)              a SQLite file in the instance folder (one machine, any number of
                         workers: WAL, writes in short IMMEDIATE transactions)
    sqlite:///path.db    a SQLite file elsewhere
    redis://host:port/0  Redis, for several machines

Tokens are stored as the sha256 of the token only; the token itself is printed once by
the CLI and never kept. The ledger is additive: each write adds counts to a row keyed by
(token name, UTC day, provider, model, task), in one atomic statement (SQLite upsert,
Redis HINCRBY), so concurrent writers from any number of processes never lose a count.
Cost is kept in integer nano-dollars (exact sums); rows of a model without a price are
counted in `unpriced_rows`, so their cost shows as unknown instead of 0.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Protocol

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
UNNAMED = "(unnamed)"  # the ledger's name for API_TOKEN, which no named token can take
PERIODS = ("day", "month")
NANO = 1_000_000_000


class StateError(RuntimeError):
    """A token operation that cannot be done (the CLI prints the message)."""


def digest(token: str) -> str:
    """What is stored for a token: its sha256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise StateError(
            "A token name is 1-64 characters of A-Z a-z 0-9 . _ - and starts with a letter or digit."
        )
    return name


def utc_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).date().isoformat()


def period_bounds(period: str, ts: float) -> tuple[str, str, datetime]:
    """First and last UTC day of the budget period holding `ts`, and when the next one starts."""
    today = datetime.fromtimestamp(ts, timezone.utc).date()
    if period == "day":
        first, last = today, today
    else:
        first = today.replace(day=1)
        nxt = (first + timedelta(days=32)).replace(day=1)
        last = nxt - timedelta(days=1)
    resets = datetime.combine(last + timedelta(days=1), datetime.min.time(), timezone.utc)
    return first.isoformat(), last.isoformat(), resets


def days_between(first: str, last: str) -> list[str]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


@dataclass(frozen=True)
class TokenRecord:
    """A named token as stored: never the token, only its digest."""

    name: str
    digest: str
    budget_usd: float | None
    period: str
    created_at: float
    revoked_at: float | None = None
    last_used_at: float | None = None


@dataclass
class UsageCounts:
    """Counts for one (provider, model, task); added up, never overwritten."""

    rows: int = 0
    cached_rows: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    input_words: int = 0  # words of the prompts sent: calibrates the estimate (backend/estimate.py)
    provider_ms: int = 0  # time spent in provider calls
    cost_nano: int = 0
    unpriced_rows: int = 0

    FIELDS = (
        "rows",
        "cached_rows",
        "input_tokens",
        "output_tokens",
        "input_words",
        "provider_ms",
        "cost_nano",
        "unpriced_rows",
    )

    def add(self, other: UsageCounts) -> None:
        for name in self.FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def values(self) -> tuple[int, ...]:
        return tuple(int(getattr(self, name)) for name in self.FIELDS)


@dataclass
class UsageBatch:
    """What one request (or job chunk) adds to one token's ledger for one day."""

    token: str
    day: str
    requests: int = 0
    counts: dict[tuple[str, str, str], UsageCounts] = field(default_factory=dict)

    def counts_for(self, provider: str, model: str, task: str) -> UsageCounts:
        return self.counts.setdefault((provider, model, task), UsageCounts())

    def empty(self) -> bool:
        return self.requests == 0 and not self.counts


@dataclass(frozen=True)
class UsageRow:
    """One ledger row as read back."""

    token: str
    day: str
    provider: str
    model: str
    task: str
    counts: UsageCounts


class StateStore(Protocol):
    """Tokens and ledger; every method may raise the backend's own errors."""

    def create_token(self, record: TokenRecord) -> None: ...
    def find_token(self, token_digest: str) -> TokenRecord | None: ...
    def list_tokens(self) -> list[TokenRecord]: ...
    def revoke_token(self, name: str, now: float) -> bool: ...
    def touch_token(self, name: str, now: float) -> None: ...
    def add_usage(self, batches: Iterable[UsageBatch]) -> None: ...
    def requests(self, token: str | None, first: str, last: str) -> dict[tuple[str, str], int]: ...
    def usage(self, token: str | None, first: str, last: str) -> list[UsageRow]: ...
    def model_totals(self, provider: str, model: str) -> dict[str, UsageCounts]: ...


def build_state_store(url: str, instance_path: str) -> StateStore:
    """SQLite (default: instance/state.sqlite3) or Redis, by STATE_URL."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        from backend.state_redis import RedisStateStore

        return RedisStateStore(url)
    if url and not url.startswith("sqlite:///"):
        raise ValueError(f"STATE_URL must be sqlite:///path or redis://...; got {url.split(':', 1)[0]}:")
    from backend.state_sqlite import SQLiteStateStore

    path = Path(url[len("sqlite:///") :]) if url else Path(instance_path) / "state.sqlite3"
    return SQLiteStateStore(path)
