"""GET /metrics: the Prometheus text of backend/metrics.py, for whoever may read it.

Who may: METRICS_ACCESS=loopback (default: only from this machine, where the scraper or an
SSH tunnel runs), admin (the ADMIN_TOKEN, for a scraper elsewhere) or off (404).
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST

from backend.auth import identify_caller
from backend.errors import Forbidden, NotFound, Unauthorized
from backend.metrics import exposition

LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def scrape() -> Response:
    app_state = current_app.extensions["flaskllm"]
    access = app_state.settings.metrics_access
    if access == "off":
        raise NotFound()
    if access == "loopback" and request.remote_addr not in LOOPBACK:
        raise Forbidden("/metrics answers on loopback only (METRICS_ACCESS=loopback).")
    if access == "admin":
        caller = identify_caller(app_state.tokens)
        if caller is None or not caller.admin:
            raise Unauthorized("/metrics needs the admin token (METRICS_ACCESS=admin).")
    return Response(exposition(), mimetype=CONTENT_TYPE_LATEST)
