"""An in-process fake provider for unit tests, in the shape of simonw/llm's MockModel:
queue the answers (or errors) it should give, then read back every job it was asked.

It is a real `Provider`: the service cannot tell it from openai or anthropic, so unit
tests exercise the service's own logic (cache, single flight, budget, deadlines) without
a socket. Anything that must prove the SDKs work goes against scripts/mock_llm.py instead.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import ClassVar

from backend.errors import APIError, ProviderTimeout
from backend.providers.base import Completion, Job, Provider, Usage

Answer = str | Completion | APIError | Callable[[Job], "str | Completion"]


class FakeProvider(Provider):
    """Answers from `enqueue(...)` in order, then `default(job)`; records each call."""

    name: ClassVar[str] = "fake"

    def __init__(self, model: str = "fake-1", default: Callable[[Job], str] | None = None) -> None:
        self.model = model
        self.default = default or (lambda job: f"answer to {job.text}")
        self.calls: list[Job] = []
        self.timeouts: list[float] = []
        self._queue: deque[Answer] = deque()
        self._lock = threading.Lock()
        # When given, every call waits for it to be set, like a provider that has not
        # answered yet; past the call's timeout it fails as a real provider would.
        self.gate: threading.Event | None = None

    def enqueue(self, *answers: Answer) -> FakeProvider:
        self._queue.extend(answers)
        return self

    def complete(self, job: Job, timeout: float) -> Completion:
        with self._lock:
            self.calls.append(job)
            self.timeouts.append(timeout)
            answer: Answer = self._queue.popleft() if self._queue else self.default
        if self.gate is not None and not self.gate.wait(timeout):
            raise ProviderTimeout(f"fake did not answer within {timeout:g} s.")
        if isinstance(answer, APIError):
            raise answer
        if callable(answer) and not isinstance(answer, Completion):
            answer = answer(job)
        if isinstance(answer, Completion):
            return answer
        return Completion(text=answer, model=self.model, usage=Usage(len(job.text.split()), 3))

    def prompts(self) -> list[str]:
        """The user texts of every call so far, in call order."""
        return [job.text for job in self.calls]
