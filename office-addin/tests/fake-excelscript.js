// A fake ExcelScript workbook (the subset in office-scripts/excelscript.d.ts) over an in-memory
// grid. Excel's own rules that matter are kept:
// - a single getValues() or setValues() whose values serialise to more than 5 MB (JSON, UTF-8)
//   throws, as Excel on the web refuses any request or response payload over 5 MB;
// - setValues must match the range's size;
// - a string starting with an apostrophe is stored as text without it.
// It counts calls (reads, writes, calls) and the largest payload (maxCallBytes) so tests can hold
// the scripts to bounded calls.
"use strict";

const PAYLOAD_LIMIT_BYTES = 5 * 1024 * 1024;

class PayloadError extends Error {
  constructor(kind, bytes) {
    const side = kind === "read" ? "Response" : "Request";
    super(`${side} payload size has exceeded the limit. Please refer to the documentation: https://docs.microsoft.com/office/dev/add-ins/concepts/resource-limits-and-performance-optimization#excel-add-ins. (${bytes} bytes)`);
    this.code = `${side}PayloadSizeLimitExceeded`;
  }
}

class Grid {
  constructor(limitBytes = PAYLOAD_LIMIT_BYTES) {
    this.cells = new Map();
    this.limitBytes = limitBytes;
    this.reads = 0; // getValues calls that succeeded
    this.writes = []; // setValues calls that succeeded: {row, col, rows, cols}
    this.calls = 0; // every getValues/setValues attempted, refused ones included
    this.refused = 0; // calls refused for their size
    this.maxCallBytes = 0; // the largest payload attempted
  }
  /** Count a call of `values`; throw Excel's payload error when it is over the limit. */
  check(kind, values) {
    const bytes = Buffer.byteLength(JSON.stringify(values));
    this.calls += 1;
    this.maxCallBytes = Math.max(this.maxCallBytes, bytes);
    if (bytes > this.limitBytes) {
      this.refused += 1;
      throw new PayloadError(kind, bytes);
    }
  }
  get(r, c) {
    return this.cells.has(`${r},${c}`) ? this.cells.get(`${r},${c}`) : "";
  }
  set(r, c, v) {
    const stored = typeof v === "string" && v.startsWith("'") ? v.slice(1) : v;
    if (stored === "") this.cells.delete(`${r},${c}`);
    else this.cells.set(`${r},${c}`, stored);
  }
  /** Fill from a 2-D array at (row, col), without counting it as the script's write. */
  load(rows, row = 0, col = 0) {
    rows.forEach((values, i) => values.forEach((v, j) => this.set(row + i, col + j, v)));
  }
  column(c, from, to) {
    return Array.from({ length: to - from }, (_, i) => this.get(from + i, c));
  }
}

class Range {
  constructor(grid, row, col, rows, cols) {
    Object.assign(this, { grid, row, col, rows, cols });
  }
  getValues() {
    const values = Array.from({ length: this.rows }, (_, i) => Array.from({ length: this.cols }, (_, j) => this.grid.get(this.row + i, this.col + j)));
    this.grid.check("read", values);
    this.grid.reads += 1;
    return values;
  }
  setValues(values) {
    if (values.length !== this.rows || values.some((r) => r.length !== this.cols)) {
      throw new Error(`setValues: ${values.length}x${values[0] && values[0].length} into a ${this.rows}x${this.cols} range`);
    }
    this.grid.check("write", values);
    this.grid.writes.push({ row: this.row, col: this.col, rows: this.rows, cols: this.cols });
    values.forEach((r, i) => r.forEach((v, j) => this.grid.set(this.row + i, this.col + j, v)));
  }
  getRowIndex() { return this.row; }
  getColumnIndex() { return this.col; }
  getRowCount() { return this.rows; }
  getColumnCount() { return this.cols; }
  getCell(r, c) { return new Range(this.grid, this.row + r, this.col + c, 1, 1); }
  getResizedRange(dr, dc) { return new Range(this.grid, this.row, this.col, this.rows + dr, this.cols + dc); }
}

class Worksheet {
  constructor(grid, name = "Sheet1") {
    this.grid = grid;
    this.name = name;
  }
  getName() { return this.name; }
  getUsedRange() {
    if (!this.grid.cells.size) return undefined;
    let [r0, c0, r1, c1] = [Infinity, Infinity, -1, -1];
    for (const key of this.grid.cells.keys()) {
      const [r, c] = key.split(",").map(Number);
      [r0, c0, r1, c1] = [Math.min(r0, r), Math.min(c0, c), Math.max(r1, r), Math.max(c1, c)];
    }
    return new Range(this.grid, r0, c0, r1 - r0 + 1, c1 - c0 + 1);
  }
  getRangeByIndexes(row, col, rows, cols) { return new Range(this.grid, row, col, rows, cols); }
}

/** A table whose header row is `row` and whose first column is `col`; `rows` data rows. */
class Table {
  constructor(grid, name, row, col, headers, rows) {
    Object.assign(this, { grid, name, row, col, headers: [...headers], rows });
    headers.forEach((h, j) => grid.set(row, col + j, h));
  }
  getName() { return this.name; }
  getColumnByName(key) {
    const index = this.headers.indexOf(key);
    return index < 0 ? undefined : new TableColumn(this, index);
  }
  addColumn(index, values, name) {
    if (index !== -1 && index !== undefined) throw new Error("fake: only appending is supported");
    this.headers.push(name);
    this.grid.set(this.row, this.col + this.headers.length - 1, name);
    return new TableColumn(this, this.headers.length - 1);
  }
  getRangeBetweenHeaderAndTotal() {
    return new Range(this.grid, this.row + 1, this.col, this.rows, this.headers.length);
  }
}

class TableColumn {
  constructor(table, index) {
    Object.assign(this, { table, index });
  }
  getName() { return this.table.headers[this.index]; }
  getIndex() { return this.index; }
  getRangeBetweenHeaderAndTotal() {
    return new Range(this.table.grid, this.table.row + 1, this.table.col + this.index, this.table.rows, 1);
  }
}

/** @param {{limitBytes?: number}} [options] limitBytes: the per-call payload limit (Excel: 5 MB) */
function fakeWorkbook(options = {}) {
  const grid = new Grid(options.limitBytes);
  const sheet = new Worksheet(grid);
  const tables = new Map();
  return {
    grid,
    addTable(name, row, col, headers, data) {
      const table = new Table(grid, name, row, col, headers, data.length);
      grid.load(data, row + 1, col);
      tables.set(name, table);
      return table;
    },
    getActiveWorksheet: () => sheet,
    getTable: (name) => tables.get(name),
  };
}

module.exports = { fakeWorkbook, PAYLOAD_LIMIT_BYTES };
