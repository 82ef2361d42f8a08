"""`python -m backend`: the development server on HOST:PORT.

Prints the API token it generated when none is configured (once, to the console only;
it is never logged). Werkzeug's own access log is silenced because it prints query
strings, which may carry `api_token`; the app writes its own redacted line per request.
"""

from __future__ import annotations

import logging
import sys

from backend import create_app
from backend.settings import ConfigurationError, Settings


def main() -> int:
    try:
        settings = Settings()
        app = create_app(settings)
    except (ConfigurationError, ValueError) as exc:
        print(f"FlaskLLM cannot start: {exc}", file=sys.stderr)
        return 2
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
    # No reloader: it would restart the process and print a second, different token.
    debug = settings.debug and not settings.is_production
    app.run(host=settings.host, port=settings.port, debug=debug, use_reloader=False, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
