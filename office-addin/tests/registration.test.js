// In Excel, functions.js registers PROCESSEMAIL under the id that functions.json declares.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");

require("../../tests/fakes/office.js"); // defines CustomFunctions, as Excel's runtime does
require("../functions.js");
const metadata = require("../functions.json");

test("every id in functions.json is associated, and nothing else", () => {
  const ids = metadata.functions.map((f) => f.id);
  assert.deepEqual(__fakeExcel.functionIds().sort(), ids.sort());
  assert.deepEqual(ids, ["PROCESSEMAIL"]);
});

test("functions.json declares text plus optional type and language, returning a string", () => {
  const [fn] = metadata.functions;
  assert.equal(fn.name, "PROCESSEMAIL");
  assert.equal(fn.result.type, "string");
  assert.deepEqual(fn.parameters.map((p) => [p.name, Boolean(p.optional)]), [["text", false], ["type", true], ["language", true]]);
});

test("the registered function answers an empty cell without the network", async () => {
  assert.equal(await __fakeExcel.invoke("PROCESSEMAIL", "", null, null), "");
});
