"""GET /metrics: the Prometheus text of backend/metrics.py, for whoever may read it.

Who may: METRICS_ACCESS=loopback (default: only from this machine, where the scraper or an
SSH tunnel runs; never a request a local reverse proxy forwarded), admin (the ADMIN_TOKEN,
for a scraper elsewhere) or off (404).
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST

from backend.auth import identify_caller
from backend.errors import Forbidden, NotFound, Unauthorized
from backend.metrics import exposition

LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
PROXY_HEADERS = ("X-Forwarded-For", "X-Real-IP", "Forwarded")


def _proxied() -> bool:
    """A reverse proxy on this machine connects from loopback too: a request it forwarded
    (it says so in these headers) came from elsewhere, and loopback-only must refuse it."""
    return any(name in request.headers for name in PROXY_HEADERS)


bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def scrape() -> Response:
    app_state = current_app.extensions["flaskllm"]
    access = app_state.settings.metrics_access
    if access == "off":
        raise NotFound()
    if access == "loopback" and (request.remote_addr not in LOOPBACK or _proxied()):
        raise Forbidden("/metrics answers on loopback only (METRICS_ACCESS=loopback).")
    if access == "admin":
        caller = identify_caller(app_state.tokens)
        if caller is None or not caller.admin:
            raise Unauthorized("/metrics needs the admin token (METRICS_ACCESS=admin).")
    return Response(exposition(), mimetype=CONTENT_TYPE_LATEST)
