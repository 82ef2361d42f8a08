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
    assert.deepEqual(client.loadSettings(storage), { backendUrl: "https://llm.example.com", token: "t0k", type: "summary", language: "" });
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
