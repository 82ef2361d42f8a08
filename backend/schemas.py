"""Request and response models (pydantic, extra="forbid").

Limits that come from settings (MAX_PROMPT_LENGTH, the task types known to the loaded
templates) are passed in the validation context, so one model serves every config and
the OpenAPI document is generated from the same classes the views validate with.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from backend.errors import InvalidInput

# fmt: off
ISO_639_1 = frozenset(
    "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv "
    "cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr "
    "ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw "
    "ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv "
    "ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr "
    "ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi "
    "yo za zh zu".split()
)
# fmt: on
BUILTIN_TASKS = ("summary", "keywords", "sentiment", "entities", "translation", "custom")


class Source(str, Enum):
    email = "email"
    meeting = "meeting"
    document = "document"
    chat = "chat"
    other = "other"


class _Strict(BaseModel):
    # use_enum_values: `source` is the plain string downstream (prompt, cache key, defaults).
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, use_enum_values=True)


class TaskOptions(_Strict):
    """Fields a row may take from a batch's `defaults`."""

    source: Source | None = None
    language: StrictStr | None = Field(None, description="Target language, ISO 639-1 code (e.g. 'de').")
    type: StrictStr | None = Field(
        None, description="Task type: " + ", ".join(BUILTIN_TASKS) + " or a configured one."
    )

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        if value is None:
            return None
        code = value.strip().lower()
        if code not in ISO_639_1:
            raise ValueError("must be an ISO 639-1 language code such as 'en', 'de' or 'fr'")
        return code

    @field_validator("type")
    @classmethod
    def _type(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        known = (info.context or {}).get("task_types", BUILTIN_TASKS)
        name = value.strip().lower()
        if name not in known:
            raise ValueError(f"must be one of {', '.join(sorted(known))}")
        return name


class WebhookRequest(TaskOptions):
    """One prompt. `type` defaults to summary; translation needs `language`."""

    prompt: StrictStr = Field(
        ..., description="The text to process.", examples=["Summarize: we need to reduce hiring."]
    )

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str, info: ValidationInfo) -> str:
        limit = (info.context or {}).get("max_prompt_length", 4000)
        if not value.strip():
            raise ValueError("must not be empty")
        if len(value) > limit:
            raise ValueError(f"must be at most {limit} characters")
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode (it contains a lone surrogate)") from None
        return value

    @model_validator(mode="after")
    def _translation_needs_language(self) -> WebhookRequest:
        if self.type is None:
            self.type = "summary"
        if self.type == "translation" and not self.language:
            raise ValueError("language: translation needs a target language (ISO 639-1 code)")
        return self


class BatchItem(WebhookRequest):
    """One row of a batch; `id` is echoed back so clients can match rows."""

    id: StrictStr | int | None = Field(None, description="Client's row id, echoed back.")


class BatchRequest(_Strict):
    """The batch envelope. Rows are validated one by one, so a bad row fails only itself.

    `items` takes any JSON values: a row that is not even an object (a bare string from a
    blank Excel cell, a null) is answered as a failed row, not a 400 for the whole batch.
    """

    items: list[Any] = Field(..., min_length=1, description="1..BATCH_MAX_ITEMS rows (BatchItem).")
    defaults: TaskOptions | None = None


class JobRequest(_Strict):
    """A job's envelope: the batch's shape with up to JOB_MAX_ITEMS rows."""

    items: list[Any] = Field(..., min_length=1, description="1..JOB_MAX_ITEMS rows (BatchItem).")
    defaults: TaskOptions | None = None


class Job(BaseModel):
    """A job's progress. `done` counts finished rows, failed ones included."""

    id: str
    status: Literal["queued", "running", "done", "cancelled"]
    total: int
    done: int
    succeeded: int
    failed: int
    cached: int
    created_at: str
    updated_at: str
    eta_seconds: float | None


class JobResponse(BaseModel):
    job: Job


class Usage(BaseModel):
    input_tokens: int
    output_tokens: int


class Sentiment(BaseModel):
    label: Literal["positive", "negative", "neutral", "mixed"]
    score: float = Field(..., ge=-1, le=1)


class Entity(BaseModel):
    text: str
    label: str


class Answer(BaseModel):
    """The fields one processed text answers with, alone (webhook) or as a batch row."""

    summary: str = Field(..., description="The text form of the result (always a string).")
    type: str
    result: str | list[str] | Sentiment | list[Entity]
    provider: str
    model: str
    cached: bool
    usage: Usage


class WebhookResponse(Answer):
    processing_time: float
    request_id: str | None = None


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
    request_id: str | None = None


class BatchRowOk(Answer):  # rows carry no processing_time or request_id of their own
    index: int
    id: str | int | None
    ok: Literal[True]


class BatchRowError(BaseModel):
    index: int
    id: str | int | None
    ok: Literal[False]
    error: ErrorBody


class BatchStats(BaseModel):
    total: int
    succeeded: int
    failed: int
    cached: int
    usage: Usage


class BatchResponse(BaseModel):
    results: list[BatchRowOk | BatchRowError]
    stats: BatchStats
    processing_time: float
    request_id: str | None = None


class HealthResponse(BaseModel):
    status: Literal["ok"]
    version: str
    environment: str
    provider: str
    batch_max_items: int
    job_max_items: int
    provider_concurrency: int


class JobResultsResponse(BaseModel):
    results: list[BatchRowOk | BatchRowError]
    next: int | None = Field(..., description="Pass as `after` for the next page; null once every row came.")


def describe_errors(exc: ValidationError) -> tuple[str, list[dict[str, Any]]]:
    """A one-line message and a JSON-safe details list (never the input echoed back)."""
    details = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = ".".join(str(part) for part in err["loc"]) or "body"
        msg = err["msg"].removeprefix("Value error, ")
        details.append({"loc": loc, "msg": msg, "type": err["type"]})
    first = details[0] if details else {"loc": "body", "msg": "invalid"}
    message = first["msg"] if first["loc"] == "body" else f"{first['loc']}: {first['msg']}"
    return message, details


def validate(model: type[BaseModel], data: Any, context: dict[str, Any]) -> Any:
    """Validate `data` against `model` or raise InvalidInput with readable details."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        message, details = describe_errors(exc)
        raise InvalidInput(message, details=details) from None
