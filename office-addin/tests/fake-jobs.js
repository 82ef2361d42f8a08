// A fake FlaskLLM server implementing the durable-jobs contract (POST/GET/DELETE /api/v1/jobs,
// /results paging, Idempotency-Key) plus /health, /batch and, when asked for, /estimate (without
// `estimate` it is an older server: /estimate is a 404), behind a fake fetch. Deterministic:
// the server "works" only when it is called, `rowsPerTick` rows per request, so a test decides how
// far a job has got. It records every request and every row it ran, so tests can hold clients to
// "no row submitted twice".
"use strict";

const { json } = require("./helpers.js");

const KEY_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
const TERMINAL = new Set(["done", "cancelled"]);

/** A finished row like the server's: `<type>:<prompt>` as the summary, unless `onRow` says otherwise. */
function okRow(item) {
  const type = item.type || "summary";
  return { ok: true, summary: `${type}:${item.prompt}`, type, result: `${type}:${item.prompt}`, cached: false };
}

/**
 * The estimate the fake gives for a body: every row with a prompt runs, at 100 input and 50 output
 * tokens, $0.001 and 0.1 s a row; no budget, no confirm. `estimate` options override any field.
 */
function countedEstimate(rows) {
  const invalid = rows.filter((r) => typeof r.prompt !== "string" || r.prompt === "").length;
  const toRun = rows.length - invalid;
  return {
    rows: rows.length,
    invalid,
    cached: 0,
    to_run: toRun,
    input_tokens: toRun * 100,
    output_tokens: toRun * 50,
    cost_usd: Math.round(toRun * 1000) / 1e6,
    seconds: toRun / 10,
    provider: "fake",
    model: "fake-1",
    confirm: false,
    budget: null,
  };
}

/**
 * @param {object} [options]
 * @param {string} [options.token]        the only accepted X-API-Token
 * @param {number} [options.jobMaxItems]  reported by /health and enforced (413)
 * @param {number} [options.batchMaxItems]
 * @param {number} [options.rowsPerTick]  rows each running job finishes per request the server gets
 * @param {Function} [options.onRow]      (item, index) -> ROW fields ({ok, summary} or {ok:false, error}), for jobs and /batch
 * @param {Function} [options.eta]        (job) -> eta_seconds while running (default: rows left / 10)
 * @param {boolean} [options.healthJobMax] false: /health does not report job_max_items
 * @param {object} [options.health]       more /health fields (tasks, models, limits)
 * @param {object | Function} [options.estimate] serve POST /api/v1/estimate: fields over the counted
 *   estimate, or (body, rows) -> such fields, a Response, or a promise of either (one that never
 *   settles is a server that never answers; the fake's fetch still rejects when its signal aborts)
 */
function fakeJobsServer(options = {}) {
  const token = options.token ?? "tok";
  const jobMaxItems = options.jobMaxItems ?? 5000;
  const batchMaxItems = options.batchMaxItems ?? 100;
  const rowsPerTick = options.rowsPerTick ?? Infinity;
  const onRow = options.onRow || okRow;
  const eta = options.eta || ((job) => Math.ceil((job.total - job.done) / 10));
  const jobs = new Map(); // id -> job
  const keys = new Map(); // token + key -> id
  const calls = [];
  const executions = new Map(); // prompt -> times a row with it ran
  const rateLimits = []; // {method, path, times, retryAfter}
  let failWhen = null;
  let nextId = 1;
  let clock = Date.parse("2025-01-01T00:00:00Z");

  function now() {
    clock += 500;
    return new Date(clock).toISOString();
  }

  function view(job) {
    const { id, status, total, done, succeeded, failed, cached, created_at, updated_at } = job;
    return { id, status, total, done, succeeded, failed, cached, created_at, updated_at, eta_seconds: TERMINAL.has(status) ? null : eta(job) };
  }

  /** Run a job's next row. */
  function runRow(job) {
    const index = job.done;
    const item = job.items[index];
    executions.set(item.prompt, (executions.get(item.prompt) || 0) + 1);
    const row = { index, id: item.id ?? null, ...onRow(item, index) };
    job.rows[index] = row;
    job.done += 1;
    if (row.ok) job.succeeded += 1;
    else job.failed += 1;
    if (row.ok && row.cached) job.cached += 1;
    job.status = job.done === job.total ? "done" : "running";
    job.updated_at = now();
  }

  /** Run up to rowsPerTick rows of every unfinished job, in index order. */
  function tick() {
    for (const job of jobs.values()) {
      for (let budget = rowsPerTick; budget > 0 && !TERMINAL.has(job.status); budget--) runRow(job);
    }
  }

  /** The rows as the server runs them: the envelope's `defaults` under each row's own fields. */
  function withDefaults(body) {
    return body.items.map((item) => ({ ...(body.defaults || {}), ...item }));
  }

  function error(status, code, message, headers) {
    return json(status, { error: { code, message } }, headers);
  }

  function create(auth, key, body) {
    const items = body && body.items;
    if (!Array.isArray(items) || items.length === 0) return error(400, "invalid_input", "items: at least one row");
    if (items.length > jobMaxItems) return error(413, "too_many_items", `items: at most ${jobMaxItems} rows per job`);
    const rowsText = JSON.stringify([items, body.defaults || null]);
    if (key !== null) {
      if (!KEY_PATTERN.test(key)) return error(400, "invalid_input", "Idempotency-Key: at most 128 of [A-Za-z0-9._:-]");
      const existing = keys.get(auth + "\u0000" + key);
      if (existing) {
        const job = jobs.get(existing);
        if (job.rowsText !== rowsText) return error(409, "idempotency_conflict", "This Idempotency-Key was used for other rows");
        return json(200, { job: view(job) });
      }
    }
    const stamp = now();
    const job = {
      id: `job-${nextId++}`,
      token: auth,
      key,
      items: withDefaults(body),
      rowsText,
      rows: new Array(items.length).fill(null),
      status: "queued",
      total: items.length,
      done: 0,
      succeeded: 0,
      failed: 0,
      cached: 0,
      created_at: stamp,
      updated_at: stamp,
    };
    jobs.set(job.id, job);
    if (key !== null) keys.set(auth + "\u0000" + key, job.id);
    return json(202, { job: view(job) });
  }

  function results(job, query) {
    const after = query.has("after") ? Number(query.get("after")) : -1;
    const limit = Math.min(Number(query.get("limit") || 500), 1000);
    const out = [];
    let i = after + 1;
    while (i < job.total && job.rows[i] && out.length < limit) out.push(job.rows[i++]);
    const all = i === job.total;
    const next = all ? null : out.length ? out[out.length - 1].index : after;
    return json(200, { results: out, next });
  }

  function cancel(job) {
    for (let i = 0; i < job.total; i++) {
      if (job.rows[i]) continue;
      job.rows[i] = { index: i, id: job.items[i].id ?? null, ok: false, error: { code: "cancelled", message: "Cancelled before it started" } };
      job.done += 1;
      job.failed += 1;
    }
    job.status = "cancelled";
    job.updated_at = now();
    return json(200, { job: view(job) });
  }

  /** POST /api/v1/estimate: the body as /jobs takes it, checked as /jobs checks it; runs nothing. */
  function estimate(method, body) {
    if (method !== "POST") return error(405, "method_not_allowed", "No.");
    const items = body && body.items;
    if (!Array.isArray(items) || items.length === 0) return error(400, "invalid_input", "items: at least one row");
    if (items.length > jobMaxItems) return error(413, "too_many_items", `items: at most ${jobMaxItems} rows per job`);
    const rows = withDefaults(body);
    const over = typeof options.estimate === "function" ? options.estimate(body, rows) : options.estimate;
    return Promise.resolve(over).then((fields) => (fields instanceof Response ? fields : json(200, { estimate: { ...countedEstimate(rows), ...(fields || {}) } })));
  }

  function route(method, url, headers, body) {
    const path = url.pathname;
    if (path === "/api/v1/health") {
      const info = { status: "ok", version: "1.0.0", provider: "fake", batch_max_items: batchMaxItems, provider_concurrency: 32, ...(options.health || {}) };
      if (options.healthJobMax !== false) info.job_max_items = jobMaxItems;
      return json(200, info);
    }
    const auth = headers["X-API-Token"];
    if (auth !== token) return error(401, "unauthorized", "Missing or invalid API token.");
    if (path === "/api/v1/estimate" && options.estimate) return estimate(method, body); // before tick: it runs nothing
    tick();
    if (path === "/api/v1/batch" && method === "POST") {
      const results = withDefaults(body).map((item, index) => ({ index, id: item.id ?? null, ...onRow(item, index) }));
      return json(200, { results, stats: { total: results.length } });
    }
    if (path === "/api/v1/jobs" && method === "POST") return create(auth, headers["Idempotency-Key"] ?? null, body);
    const m = /^\/api\/v1\/jobs\/([^/]+)(\/results)?$/.exec(path);
    const job = m && jobs.get(decodeURIComponent(m[1]));
    if (!job || job.token !== auth) return error(404, "not_found", "No such job.");
    if (m[2] && method === "GET") return results(job, url.searchParams);
    if (!m[2] && method === "GET") return json(200, { job: view(job) });
    if (!m[2] && method === "DELETE") return cancel(job);
    return error(405, "method_not_allowed", "No.");
  }

  function limited(method, path) {
    const rule = rateLimits.find((r) => r.times > 0 && r.method === method && (r.path === path || (r.path instanceof RegExp && r.path.test(path))));
    if (!rule) return null;
    rule.times -= 1;
    return error(429, rule.code, rule.message, { "Retry-After": String(rule.retryAfter) });
  }

  /** The response, or a rejection like fetch's when `signal` aborts first. */
  function abortable(answer, signal) {
    if (!signal) return answer;
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(new DOMException("The operation was aborted.", "AbortError"));
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      answer.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    });
  }

  async function fetch(input, init = {}) {
    const url = new URL(input);
    const method = (init.method || "GET").toUpperCase();
    const headers = canonicalHeaders(init.headers || {});
    const body = init.body ? JSON.parse(init.body) : undefined;
    const call = { method, path: url.pathname, url: String(url), query: url.search, headers, body };
    calls.push(call);
    if (failWhen && failWhen(call, calls.length)) throw new TypeError("fetch failed");
    await new Promise((resolve) => setImmediate(resolve));
    const refused = limited(method, url.pathname);
    call.response = await abortable(Promise.resolve(refused || route(method, url, headers, body)), init.signal);
    call.status = call.response.status;
    return call.response;
  }

  return {
    fetch,
    jobs,
    calls,
    executions,
    /**
     * The next `times` requests matching method and path get a 429 with this Retry-After; `code`
     * and `message` are its error ("budget_exceeded" for a used-up budget).
     */
    rateLimit(method, path, times, retryAfter = 1, code = "rate_limited", message = "Too many requests") {
      rateLimits.push({ method, path, times, retryAfter, code, message });
    },
    /** From now on, fetch rejects (like a network failure) whenever `predicate(call, n)` is true. */
    failWhen(predicate) {
      failWhen = predicate;
    },
    posts: () => calls.filter((c) => c.method === "POST" && c.path === "/api/v1/jobs"),
    batches: () => calls.filter((c) => c.path === "/api/v1/batch"),
    estimates: () => calls.filter((c) => c.path === "/api/v1/estimate"),
    deletes: () => calls.filter((c) => c.method === "DELETE"),
    /** How many rows ran more than once (anywhere): 0 is "no row submitted twice". */
    repeatedRows: () => [...executions.values()].filter((n) => n > 1).length,
    /** Let every job run to its end (as if the server kept working while no client looked). */
    finishAll() {
      for (const job of jobs.values()) while (!TERMINAL.has(job.status)) runRow(job);
    },
  };
}

/** Headers with the names the fake reads spelt one way, whatever case the client (or HTTP) used. */
function canonicalHeaders(headers) {
  const names = ["X-API-Token", "Idempotency-Key", "Content-Type", "Accept"];
  const out = {};
  for (const [name, value] of Object.entries(headers)) {
    out[names.find((n) => n.toLowerCase() === name.toLowerCase()) || name] = value;
  }
  return out;
}

/** A row that failed because the token's budget is used up, as the server gives it in /batch and job results. */
function budgetRow(message = "Budget of $5.00 per day used up; it resets at 2026-12-04T00:00:00Z.") {
  return { ok: false, error: { code: "budget_exceeded", message } };
}

module.exports = { fakeJobsServer, okRow, budgetRow, countedEstimate };
