// The task pane: its pure helpers, and the pane itself run in Node (fake DOM, the e2e suite's fake
// Excel, a document-settings store, a fake jobs server): big selections become a job with progress
// and ETA, a reopened pane resumes the stored job, Cancel deletes it, small selections keep /batch.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");

const { planRows, chunks, asCellText, formatEta, progressText, planWrites, cellValue, JOB_SETTING } = require("../taskpane.js");
const { fakeJobsServer } = require("./fake-jobs.js");
const { openPane, fakeWorkbook, settingsStore, savedSettings, until } = require("./fake-pane.js");

const TOKEN = "secret-token-1234";

test("planRows skips empty inputs, and filled outputs only when asked; ERROR rows are retried", () => {
  const inputs = ["a", "", "c", "d", "  ", 7];
  const outputs = ["done", "", "", "ERROR: provider failed", "", ""];
  assert.deepEqual(planRows(inputs, outputs, true), [2, 3, 5]);
  assert.deepEqual(planRows(inputs, outputs, false), [0, 2, 3, 5]);
});

test("chunks splits a run into requests of at most n rows", () => {
  assert.deepEqual(chunks([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]);
  assert.deepEqual(chunks([], 20), []);
});

test("asCellText keeps LLM output from becoming a formula", () => {
  assert.equal(asCellText("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
  assert.equal(asCellText("- first point"), "'- first point");
  assert.equal(asCellText("-0.5"), "-0.5");
  assert.equal(asCellText("plain"), "plain");
});

test("formatEta and progressText say how far and how long", () => {
  assert.equal(formatEta(42), "about 40 s left");
  assert.equal(formatEta(7.4), "about 7 s left");
  assert.equal(formatEta(0), "about 1 s left");
  assert.equal(formatEta(150), "about 3 min left");
  assert.equal(formatEta(3 * 3600 + 20 * 60), "about 3 h 20 min left");
  assert.equal(formatEta(null), "");
  assert.equal(progressText({ done: 40, total: 150, cached: 3, failed: 1, eta: 38 }), "40 / 150 rows · 3 cached · 1 failed · about 40 s left");
  assert.equal(progressText({ done: 5, total: 5, cached: 0, failed: 1 }), "5 / 5 rows · 0 cached · 1 failed");
});

test("planWrites: runs of consecutive rows, syncs kept under the byte limit", () => {
  const cells = [5, 1, 2, 3, 7, 8].map((row) => ({ row, text: "x".repeat(10) }));
  assert.deepEqual(planWrites(cells).map((sync) => sync.map((r) => [r.row, r.texts.length])), [[[1, 3], [5, 1], [7, 2]]]);
  const small = planWrites(cells, 30); // 13 bytes a cell: two cells per sync
  assert.ok(small.length >= 3);
  assert.deepEqual(small.flat().flatMap((r) => r.texts.map((_, i) => r.row + i)), [1, 2, 3, 5, 7, 8]);
});

/** A workbook with `n` e-mails in A2:A(n+1), selected; a settings store; the token saved. */
function setup(n, serverOptions = {}) {
  const workbook = fakeWorkbook();
  const texts = Array.from({ length: n }, (_, i) => `Mail ${i}: the order shipped.`);
  workbook.excel.setValues(`A2:A${n + 1}`, texts.map((t) => [t]));
  workbook.excel.select(`A2:A${n + 1}`);
  const server = fakeJobsServer({ token: TOKEN, ...serverOptions });
  return { workbook, texts, server, store: settingsStore(), localStorage: savedSettings({ token: TOKEN }) };
}

/** Column B's values (as a plain array of this realm: the workbook lives in another vm context). */
const outputs = (workbook, n) => JSON.parse(JSON.stringify(workbook.excel.getValues(`B2:B${n + 1}`).map((r) => r[0])));

test("a selection larger than one batch runs as a job: progress, ETA, results written, record cleared", async () => {
  const env = setup(150, { rowsPerTick: 40, eta: (job) => (job.total - job.done) / 3 });
  const pane = openPane(env);
  await pane.idle();
  pane.$("process").click();
  await until(() => env.store.persisted()[JOB_SETTING]);
  const record = env.store.persisted()[JOB_SETTING];
  assert.deepEqual(
    { id: record.id, address: record.address, type: record.type, total: record.total },
    { id: "job-1", address: "Sheet1!A2:A151", type: "summary", total: 150 },
  );
  await pane.idle();
  assert.equal(env.server.batches().length, 0);
  assert.equal(env.server.posts().length, 1);
  assert.equal(env.server.posts()[0].body.items.length, 150);
  assert.match(env.server.posts()[0].headers["Idempotency-Key"], /^pane-[0-9a-f]{28}$/);
  assert.deepEqual(outputs(env.workbook, 150), env.texts.map((t) => `summary:${t}`));
  const lines = pane.$("progress-text").history;
  assert.ok(lines.some((l) => /^\d+ \/ 150 rows · 0 cached · 0 failed · about \d+ s left$/.test(l)), lines.join("\n"));
  assert.equal(pane.$("progress-text").textContent, "150 / 150 rows · 0 cached · 0 failed");
  assert.equal(pane.$("status").textContent, "Done: 150 rows, 0 from the cache.");
  assert.equal(env.store.persisted()[JOB_SETTING], undefined, "the record is cleared when done");
  for (const saved of env.store.saves) assert.doesNotMatch(JSON.stringify(saved), new RegExp(TOKEN), "never the token");
  assert.equal(pane.$("process").disabled, false);
  assert.equal(pane.$("cancel").disabled, true);
});

test("failed rows of a job say ERROR in their cells and count as failed", async () => {
  const onRow = (item, index) => (index % 50 === 7 ? { ok: false, error: { code: "provider_error", message: "upstream 500" } } : { ok: true, summary: `S${index}`, cached: index < 10 });
  const env = setup(120, { onRow });
  const pane = openPane(env);
  await pane.idle();
  pane.$("process").click();
  await pane.idle();
  const out = outputs(env.workbook, 120);
  assert.equal(out[7], "ERROR: upstream 500");
  assert.equal(out[8], "S8");
  assert.equal(pane.$("status").textContent, "Done: 120 rows, 9 from the cache, 3 failed (their cells say ERROR).");
  assert.equal(pane.$("status").className, "error");
});

test("closing the pane mid-job and reopening it resumes the stored job: no new job, every row written", async () => {
  const env = setup(300, { rowsPerTick: 25 });
  const first = openPane({ ...env, pollMs: 20 });
  await first.idle();
  first.$("process").click();
  await until(() => outputs(env.workbook, 300).some((v) => v !== "") && (env.store.persisted()[JOB_SETTING] || {}).after >= 0);
  first.close();
  const stored = env.store.persisted()[JOB_SETTING];
  assert.equal(stored.id, "job-1");
  const writtenBefore = outputs(env.workbook, 300).filter((v) => v !== "").length;
  assert.ok(writtenBefore > 0 && writtenBefore < 300, `${writtenBefore} rows written before closing`);

  const second = openPane(env); // reopening: on load it finds the stored job
  await second.idle();
  assert.ok(second.$("status").history.includes("Resuming job job-1 for Sheet1!A2:A301 (summary)…"), second.$("status").history.join("\n"));
  assert.equal(env.server.posts().length, 1, "no second job");
  assert.equal(env.server.repeatedRows(), 0);
  const resultGets = env.server.calls.filter((c) => c.path.endsWith("/results"));
  assert.ok(resultGets.some((c) => /after=\d+/.test(c.query)), "the reopened pane continued after the stored cursor");
  assert.deepEqual(outputs(env.workbook, 300), env.texts.map((t) => `summary:${t}`));
  assert.equal(second.$("status").textContent, "Done: 300 rows, 0 from the cache.");
  assert.equal(env.store.persisted()[JOB_SETTING], undefined);
});

test("with a job stored, Process resumes it instead of submitting another", async () => {
  const env = setup(200, { rowsPerTick: 20 });
  const first = openPane({ ...env, pollMs: 20 });
  await first.idle();
  first.$("process").click();
  await until(() => env.store.persisted()[JOB_SETTING]);
  first.close();
  const second = openPane({ ...env, localStorage: savedSettings({ token: "" }) }); // no token: it cannot resume yet
  await second.idle();
  assert.match(second.$("status").textContent, /A job for Sheet1!A2:A201 is stored in this workbook: set your API token/);
  second.$("api-token").value = TOKEN;
  second.$("process").click();
  await second.idle();
  assert.equal(env.server.posts().length, 1);
  assert.deepEqual(outputs(env.workbook, 200), env.texts.map((t) => `summary:${t}`));
});

test("Cancel deletes the job, stops polling, keeps finished rows and leaves the rest empty", async () => {
  const env = setup(400, { rowsPerTick: 20 });
  const pane = openPane({ ...env, pollMs: 20 });
  await pane.idle();
  pane.$("process").click();
  await until(() => env.server.calls.some((c) => c.path === "/api/v1/jobs/job-1" && c.method === "GET"));
  pane.$("cancel").click();
  await pane.idle();
  assert.equal(env.server.deletes().length, 1);
  assert.equal(env.server.deletes()[0].path, "/api/v1/jobs/job-1");
  const deleteAt = env.server.calls.indexOf(env.server.deletes()[0]);
  const afterDelete = env.server.calls.slice(deleteAt + 1);
  assert.ok(afterDelete.every((c) => c.path.endsWith("/results")), "after DELETE only the finished rows are fetched, once");
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(env.server.calls.length, deleteAt + 1 + afterDelete.length, "no more polling");
  const job = env.server.jobs.get("job-1");
  assert.equal(job.status, "cancelled");
  const out = outputs(env.workbook, 400);
  const finished = job.rows.filter((r) => r.ok).length;
  assert.ok(finished > 0 && finished < 400);
  assert.equal(out.filter((v) => v !== "").length, finished, "finished rows are written, cancelled rows stay empty");
  assert.match(pane.$("status").textContent, /^Cancelled job job-1; rows it had finished are written/);
  assert.equal(env.store.persisted()[JOB_SETTING], undefined);
});

test("a small selection keeps the /batch path", async () => {
  const env = setup(20);
  const pane = openPane(env);
  await pane.idle();
  pane.$("process").click();
  await pane.idle();
  assert.equal(env.server.posts().length, 0);
  assert.equal(env.server.batches().length, 1);
  assert.equal(pane.$("status").textContent, "Done: 20 rows, 0 from the cache.");
  assert.deepEqual(outputs(env.workbook, 20), env.texts.map((t) => `summary:${t}`));
});

test("without document settings (a host that has none) a job still runs, with nothing stored", async () => {
  const env = setup(130);
  const pane = openPane({ ...env, withDocument: false });
  await pane.idle();
  pane.$("process").click();
  await pane.idle();
  assert.equal(env.server.posts().length, 1);
  assert.equal(pane.$("status").textContent, "Done: 130 rows, 0 from the cache.");
  assert.equal(env.store.saves.length, 0);
});

test("a 429 on submitting the job is waited out", async () => {
  const env = setup(120);
  env.server.rateLimit("POST", "/api/v1/jobs", 1, 0);
  const pane = openPane(env);
  await pane.idle();
  pane.$("process").click();
  await pane.idle();
  assert.deepEqual(env.server.posts().map((p) => p.status), [429, 202]);
  assert.ok(pane.$("status").history.includes("Rate limited: waiting 0 s before going on…"));
  assert.equal(pane.$("status").textContent, "Done: 120 rows, 0 from the cache.");
});

test("cellValue and planWrites: an EXTRACT record spills one cell per field, other rows stay one cell", () => {
  const record = { ok: true, type: "extract", summary: "due: 3 May; amount: 120", result: { due: "3 May", amount: "120" } };
  const sentiment = { ok: true, type: "sentiment", summary: "positive (+0.80)", result: { label: "positive", score: 0.8 } };
  const textOf = (/** @type {any} */ row) => row.summary;
  assert.deepEqual(cellValue(record, textOf), ["3 May", "120"]);
  assert.equal(cellValue(sentiment, textOf), "positive (+0.80)");
  const cells = [
    { row: 1, text: ["a", "b"] },
    { row: 2, text: ["c", "d"] },
    { row: 3, text: "ERROR: failed" },
    { row: 4, text: ["e", "f"] },
  ];
  const runs = planWrites(cells).flat().map((r) => [r.row, r.texts.length, r.width]);
  assert.deepEqual(runs, [[1, 2, 2], [3, 1, 1], [4, 1, 2]]);
});
