// PROCESSEMAIL through the shared batcher: batching, dedupe, empty cells, HTTP errors, 429s, and
// that every promise settles. The other functions, deadlines and cancelling: formulas.test.js.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");

require("../../tests/fakes/office.js"); // real-looking CustomFunctions.Error / ErrorCode globals
const { createBatcher } = require("../functions.js");
const { json, okBatch, fakeFetch, hangingFetch } = require("./helpers.js");

const SETTINGS = { backendUrl: "http://flaskllm.test", token: "secret-token" };

function batcher(fetch, options = {}) {
  return createBatcher({ fetch, windowMs: 10, getSettings: () => SETTINGS, ...options });
}

/** Settle all promises; return [{status, value|reason}]. */
const settleAll = (promises) => Promise.allSettled(promises);

test("N distinct calls become ceil(N / batch_max_items) batch requests, each cell its own answer", async () => {
  for (const [n, max] of [[250, 100], [250, 40], [100, 100], [1, 100]]) {
    const fetch = fakeFetch({ maxItems: max });
    const b = batcher(fetch, { maxConcurrent: 10 });
    const values = await Promise.all(Array.from({ length: n }, (_, i) => b.processEmail(`mail ${i}`)));
    assert.equal(fetch.batches().length, Math.ceil(n / max), `n=${n} max=${max}`);
    assert.ok(fetch.batches().every((c) => c.body.items.length <= max));
    values.forEach((v, i) => assert.equal(v, `summary:mail ${i}`));
  }
});

test("the token travels in X-API-Token and batch_max_items is asked once", async () => {
  const fetch = fakeFetch({ maxItems: 3 });
  const b = batcher(fetch);
  await Promise.all(["a", "b", "c", "d"].map((t) => b.processEmail(t)));
  await b.processEmail("e"); // a second window
  assert.equal(fetch.calls.filter((c) => c.path === "/api/v1/health").length, 1);
  for (const c of fetch.batches()) assert.equal(c.init.headers["X-API-Token"], "secret-token");
});

test("without batch_max_items, or when /health fails, batches hold 100 rows", async () => {
  for (const health of [() => json(200, { status: "ok" }), () => Promise.reject(new TypeError("down"))]) {
    const fetch = fakeFetch({ health });
    const b = batcher(fetch, { maxConcurrent: 5 });
    await Promise.all(Array.from({ length: 201 }, (_, i) => b.processEmail(`t${i}`)));
    assert.deepEqual(fetch.batches().map((c) => c.body.items.length), [100, 100, 1]);
  }
});

test("identical cells share one row; a different type or language is another row", async () => {
  const fetch = fakeFetch();
  const b = batcher(fetch);
  const calls = [
    ...Array.from({ length: 10 }, () => b.processEmail("same text")),
    b.processEmail("same text", "keywords"),
    b.processEmail("same text", "translation", "de"),
    b.processEmail("same text", "translation", "fr"),
    b.processEmail("same text", "Summary"), // case-insensitive type: same row as the first ten
  ];
  const values = await Promise.all(calls);
  assert.equal(fetch.batches().length, 1);
  assert.equal(fetch.batches()[0].body.items.length, 4);
  assert.deepEqual(values.slice(10), ["keywords:same text", "translation:same text", "translation:same text", "summary:same text"]);
  assert.ok(values.slice(0, 10).every((v) => v === "summary:same text"));
});

test("a call identical to one already in flight joins it instead of asking again", async () => {
  let release;
  const gate = new Promise((resolve) => (release = resolve));
  const fetch = fakeFetch({ onBatch: async (items) => (await gate, okBatch(items)) });
  const b = batcher(fetch);
  const first = b.processEmail("recalculated");
  await new Promise((resolve) => setTimeout(resolve, 40)); // the first request is now in flight
  const second = b.processEmail("recalculated");
  release();
  assert.deepEqual(await Promise.all([first, second]), ["summary:recalculated", "summary:recalculated"]);
  assert.equal(fetch.batches().length, 1);
});

test("empty cells return an empty string without any request", async () => {
  const fetch = fakeFetch();
  const b = batcher(fetch);
  assert.deepEqual(await Promise.all([b.processEmail(""), b.processEmail(null), b.processEmail(undefined), b.processEmail("   ")]), ["", "", "", ""]);
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(fetch.calls.length, 0);
});

test("numbers in cells are sent as text", async () => {
  const fetch = fakeFetch();
  assert.equal(await batcher(fetch).processEmail(42), "summary:42");
});

test("a network failure rejects every waiting cell with #N/A and a readable message", async () => {
  const fetch = fakeFetch({ onBatch: () => Promise.reject(new TypeError("Failed to fetch")) });
  const b = batcher(fetch, { maxConcurrent: 2 });
  const outcomes = await settleAll(Array.from({ length: 230 }, (_, i) => b.processEmail(`row ${i}`)));
  assert.equal(outcomes.length, 230);
  for (const o of outcomes) {
    assert.equal(o.status, "rejected");
    assert.ok(o.reason instanceof CustomFunctions.Error);
    assert.equal(o.reason.code, CustomFunctions.ErrorCode.notAvailable);
    assert.equal(o.reason.message, "Cannot reach the FlaskLLM server at http://flaskllm.test");
  }
});

test("a non-JSON answer rejects every waiting cell", async () => {
  const fetch = fakeFetch({ onBatch: () => new Response("<html>login page</html>", { status: 200 }) });
  const outcomes = await settleAll(["a", "b", "c"].map((t) => batcher(fetch).processEmail(t)));
  for (const o of outcomes) {
    assert.equal(o.status, "rejected");
    assert.match(o.reason.message, /did not answer with JSON/);
  }
});

test("the deadline rejects every waiting cell, even if the server never answers", async () => {
  const b = createBatcher({ fetch: hangingFetch(), windowMs: 5, deadlineMs: 60, getSettings: () => SETTINGS });
  const started = Date.now();
  const outcomes = await settleAll(Array.from({ length: 150 }, (_, i) => b.processEmail(`slow ${i}`)));
  assert.ok(Date.now() - started < 2000, "settled long before any real timeout");
  for (const o of outcomes) {
    assert.equal(o.status, "rejected");
    assert.equal(o.reason.code, CustomFunctions.ErrorCode.notAvailable);
    assert.match(o.reason.message, /did not answer within/);
  }
});

test("HTTP errors become messages a user can act on", async () => {
  const error = (code, message) => ({ error: { code, message }, request_id: "r-1" });
  const cases = [
    [json(401, error("unauthorized", "Missing or invalid API token.")), "Set your API token in the FlaskLLM task pane", "#N/A"],
    [json(429, error("rate_limited", "slow down"), { "Retry-After": "7" }), "Rate limited, retry in 7 s", "#N/A"],
    [json(502, error("provider_error", "upstream said 500")), "The LLM provider failed: upstream said 500", "#N/A"],
    [json(504, error("provider_timeout", "took 30 s")), "The LLM provider timed out: took 30 s", "#N/A"],
    [json(413, error("too_many_items", "at most 50 rows")), "Too much text in one request: at most 50 rows", "#VALUE!"],
    [json(400, error("invalid_input", "items.0.prompt: too long")), "items.0.prompt: too long", "#VALUE!"],
    [new Response("Bad gateway", { status: 502 }), "The LLM provider failed: bad gateway", "#N/A"],
    [new Response("oops", { status: 500 }), "FlaskLLM server error", "#N/A"],
    [json(500, error("internal_error", "x")), "FlaskLLM server error (request r-1)", "#N/A"],
  ];
  for (const [response, message, code] of cases) {
    const fetch = fakeFetch({ onBatch: () => response.clone() });
    // A 1 s cell deadline: the 429's Retry-After (7 s) cannot be waited out, so the cell says so.
    const [o] = await settleAll([batcher(fetch, { cellDeadlineMs: 1000 }).processEmail("text")]);
    assert.equal(o.status, "rejected");
    assert.equal(o.reason.message, message);
    assert.equal(o.reason.code, code);
  }
});

test("a failed row fails only its own cell, with that row's message", async () => {
  const onBatch = (items) => {
    const results = items.map((item, index) =>
      item.prompt === "bad"
        ? { index, id: null, ok: false, error: { code: "provider_error", message: "The provider failed for this row" } }
        : { index, id: null, ok: true, summary: `ok:${item.prompt}`, cached: false },
    );
    return json(200, { results, stats: {} });
  };
  const b = batcher(fakeFetch({ onBatch }));
  const outcomes = await settleAll([b.processEmail("one"), b.processEmail("bad"), b.processEmail("three")]);
  assert.deepEqual(outcomes.map((o) => o.status), ["fulfilled", "rejected", "fulfilled"]);
  assert.equal(outcomes[0].value, "ok:one");
  assert.equal(outcomes[1].reason.message, "The provider failed for this row");
  assert.equal(outcomes[1].reason.code, "#N/A");
  assert.equal(outcomes[2].value, "ok:three");
});

test("an invalid row is #VALUE!, not #N/A", async () => {
  const onBatch = () => json(200, { results: [{ index: 0, ok: false, error: { code: "invalid_input", message: "language: needed" } }] });
  const [o] = await settleAll([batcher(fakeFetch({ onBatch })).processEmail("x", "translation")]);
  assert.equal(o.reason.code, "#VALUE!");
  assert.equal(o.reason.message, "language: needed");
});

test("an answer with the wrong number of rows rejects every cell", async () => {
  const onBatch = () => json(200, { results: [], stats: {} });
  const outcomes = await settleAll(["a", "b"].map((t) => batcher(fakeFetch({ onBatch })).processEmail(t)));
  outcomes.forEach((o) => assert.match(o.reason.message, /does not match/));
});

test("no token: every cell says so at once, without a request", async () => {
  const fetch = fakeFetch();
  const b = createBatcher({ fetch, windowMs: 5, getSettings: () => ({ backendUrl: "http://x.test", token: "" }) });
  const [o] = await settleAll([b.processEmail("text")]);
  assert.equal(o.reason.message, "Set your API token in the FlaskLLM task pane");
  assert.equal(fetch.calls.length, 0);
});

test("an unknown task type is #VALUE! without a batch request", async () => {
  const fetch = fakeFetch();
  const [o] = await settleAll([batcher(fetch).processEmail("text", "poem")]);
  assert.equal(o.reason.code, "#VALUE!");
  assert.match(o.reason.message, /Unknown type "poem": use one of summary, keywords/);
  assert.equal(fetch.batches().length, 0);
});

test("at most maxConcurrent batch requests run at once", async () => {
  const fetch = fakeFetch({ maxItems: 10 });
  const b = batcher(fetch, { maxConcurrent: 2 });
  await Promise.all(Array.from({ length: 95 }, (_, i) => b.processEmail(`c${i}`)));
  assert.equal(fetch.batches().length, 10);
  assert.equal(fetch.maxRunning, 2);
});

test("calls in separate windows are separate requests; later windows still settle", async () => {
  const fetch = fakeFetch();
  const b = batcher(fetch);
  assert.equal(await b.processEmail("first"), "summary:first");
  assert.equal(await b.processEmail("second"), "summary:second");
  assert.equal(fetch.batches().length, 2);
  await new Promise((resolve) => setImmediate(resolve)); // request slots free up after settling
  assert.deepEqual(b.stats(), { pending: 0, inFlight: 0, queued: 0, running: 0 });
});

test("a 1,000-cell fill-down goes out as 10 concurrent batches with the default concurrency", async () => {
  const { MAX_CONCURRENT } = require("../functions.js");
  assert.ok(MAX_CONCURRENT >= 10 && MAX_CONCURRENT <= 16, `MAX_CONCURRENT=${MAX_CONCURRENT}`);
  let release;
  const gate = new Promise((resolve) => (release = resolve));
  const fetch = fakeFetch({ onBatch: async (items) => (await gate, okBatch(items)) });
  const b = createBatcher({ fetch, windowMs: 10, getSettings: () => SETTINGS });
  const calls = Array.from({ length: 1000 }, (_, i) => b.processEmail(`cell ${i}`));
  while (fetch.batches().length < 10) await new Promise((resolve) => setTimeout(resolve, 5));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(fetch.maxRunning, 10); // all ten in flight before any answered
  release();
  const values = await Promise.all(calls);
  values.forEach((v, i) => assert.equal(v, `summary:cell ${i}`));
});

test("a 429 is waited out (Retry-After) and the chunk resent; its cells then get their results", async () => {
  let refusals = 2;
  const onBatch = (items) =>
    refusals-- > 0 ? json(429, { error: { code: "rate_limited", message: "slow down" } }, { "Retry-After": "0" }) : okBatch(items);
  const fetch = fakeFetch({ maxItems: 50, onBatch });
  const b = batcher(fetch);
  const values = await Promise.all(Array.from({ length: 120 }, (_, i) => b.processEmail(`r${i}`)));
  values.forEach((v, i) => assert.equal(v, `summary:r${i}`));
  assert.equal(fetch.batches().length, 3 + 2); // three chunks, two of the sends refused once
  const sent = fetch.batches().flatMap((c) => c.body.items.map((it) => it.prompt));
  assert.equal(new Set(sent).size, 120);
});

test("a 429 that never ends fails its cells at their deadline, and every promise settles", async () => {
  const onBatch = () => json(429, { error: { code: "rate_limited", message: "no" } }, { "Retry-After": "0" });
  const fetch = fakeFetch({ onBatch });
  const b = batcher(fetch, { cellDeadlineMs: 300 });
  const started = Date.now();
  const outcomes = await settleAll(Array.from({ length: 30 }, (_, i) => b.processEmail(`x${i}`)));
  assert.ok(Date.now() - started < 3000);
  for (const o of outcomes) {
    assert.equal(o.status, "rejected");
    assert.equal(o.reason.message, "Rate limited, retry in 0 s");
    assert.equal(o.reason.code, CustomFunctions.ErrorCode.notAvailable);
  }
  assert.ok(fetch.batches().length > 1, "it was resent while the deadline allowed");
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(b.stats(), { pending: 0, inFlight: 0, queued: 0, running: 0 });
});

test("a 429 budget_exceeded fails its cells at once with the server's message: not resent, not #BUSY! until the deadline", async () => {
  const message = "Budget of $5.00 per day used up; it resets at 2026-12-04T00:00:00Z.";
  // Retry-After 1 s is well inside the cells' 60 s deadline: a rate limit would be waited out and resent.
  const onBatch = () => json(429, { error: { code: "budget_exceeded", message } }, { "Retry-After": "1" });
  const fetch = fakeFetch({ onBatch });
  const b = batcher(fetch);
  const started = Date.now();
  const outcomes = await settleAll(Array.from({ length: 30 }, (_, i) => b.processEmail(`x${i}`)));
  assert.ok(Date.now() - started < 900, "no Retry-After wait");
  assert.equal(fetch.batches().length, 1, "sent once");
  for (const o of outcomes) {
    assert.equal(o.status, "rejected");
    assert.equal(o.reason.message, message);
    assert.equal(o.reason.code, CustomFunctions.ErrorCode.notAvailable);
  }
});

test("a row failed with budget_exceeded fails only its cell, with the server's message", async () => {
  const onBatch = (items) => {
    const results = items.map((item, index) =>
      item.prompt === "over"
        ? { index, id: null, ok: false, error: { code: "budget_exceeded", message: "Budget used up until midnight UTC." } }
        : { index, id: null, ok: true, summary: `ok:${item.prompt}`, cached: false },
    );
    return json(200, { results, stats: {} });
  };
  const fetch = fakeFetch({ onBatch });
  const outcomes = await settleAll([batcher(fetch).processEmail("fine"), batcher(fetch).processEmail("over")]);
  assert.equal(outcomes[0].value, "ok:fine");
  assert.equal(outcomes[1].reason.message, "Budget used up until midnight UTC.");
  assert.equal(outcomes[1].reason.code, CustomFunctions.ErrorCode.notAvailable);
});
