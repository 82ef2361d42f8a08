// The Office Scripts' cost estimate and approval (main's approveCostUsd / approveUnknownPrice), and a
// used-up budget, run as shipped against the fake workbook and the fake jobs server. Each test holds
// the scripts to what they submitted (or did not), not only to what they logged.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");

const { loadScript } = require("./load-script.js");
const { fakeWorkbook } = require("./fake-excelscript.js");
const { fakeJobsServer, budgetRow } = require("./fake-jobs.js");
const { json } = require("./helpers.js");

const SETTINGS = { API_URL: "http://flaskllm.test/", API_TOKEN: "tok" };
const SCRIPTS = ["ProcessEmails.ts", "ProcessTableColumn.ts"];
const BUDGET = { limit_usd: 5, spent_usd: 1.2, remaining_usd: 3.8, period: "day", resets_at: "2026-12-04T00:00:00Z" };
const SPENT = "Budget of $5.00 per day used up; it resets at 2026-12-04T00:00:00Z.";

/** A setTimeout that fires at once and records the waits asked for. */
function fastTimers() {
  const waits = [];
  const timer = (callback, ms) => (waits.push(ms), setImmediate(callback));
  timer.waits = waits;
  return timer;
}

function load(name, server, options = {}) {
  return loadScript(name, { fetch: server.fetch, setTimeout: fastTimers(), ...options, settings: { ...SETTINGS, ...(options.settings || {}) } });
}

/**
 * The texts where each script reads them, and how to read back its output and status columns:
 * ProcessEmails a sheet (A, B, C from row 2), ProcessTableColumn the table "Emails" (Body, then the
 * Summary and status columns it adds).
 */
function workbookFor(name, texts) {
  const wb = fakeWorkbook();
  if (name === "ProcessEmails.ts") wb.grid.load([["Email", "Summary", "Status"], ...texts.map((t) => [t])]);
  else wb.addTable("Emails", 0, 0, ["Body"], texts.map((t) => [t]));
  const column = (c) => wb.grid.column(c, 1, texts.length + 1);
  return { wb, outputs: () => column(1), statuses: () => column(2) };
}

const texts = (n) => Array.from({ length: n }, (_, i) => `mail ${i}`);

test("both scripts estimate each job's exact body first, log the estimate, and run when the server does not ask", async () => {
  for (const name of SCRIPTS) {
    const mails = texts(5);
    const { wb, outputs } = workbookFor(name, mails);
    const server = fakeJobsServer({ estimate: { cached: 1, to_run: 4, cost_usd: 0.0123, seconds: 14.2, provider: "openai", model: "gpt-4", budget: BUDGET } });
    const { main, logs } = load(name, server, { settings: { TASK_TYPE: "classify", LABELS: "a,b" } });
    await main(wb);
    const [estimate] = server.estimates();
    const [post] = server.posts();
    assert.equal(server.estimates().length, 1, name);
    assert.ok(server.calls.indexOf(estimate) < server.calls.indexOf(post), `${name}: estimated before submitting`);
    assert.deepEqual(estimate.body, post.body, `${name}: the estimate's body is the job's`);
    assert.deepEqual(estimate.body.defaults, { labels: ["a", "b"] });
    assert.equal(estimate.headers["X-API-Token"], "tok");
    assert.ok(
      logs.includes("Estimate: 5 rows (1 cached, 0 invalid), 4 to run, ~500 input + 250 output tokens, est. $0.01, about 15 s, gpt-4 on openai; budget left $3.80 of $5.00 per day (resets 2026-12-04T00:00:00Z)."),
      `${name}:\n${logs.join("\n")}`,
    );
    assert.deepEqual(outputs(), mails.map((t) => `classify:${t}`), name);
  }
});

test("a run the server asks about stops before submitting or marking anything; approveCostUsd of at least the estimate runs it", async () => {
  for (const name of SCRIPTS) {
    const mails = texts(4);
    const { wb, outputs, statuses } = workbookFor(name, mails);
    const server = fakeJobsServer({ estimate: { cost_usd: 0.5123, confirm: true } });
    const first = load(name, server);
    await first.main(wb); // approveCostUsd defaults to 0
    assert.equal(server.posts().length, 0, `${name}: nothing submitted`);
    assert.deepEqual(new Set([...outputs(), ...statuses()]), new Set([""]), `${name}: nothing written or marked`);
    assert.deepEqual(first.logs.slice(-2), [
      "Not run: the server asks for a go-ahead (estimated $0.51 for 4 rows to run). Nothing was submitted.",
      "To approve it, run the script again with approveCostUsd set to 0.52 or more (Excel asks for it when the script starts).",
    ]);
    const short = load(name, server);
    await short.main(wb, 0.5);
    assert.equal(server.posts().length, 0, `${name}: 0.50 does not cover 0.5123`);
    const approved = load(name, server);
    await approved.main(wb, 0.52);
    assert.equal(server.posts().length, 1, name);
    assert.ok(approved.logs.includes("Approved (approveCostUsd 0.52): going on."), approved.logs.join("\n"));
    assert.deepEqual(outputs(), mails.map((t) => `summary:${t}`), name);
  }
});

test("confirm with an unknown price stops even with an amount approved; approveUnknownPrice runs it", async () => {
  for (const name of SCRIPTS) {
    const { wb, outputs } = workbookFor(name, texts(3));
    const server = fakeJobsServer({ estimate: { cost_usd: null, model: "gpt-x", confirm: true } });
    const priced = load(name, server);
    await priced.main(wb, 1000);
    assert.equal(server.posts().length, 0, name);
    assert.ok(priced.logs.some((l) => l.startsWith("Estimate: 3 rows (0 cached, 0 invalid), 3 to run, ~300 input + 150 output tokens, price unknown,")), priced.logs.join("\n"));
    assert.deepEqual(priced.logs.slice(-2), [
      "Not run: the server asks for a go-ahead (the server cannot price gpt-x for 3 rows to run). Nothing was submitted.",
      "To approve it, run the script again with approveUnknownPrice set to true (Excel asks for it when the script starts).",
    ]);
    await load(name, server).main(wb, 0, true);
    assert.equal(server.posts().length, 1, name);
    assert.ok(outputs().every((v) => v.startsWith("summary:")), name);
  }
});

test("more than the budget has left: the log says so and the run waits for approval", async () => {
  const { wb } = workbookFor("ProcessEmails.ts", texts(3));
  const server = fakeJobsServer({ estimate: { cost_usd: 4.2, confirm: true, budget: BUDGET } });
  const { main, logs } = load("ProcessEmails.ts", server);
  await main(wb, 1);
  assert.equal(server.posts().length, 0);
  assert.ok(logs.includes("Not run: the server asks for a go-ahead (estimated $4.20 for 3 rows to run, more than the $3.80 left in your budget). Nothing was submitted."), logs.join("\n"));
});

test("an older server without /estimate (404 or 405): both scripts run as before, without an estimate", async () => {
  for (const name of SCRIPTS) {
    for (const estimate of [undefined, () => json(405, { error: { code: "method_not_allowed", message: "No." } })]) {
      const mails = texts(3);
      const { wb, outputs } = workbookFor(name, mails);
      const server = fakeJobsServer(estimate ? { estimate } : {});
      const { main, logs } = load(name, server);
      await main(wb);
      assert.deepEqual(server.estimates().map((c) => c.status), [estimate ? 405 : 404]);
      assert.ok(logs.includes("No cost estimate: this server has no /api/v1/estimate (an older FlaskLLM); going on without one."), logs.join("\n"));
      assert.equal(server.posts().length, 1);
      assert.deepEqual(outputs(), mails.map((t) => `summary:${t}`));
    }
  }
});

test("an estimate the server refuses (400) stops before submitting; one too big (413) splits the job as submit would", async () => {
  const { wb, statuses } = workbookFor("ProcessEmails.ts", texts(3));
  const refused = fakeJobsServer({ estimate: () => json(400, { error: { code: "invalid_input", message: "items.0.type: unknown task" } }) });
  const run = load("ProcessEmails.ts", refused);
  await run.main(wb);
  assert.equal(run.logs.at(-1), "Stopped: the cost estimate failed: HTTP 400: items.0.type: unknown task. Nothing was submitted; run the script again.");
  assert.equal(refused.posts().length, 0);
  assert.deepEqual(statuses(), ["", "", ""]);

  const big = workbookFor("ProcessEmails.ts", texts(5));
  const server = fakeJobsServer({ jobMaxItems: 3, healthJobMax: false, estimate: {} }); // /health does not say: 5,000 assumed
  await load("ProcessEmails.ts", server).main(big.wb);
  assert.deepEqual(server.estimates().map((c) => [c.status, c.body.items.length]), [[413, 5], [200, 3], [200, 2]]);
  assert.deepEqual(server.posts().map((p) => [p.status, p.body.items.length]), [[202, 3], [202, 2]], "the estimated halves, no 413 on submit");
  assert.deepEqual(server.posts().map((p) => p.body), server.estimates().slice(1).map((c) => c.body));
});

test("a run resuming a job does not estimate it again (attaching costs nothing) and is not asked about", async () => {
  const mails = texts(600);
  const { wb, outputs } = workbookFor("ProcessEmails.ts", mails);
  const server = fakeJobsServer({ rowsPerTick: 50, estimate: { cost_usd: 0.6, confirm: true } });
  let pages = 0;
  server.failWhen((call) => call.path.endsWith("/results") && ++pages > 3);
  await load("ProcessEmails.ts", server, { settings: { PAGE_ROWS: 100 } }).main(wb, 0.6);
  assert.equal(server.posts().length, 1);
  server.failWhen(null);
  const second = load("ProcessEmails.ts", server, { settings: { PAGE_ROWS: 100 } });
  await second.main(wb); // no approval given: none is needed to finish an approved job
  assert.equal(server.estimates().length, 1, "estimated once, when submitted");
  assert.deepEqual(server.posts().map((p) => p.status), [202, 200]);
  assert.deepEqual(outputs(), mails.map((t) => `summary:${t}`));
  assert.equal(server.repeatedRows(), 0);
});

test("budget_exceeded rows are left for the next run with their message, never retried in this one", async () => {
  for (const name of SCRIPTS) {
    const mails = texts(6);
    const { wb, outputs, statuses } = workbookFor(name, mails);
    const onRow = (item, index) => (index >= 4 ? budgetRow(SPENT) : { ok: true, summary: `S:${item.prompt}` });
    const server = fakeJobsServer({ onRow, estimate: {} });
    const first = load(name, server);
    await first.main(wb);
    const key = server.posts()[0].headers["Idempotency-Key"];
    assert.equal(server.posts().length, 1, name);
    assert.equal(server.repeatedRows(), 0, `${name}: not retried in the same run`);
    assert.deepEqual(outputs(), [...mails.slice(0, 4).map((t) => `S:${t}`), "", ""], name);
    assert.deepEqual(statuses(), ["", "", "", "", `ERROR: ${SPENT} [${key}]`, `ERROR: ${SPENT} [${key}]`], name);
    assert.deepEqual(first.logs.slice(-2), [
      "Done: 6 rows, 2 failed (see the status column; run again to retry them).",
      "2 rows were not run: Budget of $5.00 per day used up; it resets at 2026-12-04T00:00:00Z. Run the script again once the budget resets to retry them.",
    ]);
    // After the reset: the next run sends exactly those rows, as a new job.
    const later = fakeJobsServer({ estimate: {} });
    await load(name, later).main(wb);
    assert.deepEqual(later.posts()[0].body.items.map((i) => i.prompt), mails.slice(4), name);
    assert.notEqual(later.posts()[0].headers["Idempotency-Key"], key);
    assert.deepEqual(outputs().slice(4), mails.slice(4).map((t) => `summary:${t}`), name);
    assert.deepEqual(new Set(statuses()), new Set([""]), name);
  }
});

test("a 429 budget_exceeded is not waited out: the script stops at once, on the estimate or on submit, and marks nothing", { timeout: 10000 }, async () => {
  for (const path of ["/api/v1/estimate", "/api/v1/jobs"]) {
    const { wb, statuses } = workbookFor("ProcessEmails.ts", texts(3));
    const server = fakeJobsServer({ estimate: {} });
    server.rateLimit("POST", path, 5, 3600, "budget_exceeded", SPENT);
    const timer = fastTimers();
    const { main, logs } = load("ProcessEmails.ts", server, { setTimeout: timer });
    await main(wb);
    assert.deepEqual(server.calls.filter((c) => c.path === path).map((c) => c.status), [429], `${path}: asked once`);
    assert.deepEqual(timer.waits, [], `${path}: no Retry-After wait`);
    assert.equal(server.jobs.size, 0);
    assert.deepEqual(statuses(), ["", "", ""]);
    const next = path === "/api/v1/jobs" ? "Nothing more was submitted" : "Nothing was submitted";
    assert.equal(logs.at(-1), `Stopped: Budget of $5.00 per day used up; it resets at 2026-12-04T00:00:00Z. ${next}; run the script again once the budget resets.`);
  }
});
