"""Token checking: several tokens, constant-time comparison, header / Bearer / query."""

from __future__ import annotations

import hmac

import pytest
from flask import Flask, g
from pydantic import SecretStr

from backend.auth import TokenChecker, client_id, identify, presented_token, require_token
from backend.errors import Unauthorized

TOKENS = ["alpha-token-0123456789", "beta-token-9876543210", "gamma-token-abcdefghij"]


@pytest.fixture
def checker() -> TokenChecker:
    return TokenChecker([SecretStr(t) for t in TOKENS])


@pytest.mark.parametrize("token", TOKENS)
def test_every_configured_token_matches(checker: TokenChecker, token: str) -> None:
    assert checker.matches(token)


@pytest.mark.parametrize(
    "token",
    ["", "alpha", "alpha-token-012345678", "alpha-token-01234567890", "ALPHA-TOKEN-0123456789", "x"],
)
def test_other_tokens_do_not_match(checker: TokenChecker, token: str) -> None:
    assert not checker.matches(token)


def test_no_tokens_configured_matches_nothing() -> None:
    assert not TokenChecker([]).matches("")
    assert not TokenChecker([]).matches("anything")


def test_checker_keeps_no_plain_token(checker: TokenChecker) -> None:
    state = repr(vars(checker)).encode()
    for token in TOKENS:
        assert token.encode() not in state


def test_comparison_is_constant_time_and_visits_every_token(
    checker: TokenChecker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hmac.compare_digest is used, once per configured token, even after the first match."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("backend.auth.hmac.compare_digest", spy)
    assert checker.matches(TOKENS[0])
    assert len(calls) == len(TOKENS)
    assert all(len(a) == len(b) == 32 for a, b in calls)  # digests: equal length whatever the input
    calls.clear()
    assert not checker.matches("nope")
    assert len(calls) == len(TOKENS)


def test_client_id_is_short_stable_and_not_the_token() -> None:
    cid = client_id(TOKENS[0])
    assert cid == client_id(TOKENS[0])
    assert cid != client_id(TOKENS[1])
    assert len(cid) == 12
    assert TOKENS[0] not in cid


@pytest.fixture
def app() -> Flask:
    return Flask("auth-test")


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        ({"X-API-Token": "from-header"}, "", "from-header"),
        ({"X-API-Token": "  padded  "}, "", "padded"),
        ({"Authorization": "Bearer from-bearer"}, "", "from-bearer"),
        ({"Authorization": "bearer lower-case-scheme"}, "", "lower-case-scheme"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "", None),
        ({}, "api_token=from-query", "from-query"),
        ({"X-API-Token": "header-wins"}, "api_token=query-loses", "header-wins"),
        ({"X-API-Token": "header-wins", "Authorization": "Bearer bearer-loses"}, "", "header-wins"),
        ({"Authorization": "Bearer bearer-wins"}, "api_token=query-loses", "bearer-wins"),
        ({}, "", None),
        ({"X-API-Token": ""}, "", None),
    ],
)
def test_presented_token(app: Flask, headers: dict[str, str], query: str, expected: str | None) -> None:
    with app.test_request_context("/x", query_string=query, headers=headers):
        assert presented_token() == expected


def test_identify_sets_client_hash(app: Flask, checker: TokenChecker) -> None:
    with app.test_request_context("/x", headers={"X-API-Token": TOKENS[1]}):
        assert identify(checker) == client_id(TOKENS[1])
        assert g.client == client_id(TOKENS[1])
    with app.test_request_context("/x", query_string={"api_token": "wrong"}):
        assert identify(checker) is None
        assert g.client is None


def test_require_token_wraps_a_view(app: Flask, checker: TokenChecker) -> None:
    @require_token(lambda: checker)
    def view() -> str:
        return "ok"

    with app.test_request_context("/x", query_string={"api_token": TOKENS[2]}):
        assert view() == "ok"
    for headers in ({}, {"X-API-Token": "wrong"}):
        with app.test_request_context("/x", headers=headers), pytest.raises(Unauthorized) as info:
            view()
        assert info.value.message == "Missing or invalid API token."  # same for missing and wrong
