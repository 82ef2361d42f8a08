/**
 * A fake office.js: Office, Excel and CustomFunctions over an in-memory workbook.
 *
 * Why: the real office.js comes from Microsoft's CDN and only works inside Office. The e2e tests
 * serve this file in its place (Playwright intercepts the CDN URL), and Node tests load it to check
 * the custom function's registration. It keeps the semantics that catch real bugs:
 * - proxy objects queue commands; nothing happens until `context.sync()`;
 * - reading a property that was not `load()`ed and synced throws PropertyNotLoaded, as Office does;
 * - commands left unsynced when `Excel.run`'s callback ends are dropped (a missing sync is a bug);
 * - a string value starting with an apostrophe is stored as text without the apostrophe.
 *
 * Test hooks live on `__fakeExcel`: setValues/getValues by address, select(address), invoke(id, ...).
 */
(function (root) {
  "use strict";

  const state = { sheets: new Map(), active: "Sheet1", selection: null, functions: new Map(), syncs: 0, dropped: 0, syncDelayMs: 0 };

  function sheet(name) {
    if (!state.sheets.has(name)) state.sheets.set(name, new Map());
    return state.sheets.get(name);
  }
  sheet("Sheet1");

  function columnName(index) {
    let name = "";
    for (let n = index + 1; n > 0; n = Math.floor((n - 1) / 26)) name = String.fromCharCode(65 + ((n - 1) % 26)) + name;
    return name;
  }

  function columnIndex(letters) {
    return [...letters.toUpperCase()].reduce((n, ch) => n * 26 + ch.charCodeAt(0) - 64, 0) - 1;
  }

  /** "Sheet1!A2:B3", "A2", "A:A" -> {sheet, row, col, rows, cols} (A:A is the whole column). */
  function parseAddress(address) {
    const [sheetPart, ref] = address.includes("!") ? address.split("!") : [state.active, address];
    const cells = ref.split(":").map((part) => {
      const m = /^([A-Z]+)(\d*)$/i.exec(part.replace(/\$/g, ""));
      if (!m) throw new Error(`fake office.js: bad address ${address}`);
      return { col: columnIndex(m[1]), row: m[2] ? Number(m[2]) - 1 : null };
    });
    const [a, b] = [cells[0], cells[1] || cells[0]];
    const row = a.row ?? 0;
    const last = b.row ?? 1048575;
    return { sheet: sheetPart.replace(/^'|'$/g, ""), row, col: a.col, rows: last - row + 1, cols: b.col - a.col + 1 };
  }

  function addressOf(r) {
    const start = `${columnName(r.col)}${r.row + 1}`;
    const end = `${columnName(r.col + r.cols - 1)}${r.row + r.rows}`;
    return `${r.sheet}!${start === end ? start : `${start}:${end}`}`;
  }

  function readGrid(r) {
    const cells = sheet(r.sheet);
    return Array.from({ length: r.rows }, (_, i) =>
      Array.from({ length: r.cols }, (_, j) => {
        const v = cells.get(`${r.row + i},${r.col + j}`);
        return v === undefined ? "" : v;
      }),
    );
  }

  function writeGrid(r, values) {
    if (!Array.isArray(values) || values.length !== r.rows || values.some((row) => row.length !== r.cols)) {
      throw officeError("InvalidArgument", `The number of rows or columns in the input array doesn't match the size or dimensions of the range ${addressOf(r)}.`);
    }
    const cells = sheet(r.sheet);
    values.forEach((row, i) =>
      row.forEach((v, j) => {
        const stored = typeof v === "string" && v.startsWith("'") ? v.slice(1) : v;
        if (stored === "" || stored === null) cells.delete(`${r.row + i},${r.col + j}`);
        else cells.set(`${r.row + i},${r.col + j}`, stored);
      }),
    );
  }

  /** Bounding box of non-empty cells of a sheet, or null. */
  function usedBox(name) {
    const keys = [...sheet(name).keys()].map((k) => k.split(",").map(Number));
    if (!keys.length) return null;
    const rows = keys.map((k) => k[0]);
    const cols = keys.map((k) => k[1]);
    const row = Math.min(...rows);
    const col = Math.min(...cols);
    return { sheet: name, row, col, rows: Math.max(...rows) - row + 1, cols: Math.max(...cols) - col + 1 };
  }

  function officeError(code, message) {
    const err = new Error(message);
    err.name = "RichApi.Error";
    err.code = code;
    return err;
  }

  /** Base of proxy objects: `load` queues, sync fills `_loaded`, unloaded reads throw. */
  class ClientObject {
    constructor(context) {
      this._context = context;
      this._loaded = {};
    }
    load(props) {
      const names = typeof props === "string" ? props.split(",") : Array.isArray(props) ? props : Object.keys(props || {});
      this._context._queue.push(() => {
        for (const name of names.map((n) => n.trim()).filter(Boolean)) this._loaded[name] = this._read(name);
      });
      return this;
    }
    _get(name) {
      if (!(name in this._loaded)) {
        throw officeError(
          "PropertyNotLoaded",
          `The property '${name}' is not available. Before reading the property's value, call the load method on the containing object and call "context.sync()" on the associated request context.`,
        );
      }
      return this._loaded[name];
    }
  }

  class Range extends ClientObject {
    /** `resolve()` -> {sheet, row, col, rows, cols} or null: lazy, since a selection is found at sync. */
    constructor(context, resolve) {
      super(context);
      this._resolve = resolve;
    }
    _read(name) {
      const r = this._resolve();
      if (name === "isNullObject") return r === null;
      if (r === null) return null; // a null object's properties read as null, as in Office
      const props = { values: () => readGrid(r), address: () => addressOf(r), rowIndex: () => r.row, columnIndex: () => r.col, rowCount: () => r.rows, columnCount: () => r.cols };
      if (!props[name]) throw officeError("InvalidArgument", `fake office.js: property ${name} not supported`);
      return props[name]();
    }
    get values() { return this._get("values"); }
    set values(v) {
      this._context._queue.push(() => writeGrid(this._resolve(), v));
    }
    get address() { return this._get("address"); }
    get rowIndex() { return this._get("rowIndex"); }
    get columnIndex() { return this._get("columnIndex"); }
    get rowCount() { return this._get("rowCount"); }
    get columnCount() { return this._get("columnCount"); }
    get isNullObject() { return this._get("isNullObject"); }
    get worksheet() {
      return new Worksheet(this._context, () => this._resolve().sheet);
    }
    getOffsetRange(rows, cols) {
      return new Range(this._context, () => {
        const r = this._resolve();
        return { ...r, row: r.row + rows, col: r.col + cols };
      });
    }
  }

  class Worksheet extends ClientObject {
    constructor(context, nameFn) {
      super(context);
      this._nameFn = nameFn;
    }
    _read(name) {
      if (name === "name") return this._nameFn();
      throw officeError("InvalidArgument", `fake office.js: worksheet property ${name} not supported`);
    }
    get name() { return this._get("name"); }
    getRangeByIndexes(row, col, rows, cols) {
      return new Range(this._context, () => ({ sheet: this._nameFn(), row, col, rows, cols }));
    }
    getUsedRangeOrNullObject() {
      // Office sets isNullObject on every sync, without load().
      return new Range(this._context, () => usedBox(this._nameFn())).load("isNullObject");
    }
  }

  class RequestContext {
    constructor() {
      this._queue = [];
      const context = this;
      this.workbook = {
        getSelectedRange: () => new Range(context, () => state.selection || parseAddress("A1")),
        worksheets: {
          getItem: (name) =>
            new Worksheet(context, () => {
              if (!state.sheets.has(name)) throw officeError("ItemNotFound", `The requested resource doesn't exist: ${name}`);
              return name;
            }),
        },
      };
    }
    async sync() {
      const queue = this._queue.splice(0);
      await new Promise((resolve) => setTimeout(resolve, state.syncDelayMs));
      state.syncs += 1;
      for (const command of queue) command(); // in order: a load after a write sees the write
    }
  }

  const Excel = {
    async run(batch) {
      const context = new RequestContext();
      const result = await batch(context);
      state.dropped += context._queue.length;
      return result;
    },
  };

  class CustomFunctionsError extends Error {
    constructor(code, message) {
      super(message || code);
      this.name = "CustomFunctions.Error";
      this.code = code;
    }
  }

  const CustomFunctions = {
    Error: CustomFunctionsError,
    ErrorCode: {
      invalidValue: "#VALUE!",
      notAvailable: "#N/A",
      divisionByZero: "#DIV/0!",
      invalidNumber: "#NUM!",
      nullReference: "#NULL!",
      invalidName: "#NAME?",
      invalidReference: "#REF!",
    },
    associate(id, fn) {
      if (typeof id === "object") Object.entries(id).forEach(([k, f]) => state.functions.set(k.toUpperCase(), f));
      else state.functions.set(String(id).toUpperCase(), fn);
    },
  };

  /**
   * Office.context.document.settings: values live in the document, so they outlive the pane.
   * Here "the document" is this origin's localStorage, so a page reload (closing and reopening
   * the pane) finds what was saved; like Office, set() changes nothing until saveAsync().
   */
  const SETTINGS_KEY = "__fakeExcel.documentSettings";
  const readSaved = () => {
    try {
      return JSON.parse(root.localStorage.getItem(SETTINGS_KEY) || "{}");
    } catch (_) {
      return {};
    }
  };
  let documentValues = readSaved();
  const settings = {
    get: (name) => (name in documentValues ? JSON.parse(JSON.stringify(documentValues[name])) : null),
    set: (name, value) => {
      documentValues[name] = JSON.parse(JSON.stringify(value));
    },
    remove: (name) => {
      delete documentValues[name];
    },
    saveAsync(callback) {
      root.localStorage.setItem(SETTINGS_KEY, JSON.stringify(documentValues));
      state.settingsSaves = (state.settingsSaves || 0) + 1;
      if (callback) setTimeout(() => callback({ status: "succeeded" }), 0);
    },
    refresh: () => {
      documentValues = readSaved();
    },
  };

  const Office = {
    HostType: { Excel: "Excel" },
    PlatformType: { OfficeOnline: "OfficeOnline" },
    AsyncResultStatus: { Succeeded: "succeeded", Failed: "failed" },
    context: {
      partitionKey: "fake-partition!",
      requirements: { isSetSupported: () => true },
      document: { settings },
    },
    onReady(callback) {
      const info = { host: "Excel", platform: "OfficeOnline" };
      return Promise.resolve().then(() => {
        if (callback) callback(info);
        return info;
      });
    },
  };

  const hooks = {
    state,
    setValues(address, values) {
      writeGrid(parseAddress(address), values);
    },
    getValues(address) {
      return readGrid(parseAddress(address));
    },
    select(address) {
      state.selection = parseAddress(address);
    },
    /** Call a registered custom function as Excel would (omitted optional arguments are null). */
    invoke(id, ...args) {
      const fn = state.functions.get(String(id).toUpperCase());
      if (!fn) throw new Error(`no custom function ${id} registered`);
      return fn(...args);
    },
    functionIds: () => [...state.functions.keys()],
    /** What the document's settings hold as saved (what a reopened pane will find). */
    savedSettings: () => readSaved(),
  };

  Object.assign(root, { Office, Excel, CustomFunctions, __fakeExcel: hooks });
})(typeof globalThis !== "undefined" ? globalThis : this);
