/**
 * FlaskLLM client, shared by the task pane and the custom functions (PROCESSEMAIL, PROMPT, ...).
 *
 * - Settings (backend URL, API token, task choices) live in localStorage under a key prefixed with
 *   `Office.context.partitionKey`, per Office's guidance for add-in storage: per user and never in
 *   the workbook, so a shared file never leaks a token. Custom functions and the pane run in one
 *   shared runtime, so both read the same storage.
 * - Every request has a deadline (AbortController): a fetch inside Excel dies after about 60 s and a
 *   cell must never wait forever.
 * - Every failure becomes an `ApiError` whose message a spreadsheet user can act on.
 * - What the server can do (its tasks, models and limits) comes from GET /api/v1/health, read by
 *   `serverInfo` into one shape with built-in fallbacks, so the pane and the functions offer a
 *   task the operator added without a new kit, and still work when /health is unreachable.
 * - Large runs go through durable jobs (POST/GET/DELETE /api/v1/jobs): `postJob` with an
 *   Idempotency-Key (see `idempotencyKey`) so a retried or re-run submission attaches to the job
 *   it already made instead of paying twice.
 * - Before a run, `estimate` sends the very body the run would send (POST /api/v1/estimate; the
 *   server never calls the LLM for it) and reads back rows, cached, to run, tokens, cost, time,
 *   the token's budget and whether to ask the user first. An older server without the endpoint
 *   (404/405) gives null: the run goes on without an estimate rather than failing.
 * - "budget_exceeded" (the token's spending budget is used up; a 429 for a whole request, or a
 *   row's error) is never waited out like a rate limit: its Retry-After is the time until the
 *   budget period resets, often hours. It fails with the server's message saying when.
 *
 * Plain script, no build: in a page it defines `FlaskLLMClient`; in Node it is a CommonJS module.
 */
/**
 * What GET /api/v1/health says the server can do, as `serverInfo` reads it.
 * @typedef {{name: string, result: string, needs: string[], takes: string[], supported: boolean}} ServerTask
 * @typedef {{maxPromptLength: number, batchMax: number, jobMax: number, maxLabels: number, maxFields: number, maxCount: number}} ServerLimits
 * @typedef {{known: boolean, provider: string, tasks: ServerTask[], models: string[], defaultModel: string, limits: ServerLimits}} ServerInfo
 */
/**
 * What POST /api/v1/estimate says a run would cost, as `estimate` reads it (camelCase of the
 * server's fields; a missing or malformed count is 0, an unknown cost or time is null).
 * @typedef {{limitUsd: number | null, spentUsd: number | null, remainingUsd: number | null, period: string, resetsAt: string}} Budget
 * @typedef {{rows: number, invalid: number, cached: number, toRun: number, inputTokens: number, outputTokens: number, costUsd: number | null, seconds: number | null, provider: string, model: string, confirm: boolean, budget: Budget | null}} Estimate
 */
(function (root, factory) {
  const api = factory(root);
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.FlaskLLMClient = api;
})(globalThis, function (root) {
  "use strict";

  const DEADLINE_MS = 45000; // well under Excel's ~60 s fetch limit
  /**
   * What a server that does not answer /health is assumed to offer: the built-in tasks, with
   * the options each needs and takes. A server's own list (its PROMPT_TEMPLATES included) wins.
   * @type {ServerTask[]}
   */
  const FALLBACK_TASKS = [
    task("summary", "text"),
    task("keywords", "string_list", [], ["count"]),
    task("sentiment", "sentiment"),
    task("entities", "entity_list"),
    task("translation", "text", ["language"], ["language"]),
    task("custom", "text", [], ["instruction"]),
    task("classify", "label", ["labels"], ["labels"]),
    task("extract", "record", ["fields"], ["fields"]),
    task("prompt", "text", ["instruction"], ["instruction"]),
  ];
  const TASK_TYPES = FALLBACK_TASKS.map((t) => t.name);
  /** The server's limits when /health does not give them (the shipped defaults). */
  const FALLBACK_LIMITS = { maxPromptLength: 4000, batchMax: 100, jobMax: 5000, maxLabels: 50, maxFields: 20, maxCount: 50 };
  const BUDGET_EXCEEDED = "budget_exceeded"; // the error code of a used-up spending budget
  const STORAGE_SUFFIX = "flaskllm.settings";
  const SETTING_NAMES = ["backendUrl", "token", "type", "language", "instruction", "labels", "fields", "count", "model"];

  /** @returns {ServerTask} */
  function task(name, result, needs = [], takes = needs) {
    return { name, result, needs, takes, supported: true };
  }

  /** The server root this script was loaded from: `<root>/addin/client.js` -> `<root>`. */
  function scriptBackendUrl() {
    const doc = root.document;
    const src = doc && doc.currentScript && doc.currentScript.src;
    if (src) return src.replace(/\/addin\/[^/]*$/, "");
    return root.location && root.location.origin && root.location.origin !== "null" ? root.location.origin : "";
  }
  const LOADED_FROM = scriptBackendUrl();

  class ApiError extends Error {
    /**
     * @param {string} message what the user should read
     * @param {{kind: string, status?: number, code?: string, retryAfter?: number}} info
     *   kind: network | timeout | cancelled | http | format
     */
    constructor(message, info) {
      super(message);
      this.name = "ApiError";
      /** @type {string} */
      this.kind = info.kind;
      /** @type {number} */
      this.status = info.status ?? 0;
      /** @type {string} */
      this.code = info.code ?? "";
      /** @type {number | null} */
      this.retryAfter = info.retryAfter ?? null;
    }

    /** The token's spending budget is used up: not worth retrying before `retryAfter` seconds. */
    get budgetExceeded() {
      return this.code === BUDGET_EXCEEDED;
    }

    /** The CustomFunctions.ErrorCode name for a cell: the input is wrong, or the service is. */
    get cellErrorCode() {
      return this.kind === "http" && [400, 413, 415].includes(this.status) ? "invalidValue" : "notAvailable";
    }
  }

  function storageKey() {
    const office = root.Office;
    const partition = office && office.context && office.context.partitionKey;
    return (partition || "") + STORAGE_SUFFIX;
  }

  /**
   * The pane's form as strings; labels and fields as typed (see `parseList`), count as digits.
   * @returns {Record<string, string>}
   */
  function defaultSettings() {
    const settings = Object.fromEntries(SETTING_NAMES.map((name) => [name, ""]));
    return { ...settings, backendUrl: LOADED_FROM, type: "summary" };
  }

  /** Settings from storage over the defaults; unreadable storage (private mode) gives defaults. */
  function loadSettings(storage = root.localStorage) {
    const settings = defaultSettings();
    try {
      const saved = JSON.parse((storage && storage.getItem(storageKey())) || "{}");
      for (const key of Object.keys(settings)) {
        if (typeof saved[key] === "string" && saved[key] !== "") settings[key] = saved[key];
      }
    } catch (_) {
      /* corrupt or forbidden storage: defaults are the honest answer */
    }
    settings.backendUrl = normaliseUrl(settings.backendUrl);
    return settings;
  }

  function saveSettings(settings, storage = root.localStorage) {
    const clean = { ...defaultSettings(), ...settings };
    clean.backendUrl = normaliseUrl(clean.backendUrl);
    storage.setItem(storageKey(), JSON.stringify(clean));
    return clean;
  }

  function normaliseUrl(url) {
    return String(url || "").trim().replace(/\/+$/, "");
  }

  /** Seconds from a Retry-After header (delta-seconds or an HTTP date), or null. */
  function parseRetryAfter(value, now = Date.now()) {
    if (!value) return null;
    if (/^\d+$/.test(value.trim())) return Number(value.trim());
    const date = Date.parse(value);
    return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - now) / 1000));
  }

  /** The sentence a user reads for an HTTP error `status` with the server's JSON `body` (or null). */
  function describeHttpError(status, body, retryAfter) {
    const error = (body && body.error) || {};
    const said = typeof error.message === "string" ? error.message : "";
    if (error.code === BUDGET_EXCEEDED) {
      // The server's message says when the budget resets; without one, Retry-After does.
      if (said) return said;
      return retryAfter === null ? "The API token's budget is used up" : `The API token's budget is used up: it resets in ${waitText(retryAfter)}`;
    }
    switch (status) {
      case 400:
      case 415:
        return said || `The server refused the request (HTTP ${status})`;
      case 401:
        return "Set your API token in the FlaskLLM task pane";
      case 404:
        return "No FlaskLLM API at this address: check the backend URL in the task pane";
      case 409:
        return said || "The server already has a different job under this Idempotency-Key";
      case 413:
        return `Too much text in one request: ${said || "the server refused its size"}`;
      case 429:
        return retryAfter === null ? "Rate limited, retry later" : `Rate limited, retry in ${retryAfter} s`;
      case 502:
        return `The LLM provider failed: ${said || "bad gateway"}`;
      case 504:
        return `The LLM provider timed out: ${said || "try again, or with shorter text"}`;
      default: {
        const id = body && body.request_id ? ` (request ${body.request_id})` : "";
        return status >= 500 ? `FlaskLLM server error${id}` : `The server answered HTTP ${status}${id}`;
      }
    }
  }

  /** Seconds as "40 s", "3 min", "5 h 20 min". */
  function waitText(seconds) {
    if (seconds < 60) return `${Math.round(seconds)} s`;
    if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
    return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
  }

  /**
   * One JSON request with a deadline. Resolves with {status, body} for a 2xx answer whose body is a
   * JSON object; rejects with an ApiError otherwise (never with anything else, and never hangs past
   * `deadlineMs`). `headers` adds request headers (e.g. Idempotency-Key).
   */
  async function request(baseUrl, path, options = {}) {
    const { method = "GET", token, body, signal, deadlineMs = DEADLINE_MS } = options;
    const fetch = options.fetch || ((...args) => root.fetch(...args)); // late-bound: tests may swap it
    const base = normaliseUrl(baseUrl);
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, deadlineMs);
    const onCancel = () => controller.abort();
    if (signal) {
      if (signal.aborted) controller.abort();
      else signal.addEventListener("abort", onCancel, { once: true });
    }
    const headers = { Accept: "application/json", ...(options.headers || {}) };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers["X-API-Token"] = token;
    try {
      let response, text;
      try {
        response = await fetch(base + path, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: controller.signal,
        });
        text = await response.text();
      } catch (err) {
        if (timedOut) {
          throw new ApiError(`The FlaskLLM server did not answer within ${Math.round(deadlineMs / 1000)} s`, {
            kind: "timeout",
          });
        }
        if (signal && signal.aborted) throw new ApiError("Cancelled", { kind: "cancelled" });
        throw new ApiError(`Cannot reach the FlaskLLM server at ${base || "(no backend URL set)"}`, {
          kind: "network",
        });
      }
      let parsed = null;
      try {
        parsed = JSON.parse(text);
      } catch (_) {
        parsed = null;
      }
      if (!response.ok) {
        const retryAfter = parseRetryAfter(response.headers.get("Retry-After"));
        const code = parsed && parsed.error && parsed.error.code;
        throw new ApiError(describeHttpError(response.status, parsed, retryAfter), {
          kind: "http",
          status: response.status,
          code: code || "",
          retryAfter,
        });
      }
      if (parsed === null || typeof parsed !== "object") {
        throw new ApiError("The server did not answer with JSON: check the backend URL in the task pane", {
          kind: "format",
          status: response.status,
        });
      }
      return { status: response.status, body: parsed };
    } finally {
      clearTimeout(timer);
      if (signal) signal.removeEventListener("abort", onCancel);
    }
  }

  /** `request` for callers that only need the parsed body. */
  async function requestJson(baseUrl, path, options = {}) {
    return (await request(baseUrl, path, options)).body;
  }

  /**
   * POST /api/v1/batch; resolves with the body once it has a `results` array of the right length.
   * `options.defaults` (task options every row takes unless it has its own) travels as the
   * envelope's `defaults`, so 20 rows of one CLASSIFY do not carry the labels 20 times.
   */
  async function postBatch(settings, items, options = {}) {
    const { defaults, ...rest } = options;
    const body = defaults ? { items, defaults } : { items };
    const answer = await requestJson(settings.backendUrl, "/api/v1/batch", {
      ...rest,
      method: "POST",
      token: settings.token,
      body,
    });
    if (!Array.isArray(answer.results) || answer.results.length !== items.length) {
      throw new ApiError("The server's batch answer does not match the request", { kind: "format" });
    }
    return answer;
  }

  const count = (n) => (typeof n === "number" && Number.isFinite(n) && n >= 0 ? n : 0);
  const amount = (n) => (typeof n === "number" && Number.isFinite(n) && n >= 0 ? n : null);
  const text = (v) => (typeof v === "string" ? v : "");

  /**
   * An /estimate answer's `estimate` as an Estimate. `confirm` is true only when the server says so.
   * @param {any} raw
   * @returns {Estimate}
   */
  function readEstimate(raw) {
    const b = raw.budget && typeof raw.budget === "object" ? raw.budget : null;
    return {
      rows: count(raw.rows),
      invalid: count(raw.invalid),
      cached: count(raw.cached),
      toRun: count(raw.to_run),
      inputTokens: count(raw.input_tokens),
      outputTokens: count(raw.output_tokens),
      costUsd: amount(raw.cost_usd),
      seconds: amount(raw.seconds),
      provider: text(raw.provider),
      model: text(raw.model),
      confirm: raw.confirm === true,
      budget: b && { limitUsd: amount(b.limit_usd), spentUsd: amount(b.spent_usd), remainingUsd: amount(b.remaining_usd), period: text(b.period), resetsAt: text(b.resets_at) },
    };
  }

  /**
   * POST /api/v1/estimate with exactly the body the run would send to /jobs or /batch ({items,
   * defaults}); nothing is run. Resolves with the Estimate, or null when the server has no such
   * endpoint (404 or 405: an older server, and the run goes on without an estimate). Every other
   * failure rejects with an ApiError, within `options.deadlineMs` like every request.
   * @param {Record<string, string>} settings
   * @param {object[]} items rows as for /batch and /jobs
   * @param {object | undefined} defaults the envelope's defaults, as the run sends them
   * @param {{signal?: AbortSignal, deadlineMs?: number, fetch?: Function}} [options]
   * @returns {Promise<Estimate | null>}
   */
  async function estimate(settings, items, defaults, options = {}) {
    const body = defaults ? { items, defaults } : { items };
    let answer;
    try {
      answer = await requestJson(settings.backendUrl, "/api/v1/estimate", { ...options, method: "POST", token: settings.token, body });
    } catch (err) {
      if (err instanceof ApiError && err.kind === "http" && (err.status === 404 || err.status === 405)) return null;
      throw err;
    }
    if (!answer.estimate || typeof answer.estimate !== "object") {
      throw new ApiError("The server's estimate answer has no estimate in it", { kind: "format" });
    }
    return readEstimate(answer.estimate);
  }

  /**
   * One Estimate for a run sent as several requests (a selection over job_max_items rows is one
   * job per part, one estimate each): counts, tokens and time add up (the parts run one after
   * another); the cost is unknown if any part's is; the budget is the latest answer's. It asks
   * first if any part asks, or if the total costs more than the budget has left.
   * @param {Estimate[]} parts at least one
   * @returns {Estimate}
   */
  function combineEstimates(parts) {
    const sum = (key) => parts.reduce((n, e) => n + e[key], 0);
    const costs = parts.map((e) => e.costUsd);
    const costUsd = costs.every((c) => c !== null) ? sum("costUsd") : null;
    const times = parts.map((e) => e.seconds);
    const budget = [...parts].reverse().map((e) => e.budget).find((b) => b) || null;
    const overBudget = Boolean(budget && budget.remainingUsd !== null && costUsd !== null && costUsd > budget.remainingUsd);
    return {
      rows: sum("rows"),
      invalid: sum("invalid"),
      cached: sum("cached"),
      toRun: sum("toRun"),
      inputTokens: sum("inputTokens"),
      outputTokens: sum("outputTokens"),
      costUsd,
      seconds: times.every((t) => t !== null) ? sum("seconds") : null,
      provider: parts[0].provider,
      model: parts[0].model,
      confirm: parts.some((e) => e.confirm) || overBudget,
      budget,
    };
  }

  /** A /batch or job result row that failed because the token's budget is used up. */
  function isBudgetRow(row) {
    return Boolean(row && !row.ok && row.error && row.error.code === BUDGET_EXCEEDED);
  }

  function health(settings, options = {}) {
    return requestJson(settings.backendUrl, "/api/v1/health", options);
  }

  const positive = (n, fallback) => (Number.isInteger(n) && n > 0 ? n : fallback);
  const strings = (list) => (Array.isArray(list) ? list.filter((x) => typeof x === "string" && x !== "") : []);

  /**
   * A /health answer (or null when there was none) as the one shape the pane and the functions
   * use. Missing or malformed parts fall back to the built-ins; `known` says whether the task
   * list is the server's own.
   * @param {any} answer
   * @returns {ServerInfo}
   */
  function serverInfo(answer) {
    const body = answer && typeof answer === "object" ? answer : {};
    const served = Array.isArray(body.tasks) ? body.tasks.filter((t) => t && typeof t.name === "string" && t.name) : [];
    const tasks = served.length
      ? served.map((t) => ({ name: t.name, result: String(t.result || "text"), needs: strings(t.needs), takes: strings(t.takes), supported: t.supported !== false }))
      : FALLBACK_TASKS.map((t) => ({ ...t }));
    const models = strings(body.models);
    const limits = body.limits && typeof body.limits === "object" ? body.limits : {};
    const F = FALLBACK_LIMITS;
    return {
      known: served.length > 0,
      provider: typeof body.provider === "string" ? body.provider : "",
      tasks,
      models,
      defaultModel: typeof body.default_model === "string" ? body.default_model : models[0] || "",
      limits: {
        maxPromptLength: positive(limits.max_prompt_length, F.maxPromptLength),
        batchMax: positive(limits.batch_max_items ?? body.batch_max_items, F.batchMax),
        jobMax: positive(limits.job_max_items ?? body.job_max_items, F.jobMax),
        maxLabels: positive(limits.max_labels, F.maxLabels),
        maxFields: positive(limits.max_fields, F.maxFields),
        maxCount: positive(limits.max_count, F.maxCount),
      },
    };
  }

  /**
   * A list of names (CLASSIFY's labels, EXTRACT's fields) from a range's values or from one text.
   * A range of several filled cells is one name per cell (a label may hold a comma); one text (or
   * a range with one filled cell) is one name per line if it has line breaks, else
   * comma-separated. Each name is trimmed with inner whitespace collapsed, empty ones are dropped
   * and repeats (ignoring case) kept once: the server normalises the same way, so the cache key
   * and the answer's spelling match.
   * @param {unknown} value a string, a number, or a 2-D array of cell values
   * @returns {string[]}
   */
  function parseList(value) {
    const cells = (Array.isArray(value) ? value.flat(2) : [value]).filter((c) => c !== null && c !== undefined && String(c).trim() !== "");
    const parts = [];
    if (cells.length === 1) {
      const text = String(cells[0]);
      parts.push(...(/[\r\n]/.test(text) ? text.split(/\r?\n|\r/) : text.split(",")));
    } else {
      parts.push(...cells.map(String));
    }
    const names = new Map();
    for (const part of parts) {
      const name = part.split(/\s+/).filter(Boolean).join(" ");
      if (name && !names.has(name.toLowerCase())) names.set(name.toLowerCase(), name);
    }
    return [...names.values()];
  }

  /** A job answer must carry a job with an id; anything else is a server we do not understand. */
  function jobOf(answer) {
    const job = answer && answer.job;
    if (!job || typeof job !== "object" || (typeof job.id !== "string" && typeof job.id !== "number")) {
      throw new ApiError("The server's job answer has no job in it", { kind: "format" });
    }
    return job;
  }

  /**
   * A 404 on a job URL means "no such job for this token" (expired, another token's, or a server
   * that lost it), not "wrong backend URL": say so, keeping the status for callers that branch on it.
   */
  async function jobRequest(settings, path, options) {
    try {
      return await request(settings.backendUrl, path, { ...options, token: settings.token });
    } catch (err) {
      if (err instanceof ApiError && err.kind === "http" && err.status === 404) {
        throw new ApiError("This job is not on the server any more (or was started with another API token)", {
          kind: "http",
          status: 404,
          code: err.code || "not_found",
        });
      }
      throw err;
    }
  }

  function jobPath(id) {
    return `/api/v1/jobs/${encodeURIComponent(String(id))}`;
  }

  /**
   * POST /api/v1/jobs. Resolves with {job, attached}: `attached` is true when the server answered 200,
   * i.e. this token already made a job with this Idempotency-Key and these rows (a re-run attaching
   * to it) rather than 202 for a new job. 409 (same key, other rows) and 413 reject as ApiErrors.
   * @param {object[]} items rows as for /batch
   * @param {{idempotencyKey?: string, defaults?: object, signal?: AbortSignal, deadlineMs?: number, fetch?: Function}} [options]
   */
  async function postJob(settings, items, options = {}) {
    const { idempotencyKey, defaults, ...rest } = options;
    const body = { items };
    if (defaults) body.defaults = defaults;
    const headers = idempotencyKey ? { "Idempotency-Key": idempotencyKey } : {};
    const answer = await request(settings.backendUrl, "/api/v1/jobs", {
      ...rest,
      method: "POST",
      token: settings.token,
      headers,
      body,
    });
    return { job: jobOf(answer.body), attached: answer.status === 200 };
  }

  /** GET /api/v1/jobs/<id>: the job's counts, status and eta_seconds. */
  async function getJob(settings, id, options = {}) {
    return jobOf((await jobRequest(settings, jobPath(id), options)).body);
  }

  /**
   * GET /api/v1/jobs/<id>/results: finished rows with index > `after` (from the start when `after`
   * is null or negative), at most `limit`. Resolves with {results, next}; next is null once every
   * row has finished and been returned.
   */
  async function getJobResults(settings, id, after, limit, options = {}) {
    const query = [];
    if (typeof after === "number" && after >= 0) query.push(`after=${after}`);
    if (limit) query.push(`limit=${limit}`);
    const path = `${jobPath(id)}/results${query.length ? "?" + query.join("&") : ""}`;
    const answer = (await jobRequest(settings, path, options)).body;
    if (!Array.isArray(answer.results) || !("next" in answer)) {
      throw new ApiError("The server's results answer does not have results and next", { kind: "format" });
    }
    return { results: answer.results, next: answer.next === undefined ? null : answer.next };
  }

  /** DELETE /api/v1/jobs/<id>: rows not started are cancelled, finished rows stay. */
  async function cancelJob(settings, id, options = {}) {
    return jobOf((await jobRequest(settings, jobPath(id), { ...options, method: "DELETE" })).body);
  }

  // cyrb53: a fast, well-mixed 53-bit string hash, fed incrementally (a job's rows can be 15 MB of
  // text) and read out as 14 hex digits. Not cryptographic: it only has to make equal inputs give
  // equal Idempotency-Keys and different inputs (almost always) different ones; the server's 409
  // catches the rare collision. The Office Scripts repeat it (they cannot import) with the same
  // seeds and length prefixes, so their keys equal `idempotencyKey("xl", parts)`.
  function hashState(seed) {
    return { h1: 0xdeadbeef ^ seed, h2: 0x41c6ce57 ^ seed };
  }

  function hashUpdate(state, text) {
    let { h1, h2 } = state;
    for (let i = 0; i < text.length; i++) {
      const ch = text.charCodeAt(i);
      h1 = Math.imul(h1 ^ ch, 2654435761);
      h2 = Math.imul(h2 ^ ch, 1597334677);
    }
    state.h1 = h1;
    state.h2 = h2;
  }

  function hashDigest(state) {
    let { h1, h2 } = state;
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
    h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
    h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16).padStart(14, "0");
  }

  /** cyrb53 of one string, 14 hex digits. */
  function hashString(text, seed = 0) {
    const state = hashState(seed);
    hashUpdate(state, String(text));
    return hashDigest(state);
  }

  /**
   * An Idempotency-Key for a list of parts: `<prefix>-` and two cyrb53 hashes (106 bits) of the parts,
   * each length-prefixed so ["ab", "c"] and ["a", "bc"] differ. At most 128 characters of
   * [A-Za-z0-9._:-] as the server requires, as long as `prefix` is short and made of those.
   */
  function idempotencyKey(prefix, parts) {
    const states = [hashState(1), hashState(2)];
    for (const part of parts) {
      const text = String(part);
      for (const state of states) hashUpdate(state, `${text.length}:${text}`);
    }
    return `${prefix}-${states.map(hashDigest).join("")}`;
  }

  /**
   * Does the server accept this token? Sends an empty batch: the server checks the token before the
   * body, so 401 means "token rejected" and the 400 for "no items" means accepted; no LLM call is
   * made and nothing is spent. Resolves with {ok, message}.
   */
  async function checkToken(settings, options = {}) {
    if (!settings.token) return { ok: false, message: "No API token set" };
    try {
      await requestJson(settings.backendUrl, "/api/v1/batch", {
        ...options,
        method: "POST",
        token: settings.token,
        body: { items: [] },
      });
      return { ok: true, message: "Token accepted" };
    } catch (err) {
      if (err.kind === "http" && err.status === 400) return { ok: true, message: "Token accepted" };
      if (err.kind === "http" && err.status === 401) return { ok: false, message: "Token rejected by the server" };
      return { ok: false, message: err.message };
    }
  }

  /** The text a cell shows for a successful batch row: the server's text form of the result. */
  function rowText(row) {
    return typeof row.summary === "string" ? row.summary : JSON.stringify(row.result);
  }

  return {
    DEADLINE_MS,
    BUDGET_EXCEEDED,
    TASK_TYPES,
    FALLBACK_TASKS,
    FALLBACK_LIMITS,
    ApiError,
    storageKey,
    loadSettings,
    saveSettings,
    parseRetryAfter,
    describeHttpError,
    request,
    requestJson,
    postBatch,
    estimate,
    combineEstimates,
    isBudgetRow,
    postJob,
    getJob,
    getJobResults,
    cancelJob,
    hashString,
    idempotencyKey,
    health,
    serverInfo,
    parseList,
    checkToken,
    rowText,
  };
});
