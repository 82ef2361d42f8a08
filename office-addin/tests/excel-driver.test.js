// scripts/excel_driver.js, run as a child process against the fake jobs server served over HTTP on
// loopback: both modes print one JSON line with the promised figures; usage errors exit 2.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const http = require("node:http");
const net = require("node:net");
const path = require("node:path");
const { execFile } = require("node:child_process");

const { fakeJobsServer } = require("./fake-jobs.js");

const DRIVER = path.join(__dirname, "..", "..", "scripts", "excel_driver.js");
const { makeTexts } = require(DRIVER);

/** The fake server behind a real HTTP listener on 127.0.0.1. */
async function listen(server) {
  const httpServer = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = chunks.length ? Buffer.concat(chunks).toString("utf8") : undefined;
    const answer = await server.fetch(`http://127.0.0.1${req.url}`, { method: req.method, headers: req.headers, body });
    const headers = Object.fromEntries(answer.headers);
    res.writeHead(answer.status, headers);
    res.end(await answer.text());
  });
  await new Promise((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${httpServer.address().port}`, close: () => new Promise((resolve) => httpServer.close(resolve)) };
}

function drive(args) {
  return new Promise((resolve) => {
    execFile(process.execPath, [DRIVER, ...args], { maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? error.code : 0, stdout, stderr });
    });
  });
}

test("filldown: N distinct cells, batched, then recalculated; one JSON line of figures", async () => {
  const server = fakeJobsServer({ token: "tok" });
  const site = await listen(server);
  try {
    const { code, stdout } = await drive(["filldown", "--url", site.url, "--token", "tok", "--cells", "250", "--prefix", "t1"]);
    assert.equal(code, 0);
    const lines = stdout.trim().split("\n");
    assert.equal(lines.length, 1);
    const figures = JSON.parse(lines[0]);
    assert.deepEqual(Object.keys(figures), ["cells", "ok", "errors", "first_error", "batch_requests", "seconds", "recalc_ok", "recalc_batch_requests", "recalc_seconds"]);
    assert.equal(figures.cells, 250);
    assert.equal(figures.ok, 250);
    assert.equal(figures.errors, 0);
    assert.equal(figures.first_error, null);
    assert.equal(figures.batch_requests, 3); // 100 + 100 + 50
    assert.equal(figures.recalc_ok, 250);
    assert.equal(figures.recalc_batch_requests, 3);
    const prompts = server.batches().flatMap((c) => c.body.items.map((i) => i.prompt));
    assert.equal(new Set(prompts).size, 250);
  } finally {
    await site.close();
  }
});

test("filldown with a wrong token: every cell fails and the figures say why", async () => {
  const site = await listen(fakeJobsServer({ token: "tok" }));
  try {
    const { code, stdout } = await drive(["filldown", "--url", site.url, "--token", "nope", "--cells", "5"]);
    assert.equal(code, 0);
    const figures = JSON.parse(stdout);
    assert.equal(figures.ok, 0);
    assert.equal(figures.errors, 5);
    assert.equal(figures.first_error, "#N/A: Set your API token in the FlaskLLM task pane");
  } finally {
    await site.close();
  }
});

/** Rows shaped like a model-backed server's for each task (the fake's default echoes the prompt). */
function taskRow(item) {
  const result = {
    classify: () => (item.labels || [])[item.prompt.length % 4],
    extract: () => Object.fromEntries((item.fields || []).map((f) => [f, `${f}?`])),
    keywords: () => ["parcel", "invoice"],
    entities: () => [{ text: "Rotterdam", label: "LOCATION" }],
  }[item.type];
  const value = result ? result() : `${item.type}:${(item.instruction || "").length}`;
  return { ok: true, summary: typeof value === "string" ? value : JSON.stringify(value), type: item.type, result: value, cached: false };
}

test("formulas: every function in the shared runtime, shapes counted, the PROMPT table recorded as sent", async () => {
  const server = fakeJobsServer({ token: "tok", onRow: taskRow, health: { models: ["gpt-4", "gpt-4o-mini"] } });
  const site = await listen(server);
  try {
    const { code, stdout } = await drive(["formulas", "--url", site.url, "--token", "tok", "--cells", "150", "--prefix", "f1"]);
    assert.equal(code, 0, stdout);
    const f = JSON.parse(stdout);
    assert.deepEqual([f.classify_cells, f.classify_ok, f.classify_in_labels], [150, 150, 150]);
    assert.deepEqual([f.extract_ok, f.keywords_ok, f.entities_ok], [20, 20, 5]);
    assert.equal(f.prompt_ok, true);
    assert.deepEqual([f.prompt_sent_headers, f.prompt_sent_values, f.prompt_sent_instruction], [true, true, true]);
    assert.equal(f.promptwith_error, "#VALUE!: model: must be one of gpt-4, gpt-4o-mini");
    assert.deepEqual(f.models, ["gpt-4", "gpt-4o-mini"]);
    assert.deepEqual([f.errors, f.first_error], [0, null]);
    assert.equal(f.batch_requests, 2); // 196 rows in one wave: 100 + 96
    const sent = server.batches().flatMap((c) => c.body.items).find((i) => i.type === "prompt");
    assert.match(sent.prompt, /^Context \(20 rows x 4 columns, tab-separated, first row = column headers\):\nRegion\tProduct\tUnits\tRevenue\n/);
  } finally {
    await site.close();
  }
});

test("deadline: against a server that accepts and never answers, every queued cell settles at one cell deadline", async () => {
  const sockets = new Set();
  const silent = net.createServer((socket) => sockets.add(socket)); // reads nothing, answers nothing
  await new Promise((resolve) => silent.listen(0, "127.0.0.1", resolve));
  try {
    const url = `http://127.0.0.1:${silent.address().port}`;
    const { code, stdout } = await drive(["deadline", "--url", url, "--token", "tok", "--cells", "400", "--cell-deadline-ms", "600", "--max-concurrent", "1"]);
    assert.equal(code, 0, stdout);
    const f = JSON.parse(stdout);
    assert.deepEqual([f.cells, f.settled, f.errors], [400, 400, 400]);
    assert.equal(f.first_error, "#N/A: No answer from the FlaskLLM server within 0.6 s");
    assert.ok(f.max_seconds >= 0.6 && f.max_seconds < 1.5, `last cell after ${f.max_seconds} s`);
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
});

test("script: the shipped Office Script over real HTTP, 5 MB limit enforced, one job", async () => {
  const server = fakeJobsServer({ token: "tok" });
  const site = await listen(server);
  try {
    for (const file of ["ProcessEmails.ts", "ProcessTableColumn.ts"]) {
      const { code, stdout } = await drive(["script", "--url", site.url, "--token", "tok", "--rows", "300", "--bytes", "3000", "--prefix", `s-${file}`, "--file", file]);
      assert.equal(code, 0, stdout);
      const figures = JSON.parse(stdout);
      assert.deepEqual(Object.keys(figures), ["rows", "ok", "errors", "first_error", "seconds", "jobs_submitted", "estimate_logs", "max_call_bytes", "workbook_calls"]);
      assert.equal(figures.rows, 300);
      assert.equal(figures.ok, 300, figures.first_error);
      assert.equal(figures.errors, 0);
      assert.equal(figures.jobs_submitted, 1);
      assert.ok(figures.max_call_bytes > 0 && figures.max_call_bytes < 5 * 1024 * 1024);
      assert.ok(figures.workbook_calls >= 3);
    }
    assert.equal(server.repeatedRows(), 0);
  } finally {
    await site.close();
  }
});

test("usage errors exit 2 without a JSON line", async () => {
  for (const args of [[], ["bake"], ["filldown", "--url", "x", "--token", "t", "--cells", "3"], ["filldown", "--url", "http://h", "--cells", "3"], ["script", "--url", "http://h", "--token", "t", "--rows", "0"], ["script", "--url", "http://h", "--token", "t", "--rows", "2", "--file", "Other.ts"], ["filldown", "--url", "http://h", "--token", "t", "--cells", "2", "--rows", "3"]]) {
    const { code, stdout, stderr } = await drive(args);
    assert.equal(code, 2, args.join(" "));
    assert.equal(stdout, "");
    assert.match(stderr, /usage:/);
  }
});

test("texts: distinct within a run, identical for the same prefix, different for another, about B bytes", () => {
  const a = makeTexts("p1", 50, 3000);
  assert.equal(new Set(a).size, 50);
  assert.deepEqual(makeTexts("p1", 50, 3000), a);
  assert.notDeepEqual(makeTexts("p2", 50, 3000), a);
  for (const t of a) assert.ok(t.length >= 3000 && t.length < 3100 && /^[\x20-\x7e\n]+$/.test(t));
});
