"""Settings: where they come from, how lists parse, which provider `auto` picks, token rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from backend.settings import ConfigurationError, Environment, Settings
from tests.conftest import make_settings

STRONG = "s" * 32


def settings_without_env_file(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_make_settings_ignores_a_dotenv_in_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("OPENAI_MODEL=from-dotenv\nMAX_PROMPT_LENGTH=7\n")
    monkeypatch.chdir(tmp_path)
    settings = make_settings()
    assert settings.openai_model == "gpt-4"
    assert settings.max_prompt_length == 4000


def test_dotenv_in_cwd_is_read_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text(
        "OPENAI_MODEL=from-dotenv\nMAX_PROMPT_LENGTH=7\nAPI_TOKEN=abc,def\nENVIRONMENT=testing\n"
    )
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.openai_model == "from-dotenv"
    assert settings.max_prompt_length == 7
    assert [t.get_secret_value() for t in settings.api_token] == ["abc", "def"]


def test_environment_variables_win_over_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("OPENAI_MODEL=from-dotenv\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_MODEL", "from-env")
    assert Settings().openai_model == "from-env"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("one", ["one"]),
        ("one,two", ["one", "two"]),
        (" one , two ,, three ,", ["one", "two", "three"]),
        ("", []),
    ],
)
def test_api_token_comma_list(raw: str, expected: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TOKEN", raw)
    settings = settings_without_env_file()
    assert [t.get_secret_value() for t in settings.api_token] == expected


def test_tokens_are_secret_in_repr() -> None:
    settings = settings_without_env_file(api_token="very-secret-token-value")
    assert "very-secret-token-value" not in repr(settings)
    assert "very-secret-token-value" not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("*", ["*"]),
        ("https://a.example", ["https://a.example"]),
        ("https://a.example, https://b.example", ["https://a.example", "https://b.example"]),
        ("https://a.example,,", ["https://a.example"]),
    ],
)
def test_allowed_origins_parsing(raw: str, expected: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_ORIGINS", raw)
    assert settings_without_env_file().allowed_origins == expected


def test_allowed_origins_default_is_any() -> None:
    assert settings_without_env_file().allowed_origins == ["*"]


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({}, "local"),
        ({"openai_api_key": "sk-1"}, "openai"),
        ({"anthropic_api_key": "sk-ant"}, "anthropic"),
        ({"openai_api_key": "sk-1", "anthropic_api_key": "sk-ant"}, "openai"),
        ({"openai_api_key": "   ", "anthropic_api_key": "sk-ant"}, "anthropic"),
        ({"openai_api_key": ""}, "local"),
    ],
)
def test_auto_provider_by_keys(keys: dict[str, str], expected: str) -> None:
    settings = settings_without_env_file(llm_provider="auto", **keys)
    assert settings.resolved_provider == expected


def test_auto_is_the_default_provider() -> None:
    assert settings_without_env_file().llm_provider == "auto"


def test_explicit_provider_wins_over_keys() -> None:
    settings = settings_without_env_file(llm_provider=" Local ", openai_api_key="sk-1")
    assert settings.resolved_provider == "local"


def test_auto_reads_keys_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env")
    assert settings_without_env_file().resolved_provider == "anthropic"


def test_production_refuses_missing_token() -> None:
    with pytest.raises((ConfigurationError, ValidationError), match="API_TOKEN"):
        settings_without_env_file(environment="production")


@pytest.mark.parametrize("tokens", ["short", "x" * 31, f"{STRONG},short"])
def test_production_refuses_short_tokens(tokens: str) -> None:
    with pytest.raises((ConfigurationError, ValidationError), match="API_TOKEN") as info:
        settings_without_env_file(environment="production", api_token=tokens)
    assert "32" in str(info.value)
    assert "short" not in str(info.value)  # the message never quotes a token


def test_production_accepts_long_tokens() -> None:
    settings = settings_without_env_file(environment="production", api_token=f"{STRONG},{'t' * 40}")
    assert settings.is_production
    assert settings.ensure_token() is None
    assert len(settings.api_token) == 2


def test_production_refusal_stops_the_app_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    from backend import create_app

    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("API_TOKEN", "too-short")
    monkeypatch.chdir(Path(__file__).parent)  # no .env here
    with pytest.raises((ConfigurationError, ValidationError), match="API_TOKEN"):
        create_app()


def test_development_generates_a_token() -> None:
    settings = settings_without_env_file(environment="development")
    assert settings.environment is Environment.development
    token = settings.ensure_token()
    assert token is not None and len(token) >= 32
    assert [t.get_secret_value() for t in settings.api_token] == [token]
    assert settings.ensure_token() is None  # only once


def test_generated_tokens_differ() -> None:
    first = settings_without_env_file().ensure_token()
    second = settings_without_env_file().ensure_token()
    assert first and second and first != second


def test_configured_token_is_kept() -> None:
    settings = settings_without_env_file(api_token="mine")
    assert settings.ensure_token() is None
    assert [t.get_secret_value() for t in settings.api_token] == ["mine"]


def test_app_exposes_generated_token_in_development(tmp_path: Path) -> None:
    from backend import create_app

    files = {  # the test's own, not the checkout's instance/
        "jobs_url": f"sqlite:///{tmp_path / 'jobs.sqlite3'}",
        "state_url": f"sqlite:///{tmp_path / 'state.sqlite3'}",
    }
    app = create_app(settings_without_env_file(llm_provider="local", cache_url="memory://", **files))
    token = app.config["GENERATED_TOKEN"]
    client = app.test_client()
    ok = client.post("/api/v1/webhook", json={"prompt": "Hello there."}, headers={"X-API-Token": token})
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("request_timeout", 0),
        ("port", 70000),
        ("max_prompt_length", 0),
        ("batch_max_items", 0),
        ("addin_namespace", "lower"),
    ],
)
def test_invalid_values_are_rejected(name: str, value: object) -> None:
    with pytest.raises(ValidationError):
        settings_without_env_file(**{name: value})


def test_max_content_length_fits_the_largest_valid_batch() -> None:
    settings = settings_without_env_file(max_prompt_length=100, batch_max_items=5)
    # five rows of 100 characters, each escaped to 12 bytes, must fit
    assert settings.max_content_length >= 5 * 100 * 12
    assert settings.max_content_length < 5 * 100 * 12 * 2 + 10_000


def test_python_m_backend_refuses_unknown_commands(capsys: pytest.CaptureFixture[str]) -> None:
    from backend.__main__ import main

    assert main(["serve-forever"]) == 2
    assert "usage: python -m backend [worker]" in capsys.readouterr().err
