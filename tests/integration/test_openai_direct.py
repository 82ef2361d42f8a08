"""The openai provider's direct route: straight into the SDK client's connection pool.

Its errors (timeouts, refused connections, 4xx/5xx with Retry-After, bodies that are not
JSON) are proven against the mock in test_errors.py and test_cache_integration.py; here:
which clients take the route, that it keeps the SDK's connections, and compressed answers.
"""

from __future__ import annotations

import gzip
import json
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openai as openai_sdk
import pytest

from backend.providers.base import Job
from backend.providers.openai import OpenAIProvider
from scripts.mock_llm import MockLLM
from tests.concurrently import all_at_once

DATA = Path(__file__).resolve().parent.parent / "data"
TLS_CERT, TLS_KEY = DATA / "loopback-tls.crt", DATA / "loopback-tls.key"  # CN and SAN 127.0.0.1, 100 years
ANSWER = {
    "model": "gpt-test",
    "choices": [{"message": {"role": "assistant", "content": "Zusammenfassung: alles grün"}}],
    "usage": {"prompt_tokens": 7, "completion_tokens": 3},
}


def job() -> Job:
    return Job(task="summary", text="hello", system="Summarise.", user="hello")


def provider_for(client: Any) -> OpenAIProvider:
    return OpenAIProvider(client, "gpt-test", max_retries=0)


def test_a_plain_sdk_client_takes_the_direct_route_on_its_own_connections(recorder: Recorder) -> None:
    client = openai_sdk.OpenAI(api_key="sk-test", base_url=recorder.url, max_retries=0)
    provider = provider_for(client)
    assert provider._direct is not None
    answers = [provider.attempt(job(), 5.0) for _ in range(5)]
    assert [(a.text, a.usage.input_tokens) for a in answers] == [("Zusammenfassung: alles grün", 7)] * 5
    assert len(recorder.peers) == 1  # one keep-alive connection, the SDK pool's, reused by every call
    headers, body = recorder.seen[-1]
    assert recorder.paths == ["/v1/chat/completions"] * 5
    assert headers["Host"] == f"127.0.0.1:{recorder.port}"
    assert headers["Authorization"] == "Bearer sk-test"
    assert headers["User-Agent"].startswith("OpenAI/Python")
    assert headers["Content-Type"] == "application/json"
    assert body["model"] == "gpt-test" and body["messages"][1] == {"role": "user", "content": "hello"}


def test_a_client_with_hooks_of_its_own_goes_through_httpx(mock: MockLLM) -> None:
    seen: list[str] = []
    http = openai_sdk.DefaultHttpxClient(
        event_hooks={"request": [lambda request: seen.append(str(request.url))]}
    )
    client = openai_sdk.OpenAI(
        api_key="sk-test", base_url=mock.openai_base_url, http_client=http, max_retries=0
    )
    provider = provider_for(client)
    assert provider._direct is None
    assert provider.attempt(job(), 5.0).text
    assert seen == [mock.openai_base_url.rstrip("/") + "/chat/completions"]


class Recorder:
    """A chat-completions server on loopback that records what it was sent."""

    def __init__(self, mode: str) -> None:
        """`mode`: plain; gzip (every answer compressed); hang_up (the server closes each
        connection right after its answer, without saying so); close (it says so); tls
        (HTTPS with the self-signed loopback certificate in tests/data)."""
        self.mode = mode
        self.seen: list[tuple[dict[str, str], Any]] = []
        self.paths: list[str] = []
        self.peers: set[Any] = set()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like a provider

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                recorder.seen.append((dict(self.headers.items()), json.loads(raw)))
                recorder.paths.append(self.path)
                recorder.peers.add(self.client_address)
                body = json.dumps(ANSWER, ensure_ascii=False).encode()
                if mode == "gzip":
                    body = gzip.compress(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if mode == "gzip":
                    self.send_header("Content-Encoding", "gzip")
                if mode == "close":
                    self.send_header("Connection", "close")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                if mode in ("hang_up", "close"):
                    self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        scheme = "http"
        if mode == "tls":
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(TLS_CERT, TLS_KEY)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.port}/v1"


@pytest.fixture(params=["plain"])
def recorder(request: pytest.FixtureRequest) -> Iterator[Recorder]:
    server = Recorder(request.param)
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


@pytest.mark.parametrize("recorder", ["gzip"], indirect=True)
def test_a_compressed_answer_is_decoded(recorder: Recorder) -> None:
    """Some proxies compress every answer, asked or not."""
    provider = provider_for(openai_sdk.OpenAI(api_key="sk-test", base_url=recorder.url, max_retries=0))
    assert provider._direct is not None
    answer = provider.attempt(job(), 5.0)
    assert (answer.text, answer.usage.input_tokens, answer.usage.output_tokens) == (
        "Zusammenfassung: alles grün",
        7,
        3,
    )
    assert "Accept-Encoding" not in recorder.seen[-1][0]


@pytest.mark.parametrize("recorder", ["hang_up", "close"], indirect=True)
def test_a_connection_the_server_closed_is_not_reused(recorder: Recorder) -> None:
    """Providers and proxies drop idle keep-alive connections, said or unsaid: the next
    call gets a fresh connection, not an error (and no retry is needed: max_retries=0)."""
    provider = provider_for(openai_sdk.OpenAI(api_key="sk-test", base_url=recorder.url, max_retries=0))
    assert provider._direct is not None
    kept = []
    for _ in range(4):
        assert provider.attempt(job(), 5.0).text == "Zusammenfassung: alles grün"
        kept.append(len(provider._direct.connections._idle))
        time.sleep(0.05)  # the server's FIN arrives
    assert len(recorder.peers) == 4  # a new connection for every call
    # Said: never kept. Unsaid: kept, then found closed and dropped when the next call looks.
    assert kept == ([0] * 4 if recorder.mode == "close" else [1] * 4)


def test_concurrent_calls_use_as_many_connections_as_calls_in_flight(recorder: Recorder) -> None:
    """Each call holds its own connection; finished ones are reused, most recent first,
    and no more than KEEP_IDLE are kept."""
    provider = provider_for(openai_sdk.OpenAI(api_key="sk-test", base_url=recorder.url, max_retries=0))
    assert provider._direct is not None
    connections = provider._direct.connections
    connections._keep_idle = 3

    def five_calls() -> None:
        for _ in range(5):
            provider.attempt(job(), 5.0)

    failures = all_at_once(five_calls, threads=6)
    assert failures == [] and len(recorder.paths) == 30
    assert len(recorder.peers) < 30 and len(connections._idle) <= 3  # reused, and no more kept
    before = len(recorder.peers)
    provider.attempt(job(), 5.0)  # a kept connection is reused
    assert len(recorder.peers) == before


@pytest.mark.parametrize("recorder", ["tls"], indirect=True)
def test_https_goes_the_direct_route_with_the_clients_own_tls_settings(recorder: Recorder) -> None:
    """Real providers are HTTPS: the connections are made with the SDK client's TLS context,
    so a certificate it trusts works (and the connection is reused), one it does not is a
    connection error, as the SDK itself would raise."""
    trusting = openai_sdk.DefaultHttpxClient(verify=ssl.create_default_context(cafile=str(TLS_CERT)))
    provider = provider_for(
        openai_sdk.OpenAI(api_key="sk-test", base_url=recorder.url, http_client=trusting, max_retries=0)
    )
    assert provider._direct is not None
    assert [provider.attempt(job(), 5.0).text for _ in range(3)] == ["Zusammenfassung: alles grün"] * 3
    assert len(recorder.peers) == 1 and recorder.seen[-1][0]["Host"] == f"127.0.0.1:{recorder.port}"

    stranger = provider_for(openai_sdk.OpenAI(api_key="sk-test", base_url=recorder.url, max_retries=0))
    assert stranger._direct is not None
    with pytest.raises(openai_sdk.APIConnectionError):
        stranger.attempt(job(), 5.0)
