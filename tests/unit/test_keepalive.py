"""The openai direct route's keep-alive list, with in-process connections: which one a
call gets, what is closed, what is kept. Real sockets: tests/integration/test_openai_direct.py."""

from __future__ import annotations

from typing import Any

import httpcore2 as httpcore
import pytest

from backend.providers.keepalive import KeepAlive

URL = "http://provider.test/v1/chat/completions"


class Connection:
    """A connection in the shape of httpcore's: answers, or fails as told."""

    def __init__(self, name: int, fail: BaseException | None = None, expired: bool = False) -> None:
        self.name, self.fail, self.expired = name, fail, expired
        self.closed = False
        self.sent = 0

    def handle_request(self, request: httpcore.Request) -> httpcore.Response:
        if self.fail is not None:
            raise self.fail
        self.sent += 1
        return httpcore.Response(200, headers=[(b"X-Conn", str(self.name).encode())], content=b"{}")

    def is_idle(self) -> bool:
        return not self.closed

    def has_expired(self) -> bool:
        return self.expired

    def close(self) -> None:
        self.closed = True


class Pool:
    """Makes the connections, as the SDK transport's pool does (`create_connection`)."""

    def __init__(self, *planned: Connection) -> None:
        self.planned = list(planned)
        self.made: list[Connection] = []

    def create_connection(self, origin: Any) -> Connection:
        assert origin == httpcore.URL(URL).origin
        connection = self.planned.pop(0) if self.planned else Connection(len(self.made))
        self.made.append(connection)
        return connection


def call(keep: KeepAlive) -> str:
    status, headers, body = keep.request("POST", URL, [(b"Host", b"provider.test")], b"{}", {})
    assert (status, body) == (200, b"{}")
    return dict(headers)[b"X-Conn"].decode()


def test_the_connection_given_back_last_is_taken_first() -> None:
    pool = Pool()
    keep = KeepAlive(pool, URL)
    assert [call(keep) for _ in range(3)] == ["0", "0", "0"]  # one connection, reused
    assert len(pool.made) == 1


def test_a_stale_idle_connection_is_closed_not_used() -> None:
    pool = Pool()
    keep = KeepAlive(pool, URL)
    call(keep)
    first = pool.made[0]
    first.expired = True  # the server hung up while it was idle
    assert call(keep) == "1"
    assert first.closed and first.sent == 1


def test_a_connection_that_fails_is_closed_and_the_error_is_httpcores() -> None:
    broken = Connection(0, fail=httpcore.ReadError("reset"))
    pool = Pool(broken)
    keep = KeepAlive(pool, URL)
    with pytest.raises(httpcore.ReadError):
        call(keep)
    assert broken.closed and keep._idle == []
    assert call(keep) == "1"  # the next call, on a fresh connection


def test_a_connection_no_longer_available_is_replaced_once() -> None:
    gone = Connection(0, fail=httpcore.ConnectionNotAvailable())
    pool = Pool(gone)
    keep = KeepAlive(pool, URL)
    assert call(keep) == "1"
    assert gone.closed and len(pool.made) == 2


def test_no_more_than_keep_idle_are_kept() -> None:
    pool = Pool()
    keep = KeepAlive(pool, URL, keep_idle=2)
    taken = [keep._take() for _ in range(4)]  # four calls in flight at once
    for connection in taken:
        keep._give_back(connection)
    assert [c.closed for c in taken] == [False, False, True, True]
    assert len(keep._idle) == 2
