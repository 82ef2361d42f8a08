// The Office Scripts, run as shipped against a fake workbook (5 MB per call enforced) and a fake
// FlaskLLM server implementing the jobs contract.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");

const client = require("../client.js");
const { loadScript } = require("./load-script.js");
const { fakeWorkbook, PAYLOAD_LIMIT_BYTES } = require("./fake-excelscript.js");
const { fakeJobsServer } = require("./fake-jobs.js");

const SETTINGS = { API_URL: "http://flaskllm.test/", API_TOKEN: "tok" };
const KEY = /^xl-[0-9a-f]{28}$/;

/** A setTimeout that fires at once and records the waits asked for; throws after `failAfter` waits. */
function fastTimers({ failAfter = Infinity } = {}) {
  const waits = [];
  const timer = (callback, ms) => {
    waits.push(ms);
    if (waits.length > failAfter) throw new Error("Script exceeded the time limit"); // Excel stopping it
    return setImmediate(callback);
  };
  timer.waits = waits;
  return timer;
}

function load(name, server, options = {}) {
  return loadScript(name, { fetch: server.fetch, setTimeout: fastTimers(), ...options, settings: { ...SETTINGS, ...(options.settings || {}) } });
}

/** Sheet with a header and the texts in column A (rows 2..n+1). */
function sheetWithTexts(texts, options) {
  const wb = fakeWorkbook(options);
  wb.grid.load([["Email", "Summary", "Status"], ...texts.map((t) => [t])]);
  return wb;
}

/** A text of about `bytes` bytes, distinct per i. */
function email(i, bytes) {
  const head = `Message ${i}: the order shipped on Monday and the invoice follows. `;
  return (head + "Regards, Ann. ".repeat(Math.ceil(bytes / 14))).slice(0, bytes);
}

const texts = (n, bytes = 20) => Array.from({ length: n }, (_, i) => email(i, bytes));

test("ProcessEmails: one job for the rows, results and empty statuses written, progress logged", async () => {
  const wb = sheetWithTexts(["m1", "m2", "m3", "m4", "m5", "m6", "m7"]);
  const server = fakeJobsServer({ rowsPerTick: 3 });
  const { main, logs } = load("ProcessEmails.ts", server);
  await main(wb);
  const [post] = server.posts();
  assert.equal(server.posts().length, 1);
  assert.equal(post.url, "http://flaskllm.test/api/v1/jobs");
  assert.equal(post.headers["X-API-Token"], "tok");
  assert.match(post.headers["Idempotency-Key"], KEY);
  assert.deepEqual(post.body.items[0], { id: "2", prompt: "m1", type: "summary" });
  assert.equal(post.body.items.length, 7);
  assert.deepEqual(wb.grid.column(1, 1, 8), ["m1", "m2", "m3", "m4", "m5", "m6", "m7"].map((t) => `summary:${t}`));
  assert.deepEqual(wb.grid.column(2, 1, 8), Array(7).fill(""));
  assert.ok(logs.some((l) => /^Job job-1: \d+\/7 rows done \(0 cached, 0 failed\), about \d+ s left\.$/.test(l)), logs.join("\n"));
  assert.match(logs.at(-1), /Done: 7 rows, 0 failed/);
  assert.equal(server.repeatedRows(), 0);
});

test("ProcessEmails: the Idempotency-Key is the documented hash of scope and rows, the same for the same sheet", async () => {
  const wb = sheetWithTexts(["a", "b"]);
  wb.grid.load([["", "ERROR: old failure"]], 2, 1); // row 3 failed before, with an untagged error
  const server = fakeJobsServer();
  await load("ProcessEmails.ts", server, { settings: { LANGUAGE: "de", TASK_TYPE: "translation" } }).main(wb);
  const expected = client.idempotencyKey("xl", ["flaskllm-job-v1", "sheet", "Sheet1", "A", "1", "translation", "de", "2", "a", "", "3", "b", "ERROR: old failure"]);
  assert.equal(server.posts()[0].headers["Idempotency-Key"], expected);
  assert.deepEqual(server.posts()[0].body.items[1], { id: "3", prompt: "b", type: "translation", language: "de" });

  const again = sheetWithTexts(["a", "b"]);
  again.grid.load([["", "ERROR: old failure"]], 2, 1);
  const other = fakeJobsServer();
  await load("ProcessEmails.ts", other, { settings: { LANGUAGE: "de", TASK_TYPE: "translation" } }).main(again);
  assert.equal(other.posts()[0].headers["Idempotency-Key"], expected);
});

test("both scripts send INSTRUCTION, LABELS and FIELDS as the job's defaults, and they are part of the key", async () => {
  for (const name of ["ProcessEmails.ts", "ProcessTableColumn.ts"]) {
    const wb = name === "ProcessEmails.ts" ? sheetWithTexts(["late parcel", "double charge"]) : fakeWorkbook();
    if (name === "ProcessTableColumn.ts") wb.addTable("Emails", 0, 0, ["Body"], [["late parcel"], ["double charge"]]);
    const server = fakeJobsServer();
    const settings = { TASK_TYPE: "classify", LABELS: " billing, shipping ,Billing,  other ", INSTRUCTION: "  Be strict. " };
    await load(name, server, { settings }).main(wb);
    const [post] = server.posts();
    assert.deepEqual(post.body.defaults, { instruction: "Be strict.", labels: ["billing", "shipping", "other"] }, name);
    assert.deepEqual(post.body.items[0], { id: name === "ProcessEmails.ts" ? "2" : "1", prompt: "late parcel", type: "classify" }, name);
    const plain = fakeJobsServer();
    const wb2 = name === "ProcessEmails.ts" ? sheetWithTexts(["late parcel", "double charge"]) : fakeWorkbook();
    if (name === "ProcessTableColumn.ts") wb2.addTable("Emails", 0, 0, ["Body"], [["late parcel"], ["double charge"]]);
    await load(name, plain, { settings: { TASK_TYPE: "classify", LABELS: "billing,other" } }).main(wb2);
    assert.notEqual(plain.posts()[0].headers["Idempotency-Key"], post.headers["Idempotency-Key"], "other labels, another job");
    assert.match(post.headers["Idempotency-Key"], KEY);
  }
});

test("ProcessEmails: filled rows and empty inputs are skipped, error rows retried and their errors cleared", async () => {
  const wb = sheetWithTexts(["m1", "m2", "", "m4", "m5"]);
  wb.grid.load([["old summary", ""], ["", "ERROR: provider failed"]], 1, 1); // row 2 done, row 3 failed before
  const server = fakeJobsServer();
  await load("ProcessEmails.ts", server).main(wb);
  assert.deepEqual(server.posts()[0].body.items.map((i) => i.prompt), ["m2", "m4", "m5"]);
  assert.deepEqual(wb.grid.column(1, 1, 6), ["old summary", "summary:m2", "", "summary:m4", "summary:m5"]);
  assert.deepEqual(wb.grid.column(2, 1, 6), ["", "", "", "", ""]);
});

test("ProcessEmails: failed rows get their error in the status column; the next run retries them as a new job", async () => {
  const onRow = (item) =>
    item.prompt === "bad" ? { ok: false, error: { code: "provider_error", message: "provider failed" } } : { ok: true, summary: "=1+1 is not a formula" };
  const wb = sheetWithTexts(["good", "bad", "fine"]);
  const server = fakeJobsServer({ onRow });
  const first = load("ProcessEmails.ts", server);
  await first.main(wb);
  const key = server.posts()[0].headers["Idempotency-Key"];
  assert.deepEqual(wb.grid.column(1, 1, 4), ["=1+1 is not a formula", "", "=1+1 is not a formula"]);
  assert.deepEqual(wb.grid.column(2, 1, 4), ["", `ERROR: provider failed [${key}]`, ""]);
  assert.match(first.logs.at(-1), /Done: 3 rows, 1 failed/);

  // The provider is fine again: the failed row is sent again, under a new key, as a new job.
  const retry = fakeJobsServer();
  await load("ProcessEmails.ts", retry).main(wb);
  assert.equal(retry.posts().length, 1);
  assert.deepEqual(retry.posts()[0].body.items.map((i) => i.prompt), ["bad"]);
  assert.notEqual(retry.posts()[0].headers["Idempotency-Key"], key);
  assert.deepEqual(wb.grid.column(1, 1, 4), ["=1+1 is not a formula", "summary:bad", "=1+1 is not a formula"]);
  assert.deepEqual(wb.grid.column(2, 1, 4), ["", "", ""]);
});

test("ProcessEmails on one server: a retry of failed rows does not attach to the job that failed them", async () => {
  let failing = true;
  const onRow = (item) => (failing ? { ok: false, error: { code: "provider_error", message: "down" } } : { ok: true, summary: `ok:${item.prompt}` });
  const server = fakeJobsServer({ onRow });
  const wb = sheetWithTexts(["x", "y"]);
  await load("ProcessEmails.ts", server).main(wb);
  await load("ProcessEmails.ts", server).main(wb); // still failing: a second job, failing again
  failing = false;
  await load("ProcessEmails.ts", server).main(wb);
  assert.deepEqual(server.posts().map((p) => p.status), [202, 202, 202]);
  assert.equal(new Set(server.posts().map((p) => p.headers["Idempotency-Key"])).size, 3);
  assert.deepEqual(wb.grid.column(1, 1, 3), ["ok:x", "ok:y"]);
  assert.deepEqual(wb.grid.column(2, 1, 3), ["", ""]);
});

test("ProcessEmails: 2,000 e-mails of 3 KB finish in one run, every workbook call under 5 MB", async () => {
  const mails = texts(2000, 3000);
  const wb = sheetWithTexts(mails);
  assert.ok(Buffer.byteLength(JSON.stringify(mails)) > PAYLOAD_LIMIT_BYTES, "the column is over 5 MB");
  const server = fakeJobsServer({ rowsPerTick: 400 });
  const { main, logs } = load("ProcessEmails.ts", server);
  await main(wb);
  assert.equal(wb.grid.refused, 0);
  assert.ok(wb.grid.maxCallBytes < PAYLOAD_LIMIT_BYTES, `largest call ${wb.grid.maxCallBytes} bytes`);
  assert.ok(wb.grid.reads > 1, "the column was read in blocks");
  assert.equal(server.posts().length, 1);
  assert.equal(server.posts()[0].body.items.length, 2000);
  const outputs = wb.grid.column(1, 1, 2001);
  outputs.forEach((v, i) => assert.equal(v, `summary:${mails[i]}`));
  assert.deepEqual(new Set(wb.grid.column(2, 1, 2001)), new Set([""]));
  assert.match(logs.at(-1), /Done: 2000 rows, 0 failed/);
  assert.equal(server.repeatedRows(), 0);
});

test("ProcessEmails: a block Excel refuses for its size is read again with fewer rows", async () => {
  const mails = [...texts(200, 10), ...texts(300, 1000).map((t) => "big " + t)];
  const wb = sheetWithTexts(mails, { limitBytes: 40000 });
  const server = fakeJobsServer();
  await load("ProcessEmails.ts", server, { settings: { MAX_CALL_BYTES: 30000 } }).main(wb);
  assert.ok(wb.grid.refused > 0, "a read was refused and retried smaller");
  assert.equal(wb.grid.column(1, 1, 501).filter((v) => v.startsWith("summary:")).length, 500);
});

/** 600 short rows, a slow server and pages of 100: enough steps to stop a run in the middle. */
function midwaySetup() {
  const mails = texts(600);
  return { mails, wb: sheetWithTexts(mails), server: fakeJobsServer({ rowsPerTick: 50 }), settings: { PAGE_ROWS: 100 } };
}

function assertAttachedAndComplete(server, wb, mails, secondRunPostIndex = 1) {
  const posts = server.posts();
  assert.equal(posts[secondRunPostIndex].status, 200, "the re-run attached to the existing job");
  assert.equal(posts[secondRunPostIndex].headers["Idempotency-Key"], posts[0].headers["Idempotency-Key"]);
  assert.deepEqual(posts[secondRunPostIndex].body, posts[0].body);
  assert.equal(server.jobs.size, 1);
  assert.equal(server.repeatedRows(), 0, "no row ran twice");
  wb.grid.column(1, 1, mails.length + 1).forEach((v, i) => assert.equal(v, `summary:${mails[i]}`));
  assert.deepEqual(new Set(wb.grid.column(2, 1, mails.length + 1)), new Set([""]));
}

test("ProcessEmails: a run cut off by the network resumes: the re-run attaches with the same key and writes the rest", async () => {
  const { mails, wb, server, settings } = midwaySetup();
  let pages = 0;
  server.failWhen((call) => call.path.endsWith("/results") && ++pages > 4);
  const first = load("ProcessEmails.ts", server, { settings });
  await first.main(wb);
  assert.match(first.logs.at(-1), /^Stopped while following job job-1: cannot reach the FlaskLLM server at http:\/\/flaskllm.test\/\. Run the script again to resume/);
  const status = wb.grid.column(2, 1, 601);
  const written = status.filter((s) => /^done xl-/.test(s)).length;
  const pending = status.filter((s) => /^pending xl-/.test(s)).length;
  assert.ok(written > 0 && pending > 0 && written + pending === 600, `${written} written, ${pending} pending`);

  server.failWhen(null);
  const second = load("ProcessEmails.ts", server, { settings });
  await second.main(wb);
  assert.equal(second.logs[0], "0 rows to process, 1 unfinished job(s) of 600 rows to pick up, 0 rows empty or already done.");
  assertAttachedAndComplete(server, wb, mails);
  assert.match(second.logs.at(-1), new RegExp(`Done: ${pending} rows, 0 failed`));
});

test("ProcessEmails: a run Excel stops (time limit) resumes the same way", async () => {
  const { mails, wb, server, settings } = midwaySetup();
  const first = load("ProcessEmails.ts", server, { settings, setTimeout: fastTimers({ failAfter: 3 }) });
  await assert.rejects(first.main(wb), /time limit/);
  assert.ok(wb.grid.column(2, 1, 601).some((s) => /^pending xl-/.test(s)));
  await load("ProcessEmails.ts", server, { settings }).main(wb);
  assertAttachedAndComplete(server, wb, mails);
});

test("ProcessEmails: stopped after the server took the job but before the rows were marked, a re-run still attaches", async () => {
  const { mails, wb, server, settings } = midwaySetup();
  const check = wb.grid.check.bind(wb.grid);
  wb.grid.check = (kind, values) => {
    if (kind === "write") throw new Error("Script exceeded the time limit");
    return check(kind, values);
  };
  await assert.rejects(load("ProcessEmails.ts", server, { settings }).main(wb), /time limit/);
  assert.equal(server.posts().length, 1);
  assert.deepEqual(new Set(wb.grid.column(2, 1, 601)), new Set([""]), "nothing marked");
  wb.grid.check = check;
  await load("ProcessEmails.ts", server, { settings }).main(wb);
  assertAttachedAndComplete(server, wb, mails);
});

test("ProcessEmails: a job whose rows changed since it was submitted is released, and the next run sends them anew", async () => {
  const { wb, server, settings } = midwaySetup();
  let pages = 0;
  server.failWhen((call) => call.path.endsWith("/results") && ++pages > 2);
  await load("ProcessEmails.ts", server, { settings }).main(wb);
  const pendingRow = wb.grid.column(2, 1, 601).findIndex((s) => s.startsWith("pending "));
  wb.grid.load([["an edited text"]], 1 + pendingRow, 0);
  server.failWhen(null);
  const second = load("ProcessEmails.ts", server, { settings });
  await second.main(wb);
  assert.equal(server.posts()[1].status, 409);
  assert.ok(second.logs.some((l) => /would not resume the job with key xl-/.test(l)));
  const third = load("ProcessEmails.ts", server, { settings });
  await third.main(wb);
  assert.equal(server.posts()[2].status, 202);
  assert.ok(server.posts()[2].body.items.some((i) => i.prompt === "an edited text"));
  assert.equal(wb.grid.get(1 + pendingRow, 1), "summary:an edited text");
  assert.ok(wb.grid.column(1, 1, 601).every((v) => v.startsWith("summary:")));
  assert.deepEqual(new Set(wb.grid.column(2, 1, 601)), new Set([""]));
});

test("ProcessEmails: 429 on submit is waited out (Retry-After) and logged, not a failure", async () => {
  const wb = sheetWithTexts(["a", "b", "c"]);
  const server = fakeJobsServer();
  server.rateLimit("POST", "/api/v1/jobs", 2, 7);
  const timer = fastTimers();
  const { main, logs } = load("ProcessEmails.ts", server, { setTimeout: timer });
  await main(wb);
  assert.deepEqual(server.posts().map((p) => p.status), [429, 429, 202]);
  assert.deepEqual(timer.waits.slice(0, 2), [7000, 7000]);
  assert.equal(logs.filter((l) => l === "Rate limited on POST /api/v1/jobs: waiting 7 s, then trying again.").length, 2);
  assert.deepEqual(wb.grid.column(1, 1, 4), ["summary:a", "summary:b", "summary:c"]);
  assert.deepEqual(wb.grid.column(2, 1, 4), ["", "", ""]);
});

test("ProcessEmails: 429 while polling is waited out too", async () => {
  const wb = sheetWithTexts(["a", "b"]);
  const server = fakeJobsServer();
  server.rateLimit("GET", /\/results$/, 3, 1);
  await load("ProcessEmails.ts", server).main(wb);
  assert.deepEqual(wb.grid.column(1, 1, 3), ["summary:a", "summary:b"]);
});

test("ProcessEmails: more rows than job_max_items become several jobs, each with its own key", async () => {
  const wb = sheetWithTexts(["m1", "m2", "m3", "m4", "m5", "m6", "m7"]);
  const server = fakeJobsServer({ jobMaxItems: 3, rowsPerTick: 2 });
  const { main, logs } = load("ProcessEmails.ts", server);
  await main(wb);
  assert.deepEqual(server.posts().map((p) => p.body.items.map((i) => i.id)), [["2", "3", "4"], ["5", "6", "7"], ["8"]]);
  assert.equal(new Set(server.posts().map((p) => p.headers["Idempotency-Key"])).size, 3);
  assert.deepEqual(wb.grid.column(1, 1, 8), ["m1", "m2", "m3", "m4", "m5", "m6", "m7"].map((t) => `summary:${t}`));
  assert.deepEqual(wb.grid.column(2, 1, 8), Array(7).fill(""));
  assert.match(logs.at(-1), /Done: 7 rows, 0 failed/);
});

test("ProcessEmails: a 413 for a job splits it in two", async () => {
  const wb = sheetWithTexts(["m1", "m2", "m3", "m4", "m5"]);
  const server = fakeJobsServer({ jobMaxItems: 3, healthJobMax: false }); // /health does not say: 5,000 assumed
  await load("ProcessEmails.ts", server).main(wb);
  assert.deepEqual(server.posts().map((p) => [p.status, p.body.items.length]), [[413, 5], [202, 3], [202, 2]]);
  assert.equal(wb.grid.column(1, 1, 6).filter((v) => v.startsWith("summary:")).length, 5);
});

test("ProcessEmails stops at a rejected token with a clear line, marks nothing, and a later run works", async () => {
  const wb = sheetWithTexts(["a", "b"]);
  const server = fakeJobsServer({ token: "the-real-one" });
  const first = load("ProcessEmails.ts", server);
  await first.main(wb);
  assert.equal(first.logs.at(-1), "Stopped: the server rejected API_TOKEN. Nothing was submitted; run the script again.");
  assert.equal(server.posts().length, 0);
  assert.deepEqual(wb.grid.column(2, 1, 3), ["", ""]);
  await load("ProcessEmails.ts", server, { settings: { API_TOKEN: "the-real-one" } }).main(wb);
  assert.deepEqual(wb.grid.column(1, 1, 3), ["summary:a", "summary:b"]);
});

test("ProcessEmails: an unreachable server or a wrong URL stops with a clear line", async () => {
  const wb = sheetWithTexts(["a"]);
  const down = { fetch: () => Promise.reject(new TypeError("fetch failed")) };
  const run = load("ProcessEmails.ts", down);
  await run.main(wb);
  assert.equal(run.logs.at(-1), "Stopped: cannot reach the FlaskLLM server at http://flaskllm.test/. Nothing was submitted; run the script again.");
  const notHere = { fetch: async () => new Response("<html>Not Found</html>", { status: 404 }) };
  const wrong = load("ProcessEmails.ts", notHere);
  await wrong.main(wb);
  assert.equal(wrong.logs.at(-1), "Stopped: no FlaskLLM API at API_URL. Run the script again to resume.");
  assert.deepEqual(wb.grid.column(2, 1, 2), [""]);
});

test("ProcessEmails on an empty sheet does nothing", async () => {
  const server = fakeJobsServer();
  const { main, logs } = load("ProcessEmails.ts", server);
  await main(fakeWorkbook());
  assert.equal(server.calls.length, 0);
  assert.deepEqual(logs, ["The sheet is empty."]);
});

test("ProcessTableColumn: output and status columns created, results written, failures retried by a new job", async () => {
  const wb = fakeWorkbook();
  const rows = [["x1", "Alice"], ["", "Bob"], ["x3", "Carol"], ["x4", "Dan"], ["x5", "Eve"]];
  wb.addTable("Emails", 3, 2, ["Body", "From"], rows); // header at row 4, columns C:D
  const onRow = (it) => (it.prompt === "x4" ? { ok: false, error: { code: "provider_timeout", message: "slow" } } : { ok: true, summary: `S(${it.prompt})` });
  const server = fakeJobsServer({ onRow, rowsPerTick: 1 });
  await load("ProcessTableColumn.ts", server).main(wb);
  const table = wb.getTable("Emails");
  assert.deepEqual(table.headers, ["Body", "From", "Summary", "FlaskLLM status"]);
  const [post] = server.posts();
  assert.deepEqual(post.body.items.map((i) => [i.id, i.prompt]), [["1", "x1"], ["3", "x3"], ["4", "x4"], ["5", "x5"]]);
  const key = post.headers["Idempotency-Key"];
  assert.deepEqual(wb.grid.column(4, 4, 9), ["S(x1)", "", "S(x3)", "", "S(x5)"]);
  assert.deepEqual(wb.grid.column(5, 4, 9), ["", "", "", `ERROR: slow [${key}]`, ""]);
  assert.deepEqual(wb.grid.column(3, 4, 9), ["Alice", "Bob", "Carol", "Dan", "Eve"]); // untouched

  const retry = fakeJobsServer();
  await load("ProcessTableColumn.ts", retry).main(wb);
  assert.deepEqual(retry.posts()[0].body.items.map((i) => i.prompt), ["x4"]);
  assert.deepEqual(wb.grid.column(4, 4, 9), ["S(x1)", "", "S(x3)", "summary:x4", "S(x5)"]);
  assert.deepEqual(wb.grid.column(5, 4, 9), ["", "", "", "", ""]);
});

test("ProcessTableColumn: 2,000 rows of 3 KB in bounded calls, and a stopped run resumes by the same key", async () => {
  const mails = texts(2000, 3000);
  const wb = fakeWorkbook();
  wb.addTable("Emails", 0, 0, ["Body"], mails.map((t) => [t]));
  const server = fakeJobsServer({ rowsPerTick: 300 });
  let pages = 0;
  server.failWhen((call) => call.path.endsWith("/results") && ++pages > 3);
  await load("ProcessTableColumn.ts", server).main(wb);
  server.failWhen(null);
  await load("ProcessTableColumn.ts", server).main(wb);
  assert.equal(wb.grid.refused, 0);
  assert.ok(wb.grid.maxCallBytes < PAYLOAD_LIMIT_BYTES);
  assert.deepEqual(server.posts().map((p) => p.status), [202, 200]);
  assert.equal(server.repeatedRows(), 0);
  wb.grid.column(1, 1, 2001).forEach((v, i) => assert.equal(v, `summary:${mails[i]}`));
  assert.deepEqual(new Set(wb.grid.column(2, 1, 2001)), new Set([""]));
});

test("ProcessTableColumn names a missing table or column instead of failing", async () => {
  const server = fakeJobsServer();
  const wb = fakeWorkbook();
  const missingTable = load("ProcessTableColumn.ts", server);
  await missingTable.main(wb);
  assert.deepEqual(missingTable.logs, ['No table named "Emails" in this workbook.']);
  wb.addTable("Emails", 0, 0, ["Text"], [["a"]]);
  const missingColumn = load("ProcessTableColumn.ts", server);
  await missingColumn.main(wb);
  assert.deepEqual(missingColumn.logs, ['Table "Emails" has no column "Body".']);
  assert.equal(server.calls.length, 0);
});

test("the scripts keep Office Scripts' rules: top-level async main(workbook, approval parameters), no `any`, standalone", () => {
  for (const name of ["ProcessEmails.ts", "ProcessTableColumn.ts"]) {
    const source = fs.readFileSync(path.join(__dirname, "..", "office-scripts", name), "utf8");
    // Parameters after the workbook must be types Office Scripts can ask for (number, boolean), with defaults.
    const signature = "async function main(workbook: ExcelScript.Workbook, approveCostUsd: number = 0, approveUnknownPrice: boolean = false): Promise<void> {";
    assert.ok(source.split("\n").includes(signature), `${name}: ${signature}`);
    assert.match(source, /@param approveCostUsd [^\n]+\n[\s\S]*@param approveUnknownPrice /, `${name} documents main's parameters`);
    assert.doesNotMatch(source, /(:|<|as|\|)\s*any\b|any\[\]/, `${name} uses any`);
    assert.doesNotMatch(source, /^(import|export)\b/m, `${name} must be standalone`);
    assert.doesNotMatch(source, /CellValue/, `${name} uses a type ExcelScript does not have`);
  }
});

test("the two scripts' shared sections are identical", () => {
  const shared = (name) => {
    const source = fs.readFileSync(path.join(__dirname, "..", "office-scripts", name), "utf8");
    const marker = source.indexOf("// ===== Shared with ");
    assert.ok(marker > 0, `${name} has no shared-section marker`);
    return source.slice(source.indexOf("\n", marker));
  };
  assert.equal(shared("ProcessEmails.ts"), shared("ProcessTableColumn.ts"));
});
