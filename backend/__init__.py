"""FlaskLLM: a small, secure Flask service that puts LLMs into Excel.

`create_app` is the only entry point; every piece of state lives in
`app.extensions["flaskllm"]` (never in module globals), so tests can build as many
independent apps as they like.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask
from flask_cors import CORS
from flask_limiter import Limiter

from backend import (
    addin,
    api,
    apidocs,
    cli,
    http_errors,
    jobs_api,
    limits,
    metrics_api,
    observability,
    team_api,
)
from backend.auth import TokenChecker
from backend.budgets import Budgets
from backend.cache import build_cache
from backend.estimate import Estimator
from backend.jobs import JobStore
from backend.jsonio import JSONProvider
from backend.ledger import Ledger
from backend.pacing import ProviderBudget
from backend.prices import Prices
from backend.providers import Provider, build_provider
from backend.service import Service
from backend.settings import Settings
from backend.state import StateStore, build_state_store
from backend.tasks import load_templates
from backend.version import __version__
from backend.worker import Consumer, JobQueue, build_huey

__all__ = ["AppState", "__version__", "create_app", "start_job_consumer"]


@dataclass
class AppState:
    """Everything one app instance owns."""

    settings: Settings
    tokens: TokenChecker
    provider: Provider
    service: Service
    limiter: Limiter
    jobs: JobQueue
    consumer: Consumer
    state_store: StateStore
    ledger: Ledger
    budgets: Budgets
    estimator: Estimator


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app from `settings` (default: environment and `.env`)."""
    settings = settings or Settings()
    observability.configure_logging(settings.log_level)
    generated = settings.ensure_token()
    app = Flask(__name__, instance_relative_config=True)
    app.config.update(MAX_CONTENT_LENGTH=settings.max_content_length, JSON_SORT_KEYS=False)
    app.json = JSONProvider(app)  # UTF-8, unsorted, safe with lone surrogates
    if generated:
        app.config["GENERATED_TOKEN"] = generated

    budget = ProviderBudget(settings.provider_concurrency)
    provider = build_provider(settings, budget)
    cache = build_cache(
        settings.cache_url,
        settings.cache_ttl,
        settings.cache_max_entries,
        app.instance_path,
        settings.cache_l1_bytes,
    )
    service = Service(settings, provider, load_templates(settings.prompt_templates), cache, budget)
    state_store = build_state_store(settings.state_url, app.instance_path)
    prices = Prices.load(settings.prices_file)
    budgets = Budgets(state_store)
    ledger = Ledger(state_store, prices, budgets)
    estimator = Estimator(settings, service, state_store, prices, budgets)
    huey = build_huey(settings, app.instance_path)
    jobs = JobQueue(huey, JobStore(huey.storage, settings.job_ttl, settings.job_chunk_size), service, ledger)

    observability.init_app(app, settings)
    http_errors.register_error_handlers(app)
    CORS(
        app,
        resources={r"/api/*": {}, r"/addin/*": {}},
        origins=settings.allowed_origins,
        allow_headers=["Content-Type", "X-API-Token", "Authorization", "X-Request-ID", "Idempotency-Key"],
        expose_headers=[
            "Retry-After",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
            "X-Request-ID",
        ],
        methods=["GET", "POST", "DELETE", "OPTIONS"],
        max_age=600,
        supports_credentials=False,
    )
    limiter = limits.build_limiter(app, settings)
    app.register_blueprint(api.bp)
    app.register_blueprint(jobs_api.bp)
    app.register_blueprint(apidocs.bp)
    app.register_blueprint(addin.bp)
    app.register_blueprint(team_api.bp)
    app.register_blueprint(metrics_api.bp)
    cli.register(app)
    # Wrapped per app: the limits live in this app's limiter.
    for endpoint in ("api.webhook", "api.batch", "jobs.submit"):
        app.view_functions[endpoint] = limits.llm_limit(limiter, settings)(app.view_functions[endpoint])
    for endpoint in ("jobs.status", "jobs.results", "jobs.cancel", "team.estimate", "team.usage"):
        app.view_functions[endpoint] = limits.poll_limit(limiter, settings)(app.view_functions[endpoint])

    app.extensions["flaskllm"] = AppState(
        settings,
        TokenChecker(settings.api_token, settings.admin_token, state_store),
        provider,
        service,
        limiter,
        jobs,
        Consumer(jobs, settings.job_workers),
        state_store,
        ledger,
        budgets,
        estimator,
    )
    return app


def start_job_consumer(app: Flask) -> None:
    """Run job chunks in this process (JOB_WORKERS threads): the embedded default.

    Called by `python -m backend`, by gunicorn.conf.py in each worker after the fork, and
    by `python -m backend worker`; never by `create_app`, so tests and CLI commands that
    build an app start no threads.
    """
    app.extensions["flaskllm"].consumer.start()
