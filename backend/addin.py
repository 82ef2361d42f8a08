"""The Excel kit under /addin/: the manifest rendered for this host, and the add-in's static files.

Why the backend serves the kit itself: the task pane, the custom functions and the API then share
one origin, so the add-in's default backend URL is simply "where I was loaded from", and an
operator deploys one thing. Only an explicit allow-list of files is served; node_modules, tests,
package files and tools in office-addin/ never leave the server.

Where the files are: office-addin/ at the repository root is the source of truth, and a checkout
(editable install or not) serves it directly. A built wheel has no repository around it, so
pyproject.toml maps office-addin/ into the package as `backend/kit/` at build time (only the
served files: see its [tool.setuptools] section). `kit_dir()` looks for the checkout's copy
first, then the packaged one.

`render_manifest` is a pure function shared with `scripts/make_manifest.py`. The committed
office-addin/manifest.xml is both a working manifest for a development server on
http://localhost:5000 and the template: rendering replaces that origin by the deployment's URL.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    request,
    send_from_directory,
    url_for,
)
from werkzeug.wrappers import Response as BaseResponse


def kit_dir() -> Path:
    """The folder holding the kit: a checkout's office-addin/, else an installed wheel's backend/kit/.

    The checkout wins so that nothing stale can shadow the source of truth; `backend/kit/` only
    ever exists inside a built wheel (site-packages has no office-addin/ beside `backend/`).
    Neither found: the checkout's path, so that the error names the folder that is missing.
    """
    package = Path(__file__).resolve().parent
    checkout, packaged = package.parent / "office-addin", package / "kit"
    for candidate in (checkout, packaged):
        if (candidate / "manifest.xml").is_file():
            return candidate
    return checkout


ADDIN_DIR = kit_dir()
TEMPLATE_BASE = "http://localhost:5000"
NAMESPACE_PATTERN = re.compile(r"^[A-Z][A-Z0-9]{0,31}$")  # same rule as Settings.addin_namespace
_COMMENT = re.compile(r"\s*<!--.*?-->", re.S)  # the template's notes are about the template
_ID = re.compile(r"<Id>[^<]*</Id>")
_NAMESPACE = re.compile(r'(<bt:String id="Functions\.Namespace" DefaultValue=")[^"]*(")')

# path under /addin/ -> Content-Type. Anything else is a 404, whatever exists on disk.
SERVED: dict[str, str] = {
    "taskpane.html": "text/html; charset=utf-8",
    "taskpane.css": "text/css; charset=utf-8",
    "taskpane.js": "text/javascript; charset=utf-8",
    "client.js": "text/javascript; charset=utf-8",
    "functions.js": "text/javascript; charset=utf-8",
    "functions.json": "application/json",
    "help.html": "text/html; charset=utf-8",
    "office-scripts/ProcessEmails.ts": "text/plain; charset=utf-8",
    "office-scripts/ProcessTableColumn.ts": "text/plain; charset=utf-8",
    **{f"assets/icon-{size}.png": "image/png" for size in (16, 32, 64, 80)},
}
# Short: Office caches add-in files on its own, and a new version should reach users the same day.
MAX_AGE = 300

bp = Blueprint("addin", __name__, url_prefix="/addin")


def addin_id(base_url: str) -> str:
    """A stable GUID per deployment, so a development and a production add-in can coexist."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, base_url))


def normalise_base_url(base_url: str) -> str:
    """`https://host[:port][/prefix]` without a trailing slash; ValueError for anything else."""
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {base_url!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"no query, fragment or credentials in a base URL: {base_url!r}")
    return f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")


def render_manifest(base_url: str, namespace: str) -> str:
    """The add-in manifest for a server reachable at `base_url`, functions under `namespace`.

    `base_url` is the server root (the kit lives under `<base_url>/addin/`). Office requires https
    except for localhost; that is the caller's choice to warn about, not a rendering error.
    """
    base = normalise_base_url(base_url)
    if not NAMESPACE_PATTERN.match(namespace):
        raise ValueError(
            f"namespace {namespace!r}: 1-32 upper-case letters and digits, starting with a letter"
        )
    parts = urlsplit(base)
    text = _COMMENT.sub("", (ADDIN_DIR / "manifest.xml").read_text(encoding="utf-8"))
    # An AppDomain is an origin; every other URL keeps the base's path prefix, if any.
    text = text.replace(
        f"<AppDomain>{TEMPLATE_BASE}</AppDomain>",
        f"<AppDomain>{parts.scheme}://{parts.netloc}</AppDomain>",
    )
    text = text.replace(TEMPLATE_BASE, escape(base, {'"': "&quot;"}))
    text = _ID.sub(f"<Id>{addin_id(base)}</Id>", text, count=1)
    return _NAMESPACE.sub(rf"\g<1>{namespace}\g<2>", text, count=1)


def _public_base() -> str:
    """PUBLIC_URL when set (behind a proxy the request's host may be wrong), else the host."""
    settings = current_app.extensions["flaskllm"].settings
    return str(settings.public_url or request.host_url)


@bp.get("/")
def index() -> BaseResponse:
    return redirect(url_for("addin.static_file", filename="help.html"))


@bp.get("/manifest.xml")
def manifest() -> Response:
    settings = current_app.extensions["flaskllm"].settings
    try:
        body = render_manifest(_public_base(), settings.addin_namespace)
    except ValueError as exc:  # a misconfigured PUBLIC_URL is an operator error, say so
        current_app.logger.error("cannot render the add-in manifest: %s", exc)
        abort(500)
    response = Response(body, mimetype="application/xml")
    response.headers["Content-Disposition"] = 'inline; filename="manifest.xml"'
    response.cache_control.no_cache = True
    return response


@bp.get("/<path:filename>")
def static_file(filename: str) -> Response:
    mimetype = SERVED.get(filename)
    if mimetype is None:
        abort(404)
    response = send_from_directory(ADDIN_DIR, filename, max_age=MAX_AGE)
    response.headers["Content-Type"] = mimetype
    return response


@bp.after_request
def allow_any_origin(response: Response) -> Response:
    """Excel on the web fetches functions.json and the scripts from its own origin.

    These are public, credential-free files, so `*` is right whatever ALLOWED_ORIGINS says for the
    API. flask-cors leaves a response alone when this header is already set.
    """
    response.headers.setdefault("Access-Control-Allow-Origin", "*")
    return response
