"""The add-in manifest (structure Office checks when it loads one) and the /addin/ routes."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask

from backend import create_app
from backend.addin import ADDIN_DIR, SERVED, TEMPLATE_BASE, addin_id, render_manifest
from scripts import make_manifest
from tests.conftest import make_settings

NS = {
    "o": "http://schemas.microsoft.com/office/appforoffice/1.1",
    "bt": "http://schemas.microsoft.com/office/officeappbasictypes/1.0",
    "ov": "http://schemas.microsoft.com/office/taskpaneappversionoverrides",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
# Order of OfficeApp's children in the TaskPaneApp schema (xs:sequence; some are optional).
SCHEMA_ORDER = [
    "Id", "AlternateId", "Version", "ProviderName", "DefaultLocale", "DisplayName", "Description",
    "IconUrl", "HighResolutionIconUrl", "SupportUrl", "AppDomains", "Hosts", "Requirements",
    "DefaultSettings", "Permissions", "Dictionary", "VersionOverrides",
]  # fmt: skip
REQUIRED = {"Id", "Version", "ProviderName", "DefaultLocale", "DisplayName", "Description",
            "IconUrl", "SupportUrl", "DefaultSettings", "Permissions"}  # fmt: skip
BASE = "https://llm.example.com"


def parse(xml: str) -> ET.Element:
    return ET.fromstring(xml.encode("utf-8"))  # noqa: S314 - our own manifest, not untrusted input


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def urls(root: ET.Element) -> list[str]:
    """Every URL in the manifest: DefaultValue attributes that are URLs, and AppDomains."""
    found = [e.get("DefaultValue", "") for e in root.iter()]
    found += [e.text or "" for e in root.iter(f"{{{NS['o']}}}AppDomain")]
    return [u for u in found if re.match(r"^[a-z]+://", u)]


@pytest.fixture(scope="module")
def manifest() -> ET.Element:
    return parse(render_manifest(BASE, "LLM"))


def test_id_is_a_guid_and_stable_per_deployment(manifest: ET.Element) -> None:
    text = manifest.findtext("o:Id", namespaces=NS) or ""
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text)
    assert text == str(uuid.UUID(text)) == addin_id(BASE)
    other = parse(render_manifest("https://other.example.com", "LLM"))
    assert other.findtext("o:Id", namespaces=NS) != text


def test_version_has_four_parts(manifest: ET.Element) -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", manifest.findtext("o:Version", namespaces=NS) or "")


def test_top_level_elements_follow_the_schema_order(manifest: ET.Element) -> None:
    assert manifest.get(f"{{{NS['xsi']}}}type") == "TaskPaneApp"
    names = [local(child.tag) for child in manifest]
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED
    assert names == sorted(names, key=SCHEMA_ORDER.index)


def test_every_resid_is_defined_once_and_within_office_limits(manifest: ET.Element) -> None:
    resources = manifest.find("ov:VersionOverrides/ov:Resources", NS)
    assert resources is not None
    defined = [e.get("id", "") for e in resources.iter() if e.get("id")]
    assert len(defined) == len(set(defined))
    used = {e.get("resid", "") for e in manifest.iter() if e.get("resid")}
    assert used and used <= set(defined), used - set(defined)
    assert all(len(resid) <= 32 for resid in defined)
    for kind, limit in (("ShortStrings", 125), ("LongStrings", 250)):
        for string in resources.iterfind(f"bt:{kind}/bt:String", NS):
            assert 0 < len(string.get("DefaultValue", "")) <= limit


def test_shared_runtime_serves_the_page_and_the_custom_functions(manifest: ET.Element) -> None:
    host = manifest.find("ov:VersionOverrides/ov:Hosts/ov:Host", NS)
    assert host is not None
    runtime = host.find("ov:Runtimes/ov:Runtime", NS)
    assert runtime is not None and runtime.get("lifetime") == "long"
    point = host.find("ov:AllFormFactors/ov:ExtensionPoint", NS)
    assert point is not None and point.get(f"{{{NS['xsi']}}}type") == "CustomFunctions"
    page = point.find("ov:Page/ov:SourceLocation", NS)
    assert page is not None and page.get("resid") == runtime.get("resid") == "Taskpane.Url"
    requirement = manifest.find("o:Requirements/o:Sets/o:Set", NS)
    assert requirement is not None and requirement.get("Name") == "SharedRuntime"
    strings = {e.get("id"): e.get("DefaultValue") for e in manifest.iter(f"{{{NS['bt']}}}String")}
    assert strings["Functions.Namespace"] == "LLM"


def test_urls_are_https_outside_localhost(manifest: ET.Element) -> None:
    assert urls(manifest) and all(u.startswith("https://") for u in urls(manifest))
    dev = parse(render_manifest("http://localhost:5000", "LLM"))
    for url in urls(dev):
        parts = urlsplit(url)
        assert parts.scheme == "https" or parts.hostname in ("localhost", "127.0.0.1"), url


def test_every_file_it_names_exists_and_is_served(manifest: ET.Element) -> None:
    prefix = f"{BASE}/addin/"
    own = [u for u in urls(manifest) if u.startswith(prefix)]
    assert len(own) >= 8
    for url in own:
        name = url.removeprefix(prefix)
        assert (ADDIN_DIR / name).is_file(), name
        assert name in SERVED, name


def test_a_path_prefix_and_odd_characters_survive_rendering() -> None:
    root = parse(render_manifest("https://example.com/tools/llm&co/", "ACME"))
    assert "https://example.com/tools/llm&co/addin/taskpane.html" in urls(root)
    assert root.findtext("o:AppDomains/o:AppDomain", namespaces=NS) == "https://example.com"
    strings = {e.get("id"): e.get("DefaultValue") for e in root.iter(f"{{{NS['bt']}}}String")}
    assert strings["Functions.Namespace"] == "ACME"


@pytest.mark.parametrize("url", ["ftp://example.com", "example.com", "https://", "https://x?a=1"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        render_manifest(url, "LLM")


@pytest.mark.parametrize("namespace", ["", "llm", "1LLM", "LL M", "A" * 33, 'X"/><Evil'])
def test_bad_namespaces_are_refused(namespace: str) -> None:
    with pytest.raises(ValueError):
        render_manifest(BASE, namespace)


def test_the_committed_manifest_is_the_development_rendering() -> None:
    """office-addin/manifest.xml sideloads as-is against a dev server, and is the template."""
    committed = (ADDIN_DIR / "manifest.xml").read_text(encoding="utf-8")
    root = parse(committed)
    assert root.findtext("o:Id", namespaces=NS) == addin_id(TEMPLATE_BASE)
    assert parse(render_manifest(TEMPLATE_BASE, "LLM")).findtext("o:Id", namespaces=NS) == root.findtext(
        "o:Id", namespaces=NS
    )
    without_comment = re.sub(r"\s*<!--.*?-->", "", committed, flags=re.S)
    assert render_manifest(TEMPLATE_BASE, "LLM") == without_comment


def test_make_manifest_writes_the_same_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "manifest.xml"
    assert make_manifest.main(["--url", BASE, "--namespace", "ACME", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == render_manifest(BASE, "ACME")
    make_manifest.main(["--url", "http://127.0.0.1:5000", "--out", "-"])
    assert "http://127.0.0.1:5000/addin/functions.json" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        make_manifest.main(["--url", "http://llm.example.com"])  # Office refuses plain http


# --- the routes, through the real app -------------------------------------------------------


def app_with(**overrides: object) -> Flask:
    app = create_app(make_settings(**overrides))
    app.config["TESTING"] = True
    return app


def test_manifest_route_uses_the_request_host_or_public_url() -> None:
    response = app_with().test_client().get("/addin/manifest.xml", base_url="http://excel-dev:8080")
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    assert response.headers["Cache-Control"] == "no-cache"
    assert "http://excel-dev:8080/addin/taskpane.html" in urls(parse(response.get_data(as_text=True)))

    app = app_with(public_url="https://llm.example.com/", addin_namespace="ACME")
    body = app.test_client().get("/addin/manifest.xml").get_data(as_text=True)
    assert body == render_manifest("https://llm.example.com", "ACME")


@pytest.mark.parametrize(
    ("path", "mimetype"),
    [
        ("taskpane.html", "text/html"),
        ("taskpane.js", "text/javascript"),
        ("taskpane.css", "text/css"),
        ("client.js", "text/javascript"),
        ("functions.js", "text/javascript"),
        ("functions.json", "application/json"),
        ("help.html", "text/html"),
        ("assets/icon-80.png", "image/png"),
        ("office-scripts/ProcessEmails.ts", "text/plain"),
    ],
)
def test_kit_files_are_served_with_type_cache_and_cors(path: str, mimetype: str) -> None:
    client = app_with(allowed_origins="https://intranet.example.com").test_client()
    response = client.get(f"/addin/{path}", headers={"Origin": "https://excel.officeapps.live.com"})
    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert response.data == (ADDIN_DIR / path).read_bytes()
    assert response.headers["Access-Control-Allow-Origin"] == "*"  # Excel on the web's origin
    # JSON answers get the API's no-store from backend/observability.py; the rest cache briefly.
    expected = "no-store" if mimetype == "application/json" else "max-age=300"
    assert expected in response.headers["Cache-Control"]


def test_the_task_pane_may_be_framed_by_office() -> None:
    response = app_with().test_client().get("/addin/taskpane.html")
    assert "X-Frame-Options" not in response.headers
    assert "frame-ancestors" not in response.headers.get("Content-Security-Policy", "")


@pytest.mark.parametrize(
    "path",
    [
        "package.json",
        "package-lock.json",
        "node_modules/typescript/package.json",
        "tests/helpers.js",
        "tools/make-icons.mjs",
        "office-scripts/tsconfig.json",
        "office-scripts/excelscript.d.ts",
        "manifest.xml.bak",
        "../backend/addin.py",
        "%2e%2e/pyproject.toml",
        "assets/../../pyproject.toml",
    ],
)
def test_everything_else_is_a_json_404(path: str) -> None:
    response = app_with().test_client().get(f"/addin/{path}")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_the_kit_root_points_to_the_help_page() -> None:
    response = app_with().test_client().get("/addin/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/addin/help.html")
