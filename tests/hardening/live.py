"""Helpers for the hardening tests: the app on a real socket, and raw HTTP with a timeout.

Why a real server: a test client hands the app a parsed request, so it cannot show what
happens with a Content-Length that lies, a client that hangs up, or a header too big to
parse. Those need bytes on a socket, read with a timeout so a hang fails the test instead
of stalling the suite.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

# Cases schemathesis ran per "mode operation", for the end-of-run summary (conftest.py).
FUZZ_CASES = pytest.StashKey[dict[str, int]]()


@contextmanager
def serve(app: Flask) -> Iterator[int]:
    """`app` under werkzeug's threaded server on a free loopback port; yields the port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(port: int, data: bytes, *, half_close: bool = False, timeout: float = 5.0) -> RawResponse:
    """Send `data` as is and read one response; `half_close` ends our side after sending.

    Raises socket.timeout (failing the test) if the server neither answers nor closes.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"server closed without a response: {buffer[:200]!r}")
            buffer += chunk
        head, _, body = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return RawResponse(int(lines[0].split()[1]), headers, body[:length])


def http_request(method: str, path: str, body: bytes = b"", **headers: str) -> bytes:
    """The bytes of an HTTP/1.1 request with a correct Content-Length unless one is given."""
    fields = {"Host": "127.0.0.1", "Connection": "close"}
    fields.update({name.replace("_", "-"): value for name, value in headers.items()})
    if body and "Content-Length" not in fields:
        fields["Content-Length"] = str(len(body))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return head.encode("latin-1") + b"\r\n" + body
