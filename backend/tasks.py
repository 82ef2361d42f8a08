"""Task types as data: prompt templates from TOML, and what each task takes and needs.

Templates live in `backend/templates.toml`; PROMPT_TEMPLATES names a TOML file whose
tables override or add tasks. What a task takes (language, instruction, labels, fields,
count) is read from the placeholders its prompts use and from its result kind, so a task
an operator adds is validated, cached and offered to Excel (through /health) like a
built-in one. Reading the model's answer is backend/answers.py's job.
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

from backend.answers import RESULT_KINDS, answer_schema
from backend.providers.base import Job

BUILTIN_TEMPLATES = Path(__file__).with_name("templates.toml")
OPTIONS = ("language", "instruction", "labels", "fields", "count")  # what a row may give a task
DEFAULT_COUNT = 8  # keywords when the row names no count
_KIND_NEEDS = {"label": "labels", "record": "fields"}


@dataclass(frozen=True)
class Template:
    """One task type: its prompts, its answer's kind, and its version (cache key).

    `optional` names options the prompts use but a row may leave out (custom's instruction).
    """

    name: str
    system: str
    user: str
    result: str = "text"
    version: int = 1
    optional: tuple[str, ...] = ()

    @property
    def takes(self) -> tuple[str, ...]:
        """The row options this task uses; the others are dropped before the cache key."""
        used = {name for name in OPTIONS if "{" + name + "}" in self.system + self.user}
        if self.result in _KIND_NEEDS:
            used.add(_KIND_NEEDS[self.result])
        return tuple(name for name in OPTIONS if name in used)

    @property
    def needs(self) -> tuple[str, ...]:
        """The options a row must give (count always has a default)."""
        return tuple(n for n in self.takes if n != "count" and n not in self.optional)

    def render(
        self,
        text: str,
        language: str | None,
        source: str | None,
        max_tokens: int,
        *,
        instruction: str | None = None,
        labels: list[str] | None = None,
        fields: list[str] | None = None,
        count: int | None = None,
        model: str | None = None,
    ) -> Job:
        values = {
            "text": text,
            "language": language or "",
            "source": source or "other",
            "instruction": instruction or "",
            "labels": json.dumps(labels or [], ensure_ascii=False),
            "fields": json.dumps(fields or [], ensure_ascii=False),
            "count": str(count or DEFAULT_COUNT),
        }
        return Job(
            task=self.name,
            text=text,
            language=language,
            system=self.system.format_map(values),
            user=self.user.format_map(values).strip(),
            max_output_tokens=max_tokens,
            model=model,
            schema=answer_schema(self.result, labels, fields),
            labels=tuple(labels) if labels else None,
            fields=tuple(fields) if fields else None,
            count=count,
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
        "optional": table.get("optional", list(base.optional) if base else []),
    }
    if not isinstance(fields["system"], str) or not isinstance(fields["user"], str):
        raise TemplateError(f"template [{name}] needs string `system` and `user`")
    if "{text}" not in fields["user"]:
        raise TemplateError(f"template [{name}]: `user` must contain {{text}}")
    if fields["result"] not in RESULT_KINDS:
        raise TemplateError(f"template [{name}]: `result` must be one of {', '.join(RESULT_KINDS)}")
    if not isinstance(fields["version"], int):
        raise TemplateError(f"template [{name}]: `version` must be an integer")
    optional = fields["optional"]
    if not isinstance(optional, list) or not all(isinstance(o, str) and o in OPTIONS for o in optional):
        raise TemplateError(f"template [{name}]: `optional` must list some of {', '.join(OPTIONS)}")
    fields["optional"] = tuple(optional)
    try:
        probe = dict.fromkeys(("text", "source", *OPTIONS), "")
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
