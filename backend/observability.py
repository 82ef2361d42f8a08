"""Request ids, one structured log line per request, and security headers.

The log line carries what an operator needs to follow traffic and cost (route, task,
status, latency, provider, model, cached, tokens used, a short hash of the client's
token) and nothing a user typed or that grants access: no prompt, no token, no query
string. Error logs follow the same rule: handlers log exception types, not messages
that could quote input.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request

from backend import metrics
from backend.settings import Settings

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_JSON_CSP = "default-src 'none'; frame-ancestors 'none'"
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JSONFormatter(logging.Formatter):
    """One JSON object per line; `extra={...}` fields become keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str) -> None:
    """JSON lines on stderr for the `backend` loggers (idempotent across app instances)."""
    logger = logging.getLogger("backend")
    logger.setLevel(level.upper())
    if not any(getattr(h, "_flaskllm", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JSONFormatter())
        handler._flaskllm = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = True


access_log = logging.getLogger("backend.access")


def init_app(app: Flask, settings: Settings) -> None:
    """Attach request ids, the access log line and security headers to every response."""

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex

    @app.after_request
    def _finish(response: Response) -> Response:
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers[REQUEST_ID_HEADER] = request_id
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if response.mimetype == "application/json":
            response.headers["Content-Security-Policy"] = _JSON_CSP
            response.headers["Cache-Control"] = "no-store"
        if request.method != "OPTIONS":
            started = g.get("started")
            route = request.url_rule.rule if request.url_rule else "<unmatched>"
            seconds = time.perf_counter() - started if started else None
            metrics.observe_request(route, request.method, response.status_code, seconds)
            if access_log.isEnabledFor(logging.INFO):
                _log_request(response, request_id)
        return response


def _log_request(response: Response, request_id: str) -> None:
    started = g.get("started")
    fields: dict[str, Any] = {
        "request_id": request_id,
        "client": g.get("client"),
        "method": request.method,
        "route": request.url_rule.rule if request.url_rule else "<unmatched>",
        "status": response.status_code,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
    }
    for name in (
        "token_name",
        "task",
        "provider",
        "model",
        "cached",
        "rows",
        "input_tokens",
        "output_tokens",
        "error_code",
    ):
        value = g.get(name)
        if value is not None:
            fields[name] = value
    fields.update(g.get("pacing") or {})  # provider calls in flight and rows waiting, when it called one
    access_log.info("request", extra=fields)
