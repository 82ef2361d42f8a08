// Runs the real task pane (taskpane.html's ids, client.js, taskpane.js) in Node: each pane is a vm
// context with a fake DOM, and all panes share one workbook (../../tests/fakes/office.js, loaded
// once in its own context) and one document-settings store that persists only what saveAsync saved,
// as Office does. Closing a pane stops its timers and its network, like closing the task pane.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");

const { memoryStorage } = require("./helpers.js");

const ADDIN = path.join(__dirname, "..");
const FAKE_OFFICE = path.join(ADDIN, "..", "tests", "fakes", "office.js");

/** An element with the properties the pane uses; textContent keeps its history for assertions. */
class FakeElement {
  constructor(id, attrs, firstOption) {
    this.id = id;
    this.value = firstOption ?? "";
    this.checked = /\bchecked\b/.test(attrs);
    this.disabled = /\bdisabled\b/.test(attrs);
    this.hidden = /\bhidden\b/.test(attrs);
    this.className = "";
    this.max = 1;
    this.history = [];
    this.listeners = {};
    this._text = "";
  }
  get textContent() {
    return this._text;
  }
  set textContent(text) {
    this._text = String(text);
    this.history.push(this._text);
  }
  addEventListener(type, fn) {
    (this.listeners[type] = this.listeners[type] || []).push(fn);
  }
  click() {
    if (this.disabled) return;
    for (const fn of this.listeners.click || []) fn();
  }
  /** A user's choice in a select: the value, then the change event, as a browser does. */
  choose(value) {
    this.value = value;
    for (const fn of this.listeners.change || []) fn();
  }
  /** A select's options: the pane rebuilds them from /health. */
  replaceChildren(...children) {
    this.children = children;
  }
}

/** The elements taskpane.html declares, by id; unknown ids are null, as in a browser. */
function fakeDocument() {
  const html = fs.readFileSync(path.join(ADDIN, "taskpane.html"), "utf8");
  const elements = new Map();
  for (const m of html.matchAll(/<(\w+)([^>]*?)\bid="([^"]+)"([^>]*)>/g)) {
    const attrs = m[2] + m[4];
    const option = m[1] === "select" ? /<option value="([^"]*)"/.exec(html.slice(m.index)) : null;
    elements.set(m[3], new FakeElement(m[3], attrs, option ? option[1] : undefined));
  }
  const createElement = (tag) => Object.assign(new FakeElement("", ""), { tagName: tag.toUpperCase() });
  return { getElementById: (id) => elements.get(id) || null, createElement, addEventListener() {}, elements };
}

/**
 * Office.context.document.settings over a persisted map: get/set/remove work on the pane's copy,
 * saveAsync persists it (values round-trip through JSON, as Office stores them). `open()` is the
 * copy a newly opened pane sees.
 */
function settingsStore(initial = {}) {
  let persisted = new Map(Object.entries(initial).map(([k, v]) => [k, JSON.stringify(v)]));
  const saves = [];
  return {
    saves, // every persisted state, as {name: value}
    persisted: () => Object.fromEntries([...persisted].map(([k, v]) => [k, JSON.parse(v)])),
    open() {
      const live = new Map(persisted);
      let closed = false;
      return {
        get: (name) => (live.has(name) ? JSON.parse(live.get(name)) : null),
        set: (name, value) => live.set(name, JSON.stringify(value)),
        remove: (name) => live.delete(name),
        saveAsync(options, callback) {
          const done = typeof options === "function" ? options : callback;
          setImmediate(() => {
            if (!closed) {
              persisted = new Map(live);
              saves.push(Object.fromEntries([...persisted].map(([k, v]) => [k, JSON.parse(v)])));
            }
            if (done) done({ status: closed ? "failed" : "succeeded" });
          });
        },
        close: () => (closed = true),
      };
    },
  };
}

/** The shared workbook: the e2e suite's fake office.js in a context of its own. */
function fakeWorkbook() {
  const context = vm.createContext({ setTimeout, clearTimeout, console });
  vm.runInContext(fs.readFileSync(FAKE_OFFICE, "utf8"), context, { filename: FAKE_OFFICE });
  return { Office: context.Office, Excel: context.Excel, excel: context.__fakeExcel };
}

/**
 * Open a task pane.
 * @param {{workbook, store, server, localStorage, pollMs?: number, estimateMs?: number, withDocument?: boolean}} options
 *   estimateMs: the pane's deadline for the cost estimate (tests shorten it)
 * @returns {{$, context, idle: Function, close: Function, settings}}
 */
function openPane({ workbook, store, server, localStorage, pollMs = 5, estimateMs, withDocument = true }) {
  const timers = new Set();
  let closed = false;
  const settings = store.open();
  const officeContext = { ...workbook.Office.context };
  if (withDocument) officeContext.document = { settings };
  const document = fakeDocument();
  const context = vm.createContext({
    console,
    URL,
    AbortController,
    document,
    localStorage,
    Excel: workbook.Excel,
    Office: { ...workbook.Office, context: officeContext },
    FlaskLLMPaneTuning: estimateMs === undefined ? { pollMs } : { pollMs, estimateMs },
    fetch: (...args) => (closed ? Promise.reject(new TypeError("Failed to fetch")) : server.fetch(...args)),
    setTimeout: (fn, ms) => {
      const handle = setTimeout(() => {
        timers.delete(handle);
        if (!closed) fn();
      }, ms);
      timers.add(handle);
      return handle;
    },
    clearTimeout: (handle) => {
      timers.delete(handle);
      clearTimeout(handle);
    },
  });
  for (const file of ["client.js", "taskpane.js"]) {
    vm.runInContext(fs.readFileSync(path.join(ADDIN, file), "utf8"), context, { filename: file });
  }
  return {
    context,
    settings,
    $: (id) => document.getElementById(id),
    /** Resolves when the pane has nothing running (after Office.onReady has run). */
    idle: async () => {
      await new Promise((resolve) => setImmediate(resolve));
      await context.FlaskLLMPane.idle();
    },
    close() {
      closed = true;
      settings.close();
      for (const handle of timers) clearTimeout(handle);
      timers.clear();
    },
  };
}

/** localStorage holding the pane's settings, as the pane's Save button would leave it. */
function savedSettings(settings) {
  const storage = memoryStorage();
  storage.setItem("fake-partition!flaskllm.settings", JSON.stringify({ backendUrl: "http://flaskllm.test", type: "summary", language: "", ...settings }));
  return storage;
}

/** Wait until `predicate()` is true (checked every few ms), or fail after `ms`. */
async function until(predicate, ms = 5000) {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > ms) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

module.exports = { openPane, fakeWorkbook, settingsStore, savedSettings, until };
