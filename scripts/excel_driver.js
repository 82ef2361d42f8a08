#!/usr/bin/env node
/**
 * Drives the Excel kit's surfaces against a REAL FlaskLLM server, for benchmarks and end-to-end
 * tests, and prints ONE JSON line of figures to stdout (log lines go to stderr).
 *
 *   node scripts/excel_driver.js filldown --url URL --token TOKEN --cells 1000 [--prefix STR] [--bytes 300]
 *     Loads office-addin/client.js then functions.js into one global object, as Excel's shared
 *     runtime does (a vm context with fetch, AbortController, timers, and localStorage holding the
 *     settings under the client's storage key), calls PROCESSEMAIL for N distinct texts at once
 *     (a fill-down), awaits every cell, then does it again (a recalculation).
 *     -> {"cells","ok","errors","first_error","batch_requests","seconds",
 *         "recalc_ok","recalc_batch_requests","recalc_seconds"}
 *
 *   node scripts/excel_driver.js script --url URL --token TOKEN --rows 2000 --bytes 3000 [--prefix STR] [--file ProcessEmails.ts]
 *     Runs the shipped Office Script (transpiled as office-addin/tests/load-script.js does, with
 *     API_URL and API_TOKEN overridden) with real fetch against the fake workbook
 *     (office-addin/tests/fake-excelscript.js, Excel's 5 MB per-call limit enforced) holding N
 *     distinct e-mails of about B bytes. --file ProcessTableColumn.ts fills a table "Emails" with a
 *     "Body" column instead of column A of a sheet.
 *     -> {"rows","ok","errors","first_error","seconds","jobs_submitted","max_call_bytes","workbook_calls"}
 *     jobs_submitted counts POST /api/v1/jobs answered 200 or 202 (jobs made or attached to).
 *
 * Texts are distinct per run (--prefix, default random) so a benchmark is not served from the
 * server's cache; the same prefix always gives the same texts (a cached re-run, on purpose).
 * Exit code 2 and no JSON on a usage error; otherwise the JSON line and exit code 0, even when rows
 * failed (the figures say so), or 1 if the driver itself crashed.
 *
 * Node 20, CommonJS, no dependencies beyond office-addin/node_modules/typescript (for the .ts).
 */
"use strict";
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");

const ADDIN = path.join(__dirname, "..", "office-addin");
const SCRIPT_FILES = ["ProcessEmails.ts", "ProcessTableColumn.ts"];
const USAGE = `usage:
  node scripts/excel_driver.js filldown --url URL --token TOKEN --cells N [--prefix STR] [--bytes B]
  node scripts/excel_driver.js script --url URL --token TOKEN --rows N --bytes B [--prefix STR] [--file ${SCRIPT_FILES.join("|")}]`;

class UsageError extends Error {}

/** argv -> {mode, url, token, cells, rows, bytes, prefix, file}; UsageError for anything wrong. */
function parseArgs(argv) {
  const [mode, ...rest] = argv;
  if (!["filldown", "script"].includes(mode)) throw new UsageError(`unknown mode ${mode === undefined ? "(none)" : JSON.stringify(mode)}`);
  const known = { filldown: ["url", "token", "cells", "prefix", "bytes"], script: ["url", "token", "rows", "bytes", "prefix", "file"] }[mode];
  const opts = { mode };
  for (let i = 0; i < rest.length; i += 2) {
    const flag = rest[i];
    const name = flag && flag.startsWith("--") ? flag.slice(2) : null;
    if (!name || !known.includes(name)) throw new UsageError(`unknown argument ${JSON.stringify(flag)} for ${mode}`);
    if (rest[i + 1] === undefined) throw new UsageError(`${flag} needs a value`);
    opts[name] = rest[i + 1];
  }
  if (!/^https?:\/\/[^\s/]+/i.test(opts.url || "")) throw new UsageError("--url must be an http(s) URL");
  if (!opts.token) throw new UsageError("--token is required");
  const count = mode === "filldown" ? "cells" : "rows";
  opts[count] = positiveInt(opts[count], `--${count}`);
  opts.bytes = opts.bytes === undefined ? (mode === "filldown" ? 300 : 3000) : positiveInt(opts.bytes, "--bytes");
  opts.prefix = opts.prefix ?? crypto.randomBytes(4).toString("hex");
  if (!/^[\w.:-]{1,40}$/.test(opts.prefix)) throw new UsageError("--prefix: 1 to 40 of [A-Za-z0-9_.:-]");
  opts.file = opts.file ?? "ProcessEmails.ts";
  if (mode === "script" && !SCRIPT_FILES.includes(opts.file)) throw new UsageError(`--file must be one of ${SCRIPT_FILES.join(", ")}`);
  return opts;
}

function positiveInt(value, flag) {
  if (!/^\d+$/.test(String(value ?? "")) || Number(value) < 1) throw new UsageError(`${flag} must be a positive integer`);
  return Number(value);
}

const SENTENCES = [
  "The order shipped on Monday and the invoice follows by mail.",
  "Could you confirm the delivery address before Friday?",
  "We were charged twice for the same subscription this month.",
  "The meeting with the supplier moved to Thursday at ten.",
  "Please find the signed contract and the price list attached.",
  "Our team is unhappy with the response time of the support desk.",
  "The new release fixed the login problem but the export is still slow.",
  "Thank you for the quick refund, everything is sorted now.",
  "The warehouse in Rotterdam reports a delay of three days.",
  "Can we schedule a call to discuss the renewal terms?",
];

/** A deterministic e-mail of about `bytes` ASCII bytes, unique for (prefix, i). */
function makeText(prefix, i, bytes) {
  let seed = crypto.createHash("sha256").update(`${prefix}:${i}`).digest().readUInt32LE(0);
  const next = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0);
  const head = `Subject: ticket ${prefix}-${i}\nHello team, `;
  let body = "";
  while (head.length + body.length < bytes) body += SENTENCES[next() % SENTENCES.length] + " ";
  return (head + body).slice(0, Math.max(bytes, head.length)).trimEnd() + `\nRegards, customer ${i}`;
}

const makeTexts = (prefix, n, bytes) => Array.from({ length: n }, (_, i) => makeText(prefix, i, bytes));

/** A counter of requests for which `when(method, path, status)` holds. */
function counter(when) {
  return { n: 0, when };
}

/** Node's fetch, counting the requests each counter matches. */
function countingFetch(...counters) {
  return async (url, init = {}) => {
    const response = await fetch(url, init);
    const method = (init.method || "GET").toUpperCase();
    const pathname = new URL(url).pathname;
    for (const c of counters) if (c.when(method, pathname, response.status)) c.n += 1;
    return response;
  };
}

function memoryStorage() {
  const data = new Map();
  return { getItem: (k) => (data.has(k) ? data.get(k) : null), setItem: (k, v) => data.set(k, String(v)), removeItem: (k) => data.delete(k) };
}

/** PROCESSEMAIL as Excel's shared runtime has it: client.js then functions.js in one global. */
function loadCustomFunction(opts, fetchImpl) {
  const registered = {};
  class CustomFunctionsError extends Error {
    constructor(code, message) {
      super(message || code);
      this.code = code;
    }
  }
  const localStorage = memoryStorage();
  const context = vm.createContext({
    console: { log: (...a) => process.stderr.write(a.join(" ") + "\n"), warn: () => {}, error: () => {} },
    fetch: fetchImpl,
    AbortController,
    setTimeout,
    clearTimeout,
    URL,
    localStorage,
    CustomFunctions: {
      Error: CustomFunctionsError,
      ErrorCode: { invalidValue: "#VALUE!", notAvailable: "#N/A" },
      associate: (id, fn) => (registered[String(id).toUpperCase()] = fn),
    },
  });
  for (const file of ["client.js", "functions.js"]) {
    vm.runInContext(fs.readFileSync(path.join(ADDIN, file), "utf8"), context, { filename: file });
  }
  // The settings as the task pane's Save leaves them, under the client's own storage key.
  localStorage.setItem(context.FlaskLLMClient.storageKey(), JSON.stringify({ backendUrl: opts.url, token: opts.token, type: "summary", language: "" }));
  if (!registered.PROCESSEMAIL) throw new Error("functions.js did not register PROCESSEMAIL");
  return registered.PROCESSEMAIL;
}

async function filldown(opts) {
  const batches = counter((method, pathname) => method === "POST" && pathname === "/api/v1/batch");
  const processEmail = loadCustomFunction(opts, countingFetch(batches));
  const texts = makeTexts(opts.prefix, opts.cells, opts.bytes);
  const wave = async () => {
    const before = batches.n;
    const started = process.hrtime.bigint();
    const outcomes = await Promise.allSettled(texts.map((text) => processEmail(text, null, null)));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const ok = outcomes.filter((o) => o.status === "fulfilled" && typeof o.value === "string" && o.value !== "").length;
    const failure = outcomes.find((o) => o.status === "rejected");
    const firstError = failure ? `${failure.reason.code || "error"}: ${failure.reason.message}` : null;
    return { ok, errors: outcomes.length - ok, firstError, requests: batches.n - before, seconds: round(seconds) };
  };
  const fill = await wave();
  const recalc = await wave();
  return {
    cells: opts.cells,
    ok: fill.ok,
    errors: fill.errors,
    first_error: fill.firstError || recalc.firstError,
    batch_requests: fill.requests,
    seconds: fill.seconds,
    recalc_ok: recalc.ok,
    recalc_batch_requests: recalc.requests,
    recalc_seconds: recalc.seconds,
  };
}

/** The fake workbook filled for the script, and where its outputs and statuses land. */
function workbookFor(file, texts) {
  const { fakeWorkbook } = require(path.join(ADDIN, "tests", "fake-excelscript.js"));
  const wb = fakeWorkbook();
  if (file === "ProcessEmails.ts") {
    wb.grid.load([["Email", "Summary", "Status"], ...texts.map((t) => [t])]);
    return { wb, columns: () => ({ output: 1, status: 2, first: 1 }) };
  }
  const table = wb.addTable("Emails", 0, 0, ["Body"], texts.map((t) => [t]));
  return {
    wb,
    columns: () => ({ output: table.headers.indexOf("Summary"), status: table.headers.indexOf("FlaskLLM status"), first: 1 }),
  };
}

async function script(opts) {
  const { loadScript } = require(path.join(ADDIN, "tests", "load-script.js"));
  const jobs = counter((method, pathname, status) => method === "POST" && pathname === "/api/v1/jobs" && (status === 200 || status === 202));
  const texts = makeTexts(opts.prefix, opts.rows, opts.bytes);
  const { wb, columns } = workbookFor(opts.file, texts);
  const { main, logs } = loadScript(opts.file, {
    fetch: countingFetch(jobs),
    settings: { API_URL: opts.url, API_TOKEN: opts.token },
    onLog: (line) => process.stderr.write(`[${opts.file}] ${line}\n`),
  });
  const started = process.hrtime.bigint();
  let thrown = null;
  try {
    await main(wb);
  } catch (err) {
    thrown = `the script threw: ${err && err.message}`;
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const { output, status, first } = columns();
  let ok = 0;
  let firstError = null;
  for (let i = 0; i < texts.length; i++) {
    const out = output < 0 ? "" : String(wb.grid.get(first + i, output));
    const said = status < 0 ? "" : String(wb.grid.get(first + i, status));
    if (out !== "" && said === "") ok += 1;
    else if (firstError === null && said !== "") firstError = said;
  }
  if (ok < texts.length && firstError === null) firstError = thrown || logs[logs.length - 1] || "no result written";
  return {
    rows: opts.rows,
    ok,
    errors: opts.rows - ok,
    first_error: thrown || firstError,
    seconds: round(seconds),
    jobs_submitted: jobs.n,
    max_call_bytes: wb.grid.maxCallBytes,
    workbook_calls: wb.grid.calls,
  };
}

const round = (x) => Math.round(x * 1000) / 1000;

function print(result, code) {
  process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(code));
}

async function mainCli(argv) {
  let opts;
  try {
    opts = parseArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`excel_driver: ${err.message}\n${USAGE}\n`);
    process.exit(2);
  }
  try {
    print(opts.mode === "filldown" ? await filldown(opts) : await script(opts), 0);
  } catch (err) {
    const count = opts.mode === "filldown" ? { cells: opts.cells } : { rows: opts.rows };
    print({ ...count, ok: 0, errors: count.cells || count.rows, first_error: `driver crashed: ${(err && err.stack) || err}` }, 1);
  }
}

if (require.main === module) mainCli(process.argv.slice(2));

module.exports = { parseArgs, makeText, makeTexts, UsageError };
