/**
 * The custom functions, under the add-in's namespace (`LLM` by default):
 *
 *   =LLM.PROCESSEMAIL(text, [type], [language])       text
 *   =LLM.PROMPT(instruction, [context], ...)           text: an instruction over any cells or ranges
 *   =LLM.PROMPTWITH(model, instruction, [context], ...) the same with a model of the server's allow-list
 *   =LLM.CLASSIFY(text, labels)                        exactly one of the labels
 *   =LLM.EXTRACT(text, fields)                         a 1 x N row, one cell per field (spills)
 *   =LLM.KEYWORDS(text, [count])                       a 1 x N row (spills)
 *   =LLM.ENTITIES(text)                                an N x 2 array: text, label (spills)
 *
 * Why one batcher for all of them: filling a formula down 5,000 rows makes Excel call it 5,000
 * times at once. Calls arriving within WINDOW_MS are merged into /api/v1/batch requests of at most
 * the server's batch_max_items rows, whatever function made them, and identical calls share one
 * row. Up to MAX_CONCURRENT requests run together: the server runs many provider calls at once,
 * so a 1,000-cell fill-down (10 batches) goes out in one wave. A recalculation asks again and is
 * answered by the server's cache.
 *
 * Why one deadline per cell: a cell waits at most CELL_DEADLINE_MS from the moment Excel called
 * it, whether it sat in the window, in the queue behind busy request slots, in flight or in a
 * 429's Retry-After wait; then it shows #N/A saying so. A queued request does not restart the
 * clock, so 1,000 cells against a server that never answers all settle at one deadline.
 *
 * Why cancelable: Excel cancels a call when its cell is edited, deleted or recalculated before the
 * answer comes. A cancelled call leaves its row; a row nobody waits for any more leaves the window
 * or the queue, and a request whose rows all lost their waiters is aborted.
 *
 * Why /health first: the task list (templates the operator added included), the model allow-list
 * and the limits are the server's (GET /api/v1/health, read once per session); arguments are
 * checked against them before anything is sent, so a wrong one is #VALUE! at once with a message
 * saying what would be right. The built-in list is only for a server /health does not reach.
 *
 * Why a used-up budget is not waited out: a 429 "budget_exceeded" (the token's spending budget for
 * the period is spent) carries a Retry-After of the time until the period resets, often hours.
 * Its cells fail at once (#N/A) with the server's message saying when, instead of resending the
 * chunk or sitting on #BUSY! until their deadline; a row failed with it fails only its cell, the
 * same way. A recalculation after the reset asks again.
 *
 * Why every path ends in resolve or reject: a promise that never settles leaves its cell on #BUSY!
 * for good. Network failures, non-JSON answers, deadlines and cancellation reject with a
 * CustomFunctions.Error carrying a message the user can act on; a failed row fails only its cell.
 *
 * Layout: the documented functions are top-level declarations because Microsoft's generator
 * (`npm run metadata`, custom-functions-metadata) reads functions.json from their JSDoc; the
 * batcher lives in the FlaskLLMFunctions namespace object. The file runs unchanged in Excel's
 * shared runtime (taskpane.html loads it after client.js, which defines FlaskLLMClient; the
 * functions are then registered with CustomFunctions.associate, which a shared runtime needs) and
 * in Node (`require`, for node --test), where `createBatcher` takes every dependency as an option.
 */
"use strict";

const FlaskLLMFunctions = (function (root) {
  /** @type {typeof FlaskLLMClient} */
  const client = typeof module === "object" && module.exports ? require("./client.js") : root.FlaskLLMClient;

  const WINDOW_MS = 75;
  const MAX_CONCURRENT = 16;
  const CELL_DEADLINE_MS = 60000; // from Excel's call to the cell's answer, everything included
  const DEFAULT_RETRY_AFTER_S = 5; // a 429 without Retry-After
  const RETRY_JITTER_MS = 250; // rate-limited chunks that waited together do not return together
  const HEALTH_DEADLINE_MS = 5000;
  const REQUEST_GRACE_MS = 1000; // a request may outlive its cells' deadline by this much, no more
  const MAX_MESSAGE = 250; // Excel shows error messages in a small tooltip
  const MAX_CONTEXT_CELLS = 2000; // PROMPT's context, all ranges together
  const MAX_LABEL_LENGTH = 200;
  const MAX_FIELD_LENGTH = 100;
  const OPTION_FUNCTIONS = { labels: "CLASSIFY(text, labels)", fields: "EXTRACT(text, fields)", instruction: "PROMPT(instruction, context)" };

  /**
   * @typedef {{resolve: (row: any) => void, reject: (err: Error) => void, deadline: number, timer: any, entry: Entry | null, done: boolean}} Waiter
   * @typedef {{key: string, item: Record<string, unknown>, waiters: Set<Waiter>, state: "pending" | "queued" | "sent", chunk: Chunk | null}} Entry
   * @typedef {{settings: Record<string, string>, entries: Entry[], controller: AbortController}} Chunk
   * @typedef {import("./client.js").ServerInfo} ServerInfo
   */

  /** A CustomFunctions.Error where the Excel API exists, a plain Error with `.code` elsewhere. */
  function cellError(code, message) {
    const text = String(message).slice(0, MAX_MESSAGE);
    const cf = root.CustomFunctions;
    if (cf && cf.Error && cf.ErrorCode) return new cf.Error(cf.ErrorCode[code], text);
    return Object.assign(new Error(text), { code });
  }

  /** An argument error: thrown while building a row, it becomes the cell's #VALUE!. */
  class InvalidArgument extends Error {}

  const fmt = (n) => Number(n).toLocaleString("en-US");
  const blank = (value) => value === null || value === undefined || String(value).trim() === "";

  /** Code points, as the server counts a text's length (String.length counts UTF-16 units). */
  function charCount(text) {
    let n = 0;
    for (const _ of text) n += 1;
    return n;
  }

  /**
   * @param {object} [options]
   * @param {number} [options.windowMs]   how long to collect calls before sending
   * @param {number} [options.deadlineMs] per-request deadline
   * @param {number} [options.cellDeadlineMs] how long a cell may wait from its call, all included
   * @param {number} [options.maxConcurrent] requests in flight at once
   * @param {Function} [options.fetch]    fetch implementation (tests inject a fake)
   * @param {() => Record<string, string>} [options.getSettings] read at each call, so
   *   a token saved in the task pane applies to the next calculation without a reload
   * @param {(code: string, message: string) => Error} [options.makeError]
   */
  function createBatcher(options = {}) {
    const windowMs = options.windowMs ?? WINDOW_MS;
    const deadlineMs = options.deadlineMs ?? client.DEADLINE_MS;
    const cellDeadlineMs = options.cellDeadlineMs ?? CELL_DEADLINE_MS;
    const maxConcurrent = options.maxConcurrent ?? MAX_CONCURRENT;
    const getSettings = options.getSettings || (() => client.loadSettings());
    const makeError = options.makeError || cellError;
    const net = { fetch: options.fetch };

    /** @type {Map<string, Entry>} every row not yet answered, by key: identical calls join it */
    const live = new Map();
    /** @type {Set<Entry>} rows collected in the current window */
    let windowed = new Set();
    /** @type {Chunk[]} requests waiting for a free slot */
    const queue = [];
    let timer = null;
    let running = 0;
    /** @type {ServerInfo | null} */
    let info = null; // from /health, once it answers
    /** @type {Promise<ServerInfo> | null} */
    let asking = null;

    /** The server's tasks, models and limits: asked once; the built-ins while /health fails. */
    function serverInfo(settings) {
      if (info) return Promise.resolve(info);
      if (!asking) {
        asking = client
          .health(settings, { ...net, deadlineMs: Math.min(deadlineMs, HEALTH_DEADLINE_MS) })
          .then((answer) => (info = client.serverInfo(answer)))
          .catch(() => client.serverInfo(null)) // not kept: asked again next time
          .finally(() => (asking = null));
      }
      return asking;
    }

    /**
     * One cell's row. `build(info)` makes the row from the call's arguments, or throws
     * InvalidArgument (the cell's #VALUE!). Resolves with the server's ok row; rejects with a
     * cell error: the row's own, the request's, the deadline's or "Cancelled".
     * @param {(info: ServerInfo) => Record<string, unknown>} build
     * @param {CustomFunctions.CancelableInvocation} [invocation]
     */
    function submit(build, invocation) {
      return new Promise((resolve, reject) => {
        /** @type {Waiter} */
        const waiter = { resolve, reject, deadline: Date.now() + cellDeadlineMs, timer: null, entry: null, done: false };
        waiter.timer = setTimeout(() => fail(waiter, makeError("notAvailable", `No answer from the FlaskLLM server within ${Number((cellDeadlineMs / 1000).toFixed(1))} s`)), cellDeadlineMs);
        if (invocation) invocation.onCanceled = () => fail(waiter, makeError("notAvailable", "Cancelled"));
        const settings = getSettings();
        if (!settings.token) return fail(waiter, makeError("notAvailable", "Set your API token in the FlaskLLM task pane"));
        serverInfo(settings)
          .then((known) => waiter.done || join(waiter, build(known)))
          .catch((err) => fail(waiter, makeError(err instanceof InvalidArgument ? "invalidValue" : "notAvailable", err.message || String(err))));
      });
    }

    /** Attach a waiter to the live row with the same key, or start a row in the window. */
    function join(waiter, item) {
      const key = JSON.stringify(item);
      let entry = live.get(key);
      if (!entry) {
        entry = { key, item, waiters: new Set(), state: "pending", chunk: null };
        live.set(key, entry);
        windowed.add(entry);
        if (!timer) timer = setTimeout(flush, windowMs);
      }
      entry.waiters.add(waiter);
      waiter.entry = entry;
    }

    /** Settle one waiter; the row it leaves goes away if nobody else waits for it. */
    function finish(waiter, error, row) {
      if (waiter.done) return;
      waiter.done = true;
      clearTimeout(waiter.timer);
      const entry = waiter.entry;
      if (entry) {
        entry.waiters.delete(waiter);
        if (!entry.waiters.size) abandon(entry);
      }
      if (error) waiter.reject(error);
      else waiter.resolve(row);
    }

    const fail = (waiter, error) => finish(waiter, error);

    /** A row nobody waits for: out of the window or the queue; its request aborted if all its rows are. */
    function abandon(entry) {
      if (live.get(entry.key) === entry) live.delete(entry.key);
      if (entry.state === "pending") windowed.delete(entry);
      const chunk = entry.chunk;
      if (!chunk) return;
      if (entry.state === "queued") {
        chunk.entries = chunk.entries.filter((e) => e !== entry);
        if (!chunk.entries.length) queue.splice(queue.indexOf(chunk), 1);
      } else if (chunk.entries.every((e) => !e.waiters.size)) {
        chunk.controller.abort();
      }
    }

    /** The end of a row: every waiter gets the row or the error. */
    function settle(entry, error, row) {
      if (live.get(entry.key) === entry) live.delete(entry.key);
      for (const waiter of [...entry.waiters]) finish(waiter, error, row);
    }

    function flush() {
      timer = null;
      const entries = [...windowed];
      windowed = new Set();
      if (!entries.length) return;
      const settings = getSettings();
      const size = (info && info.limits.batchMax) || client.FALLBACK_LIMITS.batchMax;
      for (let i = 0; i < entries.length; i += size) {
        const chunk = { settings, entries: entries.slice(i, i + size), controller: new AbortController() };
        for (const entry of chunk.entries) Object.assign(entry, { state: "queued", chunk });
        queue.push(chunk);
      }
      pump();
    }

    function pump() {
      while (running < maxConcurrent && queue.length) {
        const chunk = /** @type {Chunk} */ (queue.shift());
        running += 1;
        send(chunk).finally(() => {
          running -= 1;
          pump();
        });
      }
    }

    /** The latest deadline of the chunk's waiters: the request is worth making until then. */
    function chunkDeadline(chunk) {
      let latest = 0;
      for (const entry of chunk.entries) for (const w of entry.waiters) latest = Math.max(latest, w.deadline);
      return latest;
    }

    /** One chunk's request; a 429 is waited out and the chunk resent while a waiter's deadline allows. */
    async function send(chunk) {
      for (const entry of chunk.entries) entry.state = "sent";
      const signal = chunk.controller.signal;
      for (;;) {
        chunk.entries = chunk.entries.filter((e) => e.waiters.size); // a resend skips rows nobody waits for
        const budget = chunkDeadline(chunk) - Date.now();
        if (signal.aborted || budget <= 0) return; // nobody waits: their own deadlines settled them
        try {
          const items = chunk.entries.map((e) => e.item);
          // A request outliving its last waiter is aborted by that waiter's deadline; the cap is a backstop.
          const answer = await client.postBatch(chunk.settings, items, { ...net, signal, deadlineMs: Math.min(deadlineMs, budget + REQUEST_GRACE_MS) });
          chunk.entries.forEach((entry, i) => {
            const row = answer.results[i];
            if (row && row.ok) settle(entry, null, row);
            else settle(entry, rowError(row));
          });
          return;
        } catch (err) {
          if (signal.aborted) return;
          const wait = rateLimitWait(err, chunkDeadline(chunk));
          if (wait !== null) {
            await sleep(wait, signal);
            continue;
          }
          const code = err instanceof client.ApiError ? err.cellErrorCode : "notAvailable";
          chunk.entries.forEach((entry) => settle(entry, makeError(code, err.message || String(err))));
          return;
        }
      }
    }

    /** Milliseconds to wait before resending after `err`, or null: not a 429, a used-up budget, or no time left for it. */
    function rateLimitWait(err, deadline) {
      if (!(err instanceof client.ApiError) || err.kind !== "http" || err.status !== 429 || err.budgetExceeded) return null;
      const wait = (err.retryAfter ?? DEFAULT_RETRY_AFTER_S) * 1000 + Math.random() * RETRY_JITTER_MS;
      return Date.now() + wait < deadline ? wait : null;
    }

    function rowError(row) {
      const error = (row && row.error) || {};
      const invalid = ["invalid_input", "unsupported_by_provider"].includes(error.code);
      return makeError(invalid ? "invalidValue" : "notAvailable", error.message || "This row failed");
    }

    const surface = createSurface(submit, makeError);
    const stats = () => ({ pending: windowed.size, inFlight: live.size - windowed.size, queued: queue.length, running });
    return { ...surface, submit, flush, stats, serverInfo: () => serverInfo(getSettings()) };
  }

  /** setTimeout as a promise that also ends when `signal` aborts. */
  function sleep(ms, signal) {
    return new Promise((resolve) => {
      const onAbort = () => (clearTimeout(handle), resolve(undefined));
      const handle = setTimeout(() => (signal.removeEventListener("abort", onAbort), resolve(undefined)), ms);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  // ----- The functions: arguments -> a /batch row -> the cell's value ------------------------

  /**
   * The seven functions over a batcher's `submit`. Each checks its arguments against the server's
   * /health (unknown type, model outside the allow-list, too many labels, a context too big) and
   * shapes the row's result into what the cell shows.
   */
  function createSurface(submit, makeError) {
    const reject = (message) => Promise.reject(makeError("invalidValue", message));

    function processEmail(text, type, language, invocation) {
      if (blank(text)) return Promise.resolve("");
      const build = (info) => {
        const item = { prompt: checkedText(info, text, "The text"), type: taskName(info, type) };
        if (!blank(language)) item.language = String(language).trim().toLowerCase();
        return item;
      };
      return submit(build, invocation).then(client.rowText);
    }

    function promptWith(model, instruction, context, invocation) {
      if (blank(instruction)) return Promise.resolve("");
      const build = (info) => {
        const item = { type: "prompt", instruction: checkedText(info, instruction, "The instruction"), prompt: checkedText(info, contextText(context), "The context, written out as tables,") };
        if (model !== undefined) item.model = modelName(info, model);
        return item;
      };
      return submit(build, invocation).then(client.rowText);
    }

    function classify(text, labels, invocation) {
      let names;
      try {
        names = nameList(labels, "labels", 2, MAX_LABEL_LENGTH);
      } catch (err) {
        return reject(err.message);
      }
      if (blank(text)) return Promise.resolve("");
      const build = (info) => ({ type: "classify", prompt: checkedText(info, text, "The text"), labels: capped(names, info.limits.maxLabels, "labels") });
      // The server validates the answer: an ok row's result is one of the labels as sent.
      return submit(build, invocation).then(client.rowText);
    }

    function extract(text, fields, invocation) {
      let names;
      try {
        names = nameList(fields, "fields", 1, MAX_FIELD_LENGTH);
      } catch (err) {
        return reject(err.message);
      }
      if (blank(text)) return Promise.resolve([names.map(() => "")]);
      const build = (info) => ({ type: "extract", prompt: checkedText(info, text, "The text"), fields: capped(names, info.limits.maxFields, "fields") });
      // The server sends every field, keyed as sent (names normalised as nameList does), as text.
      return submit(build, invocation).then((row) => [names.map((name) => cellText(row.result && row.result[name]))]);
    }

    function keywords(text, count, invocation) {
      let n = null;
      if (!blank(count)) {
        n = Number(count);
        if (!Number.isInteger(n) || n < 1) return reject(`count must be a whole number of at least 1, not "${count}"`);
      }
      if (blank(text)) return Promise.resolve([[""]]);
      const build = (info) => {
        const item = { type: "keywords", prompt: checkedText(info, text, "The text") };
        if (n !== null) item.count = n <= info.limits.maxCount ? n : invalid(`count: this server gives at most ${info.limits.maxCount} keywords`);
        return item;
      };
      return submit(build, invocation).then((row) => {
        const list = Array.isArray(row.result) ? row.result.map(cellText) : client.rowText(row).split(/\s*,\s*/);
        const words = list.filter((w) => w !== "");
        return [words.length ? words : [""]];
      });
    }

    function entities(text, invocation) {
      if (blank(text)) return Promise.resolve([["", ""]]);
      const build = (info) => ({ type: "entities", prompt: checkedText(info, text, "The text") });
      return submit(build, invocation).then((row) => {
        const list = Array.isArray(row.result) ? row.result : [];
        const rows = list.map((e) => (e && typeof e === "object" ? [cellText(e.text), cellText(e.label)] : [cellText(e), ""]));
        return rows.length ? rows : [["", ""]];
      });
    }

    return {
      processEmail,
      prompt: (instruction, context, invocation) => promptWith(undefined, instruction, context, invocation),
      promptWith,
      classify,
      extract,
      keywords,
      entities,
    };
  }

  /** @returns {never} */
  function invalid(message) {
    throw new InvalidArgument(message);
  }

  /** A cell's value as the text sent, checked against the server's max_prompt_length. */
  function checkedText(info, value, what) {
    const text = String(value ?? "");
    const max = info.limits.maxPromptLength;
    if (text.length > max && charCount(text) > max) {
      invalid(`${what} is ${fmt(charCount(text))} characters; this server takes at most ${fmt(max)}`);
    }
    return text;
  }

  /** PROCESSEMAIL's type: one of the server's tasks that needs nothing PROCESSEMAIL cannot give. */
  function taskName(info, type) {
    const name = blank(type) ? "summary" : String(type).trim().toLowerCase();
    const task = info.tasks.find((t) => t.name === name);
    if (!task) invalid(`Unknown type "${type}": use one of ${info.tasks.map((t) => t.name).join(", ")}`);
    const missing = task.needs.find((need) => OPTION_FUNCTIONS[need]);
    if (missing) invalid(`Type "${name}" needs ${missing}: use ${OPTION_FUNCTIONS[missing]}`);
    return name;
  }

  /** PROMPTWITH's model: one of the server's allow-list, when the server says which. */
  function modelName(info, model) {
    const name = blank(model) ? "" : String(model).trim();
    if (info.models.length && !info.models.includes(name)) invalid(`model: must be one of ${info.models.join(", ")}`);
    if (!name) invalid("model: name the model to use");
    return name;
  }

  /** Labels or fields from a range or "a,b,c": at least `least`, each at most `longest` characters. */
  function nameList(value, what, least, longest) {
    const names = client.parseList(value);
    if (names.length < least) invalid(`Give at least ${least} ${what} (a range, or "a,b,c"); got ${names.length}`);
    const long = names.find((n) => charCount(n) > longest);
    if (long !== undefined) invalid(`${what}: "${long.slice(0, 30)}…" is longer than ${longest} characters`);
    return names;
  }

  function capped(names, max, what) {
    return names.length <= max ? names : invalid(`${names.length} ${what}; this server takes at most ${max}`);
  }

  /** Text for a spilled cell: Excel takes strings; null and missing values are empty. */
  function cellText(value) {
    if (value === null || value === undefined) return "";
    return typeof value === "object" ? JSON.stringify(value) : String(value);
  }

  // ----- PROMPT's context: cells and ranges as labelled tab-separated tables -----------------

  /**
   * PROMPT's repeating context argument as the text the model reads: each argument labelled
   * ("Context 1", "Context 2", ...), a single cell as its value, a range as a tab-separated table
   * whose first row is the range's first row (the headers, as given) and whose empty cells stay
   * empty. Empty rows at the end of a range are left out (they say nothing); any other cut would
   * change the question, so more than MAX_CONTEXT_CELLS cells is an error instead.
   * @param {unknown} context Excel's value for a repeating matrix parameter: one 2-D array per argument
   */
  function contextText(context) {
    const grids = contextGrids(context);
    const cells = grids.reduce((n, g) => n + g.length * (g[0] ? g[0].length : 0), 0);
    if (cells > MAX_CONTEXT_CELLS) invalid(`The context has ${fmt(cells)} cells; PROMPT takes at most ${fmt(MAX_CONTEXT_CELLS)}`);
    const several = grids.length > 1;
    return grids
      .map((grid, i) => {
        const label = several ? `Context ${i + 1}` : "Context";
        if (grid.length === 1 && grid[0].length === 1) return `${label}: ${tableCell(grid[0][0])}`;
        const shape = `${grid.length} rows x ${grid[0].length} columns, tab-separated, first row = column headers`;
        return `${label} (${shape}):\n${grid.map((row) => row.map(tableCell).join("\t")).join("\n")}`;
      })
      .join("\n\n");
  }

  /** The non-empty arguments as rectangular grids, trailing empty rows dropped. */
  function contextGrids(context) {
    if (context === null || context === undefined) return [];
    const args = Array.isArray(context) ? context : [context];
    const grids = [];
    for (const arg of args) {
      let grid = !Array.isArray(arg) ? [[arg]] : arg.map((row) => (Array.isArray(row) ? row : [row]));
      while (grid.length && grid[grid.length - 1].every(blankCell)) grid = grid.slice(0, -1);
      if (!grid.length) continue;
      const width = Math.max(...grid.map((row) => row.length));
      grids.push(grid.map((row) => Array.from({ length: width }, (_, j) => row[j])));
    }
    return grids;
  }

  const blankCell = (v) => v === null || v === undefined || v === "";

  /** A cell in the table: booleans as Excel writes them; a text with tabs or line breaks as a JSON string. */
  function tableCell(value) {
    if (blankCell(value)) return "";
    if (typeof value === "boolean") return value ? "TRUE" : "FALSE";
    const text = String(value);
    return /[\t\r\n]|^"/.test(text) ? JSON.stringify(text) : text;
  }

  let shared = null;

  /** The one batcher every cell of this runtime goes through. */
  function sharedBatcher() {
    shared = shared || createBatcher();
    return shared;
  }

  return { createBatcher, sharedBatcher, contextText, cellError, WINDOW_MS, MAX_CONCURRENT, CELL_DEADLINE_MS, MAX_CONTEXT_CELLS };
})(globalThis);

/**
 * Runs a cell's text through the LLM on your FlaskLLM server: a summary by default, or keywords, sentiment, entities, a translation, a custom task or a template of the server.
 * @customfunction PROCESSEMAIL
 * @cancelable
 * @param {any} text The e-mail or other text to process (usually a cell such as A2). An empty cell gives an empty result.
 * @param {string} [type] summary (default), keywords, sentiment, entities, translation, custom, or a template the server lists.
 * @param {string} [language] Target language as an ISO 639-1 code such as "de" or "fr"; needed for translation.
 * @param {CustomFunctions.CancelableInvocation} [invocation] Given by Excel: tells the function when Excel cancels the call.
 * @returns {Promise<string>} The result as text.
 */
function processEmail(text, type, language, invocation) {
  return FlaskLLMFunctions.sharedBatcher().processEmail(text, type, language, invocation);
}

/**
 * Ask the LLM anything about any cells or ranges: each range is sent as a table, headers included.
 * @customfunction PROMPT
 * @cancelable
 * @param {any} instruction What to do, e.g. "Which region grew most? One word."
 * @param {any[][][]} [context] Cells or ranges the instruction is about (at most 2,000 cells in all).
 * @param {CustomFunctions.CancelableInvocation} [invocation] Given by Excel: tells the function when Excel cancels the call.
 * @returns {Promise<string>} The answer as text.
 */
function llmPrompt(instruction, context, invocation) {
  return FlaskLLMFunctions.sharedBatcher().prompt(instruction, context, invocation);
}

/**
 * PROMPT with a model chosen from the server's allow-list.
 * @customfunction PROMPTWITH
 * @cancelable
 * @param {string} model A model the server allows, e.g. "gpt-4o-mini".
 * @param {any} instruction What to do.
 * @param {any[][][]} [context] Cells or ranges the instruction is about (at most 2,000 cells in all).
 * @param {CustomFunctions.CancelableInvocation} [invocation] Given by Excel: tells the function when Excel cancels the call.
 * @returns {Promise<string>} The answer as text.
 */
function llmPromptWith(model, instruction, context, invocation) {
  return FlaskLLMFunctions.sharedBatcher().promptWith(model, instruction, context, invocation);
}

/**
 * Classify a text: the answer is exactly one of the labels.
 * @customfunction CLASSIFY
 * @cancelable
 * @param {any} text The text to classify.
 * @param {any[][]} labels A range of labels, or one text such as "billing,shipping,other".
 * @param {CustomFunctions.CancelableInvocation} [invocation] Given by Excel: tells the function when Excel cancels the call.
 * @returns {Promise<string>} One of the labels.
 */
function llmClassify(text, labels, invocation) {
  return FlaskLLMFunctions.sharedBatcher().classify(text, labels, invocation);
}

/**
 * Extract fields from a text into a row, one cell per field ("" when the text has no value).
 * @customfunction EXTRACT
 * @cancelable
 * @param {any} text The text to read.
 * @param {any[][]} fields A range of field names, or one text such as "name,amount,date".
 * @param {CustomFunctions.CancelableInvocation} [invocation] Given by Excel: tells the function when Excel cancels the call.
 * @returns {Promise<string[][]>} A row with one value per field, in the fields' order.
 */
function llmExtract(text, fields, invocation) {
  return FlaskLLMFunctions.sharedBatcher().extract(text, fields, invocation);
}

/**
 * The keywords of a text, one per cell in a row.
 * @customfunction KEYWORDS
 * @cancelable
 * @param {any} text The text.
 * @param {number} [count] How many keywords at most (the server's default if omitted).
 * @param {CustomFunctions.CancelableInvocation} [invocation] Given by Excel: tells the function when Excel cancels the call.
 * @returns {Promise<string[][]>} A row of keywords.
 */
function llmKeywords(text, count, invocation) {
  return FlaskLLMFunctions.sharedBatcher().keywords(text, count, invocation);
}

/**
 * The named entities of a text: one row per entity, its text and its label.
 * @customfunction ENTITIES
 * @cancelable
 * @param {any} text The text.
 * @param {CustomFunctions.CancelableInvocation} [invocation] Given by Excel: tells the function when Excel cancels the call.
 * @returns {Promise<string[][]>} Rows of entity text and label.
 */
function llmEntities(text, invocation) {
  return FlaskLLMFunctions.sharedBatcher().entities(text, invocation);
}

/** The functions by the ids functions.json gives them. */
const FLASKLLM_FUNCTIONS = {
  PROCESSEMAIL: processEmail,
  PROMPT: llmPrompt,
  PROMPTWITH: llmPromptWith,
  CLASSIFY: llmClassify,
  EXTRACT: llmExtract,
  KEYWORDS: llmKeywords,
  ENTITIES: llmEntities,
};

if (typeof CustomFunctions !== "undefined" && CustomFunctions.associate) {
  for (const [id, fn] of Object.entries(FLASKLLM_FUNCTIONS)) CustomFunctions.associate(id, fn);
}

if (typeof module === "object" && module.exports) {
  module.exports = { ...FlaskLLMFunctions, functions: FLASKLLM_FUNCTIONS };
}
