"""Blueprint /api/v1/jobs: submit a sheet as a job, follow it, page its results, cancel it.

Thin views over `JobStore` (backend/jobs.py) and `JobQueue` (backend/worker.py). A job
belongs to the token that made it: every other token gets 404, exactly as for an id that
never existed, so job ids reveal nothing. Submitting is one request against RATE_LIMIT;
status and results reads have their own POLL_RATE_LIMIT (wired in create_app).
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, jsonify, request

from backend import metrics
from backend.api import metered, read_json, state, token_checker
from backend.auth import Caller, require_token
from backend.errors import BudgetExceeded, InvalidInput, TooManyItems
from backend.jobs import RESULTS_DEFAULT_LIMIT, check_paging
from backend.schemas import JobRequest, validate

bp = Blueprint("jobs", __name__, url_prefix="/api/v1/jobs")


@bp.before_request
def _allow_sheet_sized_bodies() -> None:
    """A job carries up to JOB_MAX_ITEMS rows: a larger body limit than /batch's, here only."""
    request.max_content_length = current_app.extensions["flaskllm"].settings.job_max_bytes


@bp.post("")
@require_token(token_checker)
def submit() -> tuple[Response, int]:
    app_state = state()
    body = read_json()
    limit = app_state.settings.job_max_items
    items = body.get("items")
    if isinstance(items, list) and len(items) > limit:
        raise TooManyItems(
            f"items: at most {limit} rows per job (got {len(items)}); submit the sheet as several jobs."
        )
    envelope = validate(JobRequest, body, app_state.service.validation_context)
    defaults = envelope.defaults.model_dump(exclude_none=True) if envelope.defaults else {}
    caller: Caller = g.caller
    with metered():  # the submission is one request in the ledger; its rows count as they run
        pass
    if caller.budget_usd is not None:
        try:
            app_state.budgets.check(caller)
        except BudgetExceeded:
            # Spent: a job is still taken if some rows are cached (those are free and served).
            if app_state.estimator.estimate(caller, envelope.items, defaults)["cached"] == 0:
                raise
    account = {"name": caller.name, "budget_usd": caller.budget_usd, "period": caller.period}
    job, chunks, created = app_state.jobs.store.create(
        g.client, envelope.items, defaults, request.headers.get("Idempotency-Key"), account=account
    )
    if created:
        app_state.jobs.submit(job["id"], chunks)
        metrics.JOB_ROWS.labels("queued").inc(job["total"])
    g.rows = job["total"]
    return jsonify(job=job), 202 if created else 200


@bp.get("/<job_id>")
@require_token(token_checker)
def status(job_id: str) -> Response:
    store = state().jobs.store
    return jsonify(job=store.status(store.meta(g.client, job_id)))


@bp.get("/<job_id>/results")
@require_token(token_checker)
def results(job_id: str) -> Response:
    store = state().jobs.store
    after = _int_arg("after", -1)  # bad paging is a 400 whether or not the job exists
    limit = _int_arg("limit", RESULTS_DEFAULT_LIMIT)
    check_paging(after, limit)
    meta = store.meta(g.client, job_id)
    rows, next_after = store.results(meta, after, limit)
    g.rows = len(rows)
    return jsonify(results=rows, next=next_after)


@bp.delete("/<job_id>")
@require_token(token_checker)
def cancel(job_id: str) -> Response:
    store = state().jobs.store
    return jsonify(job=store.cancel(store.meta(g.client, job_id)))


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"{name}: must be an integer") from None
