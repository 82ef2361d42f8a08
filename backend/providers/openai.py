"""OpenAI and every OpenAI-compatible server (Azure, Ollama, vLLM) through the official SDK."""

from __future__ import annotations

import json
from typing import Any

import openai as openai_sdk

try:  # the HTTP library the SDK is built on: httpx2 in openai 3, httpx before
    from httpx2 import URL as HTTPURL
    from httpx2 import Response as HTTPResponse
    from httpx2 import TimeoutException as HTTPTimeout
    from httpx2 import TransportError as HTTPTransportError
except ImportError:  # pragma: no cover - older SDKs
    from httpx import URL as HTTPURL  # type: ignore[no-redef]
    from httpx import Response as HTTPResponse  # type: ignore[no-redef]
    from httpx import TimeoutException as HTTPTimeout  # type: ignore[no-redef]
    from httpx import TransportError as HTTPTransportError  # type: ignore[no-redef]

from backend.errors import InvalidAnswer, ProviderError
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

    def __init__(
        self, client: Any, model: str, max_retries: int = 2, throttle: Throttle | None = None
    ) -> None:
        super().__init__(client, model, max_retries, throttle)
        self._direct = _DirectRoute.of(client)

    def attempt(self, job: Job, seconds_left: float) -> Completion:
        """One chat completion through the SDK's own client (auth, base URL, connection pool,
        typed errors), but with the JSON body built and read here: the SDK's per-call
        request transforms and response models cost more CPU than the proxied call itself
        (about 0.9 of 2.2 ms per call, measured), and a gateway needs only two fields back."""
        body: dict[str, Any] = {
            "model": job.model or self.model,
            "messages": [
                {"role": "system", "content": job.system},
                {"role": "user", "content": job.user},
            ],
            "max_tokens": job.max_output_tokens,
        }
        if job.schema is not None:  # structured output: the answer follows the task's schema
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": f"{job.task}_answer", "schema": job.schema, "strict": True},
            }
        if self._direct is not None:
            data = self._direct.post(body, seconds_left)
        else:  # another client (Azure's rewrites the path per deployment, a test's fake): its post()
            response = self.client.post(
                "/chat/completions", cast_to=HTTPResponse, body=body, options={"timeout": seconds_left}
            )
            data = response.json()  # a body that is not JSON: ValueError, a provider error upstream
        return self._read(data)

    def _read(self, data: Any) -> Completion:
        try:
            message = data["choices"][0]["message"]
            content, refusal = message.get("content"), message.get("refusal")
            usage = data.get("usage") or {}
        except (AttributeError, IndexError, KeyError, TypeError) as exc:
            raise ProviderError("openai answered with something that is not a chat completion.") from exc
        if isinstance(refusal, str) and refusal and not content:
            raise InvalidAnswer("The model refused to answer this row.")
        if not isinstance(content, str):
            raise ProviderError("openai answered with no text.")
        return Completion(
            text=content,
            model=str(data.get("model") or self.model),
            usage=Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)),
        )


class _DirectRoute:
    """POST /chat/completions on the SDK client's own HTTP client, without its per-call
    request building (options models, deep copies, header merging, URL parsing: a fifth of
    a call's CPU in a gevent worker, profiled) and with the SDK's own exception types.

    The URL and headers are the ones the SDK would send (its `default_headers` and
    `auth_headers`), computed once; the connection pool, proxies and limits are the SDK's.
    Only for a plain `openai.OpenAI`: Azure's client rewrites paths per deployment.
    """

    def __init__(self, client: Any) -> None:
        self.http = client._client  # the SDK's httpx client (its pool and transport)
        self.url = HTTPURL(str(client.base_url).rstrip("/") + "/chat/completions")
        merged = {**client.default_headers, **client.auth_headers}
        self.headers = {k: v for k, v in merged.items() if isinstance(v, str)}  # Omit() means unset
        self.headers["Content-Type"] = "application/json"

    @classmethod
    def of(cls, client: Any) -> _DirectRoute | None:
        if not isinstance(client, openai_sdk.OpenAI) or isinstance(client, openai_sdk.AzureOpenAI):
            return None
        return cls(client)

    def post(self, body: dict[str, Any], seconds_left: float) -> Any:
        content = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
        request = self.http.build_request(
            "POST", self.url, content=content, headers=self.headers, timeout=seconds_left
        )
        try:
            response = self.http.send(request)
        except HTTPTimeout as exc:
            raise openai_sdk.APITimeoutError(request=request) from exc
        except HTTPTransportError as exc:
            raise openai_sdk.APIConnectionError(request=request) from exc
        if response.status_code >= 400:
            raise openai_sdk.APIStatusError(f"HTTP {response.status_code}", response=response, body=None)
        return response.json()  # a body that is not JSON: ValueError, a provider error upstream
