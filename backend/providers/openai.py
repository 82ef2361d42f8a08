"""OpenAI and every OpenAI-compatible server (Azure, Ollama, vLLM) through the official SDK."""

from __future__ import annotations

from typing import Any

import openai as openai_sdk

from backend.errors import ProviderError
from backend.providers.base import Completion, Job, Usage
from backend.providers.retry import SDKErrors, SDKProvider, Throttle


class OpenAIProvider(SDKProvider):
    """Chat completions. `client` is an `openai.OpenAI` built with max_retries=0."""

    name = "openai"
    errors = SDKErrors(openai_sdk)

    @classmethod
    def from_settings(cls, settings: Any, throttle: Throttle | None = None) -> OpenAIProvider:
        if settings.openai_api_key is None:
            raise ValueError("LLM_PROVIDER=openai needs OPENAI_API_KEY")
        client = openai_sdk.OpenAI(
            api_key=settings.openai_api_key.get_secret_value(),
            base_url=settings.openai_base_url or None,
            timeout=settings.request_timeout,
            max_retries=0,
        )
        return cls(client, settings.openai_model, settings.max_retries, throttle)

    def attempt(self, job: Job, seconds_left: float) -> Completion:
        response = self.client.chat.completions.create(
            model=self.model,
            messages=[
                {"role": "system", "content": job.system},
                {"role": "user", "content": job.user},
            ],
            max_tokens=job.max_output_tokens,
            timeout=seconds_left,
        )
        try:
            content = response.choices[0].message.content
            usage = response.usage
        except (AttributeError, IndexError, KeyError, TypeError) as exc:
            raise ProviderError("openai answered with something that is not a chat completion.") from exc
        if not isinstance(content, str):
            raise ProviderError("openai answered with no text.")
        return Completion(
            text=content,
            model=str(getattr(response, "model", None) or self.model),
            usage=Usage(
                int(getattr(usage, "prompt_tokens", 0) or 0),
                int(getattr(usage, "completion_tokens", 0) or 0),
            ),
        )
