// client.js: settings storage per partition, Retry-After parsing, token check, cancellation.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");

const client = require("../client.js");
const { json, fakeFetch, hangingFetch, memoryStorage } = require("./helpers.js");

test("settings are stored under the Office partition key and read back over the defaults", () => {
  globalThis.Office = { context: { partitionKey: "user-42:" } };
  try {
    const storage = memoryStorage();
    const saved = client.saveSettings({ backendUrl: "https://llm.example.com/", token: "t0k" }, storage);
    assert.equal(saved.backendUrl, "https://llm.example.com");
    assert.deepEqual([...storage.data.keys()], ["user-42:flaskllm.settings"]);
    const expected = { backendUrl: "https://llm.example.com", token: "t0k", type: "summary", language: "", instruction: "", labels: "", fields: "", count: "", model: "" };
    assert.deepEqual(client.loadSettings(storage), expected);
  } finally {
    delete globalThis.Office;
  }
  assert.equal(client.storageKey(), "flaskllm.settings"); // no partition outside Office
});

test("corrupt or forbidden storage gives the defaults instead of throwing", () => {
  const corrupt = memoryStorage({ "flaskllm.settings": "{not json" });
  assert.equal(client.loadSettings(corrupt).token, "");
  const forbidden = { getItem() { throw new Error("SecurityError"); } };
  assert.equal(client.loadSettings(forbidden).type, "summary");
});

test("Retry-After is read as seconds or as an HTTP date", () => {
  assert.equal(client.parseRetryAfter("12"), 12);
  assert.equal(client.parseRetryAfter(null), null);
  assert.equal(client.parseRetryAfter("soon"), null);
  const now = Date.parse("2025-01-01T00:00:00Z");
  assert.equal(client.parseRetryAfter("Wed, 01 Jan 2025 00:00:30 GMT", now), 30);
  assert.equal(client.describeHttpError(429, null, null), "Rate limited, retry later");
});

test("checkToken: 401 is 'token rejected', the 400 for an empty batch means accepted", async () => {
  const settings = { backendUrl: "http://flaskllm.test", token: "abc" };
  const answer = (status) => fakeFetch({ onBatch: () => json(status, { error: { code: "x", message: "m" } }) });
  assert.deepEqual(await client.checkToken(settings, { fetch: answer(400) }), { ok: true, message: "Token accepted" });
  assert.deepEqual(await client.checkToken(settings, { fetch: answer(401) }), { ok: false, message: "Token rejected by the server" });
  const down = await client.checkToken(settings, { fetch: () => Promise.reject(new TypeError("x")) });
  assert.equal(down.ok, false);
  assert.match(down.message, /Cannot reach/);
  assert.equal((await client.checkToken({ ...settings, token: "" })).message, "No API token set");
  const sent = answer(400);
  await client.checkToken(settings, { fetch: sent });
  assert.deepEqual(sent.calls[0].body, { items: [] }); // costs no LLM call
});

test("a caller's AbortSignal cancels a request as 'cancelled', not as a network error", async () => {
  const controller = new AbortController();
  const pending = client.requestJson("http://flaskllm.test", "/api/v1/health", { fetch: hangingFetch(), signal: controller.signal });
  controller.abort();
  await assert.rejects(pending, (err) => err instanceof client.ApiError && err.kind === "cancelled");
});

test("postJob sends the rows with the Idempotency-Key and tells a new job (202) from an attached one (200)", async () => {
  const { fakeJobsServer } = require("./fake-jobs.js");
  const server = fakeJobsServer({ token: "abc" });
  const settings = { backendUrl: "http://flaskllm.test/", token: "abc" };
  const items = [{ id: "2", prompt: "hello", type: "summary" }];
  const first = await client.postJob(settings, items, { idempotencyKey: "k-1", fetch: server.fetch });
  assert.equal(first.attached, false);
  assert.equal(first.job.id, "job-1");
  const again = await client.postJob(settings, items, { idempotencyKey: "k-1", fetch: server.fetch });
  assert.equal(again.attached, true);
  assert.equal(again.job.id, "job-1");
  const [call] = server.posts();
  assert.equal(call.url, "http://flaskllm.test/api/v1/jobs");
  assert.equal(call.headers["Idempotency-Key"], "k-1");
  assert.equal(call.headers["X-API-Token"], "abc");
  assert.deepEqual(call.body, { items });
  await assert.rejects(
    client.postJob(settings, [{ prompt: "other" }], { idempotencyKey: "k-1", fetch: server.fetch }),
    (err) => err.status === 409 && err.code === "idempotency_conflict",
  );
  await assert.rejects(
    client.postJob({ ...settings, token: "wrong" }, items, { fetch: server.fetch }),
    (err) => err.status === 401 && err.message === "Set your API token in the FlaskLLM task pane",
  );
});

test("getJob, getJobResults (after/limit paging) and cancelJob follow the jobs contract", async () => {
  const { fakeJobsServer } = require("./fake-jobs.js");
  const server = fakeJobsServer({ token: "abc", rowsPerTick: 2 });
  const settings = { backendUrl: "http://flaskllm.test", token: "abc" };
  const net = { fetch: server.fetch };
  const items = Array.from({ length: 8 }, (_, i) => ({ id: String(i), prompt: `p${i}` }));
  const { job } = await client.postJob(settings, items, net);
  const page1 = await client.getJobResults(settings, job.id, null, 10, net);
  assert.deepEqual(page1.results.map((r) => r.index), [0, 1]);
  assert.equal(page1.next, 1);
  assert.equal(server.calls.at(-1).query, "?limit=10"); // no `after`: from the start
  const page2 = await client.getJobResults(settings, job.id, page1.next, 10, net);
  assert.equal(server.calls.at(-1).query, "?after=1&limit=10");
  assert.deepEqual(page2.results.map((r) => r.index), [2, 3]);
  const cancelled = await client.cancelJob(settings, job.id, net);
  assert.equal(cancelled.status, "cancelled");
  assert.equal(server.deletes().length, 1);
  const rest = await client.getJobResults(settings, job.id, page2.next, 10, net);
  assert.equal(rest.next, null);
  // rows 4 and 5 finished while the DELETE was handled; 6 and 7 had not started
  assert.deepEqual(rest.results.map((r) => [r.index, r.ok]), [[4, true], [5, true], [6, false], [7, false]]);
  assert.equal(rest.results[3].error.code, "cancelled");
  assert.equal((await client.getJob(settings, job.id, net)).status, "cancelled");
  await assert.rejects(client.getJob(settings, "job-99", net), (err) => err.status === 404 && /not on the server any more/.test(err.message));
});

test("idempotencyKey: stable, length-prefixed parts, within the server's 128 characters of [A-Za-z0-9._:-]", () => {
  const key = client.idempotencyKey("xl", ["Sheet1", "A", "hello"]);
  assert.match(key, /^xl-[0-9a-f]{28}$/);
  assert.equal(client.idempotencyKey("xl", ["Sheet1", "A", "hello"]), key);
  assert.notEqual(client.idempotencyKey("xl", ["ab", "c"]), client.idempotencyKey("xl", ["a", "bc"]));
  assert.notEqual(client.idempotencyKey("xl", ["Sheet1", "A", "hello!"]), key);
  assert.equal(client.hashString("hello"), client.hashString("hello"));
  assert.match(client.hashString("hello", 7), /^[0-9a-f]{14}$/);
});

test("parseList: one text is comma- or line-separated, a range is one name per cell; names normalised, repeats dropped", () => {
  assert.deepEqual(client.parseList(" billing,  shipping ,,Billing, other "), ["billing", "shipping", "other"]);
  assert.deepEqual(client.parseList("a, b\nc  d\r\n\n"), ["a, b", "c d"]);
  assert.deepEqual(client.parseList([["Billing, invoices"], ["Shipping"], [""], [null]]), ["Billing, invoices", "Shipping"]);
  assert.deepEqual(client.parseList([["name,amount,date"]]), ["name", "amount", "date"]);
  assert.deepEqual(client.parseList([[1, 2]]), ["1", "2"]);
  assert.deepEqual(client.parseList(null), []);
});

test("serverInfo reads /health's tasks, models and limits, and falls back to the built-ins", () => {
  const info = client.serverInfo({
    provider: "local",
    batch_max_items: 7,
    tasks: [{ name: "summary", result: "text", needs: [], takes: [], supported: true }, { name: "classify", result: "label", needs: ["labels"], takes: ["labels"], supported: false }, { bogus: 1 }],
    models: ["gpt-4", "", 3, "gpt-4o-mini"],
    limits: { max_prompt_length: 900, max_labels: 0 },
  });
  assert.equal(info.known, true);
  assert.deepEqual(info.tasks.map((t) => [t.name, t.supported]), [["summary", true], ["classify", false]]);
  assert.deepEqual(info.models, ["gpt-4", "gpt-4o-mini"]);
  assert.equal(info.defaultModel, "gpt-4");
  assert.deepEqual(info.limits, { maxPromptLength: 900, batchMax: 7, jobMax: 5000, maxLabels: 50, maxFields: 20, maxCount: 50 });
  const none = client.serverInfo(null);
  assert.equal(none.known, false);
  assert.deepEqual(none.tasks.map((t) => t.name), client.TASK_TYPES);
  assert.deepEqual(none.models, []);
});

// ----- The cost estimate (POST /api/v1/estimate) and a used-up budget --------------------------

const BUDGET = { limit_usd: 5, spent_usd: 1.2, remaining_usd: 3.8, period: "day", resets_at: "2026-12-04T00:00:00Z" };

test("estimate posts exactly the run's body (items, defaults) with the token and reads every field", async () => {
  const { fakeJobsServer } = require("./fake-jobs.js");
  const server = fakeJobsServer({ token: "abc", estimate: { cached: 1, cost_usd: 0.0123, seconds: 14.2, provider: "openai", model: "gpt-4", confirm: true, budget: BUDGET } });
  const settings = { backendUrl: "http://flaskllm.test/", token: "abc" };
  const items = [{ id: "2", prompt: "hello", type: "classify" }, { id: "3", prompt: "", type: "classify" }];
  const defaults = { labels: ["a", "b"] };
  const estimate = await client.estimate(settings, items, defaults, { fetch: server.fetch });
  const [call] = server.estimates();
  assert.equal(call.method, "POST");
  assert.equal(call.url, "http://flaskllm.test/api/v1/estimate");
  assert.equal(call.headers["X-API-Token"], "abc");
  assert.deepEqual(call.body, { items, defaults });
  assert.deepEqual(estimate, {
    rows: 2, invalid: 1, cached: 1, toRun: 1, inputTokens: 100, outputTokens: 50, costUsd: 0.0123, seconds: 14.2,
    provider: "openai", model: "gpt-4", confirm: true,
    budget: { limitUsd: 5, spentUsd: 1.2, remainingUsd: 3.8, period: "day", resetsAt: "2026-12-04T00:00:00Z" },
  });
  assert.equal(server.jobs.size + server.batches().length, 0, "nothing ran");
});

test("estimate is null for an older server (404 or 405) and rejects for any other failure", async () => {
  const { fakeJobsServer } = require("./fake-jobs.js");
  const settings = { backendUrl: "http://flaskllm.test", token: "abc" };
  const items = [{ prompt: "x" }];
  const old = fakeJobsServer({ token: "abc" }); // no estimate endpoint
  assert.equal(await client.estimate(settings, items, undefined, { fetch: old.fetch }), null);
  assert.equal(old.estimates()[0].status, 404);
  const noPost = fakeJobsServer({ token: "abc", estimate: () => json(405, { error: { code: "method_not_allowed", message: "No." } }) });
  assert.equal(await client.estimate(settings, items, undefined, { fetch: noPost.fetch }), null);
  const invalid = fakeJobsServer({ token: "abc", estimate: () => json(400, { error: { code: "invalid_input", message: "items.0.type: unknown" } }) });
  await assert.rejects(client.estimate(settings, items, undefined, { fetch: invalid.fetch }), (err) => err.status === 400 && err.message === "items.0.type: unknown");
  await assert.rejects(client.estimate({ ...settings, token: "wrong" }, items, undefined, { fetch: invalid.fetch }), (err) => err.status === 401);
  const empty = fakeFetch({ onBatch: () => json(200, { nothing: true }) });
  await assert.rejects(client.estimate(settings, items, undefined, { fetch: empty }), (err) => err.kind === "format");
});

test("estimate settles at its deadline when the server never answers", async () => {
  const started = Date.now();
  const pending = client.estimate({ backendUrl: "http://flaskllm.test", token: "abc" }, [{ prompt: "x" }], undefined, { fetch: hangingFetch(), deadlineMs: 50 });
  await assert.rejects(pending, (err) => err instanceof client.ApiError && err.kind === "timeout");
  assert.ok(Date.now() - started < 1000);
});

test("estimate reads missing or malformed counts as 0, an unknown cost or time as null, confirm only when true", async () => {
  const raw = { rows: 3, to_run: "3", cost_usd: null, seconds: -1, confirm: "yes", budget: "none" };
  const fetch = fakeFetch({ onBatch: () => json(200, { estimate: raw }) });
  const e = await client.estimate({ backendUrl: "http://flaskllm.test", token: "abc" }, [{ prompt: "x" }], undefined, { fetch });
  assert.deepEqual(e, { rows: 3, invalid: 0, cached: 0, toRun: 0, inputTokens: 0, outputTokens: 0, costUsd: null, seconds: null, provider: "", model: "", confirm: false, budget: null });
});

test("combineEstimates adds the parts; unknown cost if one is unknown; asks when any part asks or the total is over the budget left", () => {
  const part = (over) => ({ rows: 100, invalid: 1, cached: 9, toRun: 90, inputTokens: 900, outputTokens: 450, costUsd: 0.1, seconds: 10, provider: "openai", model: "gpt-4", confirm: false, budget: null, ...over });
  const budget = { limitUsd: 5, spentUsd: 4.85, remainingUsd: 0.15, period: "day", resetsAt: "" };
  const two = client.combineEstimates([part({}), part({ budget })]);
  assert.deepEqual({ ...two, costUsd: Math.round(two.costUsd * 100) / 100 }, { ...part({}), rows: 200, invalid: 2, cached: 18, toRun: 180, inputTokens: 1800, outputTokens: 900, costUsd: 0.2, seconds: 20, confirm: true, budget });
  assert.equal(client.combineEstimates([part({}), part({})]).confirm, false);
  assert.equal(client.combineEstimates([part({}), part({ confirm: true })]).confirm, true);
  assert.equal(client.combineEstimates([part({}), part({ costUsd: null })]).costUsd, null);
});

test("budget_exceeded: a 429 carries the server's message (or when it resets) and is never a plain rate limit", async () => {
  const message = "Budget of $5.00 per day used up; it resets at 2026-12-04T00:00:00Z.";
  const fetch = fakeFetch({ onBatch: () => json(429, { error: { code: "budget_exceeded", message } }, { "Retry-After": "3600" }) });
  const settings = { backendUrl: "http://flaskllm.test", token: "abc" };
  await assert.rejects(client.postBatch(settings, [{ prompt: "x" }], { fetch }), (err) => err.status === 429 && err.budgetExceeded && err.retryAfter === 3600 && err.message === message);
  assert.equal(client.describeHttpError(429, { error: { code: "budget_exceeded" } }, 7200), "The API token's budget is used up: it resets in 2 h 0 min");
  assert.equal(client.describeHttpError(429, { error: { code: "rate_limited", message: "slow" } }, 3), "Rate limited, retry in 3 s");
  assert.equal(client.isBudgetRow({ ok: false, error: { code: "budget_exceeded", message } }), true);
  assert.equal(client.isBudgetRow({ ok: false, error: { code: "provider_error" } }), false);
});
