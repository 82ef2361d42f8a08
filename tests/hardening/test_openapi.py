"""The generated contract is complete and true: every route, field, scheme and error.

Completeness is checked against the code (app.url_map, the pydantic models), truth
against the running app (what a request without a token, or one that fails, really
answers), and validity against the OpenAPI 3.1 meta-schema.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from flask import Flask
from pydantic import BaseModel

from backend import create_app, schemas
from backend.openapi import PREFIX, build_spec
from tests.conftest import TOKEN, make_settings

ROOT = Path(__file__).resolve().parents[2]
MODELS: list[type[BaseModel]] = [
    schemas.TaskOptions,
    schemas.WebhookRequest,
    schemas.BatchItem,
    schemas.BatchRequest,
    schemas.WebhookResponse,
    schemas.BatchResponse,
    schemas.BatchRowOk,
    schemas.BatchRowError,
    schemas.BatchStats,
    schemas.ErrorResponse,
    schemas.ErrorBody,
    schemas.HealthResponse,
    schemas.Usage,
    schemas.Sentiment,
    schemas.Entity,
]


def spec_of(app: Flask) -> dict[str, Any]:
    response = app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.get_json()
    return body


def validator(spec: dict[str, Any], schema: dict[str, Any]) -> jsonschema_rs.Draft202012Validator:
    """A validator for `schema` that resolves the document's #/components/... references."""
    return jsonschema_rs.Draft202012Validator({**schema, "components": spec["components"]})


def gaps(app: Flask, spec: dict[str, Any]) -> list[str]:
    """Every /api/v1 route and method the document lacks or flags as undocumented."""
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(PREFIX + "/"):
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)  # OpenAPI's {param}
                op = spec["paths"].get(path, {}).get(method.lower())
                if op is None or op.get("x-undocumented"):
                    missing.append(f"{method} {rule.rule}")
    return missing


def test_document_is_valid_openapi_3_1(local_client: Any) -> None:
    spec = local_client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"] == "3.1.0"
    schemathesis.openapi.from_dict(spec).validate()  # the official 3.1 meta-schema


def test_every_route_is_documented_and_nothing_else(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    spec = spec_of(app)
    assert gaps(app, spec) == []
    routes = {
        re.sub(r"<(\w+)>", r"{\1}", rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(PREFIX + "/")
    }
    assert set(spec["paths"]) == routes
    assert {
        "/api/v1/webhook",
        "/api/v1/batch",
        "/api/v1/health",
        "/api/v1/openapi.json",
        "/api/v1/docs",
    } <= routes


def test_a_new_route_without_docs_is_caught(make_app: Callable[..., Flask]) -> None:
    """The check above can fail: a route added without a DOCS entry is flagged."""
    app = make_app()
    app.add_url_rule("/api/v1/new", "api.new", lambda: "", methods=["POST"])
    assert gaps(app, build_spec(app)) == ["POST /api/v1/new"]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_model_field_is_documented(local_client: Any, model: type[BaseModel]) -> None:
    component = local_client.get("/api/v1/openapi.json").get_json()["components"]["schemas"][model.__name__]
    names = {field.alias or name for name, field in model.model_fields.items()}
    assert set(component["properties"]) == names
    required = {field.alias or name for name, field in model.model_fields.items() if field.is_required()}
    assert set(component.get("required", [])) == required


def test_settings_limits_are_in_the_schemas() -> None:
    app = create_app(
        make_settings(max_prompt_length=123, batch_max_items=7, public_url="https://llm.example.com/")
    )
    spec = spec_of(app)
    props = spec["components"]["schemas"]["WebhookRequest"]["properties"]
    assert props["prompt"]["maxLength"] == 123
    assert spec["components"]["schemas"]["BatchRequest"]["properties"]["items"]["maxItems"] == 7
    types = next(b for b in props["type"]["anyOf"] if b.get("type") == "string")["enum"]
    assert set(types) == {"summary", "keywords", "sentiment", "entities"}  # what the local provider runs
    examples = spec["paths"]["/api/v1/webhook"]["post"]["requestBody"]["content"]["application/json"]
    assert "translation" not in examples["examples"]
    assert spec["servers"] == [{"url": "https://llm.example.com"}]


def test_an_llm_provider_documents_every_task_type(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    props = spec_of(app)["components"]["schemas"]["WebhookRequest"]["properties"]
    types = next(b for b in props["type"]["anyOf"] if b.get("type") == "string")["enum"]
    assert set(types) == set(app.extensions["flaskllm"].service.templates)


def test_security_schemes_and_which_operations_need_a_token(make_app: Callable[..., Flask]) -> None:
    """What the document says about auth is what the app does, for every operation."""
    app = make_app()
    spec = spec_of(app)
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ApiTokenHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Token"}
    assert schemes["ApiTokenQuery"]["in"] == "query" and schemes["ApiTokenQuery"]["name"] == "api_token"
    client = app.test_client()
    job = client.post("/api/v1/jobs", json={"items": [{"prompt": "Hi."}]}, headers={"X-API-Token": TOKEN})
    job_id = job.get_json()["job"]["id"]
    protected = set()
    for path, methods in spec["paths"].items():
        url = path.replace("{job_id}", job_id)
        for method, op in methods.items():
            content = op.get("requestBody", {}).get("content", {})
            examples = content.get("application/json", {}).get("examples", {})
            body = next(iter(examples.values()), {"value": None})["value"]
            response = client.open(url, method=method.upper(), json=body)
            if op["security"]:
                protected.add(path)
                assert response.status_code == 401, path
                ok = client.open(f"{url}?api_token={TOKEN}", method=method.upper(), json=body)
                assert str(ok.status_code) in op["responses"] and ok.status_code < 300, (path, ok.data)
            else:
                assert response.status_code == 200, path
    assert protected == {
        "/api/v1/webhook",
        "/api/v1/batch",
        "/api/v1/jobs",
        "/api/v1/jobs/{job_id}",
        "/api/v1/jobs/{job_id}/results",
        "/api/v1/estimate",
        "/api/v1/usage",
    }


def test_every_error_status_is_documented_with_the_error_schema(local_client: Any) -> None:
    paths = local_client.get("/api/v1/openapi.json").get_json()["paths"]
    expected = {
        ("post", "/api/v1/webhook"): {"200", "400", "401", "413", "415", "429", "500", "502", "503", "504"},
        ("post", "/api/v1/jobs"): {"200", "202", "400", "401", "409", "413", "415", "429", "500"},
        ("get", "/api/v1/jobs/{job_id}"): {"200", "401", "404", "429", "500"},
        ("get", "/api/v1/jobs/{job_id}/results"): {"200", "400", "401", "404", "429", "500"},
        ("delete", "/api/v1/jobs/{job_id}"): {"200", "401", "404", "429", "500"},
        ("post", "/api/v1/batch"): {"200", "400", "401", "413", "415", "429", "500"},
        ("get", "/api/v1/health"): {"200", "500"},
        ("get", "/api/v1/openapi.json"): {"200", "500"},
        ("get", "/api/v1/docs"): {"200", "500"},
    }
    for (method, path), statuses in expected.items():
        responses = paths[path][method]["responses"]
        assert set(responses) == statuses, path
        for status, response in responses.items():
            if status not in ("200", "202"):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorResponse"}
        if "429" in responses:
            assert responses["429"]["headers"]["Retry-After"]["required"] is True


AUTH = {"X-API-Token": TOKEN}
ERROR_CASES: list[tuple[str, dict[str, str], dict[str, str], bytes | None]] = [
    ("400", AUTH, {}, b"{not json"),
    ("400", AUTH, {}, json.dumps({"prompt": ""}).encode()),
    ("401", {}, {}, None),
    ("413", AUTH, {}, json.dumps({"prompt": "x" * 5_000_000}).encode()),
    ("415", AUTH, {"Content-Type": "text/plain"}, b"hello"),
    ("502", AUTH, {}, json.dumps({"prompt": "[[mock:garbage]] a"}).encode()),
    ("504", AUTH, {}, json.dumps({"prompt": "[[mock:delay=3]] b"}).encode()),
    ("429", AUTH, {}, None),  # last: the ones above spent the budget
]


@pytest.mark.timeout(30)
def test_real_errors_are_documented_and_match_the_schema(make_app: Callable[..., Flask]) -> None:
    """Provoke each error the webhook documents; the answer validates against its documented schema."""
    app = make_app(request_timeout=1, rate_limit_enabled=True, rate_limit=7)
    spec = spec_of(app)
    responses = spec["paths"]["/api/v1/webhook"]["post"]["responses"]
    client = app.test_client()
    for status, auth, extra, body in ERROR_CASES:
        headers = {**auth, "Content-Type": "application/json", **extra}
        data = body if body is not None else json.dumps({"prompt": f"fine {status}"}).encode()
        if status == "429":
            while (response := client.post("/api/v1/webhook", data=data, headers=headers)).status_code != 429:
                data += b" "
        else:
            response = client.post("/api/v1/webhook", data=data, headers=headers)
        assert str(response.status_code) == status, (status, response.data)
        documented = responses[status]
        errors = list(
            validator(spec, documented["content"]["application/json"]["schema"]).iter_errors(
                response.get_json()
            )
        )
        assert errors == [], (status, errors)
        for name, header in documented.get("headers", {}).items():
            if header.get("required"):
                assert name in response.headers, (status, name)


def test_examples_are_valid_and_succeed(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    spec = spec_of(app)
    client = app.test_client()
    seen = 0
    for path, methods in spec["paths"].items():
        for op in methods.values():
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if not body:
                continue
            success = next(code for code in op["responses"] if code.startswith("2"))
            check = validator(spec, op["responses"][success]["content"]["application/json"]["schema"])
            for example in body["examples"].values():
                assert validator(spec, body["schema"]).is_valid(example["value"])
                response = client.post(path, json=example["value"], headers={"X-API-Token": TOKEN})
                assert str(response.status_code) == success, response.data
                assert list(check.iter_errors(response.get_json())) == []
                seen += 1
    assert seen >= 4


def test_export_script_writes_what_the_server_serves(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "ENVIRONMENT": "testing",
        "API_TOKEN": TOKEN,
        "LLM_PROVIDER": "local",
        "MAX_PROMPT_LENGTH": "777",
        "PUBLIC_URL": "https://llm.example.com",
        "JOBS_URL": f"sqlite:///{tmp_path / 'jobs.sqlite3'}",  # not the checkout's instance/
        "STATE_URL": f"sqlite:///{tmp_path / 'state.sqlite3'}",
    }
    out = tmp_path / "openapi.json"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "export_openapi.py"), "--out", str(out)],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    served = spec_of(create_app(make_settings(max_prompt_length=777, public_url="https://llm.example.com")))
    assert json.loads(out.read_text(encoding="utf-8")) == served


def test_docs_page_is_self_contained_and_complete(local_client: Any) -> None:
    spec = local_client.get("/api/v1/openapi.json").get_json()
    response = local_client.get("/api/v1/docs")  # no token
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "<script" not in html.lower()
    links = re.findall(r"(?:src|href|action)\s*=\s*['\"]([^'\"]*)", html, re.I)
    assert links and all(not re.match(r"(?i)([a-z]+:|//)", link) for link in links), links
    for path in spec["paths"]:
        assert f"<code>{path}</code>" in html
    for name in spec["components"]["schemas"]:
        assert f"id='schema-{name}'" in html
    assert "Q3 review moves to Friday" in html  # an example body
    assert "X-API-Token" in html and "api_token" in html
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    style = re.search(r"<style>(.*?)</style>", html, re.S)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp  # the inline CSS is the one the CSP allows
