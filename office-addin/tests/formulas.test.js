// The formula surface over the shared batcher: PROMPT(WITH), CLASSIFY, EXTRACT, KEYWORDS, ENTITIES;
// tasks, models and limits from /health; one deadline per cell from its call; cancelling.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");

require("../../tests/fakes/office.js"); // CustomFunctions.Error / ErrorCode as in Excel
const { createBatcher, contextText } = require("../functions.js");
const { json, fakeFetch, hangingFetch, healthBody } = require("./helpers.js");

const SETTINGS = { backendUrl: "http://flaskllm.test", token: "secret-token" };

/** What a model-backed server answers for each task, so tests can see routing and shapes. */
function answer(item) {
  switch (item.type) {
    case "classify":
      return item.labels[item.labels.length - 1];
    case "extract":
      return Object.fromEntries(item.fields.filter((f) => f !== "missing").map((f) => [f, `${f} of ${item.prompt}`]));
    case "keywords":
      return Array.from({ length: item.count || 3 }, (_, i) => `k${i + 1}`);
    case "entities":
      return item.prompt.includes("nobody") ? [] : [{ text: "Ada", label: "PERSON" }, { text: "Paris", label: "LOCATION" }];
    default:
      return `${item.type}:${item.instruction || item.prompt}`;
  }
}

function taskBatch(items) {
  const results = items.map((item, index) => {
    const result = answer(item);
    const summary = typeof result === "string" ? result : JSON.stringify(result);
    return { index, id: null, ok: true, summary, type: item.type, result, provider: "fake", model: item.model || "gpt-4", cached: false };
  });
  return json(200, { results, stats: {} });
}

function server({ health = {}, ...options } = {}) {
  return fakeFetch({ onBatch: taskBatch, health: () => json(200, healthBody(health)), ...options });
}

function batcher(fetch, options = {}) {
  return createBatcher({ fetch, windowMs: 10, getSettings: () => SETTINGS, ...options });
}

const settleAll = (promises) => Promise.allSettled(promises);
const items = (fetch) => fetch.batches().flatMap((c) => c.body.items);

/** Excel's CancelableInvocation: the function sets onCanceled, Excel calls it. */
const invocation = () => ({ onCanceled: null, cancel() { this.onCanceled && this.onCanceled(); } });

test("CLASSIFY: labels from a range or from 'a,b,c'; the answer is the label as the user wrote it", async () => {
  const fetch = server();
  const b = batcher(fetch);
  const [fromRange, fromText] = await Promise.all([
    b.classify("my parcel never came", [["billing"], ["Shipping"]]),
    b.classify("charged twice", "billing, shipping ,  complaint,other"),
  ]);
  assert.equal(fromRange, "Shipping");
  assert.equal(fromText, "other");
  assert.deepEqual(items(fetch).map((i) => i.labels), [["billing", "Shipping"], ["billing", "shipping", "complaint", "other"]]);
  assert.deepEqual(items(fetch)[0], { type: "classify", prompt: "my parcel never came", labels: ["billing", "Shipping"] });
});

test("CLASSIFY: fewer than 2 labels or more than max_labels is #VALUE! without a batch", async () => {
  const fetch = server({ health: { limits: { max_labels: 3 } } });
  const b = batcher(fetch);
  const [one, many] = await settleAll([b.classify("x", "billing"), b.classify("x", "a,b,c,d")]);
  assert.equal(one.reason.code, "#VALUE!");
  assert.equal(one.reason.message, 'Give at least 2 labels (a range, or "a,b,c"); got 1');
  assert.equal(many.reason.code, "#VALUE!");
  assert.equal(many.reason.message, "4 labels; this server takes at most 3");
  assert.equal(items(fetch).length, 0);
});

test("EXTRACT spills one row in the fields' order; a field without a value is empty; blank text is a blank row", async () => {
  const b = batcher(server());
  assert.deepEqual(await b.extract("Invoice 7", [["name", "amount"], ["missing", ""]]), [["name of Invoice 7", "amount of Invoice 7", ""]]);
  assert.deepEqual(await b.extract("", "name,amount,date"), [["", "", ""]]);
  const [none] = await settleAll([b.extract("text", [[""]])]);
  assert.equal(none.reason.code, "#VALUE!");
});

test("KEYWORDS spills a row, count is sent and checked; ENTITIES spills N x 2", async () => {
  const fetch = server();
  const b = batcher(fetch);
  assert.deepEqual(await b.keywords("some text", 2), [["k1", "k2"]]);
  assert.deepEqual(await b.keywords("other text"), [["k1", "k2", "k3"]]);
  assert.deepEqual(items(fetch).map((i) => i.count), [2, undefined]);
  const [bad, tooMany] = await settleAll([b.keywords("t", 2.5), b.keywords("t", 51)]);
  assert.equal(bad.reason.code, "#VALUE!");
  assert.equal(tooMany.reason.message, "count: this server gives at most 50 keywords");
  assert.deepEqual(await b.entities("Ada went to Paris"), [["Ada", "PERSON"], ["Paris", "LOCATION"]]);
  assert.deepEqual(await b.entities("nobody here"), [["", ""]]);
});

test("PROMPT sends the instruction and the ranges as labelled tables, headers and empty cells kept", async () => {
  const fetch = server();
  const b = batcher(fetch);
  const table = [["Region", "Sales", "Note"], ["North", 120, ""], ["South", 80.5, "new\tshop"], ["", "", ""]];
  assert.equal(await b.prompt("Which region sold most?", [table, [["Q3"]]]), "prompt:Which region sold most?");
  const [item] = items(fetch);
  assert.equal(item.type, "prompt");
  assert.equal(item.instruction, "Which region sold most?");
  assert.equal(
    item.prompt,
    "Context 1 (3 rows x 3 columns, tab-separated, first row = column headers):\n" +
      "Region\tSales\tNote\nNorth\t120\t\nSouth\t80.5\t\"new\\tshop\"\n\nContext 2: Q3",
  );
  assert.equal("model" in item, false, "PROMPT uses the server's default model");
  assert.equal(await b.prompt("Say hello", []), "prompt:Say hello"); // no context at all
  assert.equal(items(fetch)[1].prompt, "");
});

test("PROMPT refuses a context over 2,000 cells, or a prompt over max_prompt_length, with #VALUE!: never a silent cut", async () => {
  const fetch = server({ health: { limits: { max_prompt_length: 500 } } });
  const b = batcher(fetch);
  const big = Array.from({ length: 600 }, (_, i) => [`r${i}`, i, "", true]);
  const wide = Array.from({ length: 40 }, () => ["a fairly long cell value here"]);
  const [cells, length, instruction] = await settleAll([b.prompt("Sum it", [big]), b.prompt("Read", [wide]), b.prompt("x".repeat(501), [])]);
  assert.equal(cells.reason.code, "#VALUE!");
  assert.equal(cells.reason.message, "The context has 2,400 cells; PROMPT takes at most 2,000");
  assert.equal(length.reason.code, "#VALUE!");
  assert.match(length.reason.message, /^The context, written out as tables, is 1,2\d\d characters; this server takes at most 500$/);
  assert.equal(instruction.reason.message, "The instruction is 501 characters; this server takes at most 500");
  assert.equal(fetch.batches().length, 0);
});

test("contextText: a single cell is its value, trailing empty rows go, ragged rows are padded", () => {
  assert.equal(contextText([[["only"]]]), "Context: only");
  assert.equal(contextText([[["a", "b"], ["c"], ["", ""]]]), "Context (2 rows x 2 columns, tab-separated, first row = column headers):\na\tb\nc\t");
  assert.equal(contextText(null), "");
  assert.equal(contextText([[[null]], [[""]]]), "");
});

test("PROMPTWITH: a model of the allow-list is sent; any other is #VALUE! naming the allowed models", async () => {
  const fetch = server();
  const b = batcher(fetch);
  assert.equal(await b.promptWith("gpt-4o-mini", "Translate", [[["Hallo"]]]), "prompt:Translate");
  assert.equal(items(fetch)[0].model, "gpt-4o-mini");
  const [o] = await settleAll([b.promptWith("claude-9", "Translate", null)]);
  assert.equal(o.reason.code, "#VALUE!");
  assert.equal(o.reason.message, "model: must be one of gpt-4, gpt-4o-mini");
  assert.equal(fetch.batches().length, 1);
});

test("the server's row errors: invalid_input and unsupported_by_provider are #VALUE!, invalid_answer #N/A", async () => {
  const errors = { a: "invalid_input", b: "unsupported_by_provider", c: "invalid_answer" };
  const onBatch = (batch) =>
    json(200, { results: batch.map((item, index) => ({ index, id: null, ok: false, error: { code: errors[item.prompt], message: `said ${errors[item.prompt]}` } })) });
  const b = batcher(fakeFetch({ onBatch, health: () => json(200, healthBody()) }));
  const outcomes = await settleAll([b.classify("a", "x,y"), b.extract("b", "n"), b.classify("c", "x,y")]);
  assert.deepEqual(outcomes.map((o) => [o.reason.code, o.reason.message]), [["#VALUE!", "said invalid_input"], ["#VALUE!", "said unsupported_by_provider"], ["#N/A", "said invalid_answer"]]);
});

test("all functions share one batcher: one request for mixed calls, identical calls one row", async () => {
  const fetch = server();
  const b = batcher(fetch);
  const calls = [
    b.processEmail("mail"),
    b.processEmail("mail"),
    b.classify("mail", "a,b"),
    b.classify("mail", [["a", "b"]]), // the same labels from a range: the same row
    b.extract("mail", "x"),
    b.keywords("mail", 3),
    b.entities("mail"),
    b.prompt("Sum", [[[1, 2]]]),
  ];
  await Promise.all(calls);
  assert.equal(fetch.batches().length, 1);
  assert.equal(items(fetch).length, 6);
  assert.equal(fetch.calls.filter((c) => c.path === "/api/v1/health").length, 1);
});

test("a template from /health works as PROCESSEMAIL's type; a task needing labels points to CLASSIFY", async () => {
  const fetch = server();
  const b = batcher(fetch);
  assert.equal(await b.processEmail("autumn", "Haiku"), "haiku:autumn");
  const [o] = await settleAll([b.processEmail("x", "classify")]);
  assert.equal(o.reason.code, "#VALUE!");
  assert.equal(o.reason.message, 'Type "classify" needs labels: use CLASSIFY(text, labels)');
});

test("without /health the built-in task list still serves every function, and /health is asked again later", async () => {
  const fetch = fakeFetch({ onBatch: taskBatch, health: () => Promise.reject(new TypeError("down")) });
  const b = batcher(fetch);
  assert.equal(await b.classify("x", "a,b"), "b");
  const [o] = await settleAll([b.processEmail("x", "haiku")]);
  assert.match(o.reason.message, /^Unknown type "haiku": use one of summary, keywords, sentiment, entities, translation, custom, classify, extract, prompt$/);
  assert.equal(fetch.calls.filter((c) => c.path === "/api/v1/health").length, 2);
});

test("/health's batch limit sizes the requests", async () => {
  const fetch = server({ health: { limits: { batch_max_items: 7 } } });
  const b = batcher(fetch);
  await Promise.all(Array.from({ length: 20 }, (_, i) => b.keywords(`u${i}`)));
  assert.deepEqual(fetch.batches().map((c) => c.body.items.length), [7, 7, 6]);
});

// ----- One deadline per cell, from its call ------------------------------------------------

test("a server that never answers: 1,000 queued cells all settle at one cell deadline from their call", async () => {
  const CELL = 400;
  const fetch = (url, init) => (new URL(url).pathname === "/api/v1/health" ? Promise.resolve(json(200, healthBody({ limits: { batch_max_items: 10 } }))) : hangingFetch()(url, init));
  const b = createBatcher({ fetch, windowMs: 5, maxConcurrent: 2, deadlineMs: 60000, cellDeadlineMs: CELL, getSettings: () => SETTINGS });
  const started = Date.now();
  const settledAt = [];
  const cells = Array.from({ length: 1000 }, (_, i) => b.processEmail(`never ${i}`).finally(() => settledAt.push(Date.now() - started)));
  const outcomes = await settleAll(cells);
  assert.ok(Math.max(...settledAt) < CELL + 600, `the last cell settled after ${Math.max(...settledAt)} ms`);
  assert.ok(Math.min(...settledAt) >= CELL - 5);
  for (const o of outcomes) {
    assert.equal(o.reason.code, "#N/A");
    assert.equal(o.reason.message, "No answer from the FlaskLLM server within 0.4 s");
  }
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(b.stats(), { pending: 0, inFlight: 0, queued: 0, running: 0 }, "aborted and dropped, nothing left behind");
});

test("a cell called later gets its own deadline and joins nobody's expired row", async () => {
  const fetch = (url, init) => (new URL(url).pathname === "/api/v1/health" ? Promise.resolve(json(200, healthBody())) : hangingFetch()(url, init));
  const b = createBatcher({ fetch, windowMs: 5, cellDeadlineMs: 400, getSettings: () => SETTINGS });
  const t0 = Date.now();
  const first = settleAll([b.processEmail("same")]).then(() => Date.now() - t0);
  await new Promise((resolve) => setTimeout(resolve, 250));
  const second = settleAll([b.processEmail("same")]).then(() => Date.now() - t0);
  const [a, c] = await Promise.all([first, second]);
  assert.ok(a >= 395 && a < 640, `first at ${a} ms`);
  assert.ok(c >= 645 && c < 1000, `second at ${c} ms, its own 400 ms after its call`);
});

test("a Retry-After longer than the time left fails the cells with the rate-limit message at once", async () => {
  const onBatch = () => json(429, { error: { code: "rate_limited", message: "slow" } }, { "Retry-After": "30" });
  const b = batcher(fakeFetch({ onBatch, health: () => json(200, healthBody()) }), { cellDeadlineMs: 2000 });
  const t0 = Date.now();
  const [o] = await settleAll([b.extract("t", "a")]);
  assert.ok(Date.now() - t0 < 500);
  assert.equal(o.reason.message, "Rate limited, retry in 30 s");
});

// ----- Cancelling ----------------------------------------------------------------------------

test("a call cancelled in the window is never sent; its twin still gets the answer", async () => {
  const fetch = server();
  const b = batcher(fetch);
  const gone = invocation();
  const cancelled = b.classify("drop me", "a,b", gone);
  const twinGone = invocation();
  const twinCancelled = b.keywords("shared", 2, twinGone);
  const twin = b.keywords("shared", 2);
  const kept = b.classify("keep me", "a,b");
  gone.cancel();
  twinGone.cancel();
  const outcomes = await settleAll([cancelled, twinCancelled, twin, kept]);
  assert.deepEqual(outcomes.map((o) => o.status), ["rejected", "rejected", "fulfilled", "fulfilled"]);
  assert.equal(outcomes[0].reason.message, "Cancelled");
  assert.deepEqual(items(fetch).map((i) => i.prompt), ["shared", "keep me"]);
});

test("when every waiter of a request is cancelled, its fetch is aborted; queued requests are dropped", async () => {
  const signals = [];
  const fetch = (url, init) => {
    if (new URL(url).pathname === "/api/v1/health") return Promise.resolve(json(200, healthBody({ limits: { batch_max_items: 2 } })));
    signals.push(init.signal);
    return hangingFetch()(url, init);
  };
  const b = createBatcher({ fetch, windowMs: 5, maxConcurrent: 1, getSettings: () => SETTINGS });
  const invocations = Array.from({ length: 6 }, invocation);
  const cells = invocations.map((inv, i) => b.entities(`text ${i}`, inv));
  while (!signals.length) await new Promise((resolve) => setTimeout(resolve, 2));
  assert.deepEqual(b.stats(), { pending: 0, inFlight: 6, queued: 2, running: 1 });
  invocations[0].cancel();
  assert.equal(signals[0].aborted, false, "one row of the request still has a waiter");
  invocations.forEach((inv) => inv.cancel());
  assert.equal(signals[0].aborted, true);
  const outcomes = await settleAll(cells);
  assert.ok(outcomes.every((o) => o.status === "rejected" && o.reason.message === "Cancelled"));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(signals.length, 1, "the queued requests were never sent");
  assert.deepEqual(b.stats(), { pending: 0, inFlight: 0, queued: 0, running: 0 });
});
