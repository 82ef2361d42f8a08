"""Task types as data: prompt templates from TOML, and tolerant parsing of the answers.

Templates live in `backend/templates.toml`; PROMPT_TEMPLATES names a TOML file whose
tables override or add tasks. The model is asked for a parseable answer, and parsing
accepts JSON, JSON inside a code fence, or plain lines. An answer that cannot be turned
into the task's result type raises ProviderError (a 502), never a wrong shape.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from backend.errors import ProviderError
from backend.providers.base import Job

BUILTIN_TEMPLATES = Path(__file__).with_name("templates.toml")
RESULT_KINDS = ("text", "string_list", "sentiment", "entity_list")
SENTIMENT_LABELS = ("positive", "negative", "neutral", "mixed")

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")
_ENTITY_LINE = re.compile(r"^(?P<text>.+?)\s*(?:\((?P<l1>[A-Za-z_ ]+)\)|[:\-–]\s*(?P<l2>[A-Za-z_ ]+))$")


@dataclass(frozen=True)
class Template:
    """One task type: its prompts, how its answer is parsed, and its version (cache key)."""

    name: str
    system: str
    user: str
    result: str = "text"
    version: int = 1

    def render(self, text: str, language: str | None, source: str | None, max_tokens: int) -> Job:
        values = {"text": text, "language": language or "", "source": source or "other"}
        return Job(
            task=self.name,
            text=text,
            language=language,
            system=self.system.format_map(values),
            user=self.user.format_map(values),
            max_output_tokens=max_tokens,
        )


class TemplateError(ValueError):
    """A template file is unreadable or malformed (raised at start-up)."""


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
            return data
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:  # TOML must be UTF-8
        raise TemplateError(f"PROMPT_TEMPLATES: cannot read {path}: {exc}") from exc


def _build(name: str, table: Any, base: Template | None) -> Template:
    if not isinstance(table, dict):
        raise TemplateError(f"template [{name}] must be a table")
    fields = {
        "system": table.get("system", base.system if base else None),
        "user": table.get("user", base.user if base else "{text}"),
        "result": table.get("result", base.result if base else "text"),
        "version": table.get("version", base.version if base else 1),
    }
    if not isinstance(fields["system"], str) or not isinstance(fields["user"], str):
        raise TemplateError(f"template [{name}] needs string `system` and `user`")
    if "{text}" not in fields["user"]:
        raise TemplateError(f"template [{name}]: `user` must contain {{text}}")
    if fields["result"] not in RESULT_KINDS:
        raise TemplateError(f"template [{name}]: `result` must be one of {', '.join(RESULT_KINDS)}")
    if not isinstance(fields["version"], int):
        raise TemplateError(f"template [{name}]: `version` must be an integer")
    try:
        probe = {"text": "", "language": "", "source": ""}
        fields["system"].format_map(probe)
        fields["user"].format_map(probe)
    except (KeyError, ValueError, IndexError) as exc:
        raise TemplateError(f"template [{name}]: bad placeholder {exc}") from exc
    return Template(name=name, **fields)


def load_templates(override: Path | None = None) -> dict[str, Template]:
    """The built-in templates, with the tables of `override` replacing or adding tasks."""
    templates = {n: _build(n, t, None) for n, t in _read(BUILTIN_TEMPLATES).items()}
    if override is not None:
        for name, table in _read(Path(override)).items():
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", name):
                raise TemplateError(f"template name {name!r}: use lower-case letters, digits, _")
            templates[name] = _build(name, table, templates.get(name))
    return templates


# ---------------------------------------------------------------- answer parsing


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


def parse_answer(kind: str, answer: str) -> Any:
    """Turn a model's answer into the result type of `kind`, or raise ProviderError."""
    if kind == "text":
        text = answer.strip()
        if not text:
            raise ProviderError("The LLM answered with an empty text.")
        return text
    if kind == "string_list":
        return _parse_string_list(answer)
    if kind == "sentiment":
        return _parse_sentiment(answer)
    if kind == "entity_list":
        return _parse_entities(answer)
    raise ProviderError(f"Unknown result kind {kind!r}.")


def text_form(result: Any) -> str:
    """The `summary` string every response carries, whatever the task's result type."""
    if isinstance(result, str):
        return result
    if isinstance(result, dict) and "label" in result:
        return f"{result['label']} ({result.get('score', 0.0):+.2f})"
    if isinstance(result, list):
        parts = [
            f"{item['text']} ({item['label']})" if isinstance(item, dict) else str(item) for item in result
        ]
        return "; ".join(parts) if result and isinstance(result[0], dict) else ", ".join(parts)
    return json.dumps(result, ensure_ascii=False)
