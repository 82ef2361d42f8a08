// Test doubles shared by the node --test files: a fake FlaskLLM server behind a fake fetch.
"use strict";

/** A JSON Response like the backend's. */
function json(status, body, headers = {}) {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
}

/** A successful batch answer: each row's text is `<type>:<prompt>`, so tests can check routing. */
function okBatch(items) {
  const results = items.map((item, index) => ({
    index,
    id: item.id ?? null,
    ok: true,
    summary: `${item.type || "summary"}:${item.prompt}`,
    type: item.type || "summary",
    result: `${item.type || "summary"}:${item.prompt}`,
    cached: false,
  }));
  const stats = { total: items.length, succeeded: items.length, failed: 0, cached: 0 };
  return json(200, { results, stats, processing_time: 0.01 });
}

/** The tasks a server with an OpenAI-like provider lists in /health, plus an operator's template. */
const HEALTH_TASKS = [
  { name: "summary", result: "text", needs: [], takes: [], supported: true },
  { name: "keywords", result: "string_list", needs: [], takes: ["count"], supported: true },
  { name: "sentiment", result: "sentiment", needs: [], takes: [], supported: true },
  { name: "entities", result: "entity_list", needs: [], takes: [], supported: true },
  { name: "translation", result: "text", needs: ["language"], takes: ["language"], supported: true },
  { name: "custom", result: "text", needs: [], takes: ["instruction"], supported: true },
  { name: "classify", result: "label", needs: ["labels"], takes: ["labels"], supported: true },
  { name: "extract", result: "record", needs: ["fields"], takes: ["fields"], supported: true },
  { name: "prompt", result: "text", needs: ["instruction"], takes: ["instruction"], supported: true },
  { name: "haiku", result: "text", needs: [], takes: [], supported: true },
];

/** A /health body as the server gives it (the formula-surface fields included); `over` replaces parts. */
function healthBody(over = {}) {
  const limits = { max_prompt_length: 4000, batch_max_items: 100, job_max_items: 5000, max_labels: 50, max_fields: 20, max_count: 50, ...(over.limits || {}) };
  return {
    status: "ok",
    version: "1.0.0",
    environment: "test",
    provider: "openai",
    batch_max_items: limits.batch_max_items,
    job_max_items: limits.job_max_items,
    provider_concurrency: 32,
    tasks: HEALTH_TASKS,
    models: ["gpt-4", "gpt-4o-mini"],
    default_model: "gpt-4",
    ...over,
    limits,
  };
}

/**
 * A fetch that answers /api/v1/health with `maxItems` and /api/v1/batch with `onBatch(items)`
 * (default: okBatch). Records every call; tracks the most batch requests in flight at once.
 */
function fakeFetch({ maxItems = 100, onBatch = okBatch, health } = {}) {
  const calls = [];
  let running = 0;
  const fetch = async (url, init = {}) => {
    const path = new URL(url).pathname;
    const body = init.body ? JSON.parse(init.body) : undefined;
    calls.push({ url, path, init, body });
    if (path === "/api/v1/health") {
      return health ? health() : json(200, { status: "ok", version: "1.0.0", provider: "fake", batch_max_items: maxItems });
    }
    running += 1;
    fetch.maxRunning = Math.max(fetch.maxRunning, running);
    try {
      await new Promise((resolve) => setTimeout(resolve, 5));
      return await onBatch(body.items, init);
    } finally {
      running -= 1;
    }
  };
  fetch.calls = calls;
  fetch.maxRunning = 0;
  fetch.batches = () => calls.filter((c) => c.path === "/api/v1/batch");
  return fetch;
}

/** A fetch that never answers but, like the real one, rejects when its signal aborts. */
function hangingFetch() {
  return (url, init) =>
    new Promise((_, reject) => {
      init.signal.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
    });
}

/** An in-memory localStorage. */
function memoryStorage(initial = {}) {
  const data = new Map(Object.entries(initial));
  return {
    getItem: (k) => (data.has(k) ? data.get(k) : null),
    setItem: (k, v) => data.set(k, String(v)),
    removeItem: (k) => data.delete(k),
    data,
  };
}

module.exports = { json, okBatch, fakeFetch, hangingFetch, memoryStorage, healthBody, HEALTH_TASKS };
