// The Office Scripts, run as shipped against a fake workbook and a fake FlaskLLM server.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");

const { loadScript } = require("./load-script.js");
const { fakeWorkbook } = require("./fake-excelscript.js");
const { json, okBatch, fakeFetch } = require("./helpers.js");

const SETTINGS = { API_URL: "http://flaskllm.test/", API_TOKEN: "tok", CHUNK_SIZE: 3 };

/** Sheet with a header and `n` texts in column A (rows 2..n+1). */
function sheetWithTexts(texts) {
  const wb = fakeWorkbook();
  wb.grid.load([["Email", "Summary", "Status"], ...texts.map((t) => [t])]);
  return wb;
}

test("ProcessEmails: chunked requests, one read, one write per chunk, results in the next column", async () => {
  const wb = sheetWithTexts(["m1", "m2", "m3", "m4", "m5", "m6", "m7"]);
  const fetch = fakeFetch();
  const { main, logs } = loadScript("ProcessEmails.ts", { fetch, settings: SETTINGS });
  await main(wb);
  assert.deepEqual(fetch.batches().map((c) => c.body.items.length), [3, 3, 1]);
  assert.equal(fetch.batches()[0].url, "http://flaskllm.test/api/v1/batch");
  assert.equal(fetch.batches()[0].init.headers["X-API-Token"], "tok");
  assert.deepEqual(fetch.batches()[0].body.items[0], { id: "2", prompt: "m1", type: "summary" });
  assert.deepEqual(wb.grid.column(1, 1, 8), ["summary:m1", "summary:m2", "summary:m3", "summary:m4", "summary:m5", "summary:m6", "summary:m7"]);
  assert.deepEqual(wb.grid.column(2, 1, 8), ["", "", "", "", "", "", ""]);
  assert.equal(wb.grid.reads, 1);
  assert.equal(wb.grid.writes.length, 3);
  assert.match(logs.at(-1), /Done: 7 rows, 0 failed/);
});

test("ProcessEmails resumes: filled rows and empty inputs are skipped, error rows retried", async () => {
  const wb = sheetWithTexts(["m1", "m2", "", "m4", "m5"]);
  wb.grid.load([["old summary", ""], ["", "ERROR: provider failed"]], 1, 1); // row 2 done, row 3 failed before
  const fetch = fakeFetch();
  const { main } = loadScript("ProcessEmails.ts", { fetch, settings: SETTINGS });
  await main(wb);
  const sent = fetch.batches().flatMap((c) => c.body.items.map((i) => i.prompt));
  assert.deepEqual(sent, ["m2", "m4", "m5"]);
  assert.deepEqual(wb.grid.column(1, 1, 6), ["old summary", "summary:m2", "", "summary:m4", "summary:m5"]);
  assert.deepEqual(wb.grid.column(2, 1, 6), ["", "", "", "", ""]); // the old error is cleared
});

test("ProcessEmails: a failed row gets its error in the status column, the others their result", async () => {
  const onBatch = (items) =>
    items.some((i) => i.prompt === "bad")
      ? json(200, {
          results: items.map((item, index) =>
            item.prompt === "bad"
              ? { index, ok: false, error: { code: "provider_error", message: "provider failed" } }
              : { index, ok: true, summary: "=1+1 is not a formula" },
          ),
        })
      : okBatch(items);
  const wb = sheetWithTexts(["good", "bad", "fine"]);
  const { main, logs } = loadScript("ProcessEmails.ts", { fetch: fakeFetch({ onBatch }), settings: SETTINGS });
  await main(wb);
  assert.deepEqual(wb.grid.column(1, 1, 4), ["=1+1 is not a formula", "", "=1+1 is not a formula"]);
  assert.deepEqual(wb.grid.column(2, 1, 4), ["", "ERROR: provider failed", ""]);
  assert.match(logs.at(-1), /1 failed/);
});

test("ProcessEmails stops at a rejected token, marks the chunk, and a later run resumes", async () => {
  const wb = sheetWithTexts(["a", "b", "c", "d", "e"]);
  const denied = fakeFetch({ onBatch: () => json(401, { error: { code: "unauthorized", message: "no" } }) });
  const first = loadScript("ProcessEmails.ts", { fetch: denied, settings: SETTINGS });
  await first.main(wb);
  assert.equal(denied.batches().length, 1); // stopped after the first chunk
  assert.deepEqual(wb.grid.column(2, 1, 6), ["ERROR: the server rejected API_TOKEN", "ERROR: the server rejected API_TOKEN", "ERROR: the server rejected API_TOKEN", "", ""]);
  assert.match(first.logs.at(-1), /Stopped after 3 of 5 rows: the server rejected API_TOKEN/);

  const fixed = fakeFetch();
  await loadScript("ProcessEmails.ts", { fetch: fixed, settings: SETTINGS }).main(wb);
  assert.equal(fixed.batches().flatMap((c) => c.body.items).length, 5);
  assert.deepEqual(wb.grid.column(2, 1, 6), ["", "", "", "", ""]);
});

test("ProcessEmails: unreachable server and HTTP errors are written, not thrown", async () => {
  const wb = sheetWithTexts(["a", "b"]);
  const down = () => Promise.reject(new TypeError("fetch failed"));
  await loadScript("ProcessEmails.ts", { fetch: down, settings: SETTINGS }).main(wb);
  assert.deepEqual(wb.grid.column(2, 1, 3), Array(2).fill("ERROR: cannot reach the FlaskLLM server at http://flaskllm.test/"));

  const busy = fakeFetch({ onBatch: () => json(502, { error: { code: "provider_error", message: "upstream 500" } }) });
  await loadScript("ProcessEmails.ts", { fetch: busy, settings: { ...SETTINGS, LANGUAGE: "de", TASK_TYPE: "translation" } }).main(wb);
  assert.deepEqual(busy.batches()[0].body.items[0], { id: "2", prompt: "a", type: "translation", language: "de" });
  assert.deepEqual(wb.grid.column(2, 1, 3), Array(2).fill("ERROR: HTTP 502: upstream 500"));
});

test("ProcessEmails on an empty sheet does nothing", async () => {
  const fetch = fakeFetch();
  const { main, logs } = loadScript("ProcessEmails.ts", { fetch, settings: SETTINGS });
  await main(fakeWorkbook());
  assert.equal(fetch.calls.length, 0);
  assert.deepEqual(logs, ["The sheet is empty."]);
});

test("ProcessTableColumn: all rows of the column, output and status columns created, resumable", async () => {
  const wb = fakeWorkbook();
  const rows = [["x1", "Alice"], ["", "Bob"], ["x3", "Carol"], ["x4", "Dan"], ["x5", "Eve"]];
  wb.addTable("Emails", 3, 2, ["Body", "From"], rows); // header at row 4, columns C:D
  const fetch = fakeFetch({ onBatch: (items) => (items.some((i) => i.prompt === "x4") ? json(200, { results: items.map((it, index) => (it.prompt === "x4" ? { index, ok: false, error: { code: "provider_timeout", message: "slow" } } : { index, ok: true, summary: `S(${it.prompt})` })) }) : okBatch(items)) });
  const { main } = loadScript("ProcessTableColumn.ts", { fetch, settings: { ...SETTINGS, CHUNK_SIZE: 2 } });
  await main(wb);
  const table = wb.getTable("Emails");
  assert.deepEqual(table.headers, ["Body", "From", "Summary", "FlaskLLM status"]);
  assert.deepEqual(fetch.batches().map((c) => c.body.items.map((i) => i.prompt)), [["x1", "x3"], ["x4", "x5"]]);
  assert.deepEqual(wb.grid.column(4, 4, 9), ["summary:x1", "", "summary:x3", "", "S(x5)"]);
  assert.deepEqual(wb.grid.column(5, 4, 9), ["", "", "", "ERROR: slow", ""]);
  assert.equal(wb.grid.reads, 1);
  assert.equal(wb.grid.writes.length, 4); // two chunks x (output, status)

  const retry = fakeFetch();
  await loadScript("ProcessTableColumn.ts", { fetch: retry, settings: SETTINGS }).main(wb);
  assert.deepEqual(retry.batches().flatMap((c) => c.body.items.map((i) => i.prompt)), ["x4"]);
  assert.deepEqual(wb.grid.column(5, 4, 9), ["", "", "", "", ""]);
});

test("ProcessTableColumn names a missing table or column instead of failing", async () => {
  const fetch = fakeFetch();
  const wb = fakeWorkbook();
  const missingTable = loadScript("ProcessTableColumn.ts", { fetch, settings: SETTINGS });
  await missingTable.main(wb);
  assert.deepEqual(missingTable.logs, ['No table named "Emails" in this workbook.']);
  wb.addTable("Emails", 0, 0, ["Text"], [["a"]]);
  const missingColumn = loadScript("ProcessTableColumn.ts", { fetch, settings: SETTINGS });
  await missingColumn.main(wb);
  assert.deepEqual(missingColumn.logs, ['Table "Emails" has no column "Body".']);
  assert.equal(fetch.calls.length, 0);
});

test("the scripts keep Office Scripts' rules: top-level async main(workbook), no `any`", () => {
  for (const name of ["ProcessEmails.ts", "ProcessTableColumn.ts"]) {
    const source = fs.readFileSync(path.join(__dirname, "..", "office-scripts", name), "utf8");
    assert.match(source, /^async function main\(workbook: ExcelScript\.Workbook\): Promise<void> \{$/m, name);
    assert.doesNotMatch(source, /(:|<|as|\|)\s*any\b|any\[\]/, `${name} uses any`);
    assert.doesNotMatch(source, /^(import|export)\b/m, `${name} must be standalone`);
  }
});
