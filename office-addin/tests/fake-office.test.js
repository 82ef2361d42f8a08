// The fake office.js used by the e2e tests must fail where real Office.js fails, or the e2e tests
// would pass code that breaks in Excel.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");

require("../../tests/fakes/office.js");

test("reading a property before load() and sync() throws PropertyNotLoaded", async () => {
  __fakeExcel.setValues("A1:A2", [["x"], ["y"]]);
  __fakeExcel.select("A1:A2");
  await Excel.run(async (context) => {
    const range = context.workbook.getSelectedRange();
    range.load("address");
    assert.throws(() => range.address, (err) => err.code === "PropertyNotLoaded"); // loaded, not synced
    await context.sync();
    assert.equal(range.address, "Sheet1!A1:A2");
    assert.throws(() => range.values, (err) => err.code === "PropertyNotLoaded"); // never loaded
  });
});

test("writes happen at sync, in order, and unsynced commands are dropped", async () => {
  const before = __fakeExcel.state.dropped;
  await Excel.run(async (context) => {
    const sheet = context.workbook.worksheets.getItem("Sheet1");
    const cell = sheet.getRangeByIndexes(4, 1, 1, 1);
    cell.values = [["'=not a formula"]];
    assert.deepEqual(__fakeExcel.getValues("B5"), [[""]]);
    cell.load("values");
    await context.sync();
    assert.deepEqual(cell.values, [["=not a formula"]]);
    sheet.getRangeByIndexes(5, 1, 1, 1).values = [["never synced"]];
  });
  assert.equal(__fakeExcel.state.dropped, before + 1);
  assert.deepEqual(__fakeExcel.getValues("B6"), [[""]]);
});

test("a used-range null object reports isNullObject after sync without load()", async () => {
  __fakeExcel.state.sheets.set("Empty", new Map());
  await Excel.run(async (context) => {
    const used = context.workbook.worksheets.getItem("Empty").getUsedRangeOrNullObject(true);
    await context.sync();
    assert.equal(used.isNullObject, true);
  });
});

test("setting values of the wrong shape fails at sync, as in Excel", async () => {
  await assert.rejects(
    Excel.run(async (context) => {
      context.workbook.worksheets.getItem("Sheet1").getRangeByIndexes(0, 0, 2, 1).values = [["one row"]];
      await context.sync();
    }),
    (err) => err.code === "InvalidArgument",
  );
});
