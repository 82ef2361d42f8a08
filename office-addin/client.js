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
   * One JSON request with a deadline. Resolves with the parsed body of a 2xx answer; rejects with an
   * ApiError otherwise (never with anything else, and never hangs past `deadlineMs`).
   */
  async function requestJson(baseUrl, path, options = {}) {
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
    const headers = { Accept: "application/json" };
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
      return parsed;
    } finally {
      clearTimeout(timer);
      if (signal) signal.removeEventListener("abort", onCancel);
    }
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
    requestJson,
    postBatch,
    health,
    checkToken,
    rowText,
  };
});
