"""Anthropic's Messages API through the official SDK."""

from __future__ import annotations

import json
from typing import Any

import anthropic as anthropic_sdk

from backend.errors import ProviderError
from backend.providers.base import Completion, Job, Usage
from backend.providers.retry import SDKErrors, SDKProvider, Throttle

ANSWER_TOOL = "record_answer"


class AnthropicProvider(SDKProvider):
    """Messages. `client` is an `anthropic.Anthropic` built with max_retries=0."""

    name = "anthropic"
    errors = SDKErrors(anthropic_sdk)

    @classmethod
    def from_settings(cls, settings: Any, throttle: Throttle | None = None) -> AnthropicProvider:
        if settings.anthropic_api_key is None:
            raise ValueError("LLM_PROVIDER=anthropic needs ANTHROPIC_API_KEY")
        client = anthropic_sdk.Anthropic(
            api_key=settings.anthropic_api_key.get_secret_value(),
            base_url=settings.anthropic_base_url or None,
            timeout=settings.request_timeout,
            max_retries=0,
        )
        return cls(client, settings.anthropic_model, settings.max_retries, throttle)

    def attempt(self, job: Job, seconds_left: float) -> Completion:
        """One message. Structured output is Anthropic's forced tool use: the task's schema
        is the one tool's input schema, and the tool call's input is the answer."""
        extra: dict[str, Any] = {}
        if job.schema is not None:
            extra["tools"] = [
                {
                    "name": ANSWER_TOOL,
                    "description": "Record the answer to the task, following this schema exactly.",
                    "input_schema": job.schema,
                }
            ]
            extra["tool_choice"] = {"type": "tool", "name": ANSWER_TOOL}
        response = self.client.messages.create(
            model=job.model or self.model,
            system=job.system,
            messages=[{"role": "user", "content": job.user}],
            max_tokens=job.max_output_tokens,
            timeout=seconds_left,
            **extra,
        )
        try:
            blocks = list(response.content)
            calls = [b for b in blocks if getattr(b, "type", None) == "tool_use"]
            if job.schema is not None and calls:  # the tool call is the answer, text is commentary
                texts = [json.dumps(calls[0].input, ensure_ascii=False)]
            else:
                texts = [b.text for b in blocks if getattr(b, "type", None) == "text"]
            usage = response.usage
        except (AttributeError, TypeError) as exc:
            raise ProviderError("anthropic answered with something that is not a message.") from exc
        if not texts or not all(isinstance(t, str) for t in texts):
            raise ProviderError("anthropic answered with no text.")
        return Completion(
            text="".join(texts),
            model=str(getattr(response, "model", None) or self.model),
            usage=Usage(
                int(getattr(usage, "input_tokens", 0) or 0),
                int(getattr(usage, "output_tokens", 0) or 0),
            ),
        )
