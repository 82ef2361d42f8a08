"""Every error the API can answer with, and the handlers that render them as JSON.

Exception tree (each carries `status`, `code`, a user-facing `message`, optional
`details` and extra response `headers`):

    APIError
    ├── InvalidJSON              400 invalid_json          body is not JSON / not an object
    ├── InvalidInput             400 invalid_input         fails the schema (details: pydantic errors)
    ├── UnsupportedByProvider    400 unsupported_by_provider  e.g. translation on the local provider
    ├── Unauthorized             401 unauthorized          missing or wrong token (never says which)
    ├── NotFound                 404 not_found
    │   └── JobNotFound          404 not_found             unknown job id, or another token's job
    ├── MethodNotAllowed         405 method_not_allowed
    ├── PayloadTooLarge          413 payload_too_large     body over MAX_CONTENT_LENGTH
    ├── IdempotencyConflict      409 idempotency_conflict  Idempotency-Key reused with other rows
    ├── RowCancelled             409 cancelled             (a job row's error) the job was cancelled
    ├── TooManyItems             413 too_many_items        batch over BATCH_MAX_ITEMS, job over JOB_MAX_ITEMS
    ├── UnsupportedMediaType     415 unsupported_media_type  not application/json
    ├── RateLimited              429 rate_limited          with Retry-After
    ├── InternalError            500 internal_error        a bug; logged with traceback, never shown
    ├── ProviderError            502 provider_error        provider failed, refused the key, answered garbage
    ├── ProviderTimeout          504 provider_timeout      provider slower than REQUEST_TIMEOUT
    ├── ProviderBusy             503 provider_busy         no provider slot came free within REQUEST_TIMEOUT
    └── DeadlineExceeded         504 deadline_exceeded     batch row unfinished at BATCH_TIMEOUT

Werkzeug's HTTP exceptions (404, 405, 413, flask-limiter's 429) are mapped onto the
same shape by `register_error_handlers`, so a client only ever parses one format.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from flask import Flask, Response, g, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger("backend.errors")


class APIError(Exception):
    status: int = 500
    code: str = "internal_error"
    message: str = "Internal server error."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: list[Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.details = details
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        """The `error` object of the response (also used for failed batch rows)."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class InvalidJSON(APIError):
    status, code, message = 400, "invalid_json", "Request body is not valid JSON."


class InvalidInput(APIError):
    status, code, message = 400, "invalid_input", "Invalid input."


class UnsupportedByProvider(APIError):
    status, code = 400, "unsupported_by_provider"
    message = "This task needs an LLM provider; configure OPENAI_API_KEY or ANTHROPIC_API_KEY."


class Unauthorized(APIError):
    status, code, message = 401, "unauthorized", "Missing or invalid API token."


class NotFound(APIError):
    status, code, message = 404, "not_found", "No such endpoint."


class JobNotFound(NotFound):
    message = "No such job (it may belong to another token, or have expired after JOB_TTL)."


class IdempotencyConflict(APIError):
    status, code = 409, "idempotency_conflict"
    message = (
        "This Idempotency-Key was already used for a job with different rows; "
        "use a new key for new rows."
    )


class RowCancelled(APIError):
    status, code, message = 409, "cancelled", "The job was cancelled before this row ran."


class MethodNotAllowed(APIError):
    status, code, message = 405, "method_not_allowed", "Method not allowed on this endpoint."


class PayloadTooLarge(APIError):
    status, code, message = 413, "payload_too_large", "Request body is too large."


class TooManyItems(APIError):
    status, code, message = 413, "too_many_items", "Too many items in one batch."


class UnsupportedMediaType(APIError):
    status, code = 415, "unsupported_media_type"
    message = "Content-Type must be application/json."


class RateLimited(APIError):
    status, code, message = 429, "rate_limited", "Rate limit exceeded; retry later."

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after else {}
        super().__init__(message, headers=headers)
        self.retry_after = retry_after


class InternalError(APIError):
    status, code, message = 500, "internal_error", "Internal server error."


class ProviderError(APIError):
    status, code, message = 502, "provider_error", "The LLM provider failed."


class ProviderTimeout(APIError):
    status, code, message = 504, "provider_timeout", "The LLM provider did not answer in time."


class ProviderBusy(APIError):
    status, code = 503, "provider_busy"
    message = "Every provider slot stayed busy for REQUEST_TIMEOUT; send it again."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": "5"})


class DeadlineExceeded(APIError):
    status, code = 504, "deadline_exceeded"
    message = "The batch deadline passed before this row finished; send it again."


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
        log_crash(log, exc, "unhandled error")
        return error_response(InternalError())


def log_crash(logger: logging.Logger, exc: BaseException, what: str) -> None:
    """Log a bug with its stack but without the exception's message.

    Messages of arbitrary exceptions may quote user input (a KeyError on a prompt, a
    decode error with the bytes), and prompts must never reach the logs. The frames
    (file, line, code) are what a developer needs to find the bug.
    """
    frames = "".join(traceback.format_tb(exc.__traceback__))
    logger.error(
        "%s: %s",
        what,
        type(exc).__name__,
        extra={"request_id": g.get("request_id") if g else None, "stack": frames},
    )
