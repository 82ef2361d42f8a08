"""The HTTP side of errors: every APIError, werkzeug HTTP exception and crash as one JSON shape.

`{"error": {"code", "message", "details"?}, "request_id"}` with the error's status and
headers (CORS is added by flask-cors on every response, errors included). The exception
tree itself is Flask-free, in backend/errors.py.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g, jsonify
from werkzeug.exceptions import HTTPException

from backend.errors import (
    APIError,
    InternalError,
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    UnsupportedMediaType,
    log_crash,
)

log = logging.getLogger("backend.errors")

_HTTP_MAP: dict[int, type[APIError]] = {
    400: InvalidInput,
    401: Unauthorized,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    429: RateLimited,
}


def error_response(err: APIError) -> Response:
    """Render an APIError in the one JSON shape, with its status and headers."""
    body = {"error": err.to_dict(), "request_id": g.get("request_id")}
    resp = jsonify(body)
    resp.status_code = err.status
    for name, value in err.headers.items():
        resp.headers[name] = value
    g.error_code = err.code
    return resp


def from_http_exception(exc: HTTPException) -> APIError:
    """Translate a werkzeug exception (404, 405, 413, limiter's 429, ...) into an APIError."""
    status = exc.code or 500
    cls = _HTTP_MAP.get(status)
    if cls is None:
        err: APIError = APIError(exc.description or "HTTP error")
        err.status = status
        err.code = (exc.name or "http_error").lower().replace(" ", "_")
        return err
    if cls is RateLimited:
        return RateLimited(f"Rate limit exceeded ({exc.description}); retry later.")
    return cls()


def register_error_handlers(app: Flask) -> None:
    """Make every error, from any layer, answer in the one JSON shape."""

    @app.errorhandler(APIError)
    def _api_error(err: APIError) -> Response:
        return error_response(err)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        resp = error_response(from_http_exception(exc))
        if exc.code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            resp.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return resp

    @app.errorhandler(Exception)
    def _crash(exc: Exception) -> Response:
        log_crash(log, exc, "unhandled error", g.get("request_id"))
        return error_response(InternalError())
