"""OpenAI and every OpenAI-compatible server (Azure, Ollama, vLLM) through the official SDK."""

from __future__ import annotations

import json
from typing import Any

import openai as openai_sdk

try:  # the HTTP library the SDK is built on: httpx2 + httpcore2 in openai 3, httpx before
    import httpcore2 as httpcore
    from httpx2 import URL as HTTPURL
    from httpx2 import HTTPTransport
    from httpx2 import Request as HTTPRequest
    from httpx2 import Response as HTTPResponse
except ImportError:  # pragma: no cover - older SDKs
    import httpcore  # type: ignore[no-redef]
    from httpx import URL as HTTPURL  # type: ignore[no-redef]
    from httpx import HTTPTransport  # type: ignore[no-redef]
    from httpx import Request as HTTPRequest  # type: ignore[no-redef]
    from httpx import Response as HTTPResponse  # type: ignore[no-redef]

from backend.errors import InvalidAnswer, ProviderError
from backend.providers.base import Completion, Job, Usage
from backend.providers.keepalive import KeepAlive
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


_CONNECTION_ERRORS = (
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.ProxyError,
    httpcore.UnsupportedProtocol,
)


class _DirectRoute:
    """POST /chat/completions on connections made by the SDK client's own HTTP transport,
    with the SDK's URL, headers and exception types.

    Why: at 0 ms upstream the HTTP call is most of a proxied row's CPU. The SDK's per-call
    request building (options models, deep copies, header merging) was a fifth of a call;
    httpx's Request and Response objects on top of the pool another quarter of the HTTP
    call (measured: 520 against 390 microseconds of CPU per call to the mock); and the
    pool's bookkeeping grows with its connections (providers/keepalive.py). The connections
    are the transport pool's own kind: same TLS context, proxy and keep-alive expiry.

    The URL and headers are the ones the SDK would send (its `default_headers` and
    `auth_headers`), computed once. No Accept-Encoding is sent; a compressed answer is
    still decoded. Only for a plain `openai.OpenAI` on a stock transport: Azure's client
    rewrites paths per deployment, and a client with hooks or auth of its own goes
    through httpx.
    """

    def __init__(self, url: str, headers: dict[str, str], pool: Any) -> None:
        self.url = url
        self.connections = KeepAlive(pool, url)
        self.core_url = httpcore.URL(url)  # parsed once (urllib's parse was 20 us a call)
        self.headers = [(b"Host", HTTPURL(url).netloc)] + [
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
        ]

    @classmethod
    def of(cls, client: Any) -> _DirectRoute | None:
        if not isinstance(client, openai_sdk.OpenAI) or isinstance(client, openai_sdk.AzureOpenAI):
            return None
        http = client._client  # the SDK's httpx client
        url = str(client.base_url).rstrip("/") + "/chat/completions"
        transport = http._transport_for_url(HTTPURL(url))  # honours proxies and mounts
        hooked = any(http.event_hooks.values()) or http.auth is not None
        pool = getattr(transport, "_pool", None)
        if hooked or type(transport) is not HTTPTransport or not hasattr(pool, "create_connection"):
            return None
        merged = {**client.default_headers, **client.auth_headers}
        headers = {k: v for k, v in merged.items() if isinstance(v, str)}  # Omit() means unset
        headers["Content-Type"] = "application/json"
        return cls(url, headers, pool)

    def post(self, body: dict[str, Any], seconds_left: float) -> Any:
        content = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
        headers = [*self.headers, (b"Content-Length", str(len(content)).encode())]
        timeout = dict.fromkeys(("connect", "read", "write"), seconds_left)  # no pool to wait for
        try:
            status, answer_headers, data = self.connections.request(
                "POST", self.core_url, headers=headers, content=content, extensions={"timeout": timeout}
            )
        except httpcore.TimeoutException as exc:
            raise openai_sdk.APITimeoutError(request=self._request(content)) from exc
        except _CONNECTION_ERRORS as exc:
            raise openai_sdk.APIConnectionError(request=self._request(content)) from exc
        if status >= 400 or any(name.lower() == b"content-encoding" for name, _ in answer_headers):
            request = self._request(content)
            response = HTTPResponse(status, headers=answer_headers, content=data, request=request)
            if response.status_code >= 400:
                raise openai_sdk.APIStatusError(f"HTTP {response.status_code}", response=response, body=None)
            data = response.content  # decoded
        return json.loads(data)  # a body that is not JSON: ValueError, a provider error upstream

    def _request(self, content: bytes) -> HTTPRequest:
        """The request as httpx would have built it, for the SDK's exceptions (errors only)."""
        return HTTPRequest("POST", self.url, headers=self.headers, content=content)
