"""The OpenAPI 3.1 contract, generated from the running app so it cannot drift from it.

Paths and methods come from `app.url_map` (every /api/v1 rule); bodies and answers from
the pydantic models the views validate with (backend/schemas.py); which routes need a
token, which are rate limited, and every error status from the decorators actually on the
views and from the APIError tree in backend/errors.py. Limits that depend on settings
(MAX_PROMPT_LENGTH, BATCH_MAX_ITEMS, the configured task types) are written into the
schemas, so a client generator or a fuzzer sees the same bounds the server enforces.
The only hand-written part is `DOCS`: a summary and an example per endpoint, and which
models it takes. A route missing from `DOCS` still appears, flagged `x-undocumented`, and
a test fails on that flag.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from backend.errors import APIError, ClientError, UpstreamError
from backend.schemas import (
    ISO_639_1,
    MAX_FIELD_LENGTH,
    MAX_LABEL_LENGTH,
    BatchItem,
    BatchRequest,
    BatchResponse,
    ErrorResponse,
    EstimateResponse,
    HealthResponse,
    JobRequest,
    JobResponse,
    JobResultsResponse,
    UsageResponse,
    WebhookRequest,
    WebhookResponse,
)
from backend.version import __version__

PREFIX = "/api/v1"
REF = "#/components/schemas/{model}"
SECURITY: list[dict[str, list[str]]] = [{"ApiTokenHeader": []}, {"BearerToken": []}, {"ApiTokenQuery": []}]
# A prompt: not blank, no NUL (the validator's rules, as a regex a fuzzer can satisfy).
PROMPT_PATTERN = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
NO_NUL_PATTERN = r"^[^\u0000]*$"
# ISO 639-1 as a pattern, not an enum: same set, but fuzzers and docs do not list 184 values.
LANGUAGE_PATTERN = "^(" + "|".join(sorted(ISO_639_1)) + ")$"


@dataclass(frozen=True)
class Doc:
    """What the code cannot say about an endpoint: its purpose, models and examples."""

    summary: str
    description: str = ""
    request: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    media_type: str = "application/json"
    errors: tuple[int, ...] = ()  # statuses the route adds to the derived ones
    examples: dict[str, Any] = field(default_factory=dict)  # request examples by name
    tag: str = "api"
    success: tuple[int, ...] = (200,)  # statuses answered with `response`
    parameters: tuple[dict[str, Any], ...] = ()  # query and header parameters (path ones are derived)


DOCS: dict[str, Doc] = {
    "api.webhook": Doc(
        "Process one prompt",
        "Summary, keywords, sentiment, entities, translation or a custom task on one text. "
        "Answers are cached: the same prompt and options answer `cached: true` at no cost.",
        WebhookRequest,
        WebhookResponse,
        errors=(502, 503, 504),
        examples={
            "summary": {"prompt": "Hi team, the Q3 review moves to Friday 10:00. Send slides by Thursday."},
            "sentiment": {"prompt": "This is the third late delivery. Unacceptable.", "type": "sentiment"},
            "translation": {"prompt": "The meeting is cancelled.", "type": "translation", "language": "de"},
        },
    ),
    "api.batch": Doc(
        "Process many rows",
        "1..BATCH_MAX_ITEMS rows, each a BatchItem, answered in input order. A row that fails "
        "(invalid, provider error, deadline) fails alone with `ok: false`; the batch answers 200. "
        "A batch is one request against RATE_LIMIT, however many rows it has; rows beyond "
        "PROVIDER_CONCURRENCY wait for a provider slot.",
        BatchRequest,
        BatchResponse,
        examples={
            "rows": {
                "items": [
                    {"id": "A2", "prompt": "Please call me back about the invoice."},
                    {"id": "A3", "prompt": "Great work on the launch, thank you!"},
                ],
                "defaults": {"type": "sentiment"},
            }
        },
    ),
    "api.health": Doc("Liveness and configuration", "No token needed.", response=HealthResponse),
    "jobs.submit": Doc(
        "Submit rows as a durable job",
        "1..JOB_MAX_ITEMS rows, the same rows as /batch. Answers 202 with the job at once; the "
        "rows run on the task queue and survive a restart. The same Idempotency-Key from the "
        "same token answers 200 with the existing job (a re-run attaches); with other rows, 409. "
        "One request against RATE_LIMIT.",
        JobRequest,
        JobResponse,
        errors=(409,),
        success=(202, 200),
        parameters=(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
            },
        ),
        examples={"rows": {"items": [{"id": "A2", "prompt": "Please call me back about the invoice."}]}},
    ),
    "jobs.status": Doc(
        "A job's progress",
        "404 for unknown ids and other tokens' jobs. "
        "Not charged against RATE_LIMIT (POLL_RATE_LIMIT applies).",
        response=JobResponse,
        errors=(404,),
    ),
    "jobs.results": Doc(
        "A page of a job's finished rows",
        "Rows with index > after, in order, up to limit; stops at the first unfinished row. "
        "`next` is the `after` for the next page, null once every row came.",
        response=JobResultsResponse,
        errors=(400, 404),
        parameters=(
            {"name": "after", "in": "query", "required": False, "schema": {"type": "integer", "minimum": -1}},
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
            },
        ),
    ),
    "jobs.cancel": Doc(
        "Cancel a job's rows not started", "Finished rows stay.", response=JobResponse, errors=(404,)
    ),
    "team.estimate": Doc(
        "Price rows before running them",
        "The body of a /batch or /jobs request (up to JOB_MAX_ITEMS rows). Nothing is run: rows "
        "are validated and looked up in the cache as the run would, the rest rendered with their "
        "templates and counted; tokens per word come from this server's ledger. `confirm` says "
        "the kit should ask before running. Not charged against RATE_LIMIT (POLL_RATE_LIMIT).",
        JobRequest,
        EstimateResponse,
        examples={"rows": {"items": [{"id": "A2", "prompt": "Please call me back about the invoice."}]}},
    ),
    "team.usage": Doc(
        "Usage and spend per token",
        "The caller's own ledger (requests, rows, cached rows, tokens, cost) per day and model, "
        "and its budget; the admin token gets every token's, by name. Default range: this month; "
        "at most 366 days (the answer's `from` says where a longer range was cut); `to` before "
        "`from` is an empty range.",
        response=UsageResponse,
        errors=(400, 403),
        parameters=(
            {
                "name": "from",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "format": "date"},
            },
            {"name": "to", "in": "query", "required": False, "schema": {"type": "string", "format": "date"}},
        ),
    ),
    "openapi.spec": Doc("This OpenAPI 3.1 document", "No token needed.", tag="meta"),
    "openapi.docs": Doc(
        "Human-readable API reference",
        "This document rendered as one HTML page, no scripts.",
        media_type="text/html",
        tag="meta",
    ),
}


def error_codes() -> dict[int, list[str]]:
    """status -> the error codes the APIError tree answers it with."""
    codes: dict[int, list[str]] = defaultdict(list)
    stack = list(APIError.__subclasses__())
    while stack:
        cls = stack.pop(0)
        stack.extend(cls.__subclasses__())
        if cls in (ClientError, UpstreamError):  # grouping bases: never raised themselves
            continue
        if cls.code not in codes[cls.status]:
            codes[cls.status].append(cls.code)
    return codes


def schemas_for(
    tasks: dict[str, tuple[str, ...]],
    models: list[str],
    max_prompt_length: int,
    batch_max_items: int,
    job_max_items: int,
) -> dict[str, Any]:
    """Component schemas from the pydantic models, with the settings' limits applied.

    `tasks` maps each task type this deployment runs to the options it needs: a row of
    that type must give them (JSON Schema if/then), and a task that needs an instruction
    is the one whose `prompt` may be empty.
    """
    requests = (WebhookRequest, BatchItem, BatchRequest, JobRequest)
    responses = (
        WebhookResponse,
        BatchResponse,
        ErrorResponse,
        HealthResponse,
        JobResponse,
        JobResultsResponse,
        EstimateResponse,
        UsageResponse,
    )
    models_in: list[tuple[type[BaseModel], Any]] = [(m, "validation") for m in requests]
    models_in += [(m, "serialization") for m in responses]
    _, defs = models_json_schema(models_in, ref_template=REF)
    schemas: dict[str, Any] = defs["$defs"]
    for name in ("TaskOptions", "WebhookRequest", "BatchItem"):
        props = schemas[name]["properties"]
        _string_branch(props["language"])["pattern"] = LANGUAGE_PATTERN
        _string_branch(props["type"])["enum"] = sorted(tasks)
        _string_branch(props["model"])["enum"] = list(models)
        _string_branch(props["instruction"]).update(maxLength=max_prompt_length, pattern=NO_NUL_PATTERN)
        for option, longest in (("labels", MAX_LABEL_LENGTH), ("fields", MAX_FIELD_LENGTH)):
            array = next(b for b in props[option]["anyOf"] if b.get("type") == "array")
            array["items"].update(maxLength=longest, pattern=PROMPT_PATTERN)
        if "prompt" in props:
            props["prompt"].update(maxLength=max_prompt_length, pattern=NO_NUL_PATTERN)
            schemas[name]["allOf"] = _needs_rules(tasks)
    for envelope, most in (("BatchRequest", batch_max_items), ("JobRequest", job_max_items)):
        items = schemas[envelope]["properties"]["items"]
        items["maxItems"] = most
        # The envelope takes what the model takes; BatchItem is listed first to say what a good row is.
        items["items"] = {"anyOf": [{"$ref": REF.format(model="BatchItem")}, items.get("items", {})]}
        items["description"] = (
            f"1..{most} rows, each a BatchItem. Anything else is accepted by the envelope "
            f"and answered as a failed row; over {most} rows is a 413 too_many_items."
        )
    return schemas


_NEEDED_VALUE = {
    "language": {"type": "string"},
    "instruction": {"type": "string", "pattern": PROMPT_PATTERN},
    "labels": {"type": "array"},
    "fields": {"type": "array"},
}


def _needs_rules(tasks: dict[str, tuple[str, ...]]) -> list[dict[str, Any]]:
    """If/then rules: a row of a task that needs an option must give it, and `prompt` may be
    empty only for a task that needs an instruction."""
    rules: list[dict[str, Any]] = []
    for option, value in _NEEDED_VALUE.items():
        needing = sorted(name for name, needs in tasks.items() if option in needs)
        if needing:
            rules.append(
                {
                    "if": {"properties": {"type": {"enum": needing}}, "required": ["type"]},
                    "then": {"required": [option], "properties": {option: value}},
                }
            )
    free = sorted(name for name, needs in tasks.items() if "instruction" in needs)
    non_blank: dict[str, Any] = {
        "required": ["prompt"],
        "properties": {"prompt": {"type": "string", "pattern": PROMPT_PATTERN}},
    }
    if free:
        rules.append(
            {"if": {"properties": {"type": {"enum": free}}, "required": ["type"]}, "else": non_blank}
        )
    else:
        rules.append(non_blank)
    return rules


def _string_branch(prop: dict[str, Any]) -> dict[str, Any]:
    """The `{"type": "string"}` member of an optional field's anyOf."""
    return next(branch for branch in prop.get("anyOf", [prop]) if branch.get("type") == "string")


def build_spec(app: Flask) -> dict[str, Any]:
    """The whole OpenAPI document for `app`, from its url_map, views, models and settings."""
    state = app.extensions["flaskllm"]
    settings = state.settings
    # The task types this deployment runs: the local provider refuses the LLM-only ones (400).
    supported = state.service.provider.supported_tasks
    needs = {
        name: template.needs
        for name, template in state.service.templates.items()
        if supported is None or name in supported
    }
    tasks = list(needs)
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith(PREFIX + "/"):
            continue
        view = app.view_functions[rule.endpoint]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            op = _operation(rule.endpoint, view, tasks)
            for name in sorted(rule.arguments):
                op.setdefault("parameters", []).insert(
                    0, {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                )
            paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "FlaskLLM",
            "version": __version__,
            "description": (
                "LLMs for Excel: one prompt, many rows, one error shape. Every error from any layer "
                "is an ErrorResponse. Limits on this server: prompts up to "
                f"{settings.max_prompt_length} characters, batches up to {settings.batch_max_items} "
                f"rows, bodies up to {settings.max_content_length} bytes, {settings.rate_limit} "
                "requests per minute per token. Unknown paths answer 404 not_found; other methods "
                "answer 405 method_not_allowed with an Allow header."
            ),
        },
        "servers": [{"url": (settings.public_url or "").rstrip("/") or "/"}],
        "tags": [
            {"name": "api", "description": "The LLM endpoints."},
            {"name": "meta", "description": "This documentation."},
        ],
        "paths": paths,
        "components": {
            "schemas": schemas_for(
                needs,
                list(state.service.models),
                settings.max_prompt_length,
                settings.batch_max_items,
                settings.job_max_items,
            ),
            "securitySchemes": {
                "ApiTokenHeader": {"type": "apiKey", "in": "header", "name": "X-API-Token"},
                "BearerToken": {"type": "http", "scheme": "bearer", "description": "The same token."},
                "ApiTokenQuery": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "api_token",
                    "description": "For clients that cannot set headers; it is never logged, "
                    "but prefer the header: URLs end up in browser histories.",
                },
            },
        },
    }


def _operation(endpoint: str, view: Any, tasks: list[str]) -> dict[str, Any]:
    doc = DOCS.get(endpoint)
    auth = bool(getattr(view, "requires_token", False))
    limited = getattr(view, "__wrapper-limiter-instance", None) is not None
    op: dict[str, Any] = {
        "operationId": endpoint.rsplit(".", 1)[-1],
        "summary": doc.summary if doc else endpoint,
        "tags": [doc.tag if doc else "api"],
        "security": SECURITY if auth else [],
    }
    if doc is None:
        op["x-undocumented"] = True
        doc = Doc(endpoint)
    if doc.description:
        op["description"] = doc.description
    if doc.parameters:
        op["parameters"] = [dict(p) for p in doc.parameters]
    statuses = {500, *doc.errors}
    if doc.request is not None:
        statuses |= {400, 413, 415}
        body: dict[str, Any] = {"schema": {"$ref": REF.format(model=doc.request.__name__)}}
        examples = {name: value for name, value in doc.examples.items() if _task_of(value) in tasks}
        if examples:
            body["examples"] = {name: {"value": value} for name, value in examples.items()}
        op["requestBody"] = {"required": True, "content": {"application/json": body}}
    if auth:
        statuses.add(401)
    if limited:
        statuses.add(429)
    success = {str(code): _success(doc, limited) for code in doc.success}
    op["responses"] = {**success, **{str(s): _error(s) for s in sorted(statuses)}}
    return op


def _task_of(example: dict[str, Any]) -> str:
    """The task type an example body asks for."""
    return str(example.get("type") or example.get("defaults", {}).get("type") or "summary")


def _success(doc: Doc, limited: bool) -> dict[str, Any]:
    if doc.media_type != "application/json":
        schema: dict[str, Any] = {"type": "string"}
    elif doc.response is not None:
        schema = {"$ref": REF.format(model=doc.response.__name__)}
    else:
        schema = {"type": "object"}
    headers: dict[str, Any] = {
        "X-Request-ID": {"description": "Echoed or generated.", "schema": {"type": "string"}}
    }
    if limited:
        for name in ("Limit", "Remaining", "Reset"):
            headers[f"X-RateLimit-{name}"] = {"schema": {"type": "integer"}}
    return {"description": "OK", "headers": headers, "content": {doc.media_type: {"schema": schema}}}


def _error(status: int) -> dict[str, Any]:
    codes = error_codes().get(status, [])
    response: dict[str, Any] = {
        "description": "Error codes: " + ", ".join(codes) if codes else "Error",
        "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorResponse")}}},
    }
    if status == 429:
        response["headers"] = {
            "Retry-After": {
                "required": True,
                "description": "Seconds to wait.",
                "schema": {"type": "integer", "minimum": 0},
            }
        }
    return response
