"""`python -m backend`: the development server on HOST:PORT, running job rows too.
`python -m backend worker`: only the job consumer (JOB_WORKERS threads, at least 1), for
more machines sharing `JOBS_URL=redis://...`; stops cleanly on SIGTERM or Ctrl-C.

Prints the API token it generated when none is configured (once, to the console only;
it is never logged). Werkzeug's own access log is silenced because it prints query
strings, which may carry `api_token`; the app writes its own redacted line per request.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

from flask import Flask

from backend import create_app, start_job_consumer
from backend.settings import ConfigurationError, Settings


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["worker"]):
        print("usage: python -m backend [worker]", file=sys.stderr)
        return 2
    try:
        settings = Settings()
        app = create_app(settings)
    except (ConfigurationError, ValueError) as exc:
        print(f"FlaskLLM cannot start: {exc}", file=sys.stderr)
        return 2
    if args == ["worker"]:
        return run_worker(app)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    generated = app.config.get("GENERATED_TOKEN")
    url = f"http://{settings.host}:{settings.port}"
    print(
        f"FlaskLLM {settings.environment.value} server on {url}  (provider: "
        f"{app.extensions['flaskllm'].provider.name})",
        flush=True,
    )
    if generated:
        print(f"No API_TOKEN configured: use this generated token for this run: {generated}", flush=True)
    start_job_consumer(app)
    # No reloader: it would restart the process and print a second, different token.
    debug = settings.debug and not settings.is_production
    app.run(host=settings.host, port=settings.port, debug=debug, use_reloader=False, threaded=True)
    return 0


def run_worker(app: Flask) -> int:
    """Take job chunks until SIGTERM/SIGINT, then let running chunks finish (30 s at most)."""
    consumer = app.extensions["flaskllm"].consumer
    consumer.threads = max(1, consumer.threads)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    consumer.start()
    print(f"FlaskLLM job worker: {consumer.threads} threads", flush=True)
    stop.wait()
    consumer.stop(wait=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
