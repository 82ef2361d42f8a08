"""The Excel kit in Chromium against the real backend and the mock LLM.

Each test drives the task pane (or the PROCESSEMAIL function) the way a user in Excel on the web
would, with tests/fakes/office.js standing in for Excel. Screenshots: test-artifacts/e2e/.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from scripts.mock_llm import MockLLM
from tests.conftest import TOKEN
from tests.e2e.conftest import Pane

pytestmark = pytest.mark.e2e

EMAILS = [
    f"Hi team, order {n} shipped on Monday. The invoice follows by mail. Regards, Ann" for n in range(1, 201)
]
INVOKE_ALL = """async (args) => {
  const outcomes = await Promise.allSettled(args.map((a) => __fakeExcel.invoke("PROCESSEMAIL", ...a)));
  return outcomes.map((o) => o.status === "fulfilled"
    ? {ok: true, value: o.value}
    : {ok: false, code: o.reason.code, message: o.reason.message});
}"""


def test_token_is_saved_per_user_and_the_connection_test_checks_it(pane: Pane) -> None:
    page = pane.page
    expect(page.locator("#backend-url")).to_have_value(pane.backend.url)  # default: its origin
    page.fill("#api-token", "not-the-token")
    page.click("#test-connection")
    expect(page.locator("#status")).to_contain_text("token rejected by the server")
    expect(page.locator("#status")).to_have_class("error")

    page.fill("#api-token", TOKEN)
    page.click("#test-connection")
    expect(page.locator("#status")).to_contain_text("Connected to FlaskLLM")
    expect(page.locator("#status")).to_contain_text("Token accepted")
    keys = page.evaluate("Object.keys(localStorage)")
    assert keys == ["fake-partition!flaskllm.settings"]  # keyed by Office.context.partitionKey

    page.reload()
    expect(page.locator("#api-token")).to_have_value(TOKEN)


def test_process_selection_writes_every_row_with_progress(pane: Pane) -> None:
    pane.save_token()
    pane.put("A2:A21", EMAILS[:20])
    pane.select("A2:A21")
    pane.process()
    expect(pane.page.locator("#progress-text")).to_contain_text("20 / 20 rows", timeout=30_000)
    expect(pane.page.locator("#status")).to_contain_text("Done: 20 rows")
    results = pane.column("B2:B21")
    assert all(isinstance(v, str) and v and not v.startswith("ERROR") for v in results), results
    assert pane.column("B1:B1") == [""] and pane.column("B22:B22") == [""]  # nothing outside
    assert len(pane.batch_requests) == 1  # 20 rows = one chunk
    assert pane.page.evaluate("__fakeExcel.state.dropped") == 0  # every write was synced


def test_a_row_the_provider_fails_shows_its_error_and_the_others_succeed(pane: Pane) -> None:
    pane.save_token()
    texts = EMAILS[:5]
    texts[2] = "Please summarise this one too. [[mock:status=500]]"
    pane.put("A2:A6", texts)
    pane.select("A2:A6")
    pane.process()
    expect(pane.page.locator("#status")).to_contain_text("1 failed", timeout=30_000)
    results = pane.column("B2:B6")
    assert results[2].startswith("ERROR: "), results
    assert all(r and not r.startswith("ERROR") for i, r in enumerate(results) if i != 2), results
    expect(pane.page.locator("#progress-text")).to_have_text("5 / 5 rows · 0 cached · 1 failed")


def test_cancel_stops_mid_way_and_the_next_run_skips_filled_rows(pane: Pane, llm: MockLLM) -> None:
    pane.save_token()
    pane.put("A2:A101", EMAILS[:100])
    pane.select("A2:A101")
    llm.configure(latency_ms=300)  # 20-row chunks take about a second each
    pane.process()
    pane.page.wait_for_function("document.getElementById('progress').value >= 20", timeout=30_000)
    pane.page.click("#cancel")
    expect(pane.page.locator("#status")).to_contain_text("Cancelled after", timeout=30_000)
    expect(pane.page.locator("#process")).to_be_enabled()
    first = pane.column("B2:B101")
    filled = [i for i, v in enumerate(first) if v]
    assert 20 <= len(filled) < 100, len(filled)

    llm.configure(latency_ms=0)
    sent_before = len(pane.batch_requests)
    pane.process()
    expect(pane.page.locator("#status")).to_contain_text("Done:", timeout=30_000)
    resent = {row["prompt"] for row in pane.batch_rows(since=sent_before)}
    assert len(resent) == 100 - len(filled)
    assert not resent & {EMAILS[i] for i in filled}
    assert all(pane.column("B2:B101"))
    assert [pane.column("B2:B101")[i] for i in filled] == [first[i] for i in filled]


def test_200_formula_cells_travel_in_at_most_4_batches(pane: Pane, llm: MockLLM) -> None:
    pane.save_token()
    outcomes = pane.page.evaluate(INVOKE_ALL, [[text, None, None] for text in EMAILS])
    assert len(outcomes) == 200
    assert all(o["ok"] and o["value"] for o in outcomes), outcomes[:3]
    assert 1 <= len(pane.batch_requests) <= 4
    assert len(pane.batch_rows()) == 200
    assert llm.calls() == 200

    # Filled down again (a recalculation): identical cells share rows, the server's cache answers.
    again = pane.page.evaluate(INVOKE_ALL, [[EMAILS[i % 10], None, None] for i in range(50)])
    assert all(o["ok"] for o in again)
    assert len(pane.batch_rows()) == 210 and llm.calls() == 200


def test_llm_down_every_cell_settles_with_an_error(pane: Pane, llm: MockLLM) -> None:
    pane.save_token()
    llm.stop()
    outcomes = pane.page.evaluate(INVOKE_ALL, [[f"mail {i}", None, None] for i in range(30)])
    assert len(outcomes) == 30
    for o in outcomes:
        assert not o["ok"]
        assert o["code"] == "#N/A"
        assert o["message"]
    assert len(pane.batch_requests) == 1


def test_backend_down_every_cell_settles_with_an_error(pane: Pane) -> None:
    pane.save_token()
    pane.backend.stop()
    outcomes = pane.page.evaluate(INVOKE_ALL, [[f"mail {i}", "keywords", None] for i in range(30)])
    assert [o["ok"] for o in outcomes] == [False] * 30
    assert {o["message"] for o in outcomes} == {f"Cannot reach the FlaskLLM server at {pane.backend.url}"}
    pane.page.click("#test-connection")
    expect(pane.page.locator("#status")).to_have_text(re.compile(r"^Connection failed: Cannot reach"))


BIG = [
    f"Dear Sam, shipment {n} is delayed by two days. Please confirm the new date. Best, Lee"
    for n in range(150)
]


def stored_job(pane: Pane) -> dict[str, object] | None:
    saved = pane.page.evaluate("__fakeExcel.savedSettings()")
    job: dict[str, object] | None = saved.get("flaskllm.job")
    return job


def test_a_big_selection_runs_as_a_job_with_progress_and_eta(pane: Pane, llm: MockLLM) -> None:
    llm.configure(latency_ms=20)
    pane.save_token()
    pane.put("A2:A151", BIG)
    pane.select("A2:A151")
    with pane.page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/api/v1/jobs")) as sent:
        pane.process()
    assert len((sent.value.post_data_json or {})["items"]) == 150
    expect(pane.page.locator("#progress-text")).to_contain_text("150 / 150 rows", timeout=30_000)
    expect(pane.page.locator("#status")).to_contain_text("Done: 150 rows")
    results = pane.column("B2:B151")
    assert all(isinstance(v, str) and v and not v.startswith("ERROR") for v in results), results
    assert pane.batch_requests == []  # the job path, not /batch chunks
    assert stored_job(pane) is None  # finished: nothing left in the document
    token = pane.page.evaluate("JSON.stringify(__fakeExcel.savedSettings())")
    assert TOKEN not in token


def test_reopening_the_pane_resumes_the_stored_job(pane: Pane, llm: MockLLM) -> None:
    llm.configure(latency_ms=1000)  # slow enough (5 rounds of 32 slots) to close the pane mid-job
    pane.save_token()
    pane.put("A2:A151", BIG)
    pane.select("A2:A151")
    pane.process()
    expect(pane.page.locator("#progress-text")).to_contain_text("left", timeout=30_000)  # an ETA
    record = stored_job(pane)
    assert record is not None and record["address"] and "token" not in record
    pane.page.reload()  # the pane closed and opened again
    # The fake workbook lives in the page: put the inputs back (a real workbook keeps them).
    # What the first pane wrote is gone with it; the reopened pane goes on from its cursor.
    pane.put("A2:A151", BIG)
    reopened = stored_job(pane)
    assert reopened is not None and reopened["id"] == record["id"]
    expect(pane.page.locator("#status")).to_contain_text(str(record["id"]))
    expect(pane.page.locator("#status")).to_contain_text("Done: 150 rows", timeout=60_000)
    after = reopened.get("after")
    cursor = -1 if after is None else int(str(after))  # null: nothing paged in yet
    assert cursor < 149, "the job finished before the pane was closed"
    results = pane.column("B2:B151")[cursor + 1 :]
    assert all(isinstance(v, str) and v and not v.startswith("ERROR") for v in results), results
    assert llm.calls() == 150  # the job ran once; reopening did not submit it again
    assert stored_job(pane) is None


def test_cancel_deletes_the_job(pane: Pane, llm: MockLLM) -> None:
    llm.configure(latency_ms=1000)
    pane.save_token()
    pane.put("A2:A151", BIG)
    pane.select("A2:A151")
    pane.process()
    expect(pane.page.locator("#progress-text")).to_contain_text("left", timeout=30_000)
    with pane.page.expect_request(lambda r: r.method == "DELETE" and "/api/v1/jobs/" in r.url):
        pane.page.click("#cancel")
    expect(pane.page.locator("#status")).to_contain_text("Cancelled job", timeout=20_000)
    assert stored_job(pane) is None
    written = [v for v in pane.column("B2:B151") if v]
    assert 0 < len(written) < 150 and not any(str(v).startswith("ERROR") for v in written)
    assert llm.calls() < 150


def test_extract_spills_one_column_per_field_and_prompt_follows_the_instruction(
    pane: Pane, llm: MockLLM
) -> None:
    pane.save_token()
    page = pane.page
    pane.put("A2:A4", [f"Order {n} from Ann. Amount: {n}00 EUR; due: {n} May" for n in range(1, 4)])
    pane.select("A2:A4")
    page.select_option("#task-type", "extract")
    expect(page.locator("#fields-group")).to_be_visible()
    page.fill("#fields", "amount, due")
    page.click("#process")
    expect(page.locator("#status")).to_contain_text("Done: 3 rows", timeout=30_000)
    grid = page.evaluate("(a) => __fakeExcel.getValues(a)", "B2:C4")
    assert grid == [[f"{n}00 EUR", f"{n} May"] for n in range(1, 4)]
    [sent] = pane.batch_requests  # three rows: one batch, the task's options as its defaults
    assert (sent.post_data_json or {})["defaults"] == {"fields": ["amount", "due"]}
    assert {row["type"] for row in pane.batch_rows()} == {"extract"}

    pane.put("E2:E3", ["North sold 10 units.", "South sold 12 units."])
    pane.select("E2:E3")
    page.select_option("#task-type", "prompt")
    expect(page.locator("#instruction-group")).to_be_visible()
    page.fill("#instruction", "Which region is named?")
    page.click("#process")
    expect(page.locator("#status")).to_contain_text("Done: 2 rows", timeout=30_000)
    answers = pane.column("F2:F3")
    assert answers == [
        "Echo: Instruction: Which region is named?\n\nNorth sold 10 units.",
        "Echo: Instruction: Which region is named?\n\nSouth sold 12 units.",
    ], answers


def test_a_costly_run_shows_its_estimate_and_sends_nothing_until_run(pane: Pane, llm: MockLLM) -> None:
    pane.save_token()
    pane.put("A2:A151", BIG)
    pane.select("A2:A151")
    jobs: list[Any] = []
    pane.page.on("request", lambda r: jobs.append(r) if r.url.endswith("/api/v1/jobs") else None)
    pane.process(approve=False)  # 150 long e-mails at gpt-4 prices: above the 1 USD threshold
    estimate = pane.page.locator("#estimate")
    expect(estimate).to_contain_text("150 rows")
    expect(estimate).to_contain_text("$")
    expect(pane.page.locator("#status")).to_contain_text("Not run")
    assert jobs == [] and pane.batch_requests == [] and llm.calls() == 0
    assert pane.column("B2:B2") == [""]
    pane.process(approve=True)
    expect(pane.page.locator("#status")).to_contain_text("Done: 150 rows", timeout=60_000)
    assert len(jobs) == 1 and llm.calls() == 150
