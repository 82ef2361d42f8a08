// The task pane's tasks, models and options come from /health, and the options a task takes travel
// as `defaults` on both paths (/batch chunks and jobs): the real taskpane.js in the fake pane.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");

const client = require("../client.js");
const { taskOptions } = require("../taskpane.js");
const { fakeJobsServer } = require("./fake-jobs.js");
const { openPane, fakeWorkbook, settingsStore, savedSettings, until } = require("./fake-pane.js");
const { HEALTH_TASKS } = require("./helpers.js");

const TOKEN = "secret-token-1234";
const LOCAL_TASKS = HEALTH_TASKS.map((t) => ({ ...t, supported: ["summary", "keywords", "sentiment", "entities", "haiku"].includes(t.name) }));
const HEALTH = { tasks: LOCAL_TASKS, models: ["gpt-4", "gpt-4o-mini"], default_model: "gpt-4", limits: { max_labels: 5, max_fields: 3, max_count: 10 } };

function setup(n, { health = HEALTH, settings = {} } = {}) {
  const workbook = fakeWorkbook();
  const texts = Array.from({ length: n }, (_, i) => `Mail ${i}: where is my parcel?`);
  workbook.excel.setValues(`A2:A${n + 1}`, texts.map((t) => [t]));
  workbook.excel.select(`A2:A${n + 1}`);
  const server = fakeJobsServer({ token: TOKEN, health });
  const env = { workbook, texts, server, store: settingsStore(), localStorage: savedSettings({ token: TOKEN, ...settings }) };
  return { ...env, pane: openPane(env) };
}

const options = (pane, id) => pane.$(id).children.map((o) => [o.value, o.textContent, o.disabled]);
const outputs = (workbook, n) => JSON.parse(JSON.stringify(workbook.excel.getValues(`B2:B${n + 1}`).map((r) => r[0])));

test("the task and model lists are the server's: a template shows up, tasks its provider cannot do are disabled", async () => {
  const { pane } = setup(1);
  await until(() => pane.$("task-type").children);
  const tasks = options(pane, "task-type");
  assert.deepEqual(tasks.map((t) => t[0]), LOCAL_TASKS.map((t) => t.name));
  assert.deepEqual(tasks.find((t) => t[0] === "haiku"), ["haiku", "haiku", false]);
  assert.deepEqual(tasks.find((t) => t[0] === "classify"), ["classify", "Classify (one of your labels) (not with this server's provider)", true]);
  assert.deepEqual(options(pane, "model"), [["", "Server default (gpt-4)", false], ["gpt-4", "gpt-4", false], ["gpt-4o-mini", "gpt-4o-mini", false]]);
  pane.close();
});

test("each task shows the options it takes", async () => {
  const { pane } = setup(1, { health: {} }); // a server without a task list: the built-ins
  await pane.idle();
  const shown = () => ["instruction", "labels", "fields", "count", "language"].filter((g) => !pane.$(`${g}-group`).hidden);
  const cases = { summary: [], classify: ["labels"], extract: ["fields"], keywords: ["count"], translation: ["language"], prompt: ["instruction"], custom: ["instruction"] };
  for (const [task, groups] of Object.entries(cases)) {
    pane.$("task-type").choose(task);
    assert.deepEqual(shown(), groups, task);
  }
  pane.close();
});

test("'Use selection as labels' fills the box; a classify run sends the labels as the batch's defaults", async () => {
  const { pane, workbook, server, texts } = setup(20, { health: { ...HEALTH, tasks: HEALTH_TASKS } });
  await pane.idle();
  workbook.excel.setValues("D1:D4", [["billing"], ["shipping"], [""], ["Billing"]]);
  workbook.excel.select("D1:D4");
  pane.$("task-type").choose("classify");
  pane.$("labels-from-selection").click();
  await until(() => pane.$("labels").value !== "");
  assert.equal(pane.$("labels").value, "billing\nshipping");
  pane.$("labels").value += "\ncomplaint";
  pane.$("model").value = "gpt-4o-mini";
  workbook.excel.select("A2:A21");
  pane.$("process").click();
  await pane.idle();
  const [batch] = server.batches();
  assert.deepEqual(batch.body.defaults, { labels: ["billing", "shipping", "complaint"], model: "gpt-4o-mini" });
  assert.ok(batch.body.items.every((item) => item.type === "classify" && !("labels" in item)));
  assert.deepEqual(outputs(workbook, 20), texts.map((t) => `classify:${t}`));
  assert.equal(pane.$("status").textContent, "Done: 20 rows, 0 from the cache.");
  pane.close();
});

test("a big extract runs as a job whose defaults carry the fields; an instruction the task does not take is not sent", async () => {
  const { pane, server } = setup(150, { health: { ...HEALTH, tasks: HEALTH_TASKS }, settings: { type: "extract", fields: "name, amount", instruction: "ignored" } });
  await pane.idle();
  pane.$("process").click();
  await pane.idle();
  const [post] = server.posts();
  assert.deepEqual(post.body.defaults, { fields: ["name", "amount"] });
  assert.equal(post.body.items.length, 150);
  assert.equal(pane.$("status").textContent, "Done: 150 rows, 0 from the cache.");
  pane.close();
});

test("a prompt without an instruction, or a task the provider cannot do, stops before any request", async () => {
  const { pane, server } = setup(5, { settings: { type: "prompt" } });
  await pane.idle();
  pane.$("process").click();
  await pane.idle();
  assert.equal(pane.$("status").textContent, "The server's provider (fake) cannot do prompt: choose another task.");
  const env = setup(5, { health: { ...HEALTH, tasks: HEALTH_TASKS }, settings: { type: "prompt" } });
  await env.pane.idle();
  env.pane.$("process").click();
  await env.pane.idle();
  assert.equal(env.pane.$("status").textContent, "Write the instruction for prompt first.");
  assert.equal(server.batches().length + env.server.batches().length + server.posts().length, 0);
  pane.close();
  env.pane.close();
});

test("taskOptions checks labels, fields, count and model against the server's limits", () => {
  const info = client.serverInfo(HEALTH);
  info.tasks = HEALTH_TASKS;
  const form = (over) => ({ type: "summary", instruction: "", labels: "", fields: "", count: "", model: "", ...over });
  const check = (over) => taskOptions(form(over), info, client.parseList);
  assert.deepEqual(check({}), { defaults: {} });
  assert.deepEqual(check({ type: "classify", labels: "a" }), { error: "Give 2 to 5 labels (got 1)." });
  assert.deepEqual(check({ type: "classify", labels: "a,b,c,d,e,f" }), { error: "Give 2 to 5 labels (got 6)." });
  assert.deepEqual(check({ type: "extract", fields: "" }), { error: "Give 1 to 3 fields (got 0)." });
  assert.deepEqual(check({ type: "keywords", count: "11" }), { error: "How many keywords: a whole number from 1 to 10." });
  assert.deepEqual(check({ type: "keywords", count: "4" }), { defaults: { count: 4 } });
  assert.deepEqual(check({ model: "gpt-5" }), { error: "Model gpt-5 is not allowed by this server: use one of gpt-4, gpt-4o-mini." });
  assert.deepEqual(check({ type: "custom", instruction: " Be brief " }), { defaults: { instruction: "Be brief" } });
  assert.deepEqual(check({ type: "poem" }), { error: 'The server has no task "poem": press Test connection to reload its tasks.' });
});
