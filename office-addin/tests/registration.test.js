// In Excel, functions.js registers each function under the id that functions.json declares (a
// shared runtime needs CustomFunctions.associate), and functions.json is what Microsoft's
// generator makes of functions.js's JSDoc: a fresh one must equal the committed file.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");

require("../../tests/fakes/office.js"); // defines CustomFunctions, as Excel's runtime does
require("../functions.js");
const metadata = require("../functions.json");
const { metadata: generate } = require("../tools/make-metadata.js");

const IDS = ["PROCESSEMAIL", "PROMPT", "PROMPTWITH", "CLASSIFY", "EXTRACT", "KEYWORDS", "ENTITIES"];
const byId = (id) => metadata.functions.find((f) => f.id === id);
const params = (id) => byId(id).parameters.map((p) => [p.name, p.type, p.dimensionality || "scalar", Boolean(p.optional), Boolean(p.repeating)]);

test("functions.json is what custom-functions-metadata generates from functions.js (run `npm run metadata`)", async () => {
  const committed = fs.readFileSync(path.join(__dirname, "..", "functions.json"), "utf8");
  assert.equal(await generate(), committed);
});

test("every id in functions.json is associated, and nothing else", () => {
  const ids = metadata.functions.map((f) => f.id);
  assert.deepEqual(ids, IDS);
  assert.deepEqual(__fakeExcel.functionIds().sort(), [...ids].sort());
  for (const f of metadata.functions) assert.equal(f.name, f.id);
});

test("every function is cancelable; the invocation is not a parameter Excel shows", () => {
  for (const f of metadata.functions) {
    assert.deepEqual(f.options, { cancelable: true }, f.id);
    assert.ok(f.parameters.every((p) => p.name !== "invocation"), f.id);
  }
});

test("parameter types say what the code takes: any for cells, matrices for ranges, repeating context", () => {
  assert.deepEqual(params("PROCESSEMAIL"), [["text", "any", "scalar", false, false], ["type", "string", "scalar", true, false], ["language", "string", "scalar", true, false]]);
  assert.deepEqual(params("PROMPT"), [["instruction", "any", "scalar", false, false], ["context", "any", "matrix", true, true]]);
  assert.deepEqual(params("PROMPTWITH"), [["model", "string", "scalar", false, false], ["instruction", "any", "scalar", false, false], ["context", "any", "matrix", true, true]]);
  assert.deepEqual(params("CLASSIFY"), [["text", "any", "scalar", false, false], ["labels", "any", "matrix", false, false]]);
  assert.deepEqual(params("EXTRACT"), [["text", "any", "scalar", false, false], ["fields", "any", "matrix", false, false]]);
  assert.deepEqual(params("KEYWORDS"), [["text", "any", "scalar", false, false], ["count", "number", "scalar", true, false]]);
  assert.deepEqual(params("ENTITIES"), [["text", "any", "scalar", false, false]]);
});

test("text functions return a string; EXTRACT, KEYWORDS and ENTITIES spill a string matrix", () => {
  for (const id of ["PROCESSEMAIL", "PROMPT", "PROMPTWITH", "CLASSIFY"]) assert.deepEqual(byId(id).result, { type: "string" }, id);
  for (const id of ["EXTRACT", "KEYWORDS", "ENTITIES"]) assert.deepEqual(byId(id).result, { type: "string", dimensionality: "matrix" }, id);
});

test("the registered functions answer empty cells without the network", async () => {
  assert.equal(await __fakeExcel.invoke("PROCESSEMAIL", "", null, null, {}), "");
  assert.equal(await __fakeExcel.invoke("PROMPT", "", [[["x"]]], {}), "");
  assert.equal(await __fakeExcel.invoke("CLASSIFY", "", [["a", "b"]], {}), "");
  assert.deepEqual(await __fakeExcel.invoke("EXTRACT", null, [["name,amount"]], {}), [["", ""]]);
  assert.deepEqual(await __fakeExcel.invoke("KEYWORDS", "  ", null, {}), [[""]]);
  assert.deepEqual(await __fakeExcel.invoke("ENTITIES", "", {}), [["", ""]]);
});
