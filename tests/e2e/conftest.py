"""End-to-end fixtures: the real backend and mock LLM on loopback, Chromium with a fake office.js.

The task pane page is loaded from the backend exactly as Excel would load it. Its office.js tag
points at Microsoft's CDN, which this machine cannot reach: the browser context intercepts that
URL and serves tests/fakes/office.js (an in-memory workbook) instead, and aborts every other
request that leaves loopback, so a test can never depend on the internet.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Playwright, Request, Route, expect
from werkzeug.serving import make_server

from backend import create_app, start_job_consumer
from scripts.mock_llm import MockLLM
from tests.conftest import TOKEN, openai_settings

REPO = Path(__file__).resolve().parents[2]
FAKE_OFFICE_JS = REPO / "tests" / "fakes" / "office.js"
ARTIFACTS = REPO / "test-artifacts" / "e2e"
CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/lib/chromium/chromium") if Path(p).exists()), None)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
OFFICE_JS_HOST = "appsforoffice.microsoft.com"


class LiveServer:
    """The Flask app served by werkzeug on a free loopback port, in a thread."""

    def __init__(self, app: Any) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(timeout=5)


class Pane:
    """The task pane page plus the fake workbook behind it."""

    def __init__(self, page: Page, backend: LiveServer) -> None:
        self.page = page
        self.backend = backend
        self.batch_requests: list[Request] = []
        page.on("request", self._record)

    def _record(self, request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/api/v1/batch"):
            self.batch_requests.append(request)

    def batch_rows(self, since: int = 0) -> list[dict[str, Any]]:
        """Rows sent in batch requests (from request number `since` on)."""
        return [item for r in self.batch_requests[since:] for item in (r.post_data_json or {})["items"]]

    def save_token(self, token: str = TOKEN) -> None:
        self.page.fill("#api-token", token)
        self.page.click("#save-settings")
        expect(self.page.locator("#status")).to_have_text("Settings saved.")

    def put(self, address: str, column: list[str]) -> None:
        values = [[v] for v in column]
        self.page.evaluate("([a, v]) => __fakeExcel.setValues(a, v)", [address, values])

    def select(self, address: str) -> None:
        self.page.evaluate("(a) => __fakeExcel.select(a)", address)

    def column(self, address: str) -> list[Any]:
        rows = self.page.evaluate("(a) => __fakeExcel.getValues(a)", address)
        return [row[0] for row in rows]

    def status(self) -> str:
        return self.page.inner_text("#status")

    def process(self, approve: bool = True) -> None:
        """Press Process selection as a user does: the estimate shows first, and when the
        server asks for a go-ahead (a costly run), answer it (Run, or Cancel)."""
        self.page.click("#process")
        expect(self.page.locator("#estimate")).to_be_visible(timeout=30_000)
        if self.page.locator("#confirm").is_visible():
            self.page.click("#confirm-run" if approve else "#confirm-cancel")


@pytest.fixture
def llm() -> Iterator[MockLLM]:
    with MockLLM() as server:
        yield server


@pytest.fixture
def backend(llm: MockLLM) -> Iterator[LiveServer]:
    settings = openai_settings(
        llm,
        request_timeout=5,
        max_retries=0,
    )
    app = create_app(settings)
    start_job_consumer(app)  # big selections run as jobs, as on the real server
    server = LiveServer(app)
    yield server
    server.stop()
    app.extensions["flaskllm"].consumer.stop(wait=5)


@pytest.fixture(scope="session")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


def _route(route: Route) -> None:
    host = urlsplit(route.request.url).hostname
    if host == OFFICE_JS_HOST:
        route.fulfill(path=FAKE_OFFICE_JS, content_type="text/javascript; charset=utf-8")
    elif host in LOOPBACK:
        route.continue_()
    else:
        route.abort()


@pytest.fixture
def pane(chromium: Browser, backend: LiveServer, request: pytest.FixtureRequest) -> Iterator[Pane]:
    """The task pane as Excel shows it (a narrow page), ready: Office.onReady has run."""
    context = chromium.new_context(viewport={"width": 380, "height": 860})
    context.route("**/*", _route)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    pane = Pane(page, backend)
    page.goto(f"{backend.url}/addin/taskpane.html")
    expect(page.locator("#process")).to_be_enabled()  # enabled only once Office is ready
    yield pane
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"
