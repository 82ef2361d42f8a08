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

module.exports = { json, okBatch, fakeFetch, hangingFetch, memoryStorage };
