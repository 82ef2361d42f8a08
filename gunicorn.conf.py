"""Gunicorn settings for FlaskLLM: `gunicorn wsgi:application` from the project folder.

Gunicorn reads this file from the current directory by itself; every value below comes
from an environment variable with a default fit for one small server, and a command-line
flag still wins over both.

Why gevent by default: a request mostly waits on the LLM provider (seconds), and a thread
worker serves at most `threads / provider latency` requests per second; gevent serves
hundreds of waiting requests per worker for little memory (measured: docs/deployment.md).
GUNICORN_WORKER_CLASS=gthread is the fallback where
gevent cannot be installed; give it enough GUNICORN_THREADS for the expected concurrency.

    GUNICORN_WORKER_CLASS   gevent | gthread | sync            (gevent)
    GUNICORN_WORKERS        worker processes                   (CPU cores available)
    GUNICORN_THREADS        threads per gthread worker          (64)
    GUNICORN_CONNECTIONS    connections per gevent worker       (1000)
    GUNICORN_BIND           host:port, or unix:/run/...sock     (HOST:PORT, 127.0.0.1:5000)
    GUNICORN_ACCESSLOG      file or "-" for stdout; unset: off  (off: the app logs a JSON
                            line per request already)
    GUNICORN_KEEPALIVE      seconds an idle keep-alive connection is kept   (5)
    FORWARDED_ALLOW_IPS     proxies trusted for X-Forwarded-Proto           (127.0.0.1,::1)
    HOST, PORT, REQUEST_TIMEOUT, BATCH_TIMEOUT   the app's own settings, read through the
                            app's `Settings` (environment and `.env`, exactly as the app
                            reads them), so gunicorn never kills a request the app is still
                            allowed to run and binds where `.env` says
"""

from __future__ import annotations

import ctypes
import gc
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

# Metrics from every worker in one scrape (prometheus-client's multiprocess mode): each
# worker writes its values to files in this folder, /metrics adds them up. Set before any
# worker imports prometheus-client; a fresh folder per server start (removed at exit), so
# old workers' counts vanish.
_own_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _own_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="flaskllm-metrics-")

_ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(_ROOT))  # `backend`, wherever gunicorn starts


def _settings_class() -> Any:
    """backend/settings.py alone, not the `backend` package: importing the package would load
    the whole app (Flask, the SDKs, ssl, redis) into the master, which serves no request. It
    would cost every deployment ~30 MiB of master RSS, and gevent would patch ssl after the
    workers inherited it unpatched. settings.py imports only pydantic-settings."""
    spec = importlib.util.spec_from_file_location("flaskllm_conf_settings", _ROOT / "backend" / "settings.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the module's annotations through it
    spec.loader.exec_module(module)
    return module.Settings


Settings = _settings_class()
app_settings = Settings()  # the one owner of every app setting, `.env` included


def _number(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        return default


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this container may use, not the host's
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _limit_malloc_arenas(arenas: int) -> None:
    """glibc gives busy threads their own malloc arenas (up to 8 per core) and rarely hands
    their memory back: with 64 threads a worker's RSS creeps up for hours. Two arenas keep
    it flatter (scripts/loadtest.py, 20,000 requests: +9-10 % RSS, +3-7 % with two).
    Set before the workers fork, so they inherit it; MALLOC_ARENA_MAX, if set, wins."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gevent")
workers = int(_number("GUNICORN_WORKERS", _cores()))
threads = int(_number("GUNICORN_THREADS", 64)) if worker_class == "gthread" else 1
worker_connections = int(_number("GUNICORN_CONNECTIONS", 1000))
if threads > 1:
    _limit_malloc_arenas(2)

bind = [os.environ.get("GUNICORN_BIND") or f"{app_settings.host}:{app_settings.port}"]

# The longest a request may legitimately run: one provider call (REQUEST_TIMEOUT, retries
# included) or a whole batch (BATCH_TIMEOUT). Gunicorn must not kill a worker before that,
# and on SIGTERM / HUP it lets in-flight requests finish for as long.
_longest = max(app_settings.request_timeout, app_settings.batch_timeout)
timeout = int(_longest + 15)  # a worker silent for this long is stuck, not slow
graceful_timeout = int(_longest + 5)
keepalive = int(_number("GUNICORN_KEEPALIVE", 5))

# Requests are small JSON bodies; headers and request lines stay at gunicorn's limits.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

# Trust X-Forwarded-Proto (so the app builds https:// URLs) only from the reverse proxy on
# this machine. Put nginx's address here if it runs elsewhere; never "*" unless nothing
# but the proxy can reach gunicorn. Behind a proxy every unauthenticated client shares the
# proxy's address: the per-address rate limit on failed tokens then applies to them all.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Access log: %(U)s is the path WITHOUT the query string, which may carry ?api_token=.
# Never use %(r)s (request line) or %(q)s (query) here.
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")


def on_starting(server: object) -> None:
    """An operator-set metrics folder may hold files of an earlier run: start from zero."""
    for stale in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"):
        stale.unlink(missing_ok=True)


def on_exit(server: object) -> None:
    if _own_metrics_dir:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def child_exit(server: object, worker: object) -> None:
    """A dead worker's live gauges (calls in flight, rows running) must not stay counted."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined, no-untyped-call]


# Load the app in each worker, after the fork: no SQLite handle, Redis socket or SDK
# connection pool is shared across processes.
preload_app = False


def post_worker_init(worker: object) -> None:
    """Each worker also runs job rows (JOB_WORKERS threads): no extra process to start.
    Under gevent, the SDKs' connection checks get the native select (backend/gevent_tuning.py)."""
    from backend import start_job_consumer
    from backend.gevent_tuning import use_native_readiness_check

    use_native_readiness_check()

    start_job_consumer(worker.wsgi)  # type: ignore[attr-defined]
    _freeze_startup_objects()


def _freeze_startup_objects() -> None:
    """Move everything the app built at start (modules, SDK types, pydantic schemas: about
    a million objects) out of the garbage collector's reach: they live as long as the
    worker, and every full collection under load walked them all again (6 % of a busy
    worker's CPU, profiled). Collected once first, so no garbage is frozen with them."""
    gc.collect()
    gc.freeze()


def worker_exit(server: object, worker: object) -> None:
    """Stop taking chunks; a chunk cut short is re-run by its job's watchdog."""
    app = getattr(worker, "wsgi", None)
    if app is not None and hasattr(app, "extensions"):
        app.extensions["flaskllm"].consumer.stop(wait=5)
