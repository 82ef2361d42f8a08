"""Every error the API can answer with, and the handlers that render them as JSON.

Exception tree (each carries `status`, `code`, a user-facing `message`, optional
`details` and extra response `headers`):

    APIError
    ├── ClientError (4xx: the request is wrong)
    ├── UpstreamError (5xx: the provider failed; may work later)
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
    │   └── InvalidAnswer        502 invalid_answer        a label outside the row's labels, a missing field
    ├── ProviderTimeout          504 provider_timeout      provider slower than REQUEST_TIMEOUT
    ├── ProviderBusy             503 provider_busy         no provider slot came free within REQUEST_TIMEOUT
    └── DeadlineExceeded         504 deadline_exceeded     batch row unfinished at BATCH_TIMEOUT

Grouping bases, as httpx has them, let callers catch a family: `ClientError` (the
request is wrong: 4xx), `UpstreamError` (the provider failed: 502/503/504).

This module is Flask-free, so providers, the service and the job worker use it without a
web framework; backend/http_errors.py renders these errors (and werkzeug's own 404, 405,
413 and flask-limiter's 429) as the one JSON shape, so a client only ever parses one format.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any


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


class ClientError(APIError):
    """The request is wrong (4xx): sending it again unchanged will not help."""

    status, code, message = 400, "bad_request", "Bad request."


class UpstreamError(APIError):
    """The LLM provider failed or was too slow (5xx): the same request may work later."""

    status, code, message = 502, "provider_error", "The LLM provider failed."


class InvalidJSON(ClientError):
    status, code, message = 400, "invalid_json", "Request body is not valid JSON."


class InvalidInput(ClientError):
    status, code, message = 400, "invalid_input", "Invalid input."


class UnsupportedByProvider(ClientError):
    status, code = 400, "unsupported_by_provider"
    message = "This task needs an LLM provider; configure OPENAI_API_KEY or ANTHROPIC_API_KEY."


class Unauthorized(ClientError):
    status, code, message = 401, "unauthorized", "Missing or invalid API token."


class NotFound(ClientError):
    status, code, message = 404, "not_found", "No such endpoint."


class JobNotFound(NotFound):
    message = "No such job (it may belong to another token, or have expired after JOB_TTL)."


class IdempotencyConflict(ClientError):
    status, code = 409, "idempotency_conflict"
    message = (
        "This Idempotency-Key was already used for a job with different rows; use a new key for new rows."
    )


class RowCancelled(ClientError):
    status, code, message = 409, "cancelled", "The job was cancelled before this row ran."


class MethodNotAllowed(ClientError):
    status, code, message = 405, "method_not_allowed", "Method not allowed on this endpoint."


class PayloadTooLarge(ClientError):
    status, code, message = 413, "payload_too_large", "Request body is too large."


class TooManyItems(ClientError):
    status, code, message = 413, "too_many_items", "Too many items in one batch."


class UnsupportedMediaType(ClientError):
    status, code = 415, "unsupported_media_type"
    message = "Content-Type must be application/json."


class RateLimited(ClientError):
    status, code, message = 429, "rate_limited", "Rate limit exceeded; retry later."

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after else {}
        super().__init__(message, headers=headers)
        self.retry_after = retry_after


class AdminTokenNotForWork(ClientError):
    status, code = 403, "admin_token"
    message = "This is the admin token: it reads usage and metrics. Use an API token to run work."


class Forbidden(ClientError):
    status, code, message = 403, "forbidden", "Not allowed from here."


class BudgetExceeded(ClientError):
    """A token's spend reached its budget for the period: 429 until the period resets."""

    status, code = 429, "budget_exceeded"

    def __init__(self, resets_at: str, retry_after: float) -> None:
        super().__init__(
            f"This token's budget for the period is spent; it resets at {resets_at}. "
            "Rows already cached are still answered; ask the operator for a larger budget.",
            headers={"Retry-After": str(max(1, round(retry_after)))},
        )
        self.retry_after = retry_after
        self.resets_at = resets_at

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "resets_at": self.resets_at,
            "retry_after": max(1, round(self.retry_after)),
        }


class InternalError(APIError):
    status, code, message = 500, "internal_error", "Internal server error."


class ProviderError(UpstreamError):
    status, code, message = 502, "provider_error", "The LLM provider failed."


class InvalidAnswer(ProviderError):
    """The model answered, but not within the row's constraints (a label outside the
    labels, a missing field): a row error, never passed on as a valid result."""

    status, code, message = 502, "invalid_answer", "The LLM's answer did not fit the task."


class ProviderTimeout(UpstreamError):
    status, code, message = 504, "provider_timeout", "The LLM provider did not answer in time."


class ProviderBusy(UpstreamError):
    status, code = 503, "provider_busy"
    message = "Every provider slot stayed busy for REQUEST_TIMEOUT; send it again."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": "5"})


class DeadlineExceeded(UpstreamError):
    status, code = 504, "deadline_exceeded"
    message = "The batch deadline passed before this row finished; send it again."


def log_crash(logger: logging.Logger, exc: BaseException, what: str, request_id: str | None = None) -> None:
    """Log a bug with its stack but without the exception's message.

    Messages of arbitrary exceptions may quote user input (a KeyError on a prompt, a
    decode error with the bytes), and prompts must never reach the logs. The frames
    (file, line, code) are what a developer needs to find the bug.
    """
    frames = "".join(traceback.format_tb(exc.__traceback__))
    logger.error("%s: %s", what, type(exc).__name__, extra={"request_id": request_id, "stack": frames})
