"""The state database in Redis (STATE_URL=redis://...), for servers on several machines.

Keys, all under `flaskllm:state:`:

    tokens                 hash  name -> token record (JSON, with the digest, never the token)
    digest:<sha256>        name of the live token with this digest
    used                   hash  name -> last use (epoch seconds)
    usage:<token>:<day>    hash  "<provider>\\x1f<model>\\x1f<task>\\x1f<count>" -> integer
    requests:<day>         hash  token -> requests
    names                  set   every token name the ledger has seen
    models:<provider>\\x1f<model>   hash  "<task>\\x1f<count>" -> integer (estimate calibration)

Every ledger write is HINCRBY in one MULTI pipeline: atomic, additive, exact.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from backend.state import StateError, TokenRecord, UsageBatch, UsageCounts, UsageRow, days_between

PREFIX = "flaskllm:state:"
SEP = "\x1f"


class RedisStateStore:
    def __init__(self, url: str) -> None:
        import redis

        self.redis: Any = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)

    # ------------------------------------------------------------------ tokens

    def create_token(self, record: TokenRecord) -> None:
        old = self.redis.hget(PREFIX + "tokens", record.name)
        if old is not None:
            found = json.loads(old)
            if found.get("revoked_at") is None:
                raise StateError(f"A token named {record.name!r} exists; revoke it first.")
        value = json.dumps(
            {
                "digest": record.digest,
                "budget_usd": record.budget_usd,
                "period": record.period,
                "created_at": record.created_at,
                "revoked_at": None,
            }
        )
        pipe = self.redis.pipeline()
        pipe.hset(PREFIX + "tokens", record.name, value)
        pipe.hdel(PREFIX + "used", record.name)
        pipe.set(PREFIX + "digest:" + record.digest, record.name)
        pipe.execute()

    def _load(self, name: str, raw: Any, used: Any) -> TokenRecord:
        found = json.loads(raw)
        return TokenRecord(
            name,
            found["digest"],
            found["budget_usd"],
            found["period"],
            float(found["created_at"]),
            found["revoked_at"],
            None if used is None else float(used),
        )

    def find_token(self, token_digest: str) -> TokenRecord | None:
        name = self.redis.get(PREFIX + "digest:" + token_digest)
        if name is None:
            return None
        name = name.decode()
        raw, used = self.redis.hget(PREFIX + "tokens", name), self.redis.hget(PREFIX + "used", name)
        if raw is None:
            return None
        record = self._load(name, raw, used)
        return record if record.revoked_at is None and record.digest == token_digest else None

    def list_tokens(self) -> list[TokenRecord]:
        tokens = self.redis.hgetall(PREFIX + "tokens")
        used = self.redis.hgetall(PREFIX + "used")
        return sorted(
            (self._load(k.decode(), v, used.get(k)) for k, v in tokens.items()), key=lambda r: r.name
        )

    def revoke_token(self, name: str, now: float) -> bool:
        raw = self.redis.hget(PREFIX + "tokens", name)
        if raw is None:
            return False
        found = json.loads(raw)
        if found.get("revoked_at") is not None:
            return False
        found["revoked_at"] = now
        pipe = self.redis.pipeline()
        pipe.hset(PREFIX + "tokens", name, json.dumps(found))
        pipe.delete(PREFIX + "digest:" + found["digest"])
        pipe.execute()
        return True

    def touch_token(self, name: str, now: float) -> None:
        self.redis.hset(PREFIX + "used", name, repr(now))

    # ------------------------------------------------------------------ ledger

    def add_usage(self, batches: Iterable[UsageBatch]) -> None:
        pipe = self.redis.pipeline(transaction=True)
        writes = 0
        for batch in batches:
            if batch.empty():
                continue
            pipe.sadd(PREFIX + "names", batch.token)
            if batch.requests:
                pipe.hincrby(PREFIX + f"requests:{batch.day}", batch.token, batch.requests)
                writes += 1
            key = PREFIX + f"usage:{batch.token}:{batch.day}"
            for (provider, model, task), counts in batch.counts.items():
                calibration = PREFIX + f"models:{provider}{SEP}{model}"
                for name, value in zip(UsageCounts.FIELDS, counts.values(), strict=True):
                    if value:
                        pipe.hincrby(key, SEP.join((provider, model, task, name)), value)
                        pipe.hincrby(calibration, f"{task}{SEP}{name}", value)
                        writes += 1
        if writes:
            pipe.execute()

    def _names(self, token: str | None) -> list[str]:
        if token is not None:
            return [token]
        return sorted(n.decode() for n in self.redis.smembers(PREFIX + "names"))

    def requests(self, token: str | None, first: str, last: str) -> dict[tuple[str, str], int]:
        days = days_between(first, last)
        pipe = self.redis.pipeline(transaction=False)
        for day in days:
            pipe.hgetall(PREFIX + f"requests:{day}")
        found: dict[tuple[str, str], int] = {}
        for day, counts in zip(days, pipe.execute(), strict=True):
            for name, n in counts.items():
                if token is None or name.decode() == token:
                    found[(name.decode(), day)] = int(n)
        return found

    def usage(self, token: str | None, first: str, last: str) -> list[UsageRow]:
        days = days_between(first, last)
        names = self._names(token)
        pipe = self.redis.pipeline(transaction=False)
        keys = [(name, day) for name in names for day in days]
        for name, day in keys:
            pipe.hgetall(PREFIX + f"usage:{name}:{day}")
        rows: list[UsageRow] = []
        for (name, day), fields in zip(keys, pipe.execute(), strict=True):
            grouped: dict[tuple[str, str, str], UsageCounts] = {}
            for field, value in fields.items():
                provider, model, task, count = field.decode().split(SEP)
                counts = grouped.setdefault((provider, model, task), UsageCounts())
                setattr(counts, count, int(value))
            rows.extend(UsageRow(name, day, *key, counts) for key, counts in sorted(grouped.items()))
        return rows

    def model_totals(self, provider: str, model: str) -> dict[str, UsageCounts]:
        fields = self.redis.hgetall(PREFIX + f"models:{provider}{SEP}{model}")
        totals: dict[str, UsageCounts] = {}
        for field, value in fields.items():
            task, count = field.decode().split(SEP)
            setattr(totals.setdefault(task, UsageCounts()), count, int(value))
        return totals
