// The task pane's pure helpers: which rows a run sends, and text that stays text in Excel.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");

const { planRows, chunks, asCellText } = require("../taskpane.js");

test("planRows skips empty inputs, and filled outputs only when asked; ERROR rows are retried", () => {
  const inputs = ["a", "", "c", "d", "  ", 7];
  const outputs = ["done", "", "", "ERROR: provider failed", "", ""];
  assert.deepEqual(planRows(inputs, outputs, true), [2, 3, 5]);
  assert.deepEqual(planRows(inputs, outputs, false), [0, 2, 3, 5]);
});

test("chunks splits a run into requests of at most n rows", () => {
  assert.deepEqual(chunks([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]);
  assert.deepEqual(chunks([], 20), []);
});

test("asCellText keeps LLM output from becoming a formula", () => {
  assert.equal(asCellText("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
  assert.equal(asCellText("- first point"), "'- first point");
  assert.equal(asCellText("-0.5"), "-0.5");
  assert.equal(asCellText("plain"), "plain");
});
