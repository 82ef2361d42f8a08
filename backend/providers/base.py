"""What every provider is: a class that turns one `Job` into one `Completion`.

The shape follows simonw/llm: capability attributes on the class and a single method.
SDK clients are passed in (constructor argument) so tests can inject a fake client or
point the real SDK at `scripts/mock_llm.py`; nothing here reads module globals.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Usage:
    """Token counts as the provider reported them (0 when it reports none)."""

    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
        )

    def as_dict(self) -> dict[str, int]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}


@dataclass(frozen=True)
class Job:
    """One unit of work: the task, the user's text, and the prompts rendered for it.

    LLM providers send `system` and `user`, ask for `model` (None: their own), and
    ask for structured output when `schema` (a JSON schema, top level an object) is set.
    The local provider works on `task`, `text` and `count` directly and ignores the
    rendered prompts. `labels` and `fields` are the row's own, to check the answer by.
    """

    task: str
    text: str
    language: str | None = None
    system: str = ""
    user: str = ""
    max_output_tokens: int = 1024
    model: str | None = None
    schema: Any = None
    labels: tuple[str, ...] | None = None
    fields: tuple[str, ...] | None = None
    count: int | None = None


@dataclass(frozen=True)
class Completion:
    """A provider's answer.

    `text` is the raw answer. `result`, when not None, is an already-structured value
    of the task's result type (the local provider computes it directly), so the
    service skips parsing `text`.
    """

    text: str
    model: str
    usage: Usage = field(default_factory=Usage)
    result: Any = None
    provider: str | None = None  # who answered, when not the provider asked (a fallback)


class Provider(ABC):
    """A source of completions.

    `name` is what responses report as `provider`; `model` what they report as `model`.
    `supported_tasks` is None when every task (including custom templates) is supported.
    """

    name: ClassVar[str]
    supported_tasks: ClassVar[frozenset[str] | None] = None
    model: str

    def route(self, model: str | None) -> tuple[str, str]:
        """The provider and model that would answer a row asking for `model` right now.

        The cache key is made of these, so an answer is stored and found per provider and
        model; a fallback chain (backend/providers/fallback.py) names its active provider.
        """
        return self.name, model or self.model

    @abstractmethod
    def complete(self, job: Job, timeout: float) -> Completion:
        """Answer one job within `timeout` seconds (including any retries).

        Raises `backend.errors.ProviderError`, `ProviderTimeout`, `RateLimited` or
        `UnsupportedByProvider`; never an SDK exception.
        """
