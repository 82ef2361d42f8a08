"""Blueprint /api/v1: thin views that parse, validate, call the service and answer JSON."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.exceptions import ClientDisconnected

from backend.auth import require_token
from backend.errors import BudgetExceeded, InvalidInput, InvalidJSON, TooManyItems, UnsupportedMediaType
from backend.schemas import MAX_COUNT, MAX_FIELDS, MAX_LABELS, BatchRequest, WebhookRequest, validate
from backend.service import RowPace
from backend.version import __version__

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def state() -> Any:
    return current_app.extensions["flaskllm"]


def token_checker() -> Any:
    return state().tokens


def _not_json(name: str) -> Any:
    """NaN and Infinity: Python's json accepts them, JSON (RFC 8259) does not."""
    raise ValueError(f"{name} is not JSON")


def read_json() -> Any:
    """The request body as a JSON object; 415 / 400 otherwise. Parsed once per request."""
    if "body" in g:
        return g.body
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType()
    try:
        raw = request.get_data(cache=True)
    except ClientDisconnected:  # werkzeug's server: fewer bytes arrived than Content-Length said
        raw = b""
    if request.content_length is not None and len(raw) < request.content_length:  # also gunicorn's
        raise InvalidJSON("Request body ended before its Content-Length; send it again.")
    if not raw.strip():
        raise InvalidJSON("Request body is empty; send a JSON object.")
    try:
        body = json.loads(raw, parse_constant=_not_json)
    except (ValueError, RecursionError):
        raise InvalidJSON() from None
    if not isinstance(body, dict):
        raise InvalidInput("body: must be a JSON object")
    g.body = body
    return body


def _elapsed() -> float:
    started: float = g.started
    return round(time.perf_counter() - started, 4)


@bp.get("/health")
def health() -> Response:
    settings, service = state().settings, state().service
    return jsonify(
        status="ok",
        version=__version__,
        environment=settings.environment.value,
        provider=service.provider.name,
        fallback=list(settings.llm_fallback),
        confirm_above={"cost_usd": settings.estimate_confirm_usd, "rows": settings.estimate_confirm_rows},
        batch_max_items=settings.batch_max_items,
        job_max_items=settings.job_max_items,
        provider_concurrency=settings.provider_concurrency,
        tasks=service.describe_tasks(),
        models=list(service.models),
        default_model=service.provider.model,
        limits={
            "max_prompt_length": settings.max_prompt_length,
            "batch_max_items": settings.batch_max_items,
            "job_max_items": settings.job_max_items,
            "max_labels": MAX_LABELS,
            "max_fields": MAX_FIELDS,
            "max_count": MAX_COUNT,
        },
    )


@contextmanager
def metered() -> Iterator[RowPace]:
    """The pace of this request's rows: counted in the caller's ledger, within its budget.

    The request is counted whatever happens; the meter writes once, at the end.
    """
    meter = state().ledger.meter(g.caller)
    meter.request()
    try:
        yield RowPace(meter=meter)
    finally:
        meter.close()


@bp.post("/webhook")
@require_token(token_checker)
def webhook() -> Response:
    service = state().service
    item = validate(WebhookRequest, read_json(), service.validation_context)
    g.task = item.type
    with metered() as pace:
        outcome = service.process(item, pace=pace)
    g.provider, g.model, g.cached = outcome.body["provider"], outcome.body["model"], outcome.cached
    g.input_tokens, g.output_tokens = outcome.usage.input_tokens, outcome.usage.output_tokens
    g.pacing = service.budget.snapshot()
    return jsonify({**outcome.body, "processing_time": _elapsed(), "request_id": g.request_id})


@bp.post("/batch")
@require_token(token_checker)
def batch() -> Response:
    service = state().service
    body = read_json()
    limit = state().settings.batch_max_items
    items = body.get("items")
    if isinstance(items, list) and len(items) > limit:
        raise TooManyItems(f"items: at most {limit} rows per batch (got {len(items)}); split the request.")
    envelope = validate(BatchRequest, body, service.validation_context)
    defaults = envelope.defaults.model_dump(exclude_none=True) if envelope.defaults else {}
    with metered() as pace:
        answer = service.process_batch(envelope.items, defaults, pace=pace)
    stats = answer["stats"]
    if stats["succeeded"] == 0:
        refused = [
            r["error"] for r in answer["results"] if r["error"]["code"] == "budget_exceeded"
        ]  # all failed
        if refused:  # nothing cached to serve: the whole request is refused, as a single row would be
            raise BudgetExceeded(refused[0]["resets_at"], float(refused[0]["retry_after"]))
    g.rows, g.cached = stats["total"], stats["cached"]
    g.input_tokens, g.output_tokens = stats["usage"]["input_tokens"], stats["usage"]["output_tokens"]
    g.provider = service.provider.name
    g.pacing = service.budget.snapshot()
    return jsonify({**answer, "processing_time": _elapsed(), "request_id": g.request_id})


__all__ = ["batch", "bp", "health", "webhook"]
