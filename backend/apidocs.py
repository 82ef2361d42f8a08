"""`/api/v1/openapi.json` and `/api/v1/docs`: the contract, as data and as one HTML page.

Why the page is rendered here instead of by Swagger UI or ReDoc: those load scripts from a
CDN, which the operator's network, an air-gapped PythonAnywhere account or a strict CSP may
block, and a docs page should not execute anything. This page is plain HTML with inline
CSS, built from the same document as the JSON, served with a CSP that allows no script.
Neither endpoint needs a token: the contract is not a secret, the keys are.
"""

from __future__ import annotations

import base64
import hashlib
import json
from html import escape
from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from backend.openapi import build_spec

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")

CSS = (
    "body{font:15px/1.5 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#1d2330}"
    "h1,h2,h3{line-height:1.2}h2{border-bottom:2px solid #dfe3ea;padding-bottom:.2em;margin-top:2em}"
    "code,pre{font:13px ui-monospace,monospace;background:#f3f5f8;border-radius:4px}"
    "pre{padding:.8em;overflow:auto}code{padding:.1em .3em}"
    "table{border-collapse:collapse;width:100%;margin:.5em 0}"
    "th,td{border:1px solid #dfe3ea;padding:.3em .5em;text-align:left;vertical-align:top;"
    "overflow-wrap:anywhere}"
    "th{background:#f3f5f8}.m{display:inline-block;min-width:3.6em;font-weight:700;color:#fff;"
    "border-radius:4px;padding:0 .4em;text-align:center}.get{background:#2f7d32}.post{background:#1f5fbf}"
    ".op{border:1px solid #dfe3ea;border-radius:6px;padding:0 1em 1em;margin:1em 0}"
)
CSP = (
    "default-src 'none'; style-src 'sha256-"
    + base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
    + "'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def current_spec() -> dict[str, Any]:
    """This app's document, built once (it depends only on the app's configuration)."""
    cached: dict[str, Any] | None = current_app.extensions.get("flaskllm.openapi")
    if cached is None:
        cached = current_app.extensions["flaskllm.openapi"] = build_spec(current_app)
    return cached


@bp.get("/openapi.json", endpoint="spec")
def openapi_json() -> Response:
    return jsonify(current_spec())


@bp.get("/docs", endpoint="docs")
def docs() -> Response:
    resp = Response(render(current_spec()), mimetype="text/html")
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["Cache-Control"] = "no-cache"
    return resp


def render(doc: dict[str, Any]) -> str:
    """The whole reference page: endpoints first, then every schema they use."""
    info = doc["info"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<meta name='viewport' content='width=device-width'><title>{escape(info['title'])} API</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{escape(info['title'])} API <small>v{escape(info['version'])}</small></h1>",
        f"<p>{escape(info['description'])}</p>",
        "<p>Machine-readable: <a href='openapi.json'>openapi.json</a> (OpenAPI 3.1).</p>",
        "<h2>Authentication</h2><ul>",
    ]
    for name, scheme in doc["components"]["securitySchemes"].items():
        where = (
            f"{scheme['in']} <code>{escape(scheme['name'])}</code>"
            if "name" in scheme
            else ("header <code>Authorization: Bearer &lt;token&gt;</code>")
        )
        parts.append(f"<li><b>{escape(name)}</b>: {where}. {escape(scheme.get('description', ''))}</li>")
    parts.append("</ul><h2>Endpoints</h2>")
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            parts.append(_operation(path, method, op))
    parts.append("<h2>Schemas</h2>")
    for name, schema in doc["components"]["schemas"].items():
        parts.append(_schema(name, schema))
    parts.append("</body></html>")
    return "".join(parts)


def _operation(path: str, method: str, op: dict[str, Any]) -> str:
    out = [
        f"<div class='op' id='op-{escape(op['operationId'])}'>",
        f"<h3><span class='m {method}'>{method.upper()}</span> <code>{escape(path)}</code> "
        f"{escape(op['summary'])}</h3>",
        f"<p>{escape(op.get('description', ''))}</p>",
        "<p><b>Auth:</b> " + ("token required (any scheme above)" if op["security"] else "none") + "</p>",
    ]
    body = op.get("requestBody", {}).get("content", {}).get("application/json")
    if body:
        out.append(f"<p><b>Body</b> (application/json): {_type(body['schema'])}</p>")
        for name, example in body.get("examples", {}).items():
            pretty = json.dumps(example["value"], indent=2, ensure_ascii=False)
            out.append(f"<p>Example <i>{escape(name)}</i>:</p><pre>{escape(pretty)}</pre>")
    out.append("<table><tr><th>Status</th><th>Meaning</th><th>Body</th><th>Headers</th></tr>")
    for status, response in op["responses"].items():
        media, content = next(iter(response["content"].items()))
        headers = ", ".join(f"<code>{escape(h)}</code>" for h in response.get("headers", {}))
        out.append(
            f"<tr><td>{status}</td><td>{escape(response['description'])}</td>"
            f"<td>{_type(content['schema'])} <small>{escape(media)}</small></td><td>{headers}</td></tr>"
        )
    out.append("</table></div>")
    return "".join(out)


def _schema(name: str, schema: dict[str, Any]) -> str:
    out = [
        f"<h3 id='schema-{escape(name)}'>{escape(name)}</h3>",
        f"<p>{escape(schema.get('description', ''))}</p>",
    ]
    props = schema.get("properties", {})
    if props:
        required = set(schema.get("required", []))
        out.append(
            "<table><tr><th>Field</th><th>Type</th><th>Required</th><th>Rules</th><th>Description</th></tr>"
        )
        for field, prop in props.items():
            out.append(
                f"<tr><td><code>{escape(field)}</code></td><td>{_type(prop)}</td>"
                f"<td>{'yes' if field in required else 'no'}</td><td>{_rules(prop)}</td>"
                f"<td>{escape(prop.get('description', ''))}</td></tr>"
            )
        out.append("</table>")
    if "then" in schema:
        out.append("<p>With <code>type: translation</code>, <code>language</code> is required.</p>")
    if schema.get("additionalProperties") is False:
        out.append("<p>No other fields are accepted.</p>")
    return "".join(out)


def _type(schema: dict[str, Any]) -> str:
    """A compact, linked type name: `string | null`, `array of BatchItem`, ..."""
    if "$ref" in schema:
        name = escape(schema["$ref"].rsplit("/", 1)[-1])
        return f"<a href='#schema-{name}'>{name}</a>"
    if "anyOf" in schema:
        return " | ".join(_type(branch) for branch in schema["anyOf"])
    if "const" in schema:
        return f"<code>{escape(json.dumps(schema['const']))}</code>"
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    return escape(str(kind))


def _rules(schema: dict[str, Any]) -> str:
    """Constraints of a field (and of its non-null branch), in words."""
    rules: list[str] = []
    for branch in [schema, *schema.get("anyOf", [])]:
        for key in ("minLength", "maxLength", "minItems", "maxItems", "minimum", "maximum", "pattern"):
            if key in branch:
                value = str(branch[key])
                value = value if len(value) <= 80 else value[:60] + "…"  # the ISO 639-1 alternation
                rules.append(f"{key} <code>{escape(value)}</code>")
        if "enum" in branch:
            values = [str(v) for v in branch["enum"]]
            shown = ", ".join(values[:12]) + (f", … ({len(values)} values)" if len(values) > 12 else "")
            rules.append(f"one of <code>{escape(shown)}</code>")
    if schema.get("default") is not None:
        rules.append(f"default <code>{escape(json.dumps(schema['default']))}</code>")
    return "; ".join(rules)
