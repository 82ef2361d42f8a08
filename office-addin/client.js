/**
 * FlaskLLM client, shared by the task pane and the PROCESSEMAIL custom function.
 *
 * - Settings (backend URL, API token, task choices) live in localStorage under a key prefixed with
 *   `Office.context.partitionKey`, per Office's guidance for add-in storage: per user and never in
 *   the workbook, so a shared file never leaks a token. Custom functions and the pane run in one
 *   shared runtime, so both read the same storage.
 * - Every request has a deadline (AbortController): a fetch inside Excel dies after about 60 s and a
 *   cell must never wait forever.
 * - Every failure becomes an `ApiError` whose message a spreadsheet user can act on.
 * - Large runs go through durable jobs (POST/GET/DELETE /api/v1/jobs): `postJob` with an
 *   Idempotency-Key (see `idempotencyKey`) so a retried or re-run submission attaches to the job
 *   it already made instead of paying twice.
 *
 * Plain script, no build: in a page it defines `FlaskLLMClient`; in Node it is a CommonJS module.
 */
(function (root, factory) {
  const api = factory(root);
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.FlaskLLMClient = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function (root) {
  "use strict";

  const DEADLINE_MS = 45000; // well under Excel's ~60 s fetch limit
  const TASK_TYPES = ["summary", "keywords", "sentiment", "entities", "translation", "custom"];
  const STORAGE_SUFFIX = "flaskllm.settings";

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
      Object.assign(this, { status: 0, code: "", retryAfter: null }, info);
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

  function defaultSettings() {
    return { backendUrl: LOADED_FROM, token: "", type: "summary", language: "" };
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

  /** POST /api/v1/batch; resolves with the body once it has a `results` array of the right length. */
  async function postBatch(settings, items, options = {}) {
    const answer = await requestJson(settings.backendUrl, "/api/v1/batch", {
      ...options,
      method: "POST",
      token: settings.token,
      body: { items },
    });
    if (!Array.isArray(answer.results) || answer.results.length !== items.length) {
      throw new ApiError("The server's batch answer does not match the request", { kind: "format" });
    }
    return answer;
  }

  function health(settings, options = {}) {
    return requestJson(settings.backendUrl, "/api/v1/health", options);
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
   * @param {{idempotencyKey?: string, defaults?: object}} [options] plus request options
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
    TASK_TYPES,
    ApiError,
    storageKey,
    loadSettings,
    saveSettings,
    parseRetryAfter,
    describeHttpError,
    request,
    requestJson,
    postBatch,
    postJob,
    getJob,
    getJobResults,
    cancelJob,
    hashString,
    idempotencyKey,
    health,
    checkToken,
    rowText,
  };
});
