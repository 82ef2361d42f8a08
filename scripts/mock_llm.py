"""A mock LLM server speaking the OpenAI and Anthropic wire formats.

Why it exists: the backend, the Excel e2e tests and the benchmarks must drive the *real* SDKs
(their retries, timeouts and exception classes) without a key or a network. This server answers
deterministically, fails on demand (globally via ``POST /_mock/config``, or per batch row via
directives in the user text) and counts calls, so tests can prove caching and retry behaviour.
Stdlib only, HTTP/1.1 keep-alive and no per-request logging, so it costs little CPU under load.

Directives, anywhere in the last user message, comma-combined and stripped before answering:
``[[mock:status=500]]``, ``[[mock:status=429,retry_after=1]]``, ``[[mock:delay=3.5]]``,
``[[mock:garbage]]``, ``[[mock:wrong_schema]]``, ``[[mock:drop]]``, ``[[mock:hang]]``,
``[[mock:off_schema]]`` (a structured answer outside the schema: a label not in the enum, no fields),
``[[mock:reply=exact text, commas too]]`` (must come last: it takes the text up to ``]]``) and
``[[mock:fail_times=2,status=429]]`` (the first 2 calls with this exact message fail).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import re
import select
import signal
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DIRECTIVE = re.compile(r"[ \t]*\[\[mock:(.*?)\]\][ \t]*", re.S)
LANG = re.compile(r"\b(?:into|to|language(?: code)?:?)\s+([a-z]{2})\b")
NEGATIVE = ("angry", "unacceptable", "terrible", "furious", "disappointed", "worst")
POSITIVE = ("thank", "great", "excellent", "love", "happy")
MODES = ("ok", "garbage", "wrong_schema", "drop", "hang", "off_schema")
MOCK_ORGS = frozenset({"Acme", "Contoso", "Fabrikam", "Northwind", "Globex"})
COUNT = re.compile(r"\b(?:return|list) the (\d+)\b")
DEFAULTS: dict[str, Any] = {
    "latency_ms": 0.0,
    "status": None,
    "retry_after": None,
    "mode": "ok",
    "fail_times": None,
}
# status -> (OpenAI error type, OpenAI code, Anthropic error type); others: 4xx/5xx fallbacks.
ERRORS = {
    401: ("invalid_request_error", "invalid_api_key", "authentication_error"),
    403: ("invalid_request_error", "permission_denied", "permission_error"),
    404: ("invalid_request_error", "model_not_found", "not_found_error"),
    413: ("invalid_request_error", "request_too_large", "request_too_large"),
    429: ("requests", "rate_limit_exceeded", "rate_limit_error"),
    529: ("server_error", "overloaded", "overloaded_error"),
}
OPENAI_PATHS = ("/v1/chat/completions", "/chat/completions")
ANTHROPIC_PATHS = ("/v1/messages", "/messages")


def text_of(content: Any) -> str:
    """Flatten a message content (a string or a list of text blocks) to plain text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""


def parse_directives(text: str) -> tuple[dict[str, Any], str]:
    """Return the ``[[mock:...]]`` settings in ``text`` and the text without them."""
    found: dict[str, Any] = {}
    for body in DIRECTIVE.findall(text):
        rest = body
        while rest:
            item, sep, rest = rest.partition(",")
            key, _, value = (s.strip() for s in item.partition("="))
            if key == "reply":
                found["reply"] = (item.partition("=")[2] + sep + rest).strip()
                break
            if key in ("status", "fail_times"):
                found[key] = int(value)
            elif key in ("retry_after", "delay"):
                found[key] = float(value)
            elif key in MODES or key == "mode":
                found["mode"] = value if key == "mode" else key
            if found.get("mode", "ok") not in MODES:
                raise ValueError(f"unknown mock mode: {found['mode']}")
    return found, DIRECTIVE.sub(" ", text).strip()


def answer(system: str, user: str) -> str:
    """The deterministic reply: the task is read from the system prompt (else the user text)."""
    task, low = (system or user).lower(), user.lower()
    if "sentiment" in task:
        label, score = (
            ("negative", -0.7)
            if any(w in low for w in NEGATIVE)
            else ("positive", 0.8)
            if any(w in low for w in POSITIVE)
            else ("neutral", 0.0)
        )
        return json.dumps({"label": label, "score": score})
    if "keywords" in task:
        words = dict.fromkeys(w for w in re.findall(r"[^\W\d_]+", low) if len(w) >= 5)
        asked = COUNT.search(task)
        return json.dumps(sorted(words, key=lambda w: -len(w))[: int(asked.group(1)) if asked else 5])
    if "entities" in task:
        names = list(dict.fromkeys(re.findall(r"\b[A-Z][a-zA-Z]+\b", user)))[:5]
        return json.dumps([{"text": n, "label": "MISC"} for n in names])
    if "translat" in task:
        found = LANG.search(f"{system}\n{user}".lower())
        return f"[{found.group(1) if found else '??'}] {user}"
    if "summar" in task:
        return "Summary: " + re.split(r"(?<=[.!?])\s+", user, maxsplit=1)[0][:120]
    return "Echo: " + user[:120]


def structured(schema: dict[str, Any], system: str, user: str, off_schema: bool = False) -> Any:
    """A deterministic answer that follows `schema` (OpenAI json_schema, Anthropic tool input).

    The schemas FlaskLLM sends are objects: {"label": enum} (classify), {"label", "score"}
    (sentiment), {"items": [...]} (keywords), {"entities": [...]}, or one string per field
    (extract; a field's value is taken from "field: value" in the text, else ""). With
    `off_schema` the answer breaks the schema the way a careless model would.
    """
    props = schema.get("properties") or {}
    label = props.get("label") or {}
    if "score" in props:
        return json.loads(answer(system, user))
    if "enum" in label:
        if off_schema:
            return {"label": "none of these"}
        low = user.casefold()
        choices = [str(c) for c in label["enum"]]
        named = [c for c in choices if c.casefold() in low]
        digest = int(hashlib.sha256(user.encode()).hexdigest(), 16)
        return {"label": named[0] if named else choices[digest % len(choices)]}
    if "items" in props:
        return {"items": json.loads(answer("keywords " + system, user))}
    if "entities" in props:
        found = json.loads(answer("entities", user))
        kinds = (props["entities"].get("items") or {}).get("properties", {}).get("label", {}).get("enum")

        def kind(name: str) -> str:
            label = "ORG" if name in MOCK_ORGS else "PERSON"
            return label if not kinds or label in kinds else str(kinds[-1])

        return {"entities": [{"text": e["text"], "label": kind(e["text"])} for e in found]}
    if off_schema:
        return {}
    record = {}
    for name in props:
        match = re.search(rf"\b{re.escape(name)}\s*[:=]\s*([^\n;,]+)", user, re.IGNORECASE)
        record[name] = match.group(1).strip() if match else ""
    return record


def requested_schema(style: str, body: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The structured-output schema the request asks for, and the Anthropic tool's name."""
    if style == "anthropic":
        tools = body.get("tools") or []
        tool = tools[0] if tools and isinstance(tools[0], dict) else {}
        return tool.get("input_schema"), str(tool.get("name", "answer"))
    fmt = body.get("response_format") or {}
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return (fmt.get("json_schema") or {}).get("schema"), ""
    return None, ""


class State:
    """Behaviour and counters shared by all handler threads; survives stop()/start()."""

    def __init__(self, latency_ms: float = 0.0) -> None:
        self.lock = threading.Lock()
        self.base_latency = float(latency_ms)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.config: dict[str, Any] = dict(DEFAULTS, latency_ms=self.base_latency)
            self.calls = 0
            self.by_path: dict[str, int] = {}
            self.by_prompt: dict[str, int] = {}
            self.by_model: dict[str, int] = {}
            self.structured = 0  # calls that asked for structured output (json_schema or a tool)
            self.input_tokens = 0  # usage reported in successful answers, as a ledger should see it
            self.output_tokens = 0

    def configure(self, updates: dict[str, Any]) -> dict[str, Any]:
        """Validate then apply a partial update; ``None`` clears a key back to its default."""
        clean: dict[str, Any] = {}
        for key, value in updates.items():
            if key not in DEFAULTS:
                raise ValueError(f"unknown config key: {key}")
            if value is None or key == "mode":
                clean[key] = DEFAULTS[key] if value is None else str(value)
            else:
                clean[key] = int(value) if key in ("status", "fail_times") else float(value)
        if clean.get("mode", "ok") not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        with self.lock:
            self.config.update(clean)
            return dict(self.config)

    def record(
        self, path: str, prompt_key: str, model: str = "", structured: bool = False
    ) -> tuple[dict[str, Any], int, int]:
        """Count one completion call; return the config to apply, call number, prompt's count."""
        with self.lock:
            self.calls += 1
            self.by_model[model] = self.by_model.get(model, 0) + 1
            self.structured += structured
            self.by_path[path] = self.by_path.get(path, 0) + 1
            nth = self.by_prompt[prompt_key] = self.by_prompt.get(prompt_key, 0) + 1
            cfg = dict(self.config)
            if cfg["fail_times"] is not None:  # a bounded outage: fail N calls, then recover
                if cfg["fail_times"] > 0:
                    self.config["fail_times"] -= 1
                    cfg["status"] = cfg["status"] or (None if cfg["mode"] != "ok" else 500)
                else:
                    cfg["status"], cfg["mode"] = None, "ok"
            return cfg, self.calls, nth

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "calls": self.calls,
                "by_path": dict(self.by_path),
                "by_prompt": dict(self.by_prompt),
                "by_model": dict(self.by_model),
                "structured": self.structured,
                "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens,
                "config": dict(self.config),
            }


class Handler(BaseHTTPRequestHandler):
    """One connection; answers every request with a Content-Length body to keep it alive."""

    protocol_version = "HTTP/1.1"
    server: MockServer

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None, cut: bool = False) -> None:
        """Write the whole response in one syscall; ``cut`` sends half the body then resets."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        head = (
            f"HTTP/1.1 {status} {self.responses.get(status, ('Error',))[0]}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        )
        head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        if self.close_connection:
            head += "Connection: close\r\n"
        self.wfile.write(head.encode() + b"\r\n" + (data[: len(data) // 2] if cut else data))
        self.log_request(status)
        if cut:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    def _error(self, style: str, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        fallback = (
            ("server_error", "server_error", "api_error")
            if status >= 500
            else ("invalid_request_error", "invalid_request", "invalid_request_error")
        )
        oa_type, oa_code, an_type = ERRORS.get(status, fallback)
        body = (
            {"type": "error", "error": {"type": an_type, "message": message}}
            if style == "anthropic"
            else {"error": {"message": message, "type": oa_type, "param": None, "code": oa_code}}
        )
        self._send(status, body, headers)

    def _wait(self, seconds: float) -> bool:
        """Sleep, but give up (return False) once the client hangs up or the server stops."""
        poller = select.poll()
        poller.register(self.connection, select.POLLIN)
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if poller.poll(left * 1000):
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return False
                except OSError:
                    return False
                time.sleep(left)  # pipelined data, not a hang-up: just sleep it out
        return True

    def do_GET(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?")[0]
        if path == "/_mock/stats":
            self._send(200, self.server.state.stats())
        elif path == "/_mock/health":
            self._send(200, {"ok": True})
        else:
            self._error("openai", 404, f"no route GET {path}")

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path, state = self.path.split("?")[0], self.server.state
        style = "anthropic" if path in ANTHROPIC_PATHS else "openai"
        try:
            body = json.loads(raw or b"{}")
            if path in OPENAI_PATHS or path in ANTHROPIC_PATHS:
                self._complete(path, style, body)
            elif path == "/_mock/reset":
                state.reset()
                self._send(200, {"ok": True})
            elif path == "/_mock/config":
                self._send(200, state.configure(body))
            else:
                self._error(style, 404, f"no route POST {path}")
        except (ValueError, TypeError, AttributeError) as exc:
            self._error(style, 400, f"mock: bad request: {exc}")

    def _complete(self, path: str, style: str, body: dict[str, Any]) -> None:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self._error(style, 400, "messages: must be a non-empty list")
        system = (
            text_of(body.get("system"))
            if style == "anthropic"
            else "\n".join(
                text_of(m.get("content")) for m in messages if m.get("role") in ("system", "developer")
            )
        )
        raw_user = next(
            (text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
        )
        key = hashlib.sha256(raw_user.encode()).hexdigest()[:16]
        schema, tool = requested_schema(style, body)
        model = str(body.get("model") or "mock-model")
        cfg, call_no, nth = self.server.state.record(path, key, model, schema is not None)
        found, user = parse_directives(raw_user)
        status, mode = found.get("status", cfg["status"]), found.get("mode", cfg["mode"])
        if "fail_times" in found:  # per-prompt outage: fail the first N calls, then recover
            failing = nth <= found["fail_times"]
            status = (status or (500 if mode == "ok" else None)) if failing else None
            mode = mode if failing else "ok"
        retry_after = found.get("retry_after", cfg["retry_after"])
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        if not self._wait(found.get("delay", cfg["latency_ms"] / 1000)) or (
            mode == "hang" and not self._wait(3600)
        ):
            self.close_connection = True
            return None
        if body.get("stream"):
            return self._error(style, 400, "mock: stream=true is not supported")
        if status is not None and status >= 400:
            return self._error(style, status, f"mock: simulated HTTP {status}", headers)
        if mode == "garbage":
            return self._send(200, b'<html>upstream garbage, not JSON {"choices": [', headers)
        if mode == "wrong_schema":
            return self._send(200, {"hello": "world"}, headers)
        schema, tool = requested_schema(style, body)
        data = (
            None
            if schema is None or "reply" in found
            else structured(schema, system, user, mode == "off_schema")
        )
        content = (
            found["reply"]
            if "reply" in found
            else json.dumps(data)
            if data is not None
            else answer(system, user)
        )
        usage_in = sum(len(text_of(m.get("content")).split()) for m in messages)
        usage_in += len(system.split()) if style == "anthropic" else 0  # OpenAI's is a message
        usage_out = len(content.split())
        if mode != "drop":  # a cut-off answer never reaches the client, nor its usage
            with self.server.state.lock:
                self.server.state.input_tokens += usage_in
                self.server.state.output_tokens += usage_out
        if style == "anthropic":
            reply: dict[str, Any] = {
                "id": f"msg_mock{call_no}",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": (
                    [{"type": "tool_use", "id": f"toolu_mock{call_no}", "name": tool, "input": data}]
                    if data is not None
                    else [{"type": "text", "text": content}]
                ),
                "stop_reason": "tool_use" if data is not None else "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": usage_in, "output_tokens": usage_out},
            }
        else:
            reply = {
                "id": f"chatcmpl-mock{call_no}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "logprobs": None,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                    }
                ],
                "usage": {
                    "prompt_tokens": usage_in,
                    "completion_tokens": usage_out,
                    "total_tokens": usage_in + usage_out,
                },
            }
        return self._send(200, reply, headers, cut=mode == "drop")


class MockServer(ThreadingHTTPServer):
    """Threaded server that tracks open connections so stop() can cut keep-alive clients."""

    daemon_threads = True
    block_on_close = False  # stop() must not wait for handler threads
    request_queue_size = 512

    def __init__(self, addr: tuple[str, int], state: State, verbose: bool = False) -> None:
        self.state, self.verbose = state, verbose
        self.conns: set[socket.socket] = set()
        self.conns_lock = threading.Lock()
        super().__init__(addr, Handler)

    def server_bind(self) -> None:  # skip HTTPServer's getfqdn() reverse lookup: start fast
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.conns_lock:
            self.conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.conns_lock:
            self.conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if self.verbose:  # clients hanging up mid-answer are expected, not worth a traceback
            super().handle_error(request, client_address)

    def close_all(self) -> None:
        with self.conns_lock:
            conns = list(self.conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class MockLLM:
    """In-process handle: ``with MockLLM() as mock:`` serves on a free port in a thread."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, latency_ms: float = 0.0, verbose: bool = False
    ) -> None:
        self.host, self.port, self.verbose = host, port, verbose
        self.state = State(latency_ms)
        self._server: MockServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    def start(self) -> MockLLM:
        """Listen (again on the same port after stop(), so "provider recovers" can be tested)."""
        if self._server is None:
            self._server = MockServer((self.host, self.port), self.state, self.verbose)
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever, args=(0.05,), name=f"mock-llm-{self.port}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listener and every open connection, so clients see the provider down."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.close_all()
            if self._thread is not None:
                self._thread.join(timeout=2)

    def configure(self, **settings: Any) -> dict[str, Any]:
        return self.state.configure(settings)

    def reset(self) -> None:
        self.state.reset()

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    def calls(self) -> int:
        return int(self.stats()["calls"])

    def __enter__(self) -> MockLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Mock OpenAI + Anthropic server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    mock = MockLLM(args.host, args.port, args.latency_ms, args.verbose).start()
    print(f"MOCK_LLM_LISTENING {mock.url}", flush=True)
    while not done.wait(1):
        pass
    mock.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
