#!/usr/bin/env node
/**
 * Drives the Excel kit's surfaces against a REAL FlaskLLM server, for benchmarks and end-to-end
 * tests, and prints ONE JSON line of figures to stdout (log lines go to stderr).
 *
 *   node scripts/excel_driver.js filldown --url URL --token TOKEN --cells 1000 [--prefix STR] [--bytes 300]
 *     Loads the scripts office-addin/taskpane.html loads before the pane (client.js, functions.js)
 *     into one global object, as Excel's shared runtime does (a vm context with fetch,
 *     AbortController, timers, and localStorage holding the settings under the client's storage
 *     key), calls PROCESSEMAIL for N distinct texts at once (a fill-down), awaits every cell, then
 *     does it again (a recalculation).
 *     -> {"cells","ok","errors","first_error","batch_requests","seconds",
 *         "recalc_ok","recalc_batch_requests","recalc_seconds"}
 *
 *   node scripts/excel_driver.js formulas --url URL --token TOKEN [--cells 500] [--prefix STR]
 *     The formula surface in the same runtime, all at once as a recalculating sheet would call it:
 *     CLASSIFY over N distinct texts with labels "billing,shipping,complaint,other", EXTRACT of 3
 *     fields and KEYWORDS over 20 texts each, ENTITIES over 5, PROMPT over a 20 x 4 range (a
 *     header row and 19 rows; the batch bodies sent are recorded, to show the table went out with
 *     its headers and values) and PROMPTWITH with a model outside the server's allow-list.
 *     -> {"classify_cells","classify_ok","classify_in_labels","extract_cells","extract_ok",
 *         "keywords_cells","keywords_ok","entities_cells","entities_ok","prompt_ok","prompt_answer",
 *         "prompt_sent_headers","prompt_sent_values","prompt_sent_instruction","promptwith_error",
 *         "models","errors","first_error","batch_requests","seconds"}
 *     *_ok counts cells of the promised shape: a label; a 1 x 3 row; a 1 x N row (N >= 1); N x 2.
 *
 *   node scripts/excel_driver.js deadline --url URL --token TOKEN [--cells 1000] [--cell-deadline-ms 2000] [--max-concurrent 2]
 *     PROCESSEMAIL for N cells through a batcher with a short cell deadline and few request slots
 *     (so most cells queue), against a server that may never answer: every cell must settle
 *     within one cell deadline of its call, queued or not.
 *     -> {"cells","settled","errors","first_error","max_seconds","cell_deadline_seconds"}
 *
 *   node scripts/excel_driver.js script --url URL --token TOKEN --rows 2000 --bytes 3000 [--prefix STR] [--file ProcessEmails.ts] [--approve-usd 50]
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
  node scripts/excel_driver.js script --url URL --token TOKEN --rows N --bytes B [--prefix STR] [--file ${SCRIPT_FILES.join("|")}] [--approve-usd USD]
  node scripts/excel_driver.js formulas --url URL --token TOKEN [--cells N] [--prefix STR]
  node scripts/excel_driver.js deadline --url URL --token TOKEN [--cells N] [--cell-deadline-ms MS] [--max-concurrent N]`;
const MODES = {
  filldown: { flags: ["url", "token", "cells", "prefix", "bytes"], count: "cells" },
  script: { flags: ["url", "token", "rows", "bytes", "prefix", "file", "approve-usd"], count: "rows" },
  formulas: { flags: ["url", "token", "cells", "prefix"], count: "cells", defaults: { cells: "500" } },
  deadline: { flags: ["url", "token", "cells", "cell-deadline-ms", "max-concurrent"], count: "cells", defaults: { cells: "1000", "cell-deadline-ms": "2000", "max-concurrent": "2" } },
};

class UsageError extends Error {}

/** argv -> {mode, url, token, cells, rows, bytes, prefix, file}; UsageError for anything wrong. */
function parseArgs(argv) {
  const [mode, ...rest] = argv;
  if (!Object.hasOwn(MODES, mode ?? "")) throw new UsageError(`unknown mode ${mode === undefined ? "(none)" : JSON.stringify(mode)}`);
  const known = MODES[mode].flags;
  const opts = { mode, ...(MODES[mode].defaults || {}) };
  for (let i = 0; i < rest.length; i += 2) {
    const flag = rest[i];
    const name = flag && flag.startsWith("--") ? flag.slice(2) : null;
    if (!name || !known.includes(name)) throw new UsageError(`unknown argument ${JSON.stringify(flag)} for ${mode}`);
    if (rest[i + 1] === undefined) throw new UsageError(`${flag} needs a value`);
    opts[name] = rest[i + 1];
  }
  if (!/^https?:\/\/[^\s/]+/i.test(opts.url || "")) throw new UsageError("--url must be an http(s) URL");
  if (!opts.token) throw new UsageError("--token is required");
  const count = MODES[mode].count;
  opts[count] = positiveInt(opts[count], `--${count}`);
  for (const flag of ["cell-deadline-ms", "max-concurrent"]) if (opts[flag] !== undefined) opts[flag] = positiveInt(opts[flag], `--${flag}`);
  opts.bytes = opts.bytes === undefined ? (mode === "filldown" ? 300 : 3000) : positiveInt(opts.bytes, "--bytes");
  opts.prefix = opts.prefix ?? crypto.randomBytes(4).toString("hex");
  if (!/^[\w.:-]{1,40}$/.test(opts.prefix)) throw new UsageError("--prefix: 1 to 40 of [A-Za-z0-9_.:-]");
  opts.file = opts.file ?? "ProcessEmails.ts";
  // What the person running the script approves when the server asks for a go-ahead (main's
  // parameters); 0 = as the script ships: a costly run stops at its estimate.
  opts["approve-usd"] = opts["approve-usd"] === undefined ? 0 : Number(opts["approve-usd"]);
  if (!Number.isFinite(opts["approve-usd"]) || opts["approve-usd"] < 0) throw new UsageError("--approve-usd must be a number >= 0");
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

/**
 * The scripts taskpane.html loads for the shared runtime before the pane itself: its local,
 * non-deferred <script src>s in page order (office.js comes from Microsoft's CDN, taskpane.js
 * needs the page's DOM).
 */
function runtimeScripts() {
  const html = fs.readFileSync(path.join(ADDIN, "taskpane.html"), "utf8");
  const tags = [...html.matchAll(/<script\b([^>]*)>/g)].map((m) => m[1]);
  return tags.filter((attrs) => !/\bdefer\b/.test(attrs)).map((attrs) => (/\bsrc="([^"]+)"/.exec(attrs) || [])[1]).filter((src) => src && !/^[a-z]+:/i.test(src));
}

/**
 * The custom functions as Excel's shared runtime has them: the page's scripts in one global.
 * Returns the functions by id (as CustomFunctions.associate registered them) and the
 * FlaskLLMFunctions namespace (for a batcher with other options).
 */
function loadCustomFunctions(opts, fetchImpl) {
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
  for (const file of runtimeScripts()) {
    vm.runInContext(fs.readFileSync(path.join(ADDIN, file), "utf8"), context, { filename: file });
  }
  // The settings as the task pane's Save leaves them, under the client's own storage key.
  localStorage.setItem(context.FlaskLLMClient.storageKey(), JSON.stringify({ backendUrl: opts.url, token: opts.token, type: "summary", language: "" }));
  for (const id of ["PROCESSEMAIL", "PROMPT", "PROMPTWITH", "CLASSIFY", "EXTRACT", "KEYWORDS", "ENTITIES"]) {
    if (!registered[id]) throw new Error(`functions.js did not register ${id}`);
  }
  return { functions: registered, namespace: vm.runInContext("FlaskLLMFunctions", context), client: context.FlaskLLMClient };
}

/** Excel's CancelableInvocation as the runtime passes it (nobody cancels here). */
const invocation = () => ({ onCanceled: null });

async function filldown(opts) {
  const batches = counter((method, pathname) => method === "POST" && pathname === "/api/v1/batch");
  const processEmail = loadCustomFunctions(opts, countingFetch(batches)).functions.PROCESSEMAIL;
  const texts = makeTexts(opts.prefix, opts.cells, opts.bytes);
  const wave = async () => {
    const before = batches.n;
    const started = process.hrtime.bigint();
    const outcomes = await Promise.allSettled(texts.map((text) => processEmail(text, null, null, invocation())));
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
    await main(wb, opts["approve-usd"], opts["approve-usd"] > 0);
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
    estimate_logs: logs.filter((line) => /estimat|approve/i.test(line)),
    max_call_bytes: wb.grid.maxCallBytes,
    workbook_calls: wb.grid.calls,
  };
}

const LABELS = "billing,shipping,complaint,other";
const FIELDS = [["customer", "amount", "date"]];
const BAD_MODEL = "no-such-model-xyz";

/** A 20 x 4 sales table: a header row and 19 rows, every value distinct per prefix. */
function salesTable(prefix) {
  const regions = ["North", "South", "East", "West"];
  const rows = Array.from({ length: 19 }, (_, i) => [`${regions[i % 4]}-${prefix}-${i}`, `Product ${i}`, 10 + i * 3, 1000 + i * 137.5]);
  return [["Region", "Product", "Units", "Revenue"], ...rows];
}

/** Node's fetch, keeping the parsed body of every POST /api/v1/batch. */
function recordingFetch(bodies) {
  return async (url, init = {}) => {
    if ((init.method || "GET").toUpperCase() === "POST" && new URL(url).pathname === "/api/v1/batch") bodies.push(JSON.parse(init.body));
    return fetch(url, init);
  };
}

const isRow = (value, width) => Array.isArray(value) && value.length === 1 && Array.isArray(value[0]) && value[0].every((v) => typeof v === "string") && (width === undefined ? value[0].length >= 1 : value[0].length === width);
const describe = (reason) => `${(reason && reason.code) || "error"}: ${reason && reason.message}`;

async function formulas(opts) {
  const bodies = [];
  const { functions: F, client } = loadCustomFunctions(opts, recordingFetch(bodies));
  const health = client.serverInfo(await client.health({ backendUrl: opts.url }, {}).catch(() => null));
  const texts = makeTexts(opts.prefix, opts.cells, 200);
  const few = (n, tag) => makeTexts(`${opts.prefix}-${tag}`, n, 200);
  const table = salesTable(opts.prefix);
  const instruction = `Which region sold the most units? (${opts.prefix})`;
  const started = process.hrtime.bigint();
  const calls = {
    classify: texts.map((t) => F.CLASSIFY(t, [[LABELS]], invocation())),
    extract: few(20, "x").map((t) => F.EXTRACT(t, FIELDS, invocation())),
    keywords: few(20, "k").map((t) => F.KEYWORDS(t, null, invocation())),
    entities: few(5, "e").map((t) => F.ENTITIES(t, invocation())),
    prompt: [F.PROMPT(instruction, [table], invocation())],
    promptwith: [F.PROMPTWITH(BAD_MODEL, instruction, [table], invocation())],
  };
  const names = Object.keys(calls);
  const settled = await Promise.all(names.map((name) => Promise.allSettled(calls[name]))); // all handled at once
  const out = Object.fromEntries(names.map((name, i) => [name, settled[i]]));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const labels = LABELS.split(",");
  const ok = (name, good) => out[name].filter((o) => o.status === "fulfilled" && good(o.value)).length;
  const failures = Object.entries(out).filter(([name]) => name !== "promptwith").flatMap(([, list]) => list.filter((o) => o.status === "rejected"));
  const sent = bodies.flatMap((b) => b.items).find((item) => item.type === "prompt" && item.instruction === instruction);
  const sentText = sent ? String(sent.prompt) : "";
  const [prompt] = out.prompt;
  const [promptwith] = out.promptwith;
  return {
    classify_cells: texts.length,
    classify_ok: ok("classify", (v) => typeof v === "string" && v !== ""),
    classify_in_labels: ok("classify", (v) => labels.includes(v)),
    extract_cells: calls.extract.length,
    extract_ok: ok("extract", (v) => isRow(v, FIELDS[0].length)),
    keywords_cells: calls.keywords.length,
    keywords_ok: ok("keywords", (v) => isRow(v) && v[0][0] !== ""),
    entities_cells: calls.entities.length,
    entities_ok: ok("entities", (v) => Array.isArray(v) && v.length >= 1 && v.every((r) => Array.isArray(r) && r.length === 2)),
    prompt_ok: prompt.status === "fulfilled" && typeof prompt.value === "string" && prompt.value !== "",
    prompt_answer: prompt.status === "fulfilled" ? String(prompt.value).slice(0, 200) : describe(prompt.reason),
    prompt_sent_headers: sentText.includes(table[0].join("\t")),
    prompt_sent_values: table.slice(1).every((row) => sentText.includes(row.map(String).join("\t"))),
    prompt_sent_instruction: Boolean(sent),
    promptwith_error: promptwith.status === "rejected" ? describe(promptwith.reason) : null,
    models: health.models,
    errors: failures.length,
    first_error: failures.length ? describe(failures[0].reason) : null,
    batch_requests: bodies.length,
    seconds: round(seconds),
  };
}

async function deadline(opts) {
  const { namespace } = loadCustomFunctions(opts, (url, init) => fetch(url, init));
  const settings = { backendUrl: opts.url, token: opts.token };
  const cellDeadlineMs = opts["cell-deadline-ms"];
  const batcher = namespace.createBatcher({ cellDeadlineMs, maxConcurrent: opts["max-concurrent"], getSettings: () => settings });
  const started = Date.now();
  let last = 0;
  const texts = makeTexts(`deadline-${crypto.randomBytes(4).toString("hex")}`, opts.cells, 100);
  const outcomes = await Promise.allSettled(texts.map((t) => batcher.processEmail(t, null, null, invocation()).finally(() => (last = Math.max(last, Date.now() - started)))));
  const failure = outcomes.find((o) => o.status === "rejected");
  return {
    cells: opts.cells,
    settled: outcomes.length,
    errors: outcomes.filter((o) => o.status === "rejected").length,
    first_error: failure ? describe(failure.reason) : null,
    max_seconds: round(last / 1000),
    cell_deadline_seconds: cellDeadlineMs / 1000,
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
    const run = { filldown, script, formulas, deadline }[opts.mode];
    print(await run(opts), 0);
  } catch (err) {
    const name = MODES[opts.mode].count;
    print({ [name]: opts[name], ok: 0, errors: opts[name], first_error: `driver crashed: ${(err && err.stack) || err}` }, 1);
  }
}

if (require.main === module) mainCli(process.argv.slice(2));

module.exports = { parseArgs, makeText, makeTexts, runtimeScripts, salesTable, UsageError };
