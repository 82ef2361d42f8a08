"""What a task's answer must look like: the JSON schema sent as structured output, and
the tolerant reading and strict validation of what comes back.

Why both: OpenAI (`response_format` json_schema) and Anthropic (a forced tool call) return
JSON that follows the schema, but OpenAI-compatible servers (Ollama, vLLM, old Azure
deployments) may ignore it and answer in prose. So every answer is read tolerantly (JSON,
JSON in a code fence, plain lines) and then validated against the row's own options: a
label outside the row's labels, or a missing field, is an `InvalidAnswer` (a 502 row
error), never passed on as valid.
"""

from __future__ import annotations

import json
import re
from typing import Any

from backend.errors import InvalidAnswer, ProviderError

RESULT_KINDS = ("text", "string_list", "sentiment", "entity_list", "label", "record")
SENTIMENT_LABELS = ("positive", "negative", "neutral", "mixed")
ENTITY_LABELS = ("PERSON", "ORG", "LOCATION", "DATE", "MONEY", "PRODUCT", "OTHER")

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")
_ENTITY_LINE = re.compile(r"^(?P<text>.+?)\s*(?:\((?P<l1>[A-Za-z_ ]+)\)|[:\-–]\s*(?P<l2>[A-Za-z_ ]+))$")


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    """A closed object with every property required: what OpenAI's strict mode accepts."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def answer_schema(kind: str, labels: list[str] | None = None, fields: list[str] | None = None) -> Any:
    """The JSON schema a structured answer of `kind` follows, or None for free text.

    The top level is always an object (OpenAI's structured output requires one).
    """
    if kind == "string_list":
        return _object({"items": {"type": "array", "items": {"type": "string"}}})
    if kind == "sentiment":
        return _object(
            {"label": {"type": "string", "enum": list(SENTIMENT_LABELS)}, "score": {"type": "number"}}
        )
    if kind == "entity_list":
        entity = _object(
            {"text": {"type": "string"}, "label": {"type": "string", "enum": list(ENTITY_LABELS)}}
        )
        return _object({"entities": {"type": "array", "items": entity}})
    if kind == "label":
        return _object({"label": {"type": "string", "enum": list(labels or [])}})
    if kind == "record":
        return _object({name: {"type": "string"} for name in fields or []})
    return None


# ---------------------------------------------------------------- reading


def _json_candidates(answer: str) -> list[Any]:
    """Every JSON value the answer may hold: the whole, fenced blocks, the outermost [...] / {...}."""
    texts = [answer.strip(), *(m.strip() for m in _FENCE.findall(answer))]
    for open_ch, close_ch in (("[", "]"), ("{", "}")):
        start, end = answer.find(open_ch), answer.rfind(close_ch)
        if 0 <= start < end:
            texts.append(answer[start : end + 1])
    values = []
    for text in texts:
        try:
            values.append(json.loads(text))
        except ValueError:
            continue
    return values


def _plain_lines(answer: str) -> list[str]:
    text = _FENCE.sub(lambda m: m.group(1), answer)
    lines = [_BULLET.sub("", line).strip().strip('"').strip() for line in text.splitlines()]
    if len([x for x in lines if x]) == 1 and "," in lines[0]:
        lines = [part.strip() for part in lines[0].split(",")]
    return [line for line in lines if line]


def _parse_string_list(answer: str) -> list[str]:
    for value in _json_candidates(answer):
        if isinstance(value, dict):
            value = next((v for v in value.values() if isinstance(v, list)), None)
        if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
            return [str(v).strip() for v in value if str(v).strip()]
    return _plain_lines(answer)


def _parse_sentiment(answer: str) -> dict[str, Any]:
    for value in _json_candidates(answer):
        if isinstance(value, dict) and str(value.get("label", "")).lower() in SENTIMENT_LABELS:
            label = str(value["label"]).lower()
            try:
                score = float(value.get("score", 0.0))
            except (TypeError, ValueError):
                score = 0.0
            return {"label": label, "score": round(max(-1.0, min(1.0, score)), 3)}
    lowered = answer.strip().lower()
    found = [label for label in SENTIMENT_LABELS if re.search(rf"\b{label}\b", lowered)]
    if len(found) == 1:
        number = re.search(r"-?\d+(?:\.\d+)?", lowered)
        default = {"positive": 0.5, "negative": -0.5}.get(found[0], 0.0)
        score = float(number.group()) if number else default
        return {"label": found[0], "score": round(max(-1.0, min(1.0, score)), 3)}
    raise ProviderError("The LLM answered with no recognisable sentiment.")


def _parse_entities(answer: str) -> list[dict[str, str]]:
    for value in _json_candidates(answer):
        if isinstance(value, dict):
            value = next((v for v in value.values() if isinstance(v, list)), None)
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            items = [
                {"text": str(v.get("text", "")).strip(), "label": str(v.get("label", "OTHER")).upper()}
                for v in value
            ]
            return [item for item in items if item["text"]]
    entities = []
    for line in _plain_lines(answer):
        match = _ENTITY_LINE.match(line)
        if match:
            label = (match.group("l1") or match.group("l2") or "OTHER").strip().upper()
            entities.append({"text": match.group("text").strip(), "label": label})
    if entities or not answer.strip() or answer.strip() in ("[]", "none", "None"):
        return entities
    raise ProviderError("The LLM answer could not be read as a list of entities.")


def _short(value: str, limit: int = 60) -> str:
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _parse_label(answer: str, labels: list[str]) -> str:
    """Exactly one of `labels`, spelt as the caller gave it (case and spaces are forgiven)."""
    said: Any = next(
        (v["label"] for v in _json_candidates(answer) if isinstance(v, dict) and "label" in v), None
    )
    if not isinstance(said, str):
        said = answer.strip().strip("`'\".").strip()
    by_fold = {" ".join(label.split()).casefold(): label for label in labels}
    chosen = by_fold.get(" ".join(said.split()).casefold())
    if chosen is None:
        raise InvalidAnswer(
            f"The LLM answered {_short(said)!r}, which is not one of the labels "
            f"({', '.join(_short(label, 30) for label in labels)})."
        )
    return chosen


def _field_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False)


def _parse_record(answer: str, fields: list[str]) -> dict[str, str]:
    """Every field, in the caller's order, as a string ("" where the text has no value)."""
    record = next((v for v in _json_candidates(answer) if isinstance(v, dict)), None)
    if record is None:
        raise InvalidAnswer("The LLM answer is not a JSON object with the requested fields.")
    by_fold = {str(k).strip().casefold(): v for k, v in record.items()}
    out: dict[str, str] = {}
    for name in fields:
        if name in record:
            out[name] = _field_value(record[name])
        elif name.strip().casefold() in by_fold:
            out[name] = _field_value(by_fold[name.strip().casefold()])
        else:
            raise InvalidAnswer(f"The LLM answer is missing the field {_short(name, 40)!r}.")
    return out


def parse_answer(
    kind: str,
    answer: str,
    *,
    labels: list[str] | None = None,
    fields: list[str] | None = None,
    count: int | None = None,
) -> Any:
    """Turn a model's answer into the result type of `kind`, checked against the row's options.

    Raises ProviderError for an answer that is not of the kind at all, InvalidAnswer for one
    that breaks the row's own constraints (labels, fields).
    """
    if kind == "text":
        text = answer.strip()
        if not text:
            raise ProviderError("The LLM answered with an empty text.")
        return text
    if kind == "string_list":
        items = _parse_string_list(answer)
        return items[:count] if count else items
    if kind == "sentiment":
        return _parse_sentiment(answer)
    if kind == "entity_list":
        return _parse_entities(answer)
    if kind == "label":
        return _parse_label(answer, labels or [])
    if kind == "record":
        return _parse_record(answer, fields or [])
    raise ProviderError(f"Unknown result kind {kind!r}.")


def text_form(result: Any, kind: str | None = None) -> str:
    """The `summary` string every response carries, whatever the task's result type."""
    if isinstance(result, str):
        return result
    if isinstance(result, dict) and kind == "record":
        return "; ".join(f"{name}: {value}" for name, value in result.items())
    if isinstance(result, dict) and "label" in result:
        return f"{result['label']} ({result.get('score', 0.0):+.2f})"
    if isinstance(result, list):
        parts = [
            f"{item['text']} ({item['label']})" if isinstance(item, dict) else str(item) for item in result
        ]
        return "; ".join(parts) if result and isinstance(result[0], dict) else ", ".join(parts)
    return json.dumps(result, ensure_ascii=False)
