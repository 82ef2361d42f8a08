"""Hostile input: whatever a client sends, the answer is a 4xx (JSON once the app sees the
request), never a 500, never a hang; and text that is merely unusual succeeds.

Byte-level cases (lying Content-Length, oversized or NUL headers) run against real
servers, werkzeug's and gunicorn's (gevent, the production default), through raw
sockets read with a timeout. Everything else uses the test client.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from backend import create_app
from backend.observability import JSONFormatter
from scripts import benchlib
from tests.conftest import TOKEN, make_settings
from tests.hardening.live import http_request, raw_request, serve

ROOT = Path(__file__).resolve().parents[2]
AUTH = {"X-API-Token": TOKEN}
JSON_AUTH = {**AUTH, "Content-Type": "application/json"}
SMALL = {"max_prompt_length": 50, "batch_max_items": 3}  # body limit: 3 * (50*12 + 1024) + 4096


@dataclass
class Live:
    """A real server: its port, the token it accepts, and its header-line limit."""

    kind: str
    port: int
    token: str
    header_limit: int


@pytest.fixture(scope="module", params=["werkzeug", "gunicorn"])
def live(request: pytest.FixtureRequest) -> Iterator[Live]:
    if request.param == "werkzeug":
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        with serve(create_app(make_settings(log_level="WARNING", **SMALL))) as port:
            yield Live("werkzeug", port, TOKEN, 65536)
    else:
        env = {"LLM_PROVIDER": "local", "MAX_PROMPT_LENGTH": "50", "BATCH_MAX_ITEMS": "3"}
        with benchlib.gunicorn(env, worker_class="gevent", workers=1) as server:
            yield Live("gunicorn", server.port, benchlib.TOKEN, 8190)


def post(live: Live, body: bytes, **headers: str) -> bytes:
    fields = {"Content-Type": "application/json", "X-API-Token": live.token, **headers}
    return http_request("POST", "/api/v1/webhook", body, **fields)


# --- bytes on the wire --------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_content_length_smaller_than_the_body(live: Live) -> None:
    body = b'{"prompt": "Hello there. This is a fine e-mail."}'
    response = raw_request(live.port, post(live, body, **{"Content-Length": str(len(body) - 10)}))
    assert response.status == 400
    assert response.json()["error"]["code"] == "invalid_json"


@pytest.mark.timeout(20)
def test_content_length_larger_than_the_body(live: Live) -> None:
    """The client sends less than it announced and stops: 400, not a wait and not a 200."""
    body = b'{"prompt": "Hello there. This is a fine e-mail."}'
    data = post(live, body, **{"Content-Length": str(len(body) + 50)})
    response = raw_request(live.port, data, half_close=True)
    assert response.status == 400
    assert response.json()["error"]["code"] == "invalid_json"


@pytest.mark.timeout(20)
def test_content_length_over_the_body_limit_is_refused_unread(live: Live) -> None:
    data = post(live, b"{}", **{"Content-Length": "99999999999999999999"})
    response = raw_request(live.port, data)
    assert response.status == 413
    assert response.json()["error"]["code"] == "payload_too_large"


@pytest.mark.timeout(20)
@pytest.mark.parametrize("value", ["-5", "abc", "1, 2"])
def test_malformed_content_length(live: Live, value: str) -> None:
    response = raw_request(live.port, post(live, b'{"prompt": "hi"}', **{"Content-Length": value}))
    assert 400 <= response.status < 500


@pytest.mark.timeout(20)
def test_header_at_and_over_the_server_limit(live: Live) -> None:
    """At the limit the app answers (401 JSON); over it the server refuses with a 4xx, fast."""
    name = "X-API-Token"
    at = raw_request(live.port, post(live, b'{"prompt": "hi"}', **{name: "t" * (live.header_limit - 100)}))
    assert at.status == 401 and at.json()["error"]["code"] == "unauthorized"
    over = raw_request(live.port, post(live, b'{"prompt": "hi"}', **{name: "t" * (live.header_limit + 100)}))
    assert over.status in (400, 431)
    many = raw_request(live.port, post(live, b'{"prompt": "hi"}', **{f"X-H{i}": "v" for i in range(120)}))
    assert many.status in (400, 431)


@pytest.mark.timeout(20)
def test_nul_byte_in_a_header(live: Live) -> None:
    data = post(live, b'{"prompt": "Hello there. Fine."}', **{"X-API-Token": "a\x00b"})
    response = raw_request(live.port, data)
    assert response.status in (400, 401)  # gunicorn rejects the header; werkzeug passes it, auth fails


@pytest.mark.timeout(20)
def test_still_serving_after_the_abuse(live: Live) -> None:
    response = raw_request(live.port, post(live, b'{"prompt": "Hello there. This is a fine e-mail."}'))
    assert response.status == 200, response.body


# --- bodies at and over the limits --------------------------------------------------------


@pytest.fixture
def small() -> FlaskClient:
    return create_app(make_settings(**SMALL)).test_client()


def test_prompt_at_and_over_max_length(small: FlaskClient) -> None:
    at = small.post("/api/v1/webhook", json={"prompt": "a" * 48 + ". "}, headers=AUTH)
    assert at.status_code == 200, at.data
    over = small.post("/api/v1/webhook", json={"prompt": "a" * 51}, headers=AUTH)
    assert over.status_code == 400 and "at most 50" in over.get_json()["error"]["message"]


def test_largest_valid_body_fits_and_one_byte_more_does_not(small: FlaskClient) -> None:
    """MAX_CONTENT_LENGTH admits a full batch of full prompts written as \\u escapes."""
    limit = small.application.config["MAX_CONTENT_LENGTH"]
    prompt = "\U0001f600" * 48 + ". "  # an emoji is a surrogate pair: 12 bytes escaped
    items = [
        {"id": f"row-{i}", "prompt": prompt, "source": "email", "type": "summary", "language": "en"}
        for i in range(3)
    ]
    body = json.dumps({"items": items, "defaults": {"type": "summary"}}, ensure_ascii=True).encode()
    assert len(body) <= limit
    ok = small.post("/api/v1/batch", data=body, headers=JSON_AUTH)
    assert ok.status_code == 200, ok.data
    assert [row["index"] for row in ok.get_json()["results"]] == [0, 1, 2]
    padded = body + b" " * (limit + 1 - len(body))
    too_big = small.post("/api/v1/batch", data=padded, headers=JSON_AUTH)
    assert too_big.status_code == 413 and too_big.get_json()["error"]["code"] == "payload_too_large"


def test_batch_at_and_over_max_items(small: FlaskClient) -> None:
    rows = [{"prompt": f"Row {i}. Please call back."} for i in range(4)]
    at = small.post("/api/v1/batch", json={"items": rows[:3]}, headers=AUTH)
    assert at.status_code == 200 and at.get_json()["stats"]["total"] == 3
    over = small.post("/api/v1/batch", json={"items": rows}, headers=AUTH)
    assert over.status_code == 413 and over.get_json()["error"]["code"] == "too_many_items"


# --- malformed JSON and odd values --------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize("path", ["/api/v1/webhook", "/api/v1/batch"])
@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b'{"prompt": "x", "extra": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"items": [' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"]}",
        b'{"prompt": "x", "n": ' + b"9" * 5000 + b"}",
        b'{"prompt": NaN}',
        b'{"prompt": "x", "n": Infinity}',
        b'{"prompt": "a\x00b"}',
        b"\xff\xfe{}",
        b'{"prompt": "x"',
    ],
    ids=[
        "deep-array",
        "deep-value",
        "deep-objects",
        "5000-digits",
        "nan",
        "infinity",
        "raw-nul",
        "not-utf8",
        "truncated",
    ],
)
def test_malformed_json_is_a_400(client: FlaskClient, path: str, body: bytes) -> None:
    response = client.post(path, data=body, headers=JSON_AUTH)
    assert response.status_code == 400, response.data
    assert response.get_json()["error"]["code"] in ("invalid_json", "invalid_input")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"prompt": 1e400}', "valid string"),
        (b'{"prompt": "a\\u0000b"}', "NUL"),
        (b'{"prompt": "\\ud800 lonely"}', "surrogate"),
        (b'{"prompt": "x", "language": "\\udfff"}', "ISO 639-1"),
        (b'{"prompt": "x", "\\ud800": 1}', ""),
    ],
    ids=["huge-float", "escaped-nul", "lone-surrogate", "surrogate-language", "surrogate-key"],
)
def test_odd_values_are_invalid_input(client: FlaskClient, body: bytes, fragment: str) -> None:
    response = client.post("/api/v1/webhook", data=body, headers=JSON_AUTH)
    assert response.status_code == 400, response.data
    error = response.get_json()["error"]
    assert error["code"] == "invalid_input" and fragment in error["message"]


def test_odd_rows_fail_alone_and_every_row_is_answered(client: FlaskClient) -> None:
    body = (
        b'{"items": [{"prompt": "Fine row. Thanks.", "id": "\\ud800"}, {"prompt": "x", "id": 1e400},'
        b' {"prompt": "\\ud800"}, {"prompt": "ok \\ud83d\\ude00. Done.", "id": ' + b"9" * 4000 + b"},"
        b' null, "text", {"prompt": "a\\u0000"}]}'
    )
    response = client.post("/api/v1/batch", data=body, headers=JSON_AUTH)
    assert response.status_code == 200, response.data
    results = json.loads(response.data)  # strict: the answer is valid JSON
    rows = results["results"]
    assert [row["index"] for row in rows] == list(range(7))
    assert [row["ok"] for row in rows] == [True, False, False, True, False, False, False]
    assert rows[0]["id"] == "\ud800"  # echoed exactly, as a \\ud800 escape
    assert b"\\ud800" in response.data
    assert rows[3]["id"] == int("9" * 4000)


@pytest.mark.parametrize(
    "text",
    [
        "مرحبا بالجميع. الاجتماع يوم الجمعة في الساعة العاشرة. 👋🏽",
        "שלום לכולם. הפגישה נדחתה ליום חמישי. 🎉",
        "Team 👩‍💻 shipped 🚀 the release. Customers are happy 😀. Next: invoices 🧾.",
        "\u202eevil\u202c override characters are only text. Right?",
    ],
    ids=["arabic", "hebrew", "emoji-zwj", "bidi-controls"],
)
@pytest.mark.parametrize("provider", ["openai", "local"])
def test_rtl_and_emoji_text_succeeds(make_app: Callable[..., Flask], provider: str, text: str) -> None:
    client = make_app(provider=provider).test_client()
    response = client.post("/api/v1/webhook", json={"prompt": text}, headers=AUTH)
    assert response.status_code == 200, response.data
    summary = response.get_json()["summary"]
    # Copied from the text (the local summary capitalises its first letter), nothing invented.
    assert summary and set(summary.lower()) <= set(text.lower()) | set("summary: ")
    assert summary.encode() in response.data  # UTF-8 as is, not \\u escaped
    rows = client.post("/api/v1/batch", json={"items": [{"prompt": text, "type": "keywords"}]}, headers=AUTH)
    assert rows.status_code == 200 and rows.get_json()["results"][0]["ok"] is True


# --- the token stays out of the logs -------------------------------------------------------


def test_query_token_is_in_no_log_record(caplog: pytest.LogCaptureFixture, client: FlaskClient) -> None:
    wrong = "wrong-token-in-the-url-0123456789"
    with caplog.at_level(logging.DEBUG):
        ok = client.post(f"/api/v1/webhook?api_token={TOKEN}", json={"prompt": "Hi. Fine."})
        assert ok.status_code == 200
        assert client.post(f"/api/v1/webhook?api_token={wrong}", json={"prompt": "Hi."}).status_code == 401
        assert client.get(f"/api/v1/nothing?api_token={TOKEN}").status_code == 404
        assert client.put(f"/api/v1/webhook?api_token={TOKEN}").status_code == 405
        client.post(f"/api/v1/webhook?api_token={TOKEN}", json={"prompt": "[[mock:status=500]] x"})
    lines = [JSONFormatter().format(record) for record in caplog.records]
    assert sum('"route"' in line for line in lines) >= 5  # the requests were logged...
    for line in lines:
        assert TOKEN not in line and wrong not in line and "api_token" not in line  # ...without it


@pytest.mark.timeout(60)
def test_dev_server_logs_no_query_string(tmp_path: Path) -> None:
    """`python -m backend`: neither werkzeug's access log nor the app's line shows ?api_token=."""
    port = benchlib.free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "ENVIRONMENT": "development",
        "API_TOKEN": TOKEN,
        "LLM_PROVIDER": "local",
        "PORT": str(port),
        "CACHE_URL": "memory://",
        # Its files in the test's folder, never in the checkout's instance/ (the ledger
        # there would count these requests as a user's).
        "JOBS_URL": f"sqlite:///{tmp_path / 'jobs.sqlite3'}",
        "STATE_URL": f"sqlite:///{tmp_path / 'state.sqlite3'}",
        "LOG_LEVEL": "DEBUG",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        benchlib.wait_http(port, "/api/v1/health")
        base = f"http://127.0.0.1:{port}"
        assert (
            requests.post(
                f"{base}/api/v1/webhook?api_token={TOKEN}", json={"prompt": "Hi. Ok."}, timeout=10
            ).status_code
            == 200
        )
        assert requests.get(f"{base}/api/v1/missing?api_token={TOKEN}", timeout=10).status_code == 404
        assert requests.get(f"{base}/addin/nothing?api_token={TOKEN}", timeout=10).status_code == 404
        for line in (f"GET /api/v1/health?api_token={TOKEN} HTTP/1.1 x", f"GET /?api_token={TOKEN} HTTP/9"):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:  # an error-logged line
                sock.sendall(f"{line}\r\n\r\n".encode())
                assert b"400" in sock.recv(4096)
        time.sleep(0.2)
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=20)
    text = output.decode("utf-8", "replace")
    assert '"route": "/api/v1/webhook"' in text, text  # logging was on
    assert TOKEN not in text and "api_token" not in text, text


# --- CORS -----------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", ["https://evil.example.com", "null", "https://excel.example.com.evil.com"])
def test_cors_echoes_only_configured_origins(origin: str) -> None:
    allowed = "https://excel.example.com"
    client = create_app(make_settings(allowed_origins=f"{allowed},https://other.example.org")).test_client()
    for request_origin, expected in ((allowed, allowed), (origin, None)):
        headers = {"Origin": request_origin}
        ok = client.post("/api/v1/webhook", json={"prompt": "Hi. Fine."}, headers={**AUTH, **headers})
        denied = client.post("/api/v1/webhook", json={"prompt": "Hi."}, headers=headers)
        preflight = client.options(
            "/api/v1/webhook",
            headers={
                **headers,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "X-API-Token, Content-Type",
            },
        )
        assert (ok.status_code, denied.status_code) == (200, 401)
        for response in (ok, denied, preflight):
            assert response.headers.get("Access-Control-Allow-Origin") == expected, request_origin
    star = create_app(make_settings(allowed_origins="*")).test_client()
    response = star.get("/api/v1/health", headers={"Origin": origin})
    assert response.headers.get("Access-Control-Allow-Origin") in ("*", origin)  # "*": every origin
