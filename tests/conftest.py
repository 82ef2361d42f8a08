"""Shared fixtures: settings that never read a developer's `.env`, the mock LLM, apps, clients.

Every app gets its own settings object and its own state (`app.extensions`), so tests
never leak limits or cache entries into each other.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from backend import create_app
from backend.settings import Settings
from scripts.mock_llm import MockLLM

TOKEN = "test-token-0123456789-abcdefghijklmnop"
OTHER_TOKEN = "second-token-0123456789-qrstuvwxyz"

# Settings must come from the test, not from the shell or a developer's .env.
for _name in list(os.environ):
    if _name.upper() in Settings.model_fields or _name.lower() in Settings.model_fields:
        del os.environ[_name]


def make_settings(**overrides: Any) -> Settings:
    """Settings for a test: no .env, tokens set, limits off, cache in memory unless overridden."""
    values: dict[str, Any] = {
        "environment": "testing",
        "api_token": f"{TOKEN},{OTHER_TOKEN}",
        "llm_provider": "local",
        "cache_url": "memory://",
        "rate_limit_enabled": False,
        "log_level": "INFO",
        "jobs_url": f"sqlite:///{tempfile.mkdtemp(prefix='flaskllm-jobs-')}/jobs.sqlite3",
        "state_url": f"sqlite:///{tempfile.mkdtemp(prefix='flaskllm-state-')}/state.sqlite3",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def openai_settings(mock: MockLLM, **overrides: Any) -> Settings:
    """Test settings for the real openai SDK pointed at the mock server."""
    values: dict[str, Any] = {
        "llm_provider": "openai",
        "openai_api_key": "sk-test",
        "openai_base_url": mock.openai_base_url,
    }
    return make_settings(**{**values, **overrides})


@pytest.fixture(scope="session")
def mock_llm() -> Iterator[MockLLM]:
    """One mock LLM server for the session; reset before each test that uses it."""
    with MockLLM(latency_ms=0) as server:
        yield server


@pytest.fixture
def mock(mock_llm: MockLLM) -> MockLLM:
    mock_llm.reset()
    return mock_llm


@pytest.fixture
def make_app(mock: MockLLM) -> Callable[..., Flask]:
    """Build an app in front of the mock: `make_app(provider="anthropic", rate_limit=3)`."""

    def build(provider: str = "openai", **overrides: Any) -> Flask:
        values: dict[str, Any] = {"llm_provider": provider, "request_timeout": 5, "max_retries": 1}
        if provider == "openai":
            values.update(openai_api_key="sk-test", openai_base_url=mock.openai_base_url)
        elif provider == "anthropic":
            values.update(anthropic_api_key="sk-ant-test", anthropic_base_url=mock.url)
        values.update(overrides)
        app = create_app(make_settings(**values))
        app.config["TESTING"] = True
        return app

    return build


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def local_client() -> FlaskClient:
    """An app on the offline local provider (no mock server needed)."""
    return create_app(make_settings()).test_client()


@pytest.fixture
def auth() -> dict[str, str]:
    return {"X-API-Token": TOKEN}
