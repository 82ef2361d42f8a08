"""Prometheus metrics: what an operator graphs (traffic, latency, provider health, cache,
queue depth, spend per token), served at GET /metrics (backend/metrics_api.py).

Under gunicorn every worker is its own process: prometheus-client's multiprocess mode
(PROMETHEUS_MULTIPROC_DIR, set by gunicorn.conf.py before the workers start) keeps each
process's values in a file and adds them up at scrape time, so a scrape shows the whole
server whichever worker answers it. Without that variable (development server, tests)
the values live in this process. Metric objects are module-level, made once per process:
prometheus-client refuses to register one twice, and every app of a process shares them.

No Flask here: the service and the pacing count into these from below the web layer;
GET /metrics itself is backend/metrics_api.py. Labels are bounded: routes are URL rules,
token names are the operator's own.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import multiprocess as prom_multiprocess

from backend.providers.base import Usage

disable_created_metrics()  # type: ignore[no-untyped-call]  # the *_created series double the output and graph nothing
REGISTRY = CollectorRegistry(auto_describe=True)
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

REQUESTS = Counter(
    "flaskllm_requests", "HTTP requests by route and status", ["route", "method", "status"], registry=REGISTRY
)
LATENCY = Histogram(
    "flaskllm_request_seconds",
    "Request latency by route",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
PROVIDER_CALLS = Counter(
    "flaskllm_provider_calls",
    "Provider calls by provider, model and outcome (ok or the error code)",
    ["provider", "model", "outcome"],
    registry=REGISTRY,
)
PROVIDER_SECONDS = Histogram(
    "flaskllm_provider_seconds",
    "Provider call latency, retries included",
    ["provider"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
    registry=REGISTRY,
)
CACHE = Counter(
    "flaskllm_cache", "Answer cache lookups by result (hit or miss)", ["result"], registry=REGISTRY
)
IN_FLIGHT = Gauge(
    "flaskllm_provider_in_flight", "Provider calls running", multiprocess_mode="livesum", registry=REGISTRY
)
WAITING = Gauge(
    "flaskllm_provider_waiting",
    "Rows waiting for a provider slot (PROVIDER_CONCURRENCY)",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
JOB_ROWS = Counter(
    "flaskllm_job_rows", "Job rows by stage: queued (submitted) or done", ["stage"], registry=REGISTRY
)
JOB_ROWS_RUNNING = Gauge(
    "flaskllm_job_rows_running", "Job rows being run now", multiprocess_mode="livesum", registry=REGISTRY
)
TOKENS = Counter(
    "flaskllm_llm_tokens",
    "LLM tokens by API token name and direction (input or output)",
    ["token", "direction"],
    registry=REGISTRY,
)
COST = Counter("flaskllm_cost_usd", "Priced spend in USD by API token name", ["token"], registry=REGISTRY)
UNPRICED = Counter(
    "flaskllm_unpriced_calls", "Provider calls of models without a price", ["token"], registry=REGISTRY
)


def spend(token: str, usage: Usage, cost_nano: int, unpriced_calls: int) -> None:
    """One request's or chunk's spend (added once per ledger write, not per row)."""
    if usage.input_tokens:
        TOKENS.labels(token, "input").inc(usage.input_tokens)
    if usage.output_tokens:
        TOKENS.labels(token, "output").inc(usage.output_tokens)
    if cost_nano:
        COST.labels(token).inc(cost_nano / 1_000_000_000)
    if unpriced_calls:
        UNPRICED.labels(token).inc(unpriced_calls)


def observe_request(route: str, method: str, status: int, seconds: float | None) -> None:
    REQUESTS.labels(route, method, str(status)).inc()
    if seconds is not None:
        LATENCY.labels(route).observe(seconds)


def exposition() -> bytes:
    """Every process's values when multiprocess, else this process's."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return bytes(generate_latest(registry))
    return bytes(generate_latest(REGISTRY))
