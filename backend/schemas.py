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
BUILTIN_TASKS = (
    "summary",
    "keywords",
    "sentiment",
    "entities",
    "translation",
    "custom",
    "prompt",
    "classify",
    "extract",
)
MAX_LABELS, MAX_LABEL_LENGTH = 50, 200
MAX_FIELDS, MAX_FIELD_LENGTH = 20, 100
MAX_COUNT = 50
OPTION_NAMES = ("language", "instruction", "labels", "fields", "count")
# Without the app's templates in the context (a bare model_validate), the built-ins' needs.
BUILTIN_NEEDS = {
    "translation": ("language",),
    "prompt": ("instruction",),
    "classify": ("labels",),
    "extract": ("fields",),
}
_NEEDS_MESSAGE = {
    "language": "a target language (ISO 639-1 code)",
    "instruction": "an instruction",
    "labels": f"2 to {MAX_LABELS} labels",
    "fields": f"1 to {MAX_FIELDS} field names",
}


class Source(str, Enum):
    email = "email"
    meeting = "meeting"
    document = "document"
    chat = "chat"
    other = "other"


class _Strict(BaseModel):
    # use_enum_values: `source` is the plain string downstream (prompt, cache key, defaults).
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, use_enum_values=True)


def _check_text(value: str, limit: int) -> str:
    """A user text fit for a prompt: within `limit`, no NUL, encodable (no lone surrogate)."""
    if len(value) > limit:
        raise ValueError(f"must be at most {limit} characters")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (it contains a lone surrogate)") from None
    return value


def _names(values: list[str], what: str, longest: int) -> list[str]:
    """Labels or field names: trimmed, non-empty, short; a repeat (any case) is dropped."""
    names: dict[str, str] = {}
    for value in values:
        name = " ".join(_check_text(value, longest).split())
        if not name:
            raise ValueError(f"every {what} must be a non-empty text")
        names.setdefault(name.casefold(), name)
    return list(names.values())


class TaskOptions(_Strict):
    """Fields a row may take from a batch's `defaults`. A task ignores those it does not use."""

    source: Source | None = None
    language: StrictStr | None = Field(None, description="Target language, ISO 639-1 code (e.g. 'de').")
    type: StrictStr | None = Field(
        None, description="Task type: " + ", ".join(BUILTIN_TASKS) + " or a configured one."
    )
    instruction: StrictStr | None = Field(
        None, description="What to do with the text: needed by `prompt`, optional for `custom`."
    )
    labels: list[StrictStr] | None = Field(
        None,
        min_length=2,
        max_length=MAX_LABELS,
        description="The labels `classify` chooses exactly one of.",
    )
    fields: list[StrictStr] | None = Field(
        None,
        min_length=1,
        max_length=MAX_FIELDS,
        description="The field names `extract` returns, in this order.",
    )
    count: int | None = Field(None, ge=1, le=MAX_COUNT, description="How many keywords.")
    model: StrictStr | None = Field(
        None, description="A model from the server's allow-list (MODELS); default: the server's model."
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

    @field_validator("instruction")
    @classmethod
    def _instruction(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        return _check_text(value, (info.context or {}).get("max_prompt_length", 4000)).strip() or None

    @field_validator("count", mode="before")
    @classmethod
    def _count(cls, value: Any) -> Any:
        """A JSON integer (5 or 5.0, as JSON Schema's `integer` has it); never "5" or true."""
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError("must be an integer")

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _names(value, "label", MAX_LABEL_LENGTH)

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _names(value, "field name", MAX_FIELD_LENGTH)

    @field_validator("model")
    @classmethod
    def _model(cls, value: str | None, info: ValidationInfo) -> str | None:
        allowed = (info.context or {}).get("models")
        if value is not None and allowed is not None and value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value


class WebhookRequest(TaskOptions):
    """One prompt. `type` defaults to summary; each task gets the options it needs.

    The options a task does not take are dropped (a batch's defaults may carry labels for
    its classify rows), so they never split the cache. `prompt` may be empty only for a
    task that needs an instruction (`prompt`: the instruction over no context).
    """

    prompt: StrictStr = Field(
        "", description="The text to process.", examples=["Summarize: we need to reduce hiring."]
    )

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str, info: ValidationInfo) -> str:
        return _check_text(value, (info.context or {}).get("max_prompt_length", 4000))

    @model_validator(mode="after")
    def _task_options(self, info: ValidationInfo) -> WebhookRequest:
        if self.type is None:
            self.type = "summary"
        specs = (info.context or {}).get("task_specs") or {}
        takes, needs = specs.get(self.type, (OPTION_NAMES, BUILTIN_NEEDS.get(self.type, ())))
        for name in OPTION_NAMES:
            if name not in takes:
                setattr(self, name, None)
            elif name in needs and not getattr(self, name):
                raise ValueError(f"{name}: {self.type} needs {_NEEDS_MESSAGE.get(name, name)}")
        if "count" in takes and self.count is None:
            self.count = (info.context or {}).get("default_count", 8)
        if not self.prompt.strip() and not ("instruction" in needs and self.instruction):
            raise ValueError("prompt: must not be empty")
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
    result: str | list[str] | Sentiment | list[Entity] | dict[str, str] = Field(
        ...,
        description="By task: text; keywords a list; sentiment an object; entities a list of "
        "objects; classify one of the labels; extract an object of the fields, in order.",
    )
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
    resets_at: str | None = Field(None, description="budget_exceeded: when the budget period resets (UTC).")
    retry_after: int | None = Field(None, description="budget_exceeded: seconds until then.")


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


class TaskInfo(BaseModel):
    """One task type as Excel needs to know it: what it answers, takes and needs."""

    name: str
    result: str = Field(..., description="text, string_list, sentiment, entity_list, label or record.")
    takes: list[str] = Field(..., description="Row options the task uses.")
    needs: list[str] = Field(..., description="Row options a row must give.")
    supported: bool = Field(..., description="False when the configured provider cannot do it.")


class Limits(BaseModel):
    max_prompt_length: int
    batch_max_items: int
    job_max_items: int
    max_labels: int
    max_fields: int
    max_count: int


class HealthResponse(BaseModel):
    status: Literal["ok"]
    version: str
    environment: str
    provider: str
    batch_max_items: int
    job_max_items: int
    provider_concurrency: int
    tasks: list[TaskInfo]
    models: list[str] = Field(..., description="The MODELS allow-list; the first is the default.")
    default_model: str
    limits: Limits
    fallback: list[str] = Field(..., description="LLM_FALLBACK: providers that take over, in order.")
    confirm_above: dict[str, float] = Field(
        ..., description="cost_usd and rows above which the kit asks before a run (see /estimate)."
    )


class Budget(BaseModel):
    limit_usd: float
    spent_usd: float
    remaining_usd: float
    period: Literal["day", "month"]
    resets_at: str


class Estimate(BaseModel):
    rows: int
    invalid: int = Field(..., description="Rows that would fail validation: free.")
    cached: int = Field(..., description="Rows answered from the cache or duplicates: free.")
    to_run: int = Field(..., description="Rows that would call the provider.")
    input_tokens: int
    output_tokens: int
    cost_usd: float | None = Field(..., description="null: the model has no price.")
    seconds: float
    provider: str
    model: str
    confirm: bool = Field(..., description="Ask the user first: above the threshold or the budget left.")
    budget: Budget | None


class EstimateResponse(BaseModel):
    estimate: Estimate


class UsageCounts(BaseModel):
    rows: int
    cached_rows: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None = Field(..., description="null when any row was of a model without a price.")
    unpriced_rows: int


class UsageTotals(UsageCounts):
    requests: int


class UsageDay(UsageTotals):
    day: str


class UsageByModel(UsageCounts):
    provider: str
    model: str


class TokenUsage(BaseModel):
    name: str = Field(..., description="The token's name; (unnamed) for API_TOKEN.")
    budget: Budget | None
    totals: UsageTotals
    by_model: list[UsageByModel]
    days: list[UsageDay]


class UsageResponse(BaseModel):
    from_: str = Field(..., alias="from")
    to: str
    tokens: list[TokenUsage]


class JobResultsResponse(BaseModel):
    results: list[BatchRowOk | BatchRowError]
    next: int | None = Field(..., description="Pass as `after` for the next page; null once every row came.")


def describe_errors(exc: ValidationError) -> tuple[str, list[dict[str, Any]]]:
    """A one-line message and a JSON-safe details list (never the input echoed back)."""
    details = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = ".".join(str(part) for part in err["loc"]) or "body"
        msg = err["msg"].removeprefix("Value error, ")
        field, sep, rest = msg.partition(": ")
        if loc == "body" and sep and field.isidentifier():  # a model check that names its field
            loc, msg = field, rest
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
