"""The Excel surfaces at scale, the way a first user runs them: the server started as the
README starts it (`gunicorn wsgi:application`, shipped defaults: only a token and the
provider set), and the custom function and the Office Script run in Node by
scripts/excel_driver.js, as Excel's shared runtime and script host would run them.

Figures (speed against the ideal) are the benchmark's job (scripts/bench.py); these tests
hold the behaviour: every cell and row settles OK, in few requests, nothing paid twice.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts import benchlib
from scripts.mock_llm import MockLLM

pytestmark = pytest.mark.e2e

EXCEL_PAYLOAD_LIMIT = 5 * 1024 * 1024


@pytest.fixture
def shipped(mock: MockLLM, tmp_path: Path) -> Iterator[str]:
    if shutil.which("node") is None:
        pytest.fail("node is not installed")
    mock.configure(latency_ms=20)
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": mock.openai_base_url}
    with benchlib.gunicorn_shipped(env, str(tmp_path), tmp_path / "server.log") as server:
        yield f"http://127.0.0.1:{server.port}"


def drive(url: str, *args: str) -> dict[str, object]:
    return benchlib.node_driver(args[0], "--url", url, "--token", benchlib.TOKEN, *args[1:], timeout=300)


@pytest.mark.timeout(180)
def test_a_1000_cell_fill_down_settles_ok_and_recalculates_free(shipped: str, mock: MockLLM) -> None:
    figures = drive(shipped, "filldown", "--cells", "1000", "--prefix", f"fill{time.time_ns()}")
    assert (figures["ok"], figures["errors"]) == (1000, 0), figures["first_error"]
    assert figures["batch_requests"] == 10  # 100 rows each: 10 of the 60 requests a minute
    assert mock.calls() == 1000
    assert figures["recalc_ok"] == 1000 and figures["recalc_batch_requests"] == 10
    assert mock.calls() == 1000  # the recalculation was served from the cache


@pytest.mark.timeout(240)
def test_the_office_script_finishes_2000_rows_of_3kb_in_one_run(shipped: str, mock: MockLLM) -> None:
    prefix = f"s{time.time_ns()}"
    # gpt-4 prices: about 2,000 x 800 tokens = 50 USD, above the shipped ESTIMATE_CONFIRM_USD (1 USD):
    # the script as shipped shows the estimate and stops before submitting anything ...
    asked = drive(shipped, "script", "--rows", "2000", "--bytes", "3000", "--prefix", prefix)
    assert (asked["ok"], asked["jobs_submitted"], mock.calls()) == (0, 0, 0)
    logs = asked["estimate_logs"]
    assert isinstance(logs, list) and any("approveCostUsd" in str(line) for line in logs), logs
    # ... and runs once the person running it approves the cost (main's approveCostUsd).
    figures = drive(
        shipped, "script", "--rows", "2000", "--bytes", "3000", "--prefix", prefix, "--approve-usd", "500"
    )
    assert (figures["rows"], figures["ok"], figures["errors"]) == (2000, 2000, 0), figures["first_error"]
    assert figures["jobs_submitted"] == 1
    assert 0 < int(str(figures["max_call_bytes"])) < EXCEL_PAYLOAD_LIMIT  # the sheet is ~6 MB
    assert mock.calls() == 2000
