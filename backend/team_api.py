"""Blueprint for operating the service for a team: usage per token, and estimates.

GET /api/v1/usage?from=YYYY-MM-DD&to=YYYY-MM-DD answers the caller's own ledger
(backend/state.py keeps it); the admin token gets every token's, by name. A range longer
than a year is cut to the year ending at `to` (the answer's `from` says so); `to` before
`from` is an empty range. POST /api/v1/estimate prices the body of a /batch or /jobs
request before it is sent (backend/estimate.py). Both only read: they count against the
polling rate limit, not RATE_LIMIT (wired in create_app).
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from backend.api import read_json, state, token_checker
from backend.auth import Caller, require_token
from backend.errors import InvalidInput, TooManyItems
from backend.prices import usd
from backend.schemas import JobRequest, validate
from backend.state import UsageCounts, UsageRow, period_bounds

bp = Blueprint("team", __name__, url_prefix="/api/v1")
MAX_DAYS = 366


@bp.before_request
def _allow_sheet_sized_bodies() -> None:
    """An estimate carries a whole job's rows: the jobs' body limit."""
    if request.endpoint == "team.estimate":
        request.max_content_length = current_app.extensions["flaskllm"].settings.job_max_bytes


@bp.post("/estimate")
@require_token(token_checker)
def estimate() -> Response:
    app_state = state()
    body = read_json()
    limit = app_state.settings.job_max_items
    items = body.get("items")
    if isinstance(items, list) and len(items) > limit:
        raise TooManyItems(f"items: at most {limit} rows per estimate (got {len(items)}), as for a job.")
    envelope = validate(JobRequest, body, app_state.service.validation_context)
    defaults = envelope.defaults.model_dump(exclude_none=True) if envelope.defaults else {}
    g.rows = len(envelope.items)
    return jsonify(estimate=app_state.estimator.estimate(g.caller, envelope.items, defaults))


def _day_arg(name: str, default: date) -> date:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{name}: must be a date, YYYY-MM-DD") from None


@bp.get("/usage")
@require_token(token_checker, admin=True)
def usage() -> Response:
    app_state = state()
    caller: Caller = g.caller
    today = datetime.fromtimestamp(time.time(), timezone.utc).date()
    first = _day_arg("from", date.fromisoformat(period_bounds("month", time.time())[0]))
    last = _day_arg("to", today)
    if (last - first).days >= MAX_DAYS:  # at most a year at a time: the answer says which
        first = last - timedelta(days=MAX_DAYS - 1)
    app_state.ledger.flush()  # this process's free usage (cache hits) is written first
    store = app_state.state_store
    who = None if caller.admin else caller.name
    rows = store.usage(who, first.isoformat(), last.isoformat())
    requests = store.requests(who, first.isoformat(), last.isoformat())
    callers: dict[str, Caller] = {}
    if caller.admin:
        for record in store.list_tokens():
            callers[record.name] = Caller("", record.name, budget_usd=record.budget_usd, period=record.period)
        names = sorted({*callers, *(r.token for r in rows), *(t for t, _ in requests)})
    else:
        callers[caller.name] = caller
        names = [caller.name]
    tokens = []
    for name in names:
        mine = [r for r in rows if r.token == name]
        their_requests = {day: n for (t, day), n in requests.items() if t == name}
        budget = app_state.budgets.state(callers[name]) if name in callers else None
        tokens.append(
            {
                "name": name,
                "budget": None if budget is None else budget.as_dict(),
                "totals": _totals(mine, sum(their_requests.values())),
                "by_model": _by_model(mine),
                "days": [
                    {"day": day, **_totals([r for r in mine if r.day == day], their_requests.get(day, 0))}
                    for day in sorted({*(r.day for r in mine), *their_requests})
                ],
            }
        )
    return jsonify({"from": first.isoformat(), "to": last.isoformat(), "tokens": tokens})


def _sum(rows: list[UsageRow]) -> UsageCounts:
    total = UsageCounts()
    for row in rows:
        total.add(row.counts)
    return total


def _shown(counts: UsageCounts) -> dict[str, Any]:
    return {
        "rows": counts.rows,
        "cached_rows": counts.cached_rows,
        "input_tokens": counts.input_tokens,
        "output_tokens": counts.output_tokens,
        # Unknown, not 0, as soon as a row of a model without a price is in the sum.
        "cost_usd": None if counts.unpriced_rows else usd(counts.cost_nano),
        "unpriced_rows": counts.unpriced_rows,
    }


def _totals(rows: list[UsageRow], requests: int) -> dict[str, Any]:
    return {"requests": requests, **_shown(_sum(rows))}


def _by_model(rows: list[UsageRow]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[UsageRow]] = {}
    for row in rows:
        groups.setdefault((row.provider, row.model), []).append(row)
    return [
        {"provider": provider, "model": model, **_shown(_sum(group))}
        for (provider, model), group in sorted(groups.items())
    ]
