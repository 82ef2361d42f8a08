/**
 * The PROCESSEMAIL custom function: `=LLM.PROCESSEMAIL(A2, [type], [language])`.
 *
 * Why a batcher: filling a formula down 5,000 rows makes Excel call the function 5,000 times at
 * once. Calls arriving within WINDOW_MS are merged into /api/v1/batch requests of at most the
 * server's batch_max_items rows, and identical cells (same text, type and language) share one row.
 * Up to MAX_CONCURRENT requests run together: the server runs many provider calls at once
 * (provider_concurrency in /health), so a 1,000-cell fill-down (10 batches) goes out in one wave
 * instead of queueing behind a handful of slots.
 *
 * Why 429 is waited out: the server's rate limit is per token and a wave of batches can hit it. A
 * rate-limited chunk waits the server's Retry-After and is sent again, as long as that still fits in
 * its cells' deadline (CELL_DEADLINE_MS from the first call); only then do its cells show the
 * rate-limit message. A recalculation is a fresh start.
 *
 * Why every path ends in resolve or reject: a promise that never settles leaves its cell on #BUSY!
 * for good. Network failures, non-JSON answers and the request deadline reject every waiting cell
 * with a CustomFunctions.Error carrying a message the user can act on; a failed row fails only its
 * own cell.
 *
 * Runs unchanged in Excel's shared runtime (loaded by taskpane.html after client.js), in a browser
 * and in Node (`require`, for node --test): `createBatcher` takes every dependency as an option.
 */
(function (root, factory) {
  const isNode = typeof module === "object" && module.exports;
  const api = factory(root, isNode ? require("./client.js") : root.FlaskLLMClient);
  if (isNode) module.exports = api;
  else root.FlaskLLMFunctions = api;
  if (typeof root.CustomFunctions !== "undefined" && root.CustomFunctions.associate) {
    root.CustomFunctions.associate("PROCESSEMAIL", api.processEmail);
  }
})(typeof globalThis !== "undefined" ? globalThis : this, function (root, client) {
  "use strict";

  const WINDOW_MS = 75;
  const MAX_CONCURRENT = 16;
  const CELL_DEADLINE_MS = 120000; // a cell stops waiting out rate limits after two minutes
  const DEFAULT_RETRY_AFTER_S = 5; // a 429 without Retry-After
  const RETRY_JITTER_MS = 250; // rate-limited chunks that waited together do not return together
  const DEFAULT_MAX_ITEMS = 100;
  const HEALTH_DEADLINE_MS = 5000;
  const MAX_MESSAGE = 250; // Excel shows error messages in a small tooltip

  /** A CustomFunctions.Error where the Excel API exists, a plain Error with `.code` elsewhere. */
  function cellError(code, message) {
    const text = String(message).slice(0, MAX_MESSAGE);
    const cf = root.CustomFunctions;
    if (cf && cf.Error && cf.ErrorCode) return new cf.Error(cf.ErrorCode[code], text);
    const err = new Error(text);
    err.code = code;
    return err;
  }

  /**
   * @param {object} [options]
   * @param {number} [options.windowMs]   how long to collect calls before sending
   * @param {number} [options.deadlineMs] per-request deadline
   * @param {number} [options.cellDeadlineMs] how long a cell may wait in all, rate-limit waits included
   * @param {number} [options.maxConcurrent] requests in flight at once
   * @param {Function} [options.fetch]    fetch implementation (tests inject a fake)
   * @param {Function} [options.getSettings] -> {backendUrl, token}; read at send time, so a token
   *   saved in the task pane applies to the next calculation without a reload
   * @param {Function} [options.makeError] (codeName, message) -> Error
   */
  function createBatcher(options = {}) {
    const windowMs = options.windowMs ?? WINDOW_MS;
    const deadlineMs = options.deadlineMs ?? client.DEADLINE_MS;
    const cellDeadlineMs = options.cellDeadlineMs ?? CELL_DEADLINE_MS;
    const maxConcurrent = options.maxConcurrent ?? MAX_CONCURRENT;
    const getSettings = options.getSettings || (() => client.loadSettings());
    const makeError = options.makeError || cellError;
    const net = { fetch: options.fetch };

    let pending = new Map(); // key -> {item, waiters}: collected in the current window
    const inFlight = new Map(); // key -> same entry, while its request runs: identical calls join it
    const jobs = []; // chunks waiting for a free request slot
    let timer = null;
    let running = 0;
    let maxItems = null; // learnt from /health once it answers

    function call(text, type, language) {
      if (text === null || text === undefined || String(text).trim() === "") return Promise.resolve("");
      const item = { prompt: String(text), type: type ? String(type).trim().toLowerCase() : "summary" };
      if (!client.TASK_TYPES.includes(item.type)) {
        const known = client.TASK_TYPES.join(", ");
        return Promise.reject(makeError("invalidValue", `Unknown type "${type}": use one of ${known}`));
      }
      if (language) item.language = String(language).trim();
      const key = JSON.stringify([item.prompt, item.type, item.language || ""]);
      const entry = pending.get(key) || inFlight.get(key);
      return new Promise((resolve, reject) => {
        if (entry) return entry.waiters.push({ resolve, reject });
        pending.set(key, { key, item, deadline: Date.now() + cellDeadlineMs, waiters: [{ resolve, reject }] });
        if (!timer) timer = setTimeout(flush, windowMs);
      });
    }

    async function batchLimit(settings) {
      if (maxItems !== null) return maxItems;
      try {
        const info = await client.health(settings, { ...net, deadlineMs: Math.min(deadlineMs, HEALTH_DEADLINE_MS) });
        if (Number.isInteger(info.batch_max_items) && info.batch_max_items > 0) maxItems = info.batch_max_items;
        else maxItems = DEFAULT_MAX_ITEMS;
        return maxItems;
      } catch (_) {
        return DEFAULT_MAX_ITEMS; // not cached: ask again next time; the batch call reports the failure
      }
    }

    async function flush() {
      timer = null;
      const entries = [...pending.values()];
      pending = new Map();
      for (const entry of entries) inFlight.set(entry.key, entry);
      try {
        const settings = getSettings();
        if (!settings.token) {
          entries.forEach((e) => settle(e, makeError("notAvailable", "Set your API token in the FlaskLLM task pane")));
          return;
        }
        const size = await batchLimit(settings);
        for (let i = 0; i < entries.length; i += size) jobs.push({ settings, chunk: entries.slice(i, i + size) });
        pump();
      } catch (err) {
        entries.forEach((e) => settle(e, makeError("notAvailable", err.message || String(err))));
      }
    }

    function pump() {
      while (running < maxConcurrent && jobs.length) {
        const job = jobs.shift();
        running += 1;
        send(job).finally(() => {
          running -= 1;
          pump();
        });
      }
    }

    /** One chunk's request; a 429 is waited out and the chunk resent while its deadline allows. */
    async function send({ settings, chunk }) {
      const deadline = Math.min(...chunk.map((e) => e.deadline));
      for (;;) {
        try {
          const answer = await client.postBatch(
            settings,
            chunk.map((e) => e.item),
            { ...net, deadlineMs },
          );
          chunk.forEach((entry, i) => {
            const row = answer.results[i];
            if (row && row.ok) settle(entry, null, client.rowText(row));
            else settle(entry, rowError(row));
          });
          return;
        } catch (err) {
          const wait = rateLimitWait(err, deadline);
          if (wait !== null) {
            await new Promise((resolve) => setTimeout(resolve, wait));
            continue;
          }
          const code = err instanceof client.ApiError ? err.cellErrorCode : "notAvailable";
          chunk.forEach((entry) => settle(entry, makeError(code, err.message || String(err))));
          return;
        }
      }
    }

    /** Milliseconds to wait before resending after `err`, or null: not a 429, or no time left for it. */
    function rateLimitWait(err, deadline) {
      if (!(err instanceof client.ApiError) || err.kind !== "http" || err.status !== 429) return null;
      const wait = (err.retryAfter ?? DEFAULT_RETRY_AFTER_S) * 1000 + Math.random() * RETRY_JITTER_MS;
      return Date.now() + wait < deadline ? wait : null;
    }

    function rowError(row) {
      const error = (row && row.error) || {};
      const invalid = ["invalid_input", "unsupported_by_provider"].includes(error.code);
      return makeError(invalid ? "invalidValue" : "notAvailable", error.message || "This row failed");
    }

    function settle(entry, error, value) {
      inFlight.delete(entry.key);
      for (const w of entry.waiters) error ? w.reject(error) : w.resolve(value);
    }

    return { call, flush, stats: () => ({ pending: pending.size, inFlight: inFlight.size, queued: jobs.length, running }) };
  }

  let shared = null;

  /**
   * Process a cell's text with the LLM: a summary by default.
   * @customfunction PROCESSEMAIL
   * @param {string} text The e-mail or other text.
   * @param {string} [type] summary, keywords, sentiment, entities, translation or custom.
   * @param {string} [language] Target language as an ISO 639-1 code, e.g. "de".
   * @returns {Promise<string>} The result as text.
   */
  function processEmail(text, type, language) {
    shared = shared || createBatcher();
    return shared.call(text, type, language);
  }

  return { createBatcher, processEmail, cellError, WINDOW_MS, DEFAULT_MAX_ITEMS, MAX_CONCURRENT };
});
