// The task pane's cost estimate and go-ahead, and a used-up budget: the real taskpane.js in the
// fake pane against the fake jobs server. Every test holds the pane to what it sent (or did not
// send) to the server, not only to what it showed.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");

const { estimateText, confirmText, formatUsd, JOB_SETTING } = require("../taskpane.js");
const { fakeJobsServer, budgetRow } = require("./fake-jobs.js");
const { openPane, fakeWorkbook, settingsStore, savedSettings, until } = require("./fake-pane.js");
const { json } = require("./helpers.js");

const TOKEN = "secret-token-1234";
const BUDGET = { limit_usd: 5, spent_usd: 1.2, remaining_usd: 3.8, period: "day", resets_at: "2026-12-04T00:00:00Z" };
const SPENT = "Budget of $5.00 per day used up; it resets at 2026-12-04T00:00:00Z.";

/** `n` e-mails in A2:A(n+1), selected, and a pane open on them. */
function setup(n, serverOptions = {}, paneOptions = {}) {
  const workbook = fakeWorkbook();
  const texts = Array.from({ length: n }, (_, i) => `Mail ${i}: the order shipped.`);
  workbook.excel.setValues(`A2:A${n + 1}`, texts.map((t) => [t]));
  workbook.excel.select(`A2:A${n + 1}`);
  const server = fakeJobsServer({ token: TOKEN, ...serverOptions });
  const env = { workbook, texts, server, store: settingsStore(), localStorage: savedSettings({ token: TOKEN }) };
  return { ...env, pane: openPane({ ...env, ...paneOptions }) };
}

const outputs = (workbook, n) => JSON.parse(JSON.stringify(workbook.excel.getValues(`B2:B${n + 1}`).map((r) => r[0])));
/** Everything that would cost money: /batch rows and job submissions. */
const submitted = (server) => server.batches().length + server.posts().length;
const tick = (ms = 30) => new Promise((resolve) => setTimeout(resolve, ms));


// The next run once the budget reset (a fresh server, skip filled): it sends exactly the rows
// from `first` on, which the run before left as ERROR or empty, and fills them.
async function rerunAfterReset(env, first, rows) {
  const server = fakeJobsServer({ token: TOKEN });
  const again = openPane({ ...env, server });
  await again.idle();
  again.$("process").click();
  await again.idle();
  assert.deepEqual(server.batches().flatMap((c) => c.body.items.map((i) => i.prompt)), env.texts.slice(first));
  assert.deepEqual(outputs(env.workbook, rows).slice(first), env.texts.slice(first).map((t) => `summary:${t}`));
  again.close();
}

test("estimateText and confirmText say rows, cached, to run, cost (or price unknown), time and budget", () => {
  const e = { rows: 120, invalid: 2, cached: 20, toRun: 98, inputTokens: 12345, outputTokens: 6000, costUsd: 0.0123, seconds: 14.2, provider: "openai", model: "gpt-4", confirm: true, budget: { limitUsd: 5, spentUsd: 1.2, remainingUsd: 3.8, period: "day", resetsAt: "2026-12-04T00:00:00Z" } };
  assert.equal(estimateText(e), "Estimate: 120 rows · 20 cached · 98 to run · 2 invalid · est. $0.01 · about 15 s · budget left $3.80 of $5.00 per day");
  assert.equal(estimateText({ ...e, invalid: 0, costUsd: null, seconds: null, budget: null }), "Estimate: 120 rows · 20 cached · 98 to run · price unknown");
  assert.equal(confirmText(e), "This run is estimated at $0.01 for 98 rows to run. Run it?");
  assert.equal(confirmText({ ...e, costUsd: 4.2 }), "This run is estimated at $4.20 for 98 rows to run, more than the $3.80 left in your budget (it resets 2026-12-04T00:00:00Z). Run it?");
  assert.equal(confirmText({ ...e, costUsd: null }), "The price of gpt-4 is unknown for 98 rows to run. Run it?");
  assert.deepEqual([0, 0.004, 12.3, 1204.4].map(formatUsd), ["$0.00", "< $0.01", "$12.30", "$1,204"]);
});

test("the estimate is shown before a run and, without confirm, the run starts at once with exactly the estimated rows", async () => {
  const { pane, server, workbook, texts } = setup(20, { estimate: { cached: 2, to_run: 18, cost_usd: 0.018, seconds: 1.8, budget: BUDGET } });
  await pane.idle();
  pane.$("process").click();
  await pane.idle();
  const [estimate] = server.estimates();
  const [batch] = server.batches();
  assert.equal(server.estimates().length, 1);
  assert.ok(server.calls.indexOf(estimate) < server.calls.indexOf(batch), "estimated before anything was sent");
  assert.deepEqual(estimate.body, batch.body, "the estimate's body is the run's");
  assert.equal(estimate.headers["X-API-Token"], TOKEN);
  assert.equal(pane.$("estimate").hidden, false);
  assert.equal(pane.$("estimate").textContent, "Estimate: 20 rows · 2 cached · 18 to run · est. $0.02 · about 2 s · budget left $3.80 of $5.00 per day");
  assert.equal(pane.$("confirm").hidden, true, "no question asked");
  assert.equal(pane.$("status").textContent, "Done: 20 rows, 0 from the cache.");
  assert.deepEqual(outputs(workbook, 20), texts.map((t) => `summary:${t}`));
  pane.close();
});

test("confirm: the pane asks with Run / Cancel and sends nothing; Cancel ends the run with nothing sent", async () => {
  const { pane, server, workbook } = setup(20, { estimate: { cost_usd: 2.5, confirm: true } });
  await pane.idle();
  pane.$("process").click();
  await until(() => !pane.$("confirm").hidden);
  assert.equal(pane.$("confirm-text").textContent, "This run is estimated at $2.50 for 20 rows to run. Run it?");
  assert.equal(pane.$("estimate").textContent, "Estimate: 20 rows · 0 cached · 20 to run · est. $2.50 · about 2 s");
  assert.equal(pane.$("status").textContent, "Waiting for your go-ahead: Run or Cancel.");
  await tick();
  assert.equal(submitted(server), 0, "nothing is sent while the pane asks");
  pane.$("confirm-cancel").click();
  await pane.idle();
  assert.equal(submitted(server), 0);
  assert.equal(pane.$("confirm").hidden, true);
  assert.equal(pane.$("status").textContent, "Not run: nothing was sent. Press Process selection to see the estimate again.");
  assert.deepEqual(new Set(outputs(workbook, 20)), new Set([""]));
  assert.equal(pane.$("process").disabled, false);
  assert.equal(pane.$("cancel").disabled, true);
  pane.close();
});

test("confirm: Run submits the job the estimate was for, with its progress, and the results are written", async () => {
  const { pane, server, workbook, texts } = setup(150, { estimate: { cost_usd: null, model: "gpt-x", confirm: true } });
  await pane.idle();
  pane.$("process").click();
  await until(() => !pane.$("confirm").hidden);
  assert.equal(pane.$("confirm-text").textContent, "The price of gpt-x is unknown for 150 rows to run. Run it?");
  assert.match(pane.$("estimate").textContent, /· price unknown ·/);
  assert.equal(server.posts().length, 0);
  pane.$("confirm-run").click();
  await pane.idle();
  assert.equal(pane.$("confirm").hidden, true);
  assert.equal(server.posts().length, 1);
  assert.deepEqual(server.posts()[0].body, server.estimates()[0].body, "the job is the estimated body");
  assert.deepEqual(outputs(workbook, 150), texts.map((t) => `summary:${t}`));
  assert.equal(pane.$("progress-text").textContent, "150 / 150 rows · 0 cached · 0 failed");
  assert.equal(pane.$("status").textContent, "Done: 150 rows, 0 from the cache.");
  pane.close();
});

test("the pane's own Cancel while it asks sends nothing", async () => {
  const { pane, server, store } = setup(150, { estimate: { confirm: true } });
  await pane.idle();
  pane.$("process").click();
  await until(() => !pane.$("confirm").hidden);
  pane.$("cancel").click();
  await pane.idle();
  await tick();
  assert.equal(submitted(server), 0);
  assert.equal(pane.$("confirm").hidden, true);
  assert.equal(pane.$("status").textContent, "Not run: nothing was sent. Press Process selection to see the estimate again.");
  assert.equal(store.persisted()[JOB_SETTING], undefined, "no job record");
  pane.close();
});

test("an older server without /estimate (404 or 405) runs as before: no estimate shown, no question", async () => {
  for (const estimate of [undefined, () => json(405, { error: { code: "method_not_allowed", message: "No." } })]) {
    const { pane, server, workbook, texts } = setup(20, estimate ? { estimate } : {});
    await pane.idle();
    pane.$("process").click();
    await pane.idle();
    assert.deepEqual(server.estimates().map((c) => c.status), [estimate ? 405 : 404]);
    assert.equal(server.batches().length, 1);
    assert.equal(pane.$("estimate").hidden, true);
    assert.equal(pane.$("confirm").hidden, true);
    assert.equal(pane.$("status").textContent, "Done: 20 rows, 0 from the cache.");
    assert.deepEqual(outputs(workbook, 20), texts.map((t) => `summary:${t}`));
    pane.close();
  }
});

test("an estimate that fails (400) or never answers (its deadline) stops the run before anything is sent", async () => {
  const refused = setup(20, { estimate: () => json(400, { error: { code: "invalid_input", message: "items.3.type: unknown task" } }) });
  await refused.pane.idle();
  refused.pane.$("process").click();
  await refused.pane.idle();
  assert.equal(refused.pane.$("status").textContent, "Not run: the cost estimate failed: items.3.type: unknown task");
  assert.equal(refused.pane.$("status").className, "error");
  assert.equal(submitted(refused.server), 0);
  refused.pane.close();

  const hanging = setup(20, { estimate: () => new Promise(() => {}) }, { estimateMs: 80 });
  await hanging.pane.idle();
  const started = Date.now();
  hanging.pane.$("process").click();
  await hanging.pane.idle();
  assert.ok(Date.now() - started < 2000, "the estimate settled at its deadline");
  assert.match(hanging.pane.$("status").textContent, /^Not run: the cost estimate failed: The FlaskLLM server did not answer within/);
  assert.equal(submitted(hanging.server), 0);
  assert.equal(hanging.pane.$("process").disabled, false);
  hanging.pane.close();
});

test("a selection over job_max_items is estimated per job and asked about as one run: the total is over the budget left", async () => {
  // Each job alone ($0.10, $0.10, $0.05) fits the $0.20 left; the run ($0.25) does not.
  const budget = { ...BUDGET, spent_usd: 4.8, remaining_usd: 0.2 };
  const { pane, server, workbook, texts } = setup(250, { jobMaxItems: 100, estimate: { budget } });
  await pane.idle();
  pane.$("process").click();
  await until(() => !pane.$("confirm").hidden);
  assert.deepEqual(server.estimates().map((c) => c.body.items.length), [100, 100, 50]);
  assert.equal(pane.$("estimate").textContent, "Estimate: 250 rows · 0 cached · 250 to run · est. $0.25 · about 25 s · budget left $0.20 of $5.00 per day");
  assert.equal(pane.$("confirm-text").textContent, "This run is estimated at $0.25 for 250 rows to run, more than the $0.20 left in your budget (it resets 2026-12-04T00:00:00Z). Run it?");
  assert.equal(server.posts().length, 0);
  pane.$("confirm-run").click();
  await pane.idle();
  assert.deepEqual(server.posts().map((p) => p.body), server.estimates().map((c) => c.body));
  assert.deepEqual(outputs(workbook, 250), texts.map((t) => `summary:${t}`));
  pane.close();
});

test("budget_exceeded rows in /batch answers: ERROR with the message, no more chunks sent, the next run retries them", async () => {
  const spentFrom = 5; // rows 5.. fail for the budget; chunks are 20 rows, two in flight
  const onRow = (item) => (Number(/Mail (\d+)/.exec(item.prompt)[1]) >= spentFrom ? budgetRow(SPENT) : { ok: true, summary: `S:${item.prompt}` });
  const env = setup(100, { onRow });
  await env.pane.idle();
  env.pane.$("process").click();
  await env.pane.idle();
  assert.equal(env.server.batches().length, 2, "the two chunks in flight, then no more");
  const out = outputs(env.workbook, 100);
  assert.deepEqual(out.slice(0, 5), env.texts.slice(0, 5).map((t) => `S:${t}`));
  assert.deepEqual(new Set(out.slice(5, 40)), new Set([`ERROR: ${SPENT}`]));
  assert.deepEqual(new Set(out.slice(40)), new Set([""]), "rows not sent stay empty");
  assert.equal(env.pane.$("status").textContent, "Stopped after 40 of 100 rows: Budget of $5.00 per day used up; it resets at 2026-12-04T00:00:00Z. Rows marked ERROR and rows not sent are retried by the next run, once the budget resets.");
  assert.equal(env.pane.$("status").className, "error");
  env.pane.close();

  // The budget reset: the next run (skip filled) sends exactly the ERROR and empty rows.
  await rerunAfterReset(env, 5, 100);
});

// A timeout: a pane that waited out the budget's Retry-After would hang here instead of failing.
test("a 429 budget_exceeded is not waited out like a rate limit: one POST of the job, one /batch, nothing written", { timeout: 10000 }, async () => {
  const job = setup(150);
  job.server.rateLimit("POST", "/api/v1/jobs", 5, 3600, "budget_exceeded", SPENT);
  await job.pane.idle();
  job.pane.$("process").click();
  await job.pane.idle();
  assert.deepEqual(job.server.posts().map((p) => p.status), [429]);
  assert.equal(job.pane.$("status").textContent, "Not submitted: Budget of $5.00 per day used up; it resets at 2026-12-04T00:00:00Z. Run again once the budget resets: filled rows are skipped.");
  assert.deepEqual(new Set(outputs(job.workbook, 150)), new Set([""]));
  assert.equal(job.store.persisted()[JOB_SETTING], undefined);
  job.pane.close();

  const batch = setup(20);
  batch.server.rateLimit("POST", "/api/v1/batch", 5, 3600, "budget_exceeded", SPENT);
  await batch.pane.idle();
  batch.pane.$("process").click();
  await batch.pane.idle();
  assert.equal(batch.server.batches().length, 1);
  assert.equal(batch.pane.$("status").textContent, "Stopped after 0 of 20 rows: Budget of $5.00 per day used up; it resets at 2026-12-04T00:00:00Z. Rows not sent stay empty: run again once the budget resets.");
  assert.deepEqual(new Set(outputs(batch.workbook, 20)), new Set([""]));
  batch.pane.close();
});

test("budget_exceeded rows of a job say ERROR with the message, the status says why, and the next run retries exactly them", async () => {
  const onRow = (item, index) => (index >= 100 ? budgetRow(SPENT) : { ok: true, summary: `S${index}` });
  const env = setup(150, { onRow });
  await env.pane.idle();
  env.pane.$("process").click();
  await env.pane.idle();
  const out = outputs(env.workbook, 150);
  assert.equal(out[99], "S99");
  assert.deepEqual(new Set(out.slice(100)), new Set([`ERROR: ${SPENT}`]));
  assert.equal(env.pane.$("status").textContent, "Done: 150 rows, 0 from the cache, 50 failed (their cells say ERROR). Budget of $5.00 per day used up; it resets at 2026-12-04T00:00:00Z: run again once the budget resets to retry the rows marked ERROR.");
  assert.equal(env.server.posts().length, 1, "not resubmitted by this run");
  assert.equal(env.server.repeatedRows(), 0);
  env.pane.close();

  await rerunAfterReset(env, 100, 150);
});
