"""All configuration, from environment variables and `.env`, validated once at start-up.

Names and defaults of the original spec are kept (ENVIRONMENT, API_TOKEN, RATE_LIMIT, ...);
everything added since is commented in `.env.example` and docs/architecture.md.
Secrets are `SecretStr` so they never show up in a repr, a log line or a traceback.
"""

from __future__ import annotations

import secrets
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIN_PRODUCTION_TOKEN_LENGTH = 32
# `.env` is read from the project folder (beside wsgi.py) and then from the working
# directory, which wins. PythonAnywhere's and uWSGI's workers do not start in the project
# folder: with the working directory alone, the spec's `.env` would be silently ignored
# and a production server would come up in development mode with a random token.
ENV_FILES = (Path(__file__).resolve().parent.parent / ".env", Path(".env"))


class Environment(str, Enum):
    development = "development"
    testing = "testing"
    production = "production"


class ConfigurationError(RuntimeError):
    """The settings cannot run a service (raised at start-up, never per request)."""


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Every setting of the service. Field names are the env var names, lower-cased."""

    model_config = SettingsConfigDict(
        env_file=ENV_FILES, env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    environment: Environment = Environment.development
    debug: bool = False
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = Field(5000, ge=0, le=65535)

    # Security
    api_token: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"])

    # Provider
    llm_provider: str = "auto"
    openai_api_key: SecretStr | None = None
    openai_model: str = "gpt-4"
    openai_base_url: str | None = None
    anthropic_api_key: SecretStr | None = None
    anthropic_model: str = "claude-sonnet-5-5"
    anthropic_base_url: str | None = None
    # Models a row may name (`model`), besides the provider's own (OPENAI_MODEL, ...), comma-separated
    models: Annotated[list[str], NoDecode] = Field(default_factory=list)
    request_timeout: float = Field(30.0, gt=0, le=600)
    max_retries: int = Field(2, ge=0, le=10)
    max_output_tokens: int = Field(1024, ge=16, le=32768)

    # Input limits
    max_prompt_length: int = Field(4000, ge=1, le=1_000_000)
    batch_max_items: int = Field(100, ge=1, le=10_000)
    batch_timeout: float = Field(50.0, gt=0, le=3600)

    # Pacing: provider calls in flight per server process (webhook, batch and jobs share it)
    provider_concurrency: int = Field(32, ge=1, le=1024)

    # Jobs: whole sheets on the task queue (Huey); empty JOBS_URL = a SQLite file in instance/
    jobs_url: str = ""
    job_max_items: int = Field(5000, ge=1, le=100_000)
    job_ttl: int = Field(7 * 24 * 3600, ge=60)
    job_workers: int = Field(4, ge=0, le=64)  # consumer threads per process taking job chunks
    job_chunk_size: int = Field(32, ge=1, le=1000)  # rows per queued task
    job_max_bytes: int = Field(64 * 1024 * 1024, ge=1024)  # request body of one job submission

    # Rate limits
    rate_limit_enabled: bool = True
    rate_limit: int = Field(60, ge=1)  # requests per token per minute (webhook, batch, job submit)
    poll_rate_limit: int = Field(1200, ge=1)  # job status/results reads per token per minute
    rate_limit_storage_uri: str = "memory://"

    # Cache
    cache_url: str = ""  # empty: sqlite file in the app's instance folder
    cache_ttl: int = Field(7 * 24 * 3600, ge=0)
    cache_max_entries: int = Field(10_000, ge=0)
    cache_l1_bytes: int = Field(32 * 1024 * 1024, ge=0)  # in-process answers per worker, estimated bytes

    # The offline provider: a spaCy model for entities when the [ner] extra is installed
    local_ner_model: str = "en_core_web_sm"

    # Task templates
    prompt_templates: Path | None = None

    # Operating it for a team: named tokens, usage, budgets (backend/state.py, backend/budgets.py)
    state_url: str = ""  # empty: a SQLite file in instance/; redis://... to share across machines
    admin_token: SecretStr | None = None  # reads everyone's usage and /metrics; >= 32 characters
    prices_file: Path | None = None  # a TOML price table replacing backend/prices.toml
    estimate_confirm_usd: float = Field(1.0, ge=0)  # the kit asks before a run estimated above this
    estimate_confirm_rows: int = Field(2000, ge=1)  # ... or with more rows to run when unpriced

    # Metrics: "loopback" (only from this machine), "admin" (ADMIN_TOKEN), or "off"
    metrics_access: str = Field("loopback", pattern=r"^(loopback|admin|off)$")

    # Fallback providers, in order, when the primary fails after its retries (comma-separated)
    llm_fallback: Annotated[list[str], NoDecode] = Field(default_factory=list)
    fallback_cooldown: float = Field(30.0, ge=0, le=3600)  # seconds a failed provider is skipped

    # Excel add-in
    addin_namespace: str = Field("LLM", pattern=r"^[A-Z][A-Z0-9]{0,31}$")
    public_url: str | None = None

    @field_validator("api_token", mode="before")
    @classmethod
    def _tokens(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("llm_fallback", mode="before")
    @classmethod
    def _fallback(cls, value: Any) -> Any:
        value = _split_csv(value)
        return [v.lower() for v in value] if isinstance(value, list) else value

    @field_validator("admin_token", mode="before")
    @classmethod
    def _admin_token(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, str) and len(value.strip()) < MIN_PRODUCTION_TOKEN_LENGTH:
            raise ValueError(
                f"ADMIN_TOKEN must be at least {MIN_PRODUCTION_TOKEN_LENGTH} characters (generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        return value.strip() if isinstance(value, str) else value

    @field_validator("models", mode="before")
    @classmethod
    def _models(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("llm_provider")
    @classmethod
    def _provider_name(cls, value: str) -> str:
        return value.strip().lower()

    @field_validator("openai_api_key", "anthropic_api_key", "prices_file", "prompt_templates", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _check_tokens(self) -> Settings:
        """Production refuses weak or missing tokens; development invents one."""
        if self.environment is Environment.production:
            if not self.api_token:
                raise ConfigurationError(
                    "API_TOKEN is required in production: set it to one or more "
                    "comma-separated random tokens of at least 32 characters."
                )
            short = [t for t in self.api_token if len(t.get_secret_value()) < MIN_PRODUCTION_TOKEN_LENGTH]
            if short:
                raise ConfigurationError(
                    f"API_TOKEN: every token must be at least {MIN_PRODUCTION_TOKEN_LENGTH} "
                    "characters in production (generate one with "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)."
                )
        return self

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.production

    @property
    def resolved_provider(self) -> str:
        """`auto` picks openai, then anthropic, by which key is set; else the offline `local`."""
        if self.llm_provider != "auto":
            return self.llm_provider
        if self.openai_api_key:
            return "openai"
        if self.anthropic_api_key:
            return "anthropic"
        return "local"

    def ensure_token(self) -> str | None:
        """Generate a development token when none is configured; return it so it can be printed."""
        if self.api_token:
            return None
        token = secrets.token_urlsafe(32)
        self.api_token = [SecretStr(token)]
        return token

    @property
    def max_content_length(self) -> int:
        """The largest valid request, and no larger.

        A batch of BATCH_MAX_ITEMS rows, each prompt at MAX_PROMPT_LENGTH characters that
        JSON may escape to 12 bytes each (a surrogate pair as two \\uXXXX), plus a
        per-row allowance for the other fields and the envelope.
        """
        per_item = self.max_prompt_length * 12 + 1024
        return self.batch_max_items * per_item + 4096
