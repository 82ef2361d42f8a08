// A fake ExcelScript workbook (the subset in office-scripts/excelscript.d.ts) over an in-memory
// grid, counting getValues/setValues calls so tests can hold the scripts to "one read, chunked
// writes". Excel's own rules that matter are kept: setValues must match the range's size, and a
// string starting with an apostrophe is stored as text without it.
"use strict";

class Grid {
  constructor() {
    this.cells = new Map();
    this.reads = 0;
    this.writes = [];
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
    this.grid.reads += 1;
    return Array.from({ length: this.rows }, (_, i) => Array.from({ length: this.cols }, (_, j) => this.grid.get(this.row + i, this.col + j)));
  }
  setValues(values) {
    if (values.length !== this.rows || values.some((r) => r.length !== this.cols)) {
      throw new Error(`setValues: ${values.length}x${values[0] && values[0].length} into a ${this.rows}x${this.cols} range`);
    }
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
    const keys = [...this.grid.cells.keys()].map((k) => k.split(",").map(Number));
    if (!keys.length) return undefined;
    const rows = keys.map((k) => k[0]);
    const cols = keys.map((k) => k[1]);
    const [r0, c0] = [Math.min(...rows), Math.min(...cols)];
    return new Range(this.grid, r0, c0, Math.max(...rows) - r0 + 1, Math.max(...cols) - c0 + 1);
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

function fakeWorkbook() {
  const grid = new Grid();
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

module.exports = { fakeWorkbook };
