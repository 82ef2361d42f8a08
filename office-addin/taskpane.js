/**
 * FlaskLLM task pane: settings, a connection test, and "Process selection".
 *
 * Processing reads the selection's first column (in blocks of bounded size: Excel on the web
 * refuses any request or response over 5 MB) and writes each result into the column to its right,
 * so a long run shows progress, survives a failed row ("ERROR: message" in its cell) and can be
 * cancelled. With "skip filled" on, a second run resumes where the first stopped: filled rows are
 * skipped, ERROR rows are retried.
 *
 * Two paths, by size:
 * - Up to the server's batch_max_items rows: chunks of CHUNK_ROWS through /api/v1/batch, WORKERS
 *   chunks at a time, each chunk written as it arrives.
 * - More: a durable server job per job_max_items rows (POST /api/v1/jobs). The pane polls it,
 *   shows done/total, cached, failed and an ETA, and writes each page of results as it arrives.
 *   The job id, target range and task are kept in the document's settings (never the token), so
 *   closing and reopening the pane, or pressing Process again, picks the job up where the writing
 *   stopped; the record is cleared when the job is written out. Cancel deletes the job on the
 *   server (rows not started are dropped; rows already finished are still written).
 *
 * The task list, the models and the limits are the server's (GET /api/v1/health, read when the pane
 * opens and on Test connection): a template the operator added shows up as a task, tasks the
 * server's provider cannot do are shown but disabled, and each task shows the options it takes
 * (an instruction for prompt and custom, labels for classify, fields for extract, a count for
 * keywords, a language for translation). Those options travel as the request's `defaults`, in
 * /batch chunks and in jobs alike, so a 5,000-row classify does not repeat its labels 5,000 times.
 *
 * Before a new run the pane asks the server what it would cost (POST /api/v1/estimate with the
 * same rows and defaults the run sends, one request per job-sized part; no LLM call) and shows one
 * line: rows, cached, to run, the estimated cost (or "price unknown"), the time and the budget left.
 * When the server says `confirm` (above the operator's threshold, or more than the token's budget
 * has left), the pane shows the estimate with Run and Cancel buttons in the pane itself (Office
 * add-ins cannot use window.confirm) and sends nothing until Run is pressed; Cancel, or the pane's
 * own Cancel, ends the run with nothing sent. An older server without the endpoint (404/405) runs
 * as before, without an estimate; any other estimate failure stops before anything is sent.
 * Resuming a stored job asks nothing: it was submitted already.
 *
 * A used-up budget ("budget_exceeded": a 429 for a whole request, or a row's error) is never waited
 * out like a rate limit, since its Retry-After is the time until the budget resets. The run stops
 * sending; rows it failed say "ERROR: <the server's message>" and rows not sent stay empty, so the
 * next run (after the reset) picks both up, as with any failed row.
 *
 * The pure helpers at the top are exported to Node for unit tests; the DOM part runs in a page only.
 */
(function (root) {
  "use strict";

  const CHUNK_ROWS = 20;
  const WORKERS = 2;
  const MAX_RATE_LIMIT_WAITS = 5;
  const ERROR_PREFIX = "ERROR: ";
  const JOB_SETTING = "flaskllm.job"; // the document setting holding the running job's record
  const PAGE_ROWS = 500; // results per GET
  const POLL_MS = 1000; // between progress checks (GETs are not charged against the rate limit)
  const MAX_SYNC_BYTES = 4 * 1024 * 1024; // per Excel request: Excel on the web refuses over 5 MB
  const FIRST_READ_ROWS = 500; // rows in the first read block; later blocks follow measured bytes
  const MAX_READ_ROWS = 5000;
  /** How the pane names the built-in tasks; a server's template is shown by its own name. */
  const TASK_LABELS = {
    summary: "Summary",
    keywords: "Keywords",
    sentiment: "Sentiment",
    entities: "Entities",
    translation: "Translation",
    custom: "Custom (the cell is the instruction)",
    classify: "Classify (one of your labels)",
    extract: "Extract fields",
    prompt: "Prompt (your instruction over each row)",
  };
  const OPTION_GROUPS = ["instruction", "labels", "fields", "count", "language"]; // #<name>-group

  /** Rows (offsets into the column) to send: non-empty input; output empty or an old error if skipping. */
  function planRows(inputs, outputs, skipFilled) {
    const rows = [];
    inputs.forEach((value, i) => {
      if (String(value ?? "").trim() === "") return;
      const out = String(outputs[i] ?? "");
      if (skipFilled && out !== "" && !out.startsWith(ERROR_PREFIX.trim())) return;
      rows.push(i);
    });
    return rows;
  }

  function chunks(list, size) {
    const out = [];
    for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
    return out;
  }

  /** Text Excel stores as text: a leading = + - @ would otherwise make a formula of LLM output. */
  function asCellText(text) {
    const s = String(text);
    return /^[=+\-@]/.test(s) && Number.isNaN(Number(s)) ? "'" + s : s;
  }

  /**
   * What an answered row writes: an EXTRACT record spills into one cell per field, in the
   * fields' order (the server sends every field, as text); every other result is one cell.
   * @param {any} row a /batch or job result row that succeeded
   * @param {(row: any) => string} textOf the one-cell text of a row (the client's rowText)
   * @returns {string | string[]}
   */
  function cellValue(row, textOf) {
    const result = row.result;
    const record = result && typeof result === "object" && !Array.isArray(result);
    if (record && Object.values(result).every((v) => typeof v === "string")) return Object.values(result);
    return textOf(row);
  }

  /** Seconds as words: "about 40 s", "about 3 min"; "" when there is no number. */
  function formatDuration(seconds) {
    if (typeof seconds !== "number" || !(seconds >= 0)) return "";
    if (seconds < 10) return `about ${Math.max(1, Math.round(seconds))} s`;
    if (seconds < 60) return `about ${Math.round(seconds / 5) * 5} s`;
    if (seconds < 3600) return `about ${Math.round(seconds / 60)} min`;
    return `about ${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
  }

  /** eta_seconds as words: "about 40 s left", "about 3 min left"; "" when the server has no estimate. */
  function formatEta(seconds) {
    const duration = formatDuration(seconds);
    return duration && `${duration} left`;
  }

  /** A server's message without its final full stop, to go inside a sentence of ours. */
  function clause(text) {
    return String(text).replace(/[.\s]+$/, "");
  }

  /** US dollars as the pane shows them: "$0.00", "< $0.01", "$12.30", "$1,204". */
  function formatUsd(n) {
    if (n === 0) return "$0.00";
    if (n < 0.01) return "< $0.01";
    if (n < 1000) return `$${n.toFixed(2)}`;
    return `$${Math.round(n).toLocaleString("en-US")}`;
  }

  /** "budget left $3.80 of $5.00 per day", or "" when the estimate has no budget. */
  function budgetText(budget) {
    if (!budget || budget.remainingUsd === null) return "";
    const of = budget.limitUsd === null ? "" : ` of ${formatUsd(budget.limitUsd)}`;
    return `budget left ${formatUsd(budget.remainingUsd)}${of}${budget.period ? ` per ${budget.period}` : ""}`;
  }

  /**
   * The estimate line: "Estimate: 120 rows · 20 cached · 98 to run · 2 invalid · est. $0.01 ·
   * about 15 s · budget left $3.80 of $5.00 per day" ("price unknown" when the model has no price).
   * @param {import("./client.js").Estimate} e
   */
  function estimateText(e) {
    const parts = [`${e.rows} rows`, `${e.cached} cached`, `${e.toRun} to run`];
    if (e.invalid) parts.push(`${e.invalid} invalid`);
    parts.push(e.costUsd === null ? "price unknown" : `est. ${formatUsd(e.costUsd)}`);
    if (formatDuration(e.seconds)) parts.push(formatDuration(e.seconds));
    if (budgetText(e.budget)) parts.push(budgetText(e.budget));
    return `Estimate: ${parts.join(" · ")}`;
  }

  /**
   * Why the pane asks before running, as one question.
   * @param {import("./client.js").Estimate} e
   */
  function confirmText(e) {
    const what = e.costUsd === null ? `The price of ${e.model || "this model"} is unknown` : `This run is estimated at ${formatUsd(e.costUsd)}`;
    const b = e.budget;
    const over = b && b.remainingUsd !== null && e.costUsd !== null && e.costUsd > b.remainingUsd;
    const why = over ? `, more than the ${formatUsd(b.remainingUsd)} left in your budget${b.resetsAt ? ` (it resets ${b.resetsAt})` : ""}` : "";
    return `${what} for ${e.toRun} rows to run${why}. Run it?`;
  }

  /** The progress line: "40 / 150 rows · 3 cached · 1 failed[ · about 40 s left]". */
  function progressText(p) {
    const eta = formatEta(p.eta);
    return `${p.done} / ${p.total} rows · ${p.cached} cached · ${p.failed} failed${eta ? " · " + eta : ""}`;
  }

  /** Bytes of a value's JSON in UTF-8: what an Excel request carries. */
  function jsonBytes(value) {
    const text = JSON.stringify(value);
    let n = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c < 0x80) n += 1;
      else if (c < 0x800) n += 2;
      else if (c >= 0xd800 && c <= 0xdbff) (n += 4), (i += 1);
      else n += 3;
    }
    return n;
  }

  /** Rows for the next read block: what fits MAX_SYNC_BYTES at the last block's bytes per row, at most double. */
  function nextBlockRows(count, bytes) {
    const perRow = Math.max(1, bytes / count);
    return Math.max(1, Math.min(Math.floor(MAX_SYNC_BYTES / perRow), count * 2, MAX_READ_ROWS));
  }

  /**
   * Cells ({row, text}, any order; `text` an array for a row that spills right) as writes: runs of
   * consecutive rows of one width, grouped into syncs of at most MAX_SYNC_BYTES.
   * Returns [[{row, texts, width}...] per sync].
   */
  function planWrites(cells, maxBytes = MAX_SYNC_BYTES) {
    const sorted = [...cells].sort((a, b) => a.row - b.row);
    const syncs = [];
    let sync = [];
    let bytes = 0;
    let run = null;
    for (const cell of sorted) {
      const size = jsonBytes([cell.text]) + 1;
      if (bytes + size > maxBytes && sync.length) {
        syncs.push(sync);
        sync = [];
        bytes = 0;
        run = null;
      }
      const width = Array.isArray(cell.text) ? Math.max(1, cell.text.length) : 1;
      if (run && cell.row === run.row + run.texts.length && width === run.width) run.texts.push(cell.text);
      else sync.push((run = { row: cell.row, texts: [cell.text], width }));
      bytes += size;
    }
    if (sync.length) syncs.push(sync);
    return syncs;
  }

  function sleep(ms, signal) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      if (signal) signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
    });
  }

  /**
   * The task options a run sends as `defaults`: those the task takes, from the form's strings,
   * checked against the server's limits. Returns {defaults} or {error} (a sentence for the status).
   * @param {Record<string, string>} form the pane's settings
   * @param {import("./client.js").ServerInfo} info
   * @param {(value: unknown) => string[]} parseList client.parseList
   * @returns {{defaults?: Record<string, unknown>, error?: string}}
   */
  function taskOptions(form, info, parseList) {
    const task = info.tasks.find((t) => t.name === form.type);
    if (!task) return { error: `The server has no task "${form.type}": press Test connection to reload its tasks.` };
    if (!task.supported) return { error: `The server's provider (${info.provider || "?"}) cannot do ${form.type}: choose another task.` };
    const takes = new Set([...task.takes, ...task.needs]);
    /** @type {Record<string, unknown>} */
    const defaults = {};
    const instruction = String(form.instruction || "").trim();
    if (takes.has("instruction") && instruction) defaults.instruction = instruction;
    if (task.needs.includes("instruction") && !instruction) return { error: `Write the instruction for ${form.type} first.` };
    if (takes.has("labels")) {
      const labels = parseList(form.labels);
      if (labels.length < 2 || labels.length > info.limits.maxLabels) return { error: `Give 2 to ${info.limits.maxLabels} labels (got ${labels.length}).` };
      defaults.labels = labels;
    }
    if (takes.has("fields")) {
      const fields = parseList(form.fields);
      if (fields.length < 1 || fields.length > info.limits.maxFields) return { error: `Give 1 to ${info.limits.maxFields} fields (got ${fields.length}).` };
      defaults.fields = fields;
    }
    if (takes.has("count") && String(form.count || "").trim() !== "") {
      const count = Number(form.count);
      if (!Number.isInteger(count) || count < 1 || count > info.limits.maxCount) return { error: `How many keywords: a whole number from 1 to ${info.limits.maxCount}.` };
      defaults.count = count;
    }
    if (form.model) {
      if (info.models.length && !info.models.includes(form.model)) return { error: `Model ${form.model} is not allowed by this server: use one of ${info.models.join(", ")}.` };
      defaults.model = form.model;
    }
    return { defaults };
  }

  if (typeof module === "object" && module.exports) {
    module.exports = { planRows, chunks, asCellText, formatEta, formatDuration, formatUsd, estimateText, confirmText, progressText, jsonBytes, nextBlockRows, planWrites, cellValue, taskOptions, CHUNK_ROWS, ERROR_PREFIX, JOB_SETTING };
    return;
  }

  const C = root.FlaskLLMClient;
  /** An element of taskpane.html; typed as an input, which has every property the pane sets. */
  const $ = (id) => /** @type {HTMLInputElement} */ (document.getElementById(id));
  const selectBox = (id) => /** @type {HTMLSelectElement} */ (document.getElementById(id));
  const tuning = { pollMs: POLL_MS, estimateMs: C.DEADLINE_MS, ...(root.FlaskLLMPaneTuning || {}) }; // tests shorten these
  let current = null; // the running work: {controller, done: Promise}
  /** @type {((go: boolean) => void) | null} answers the confirmation on screen, if one is */
  let answerConfirm = null;

  function setStatus(text, kind = "info") {
    $("status").textContent = text;
    $("status").className = text ? kind : "";
  }

  function formSettings() {
    return {
      backendUrl: $("backend-url").value,
      token: $("api-token").value.trim(),
      type: $("task-type").value,
      language: $("language").value,
      instruction: $("instruction").value,
      labels: $("labels").value,
      fields: $("fields").value,
      count: $("count").value.trim(),
      model: $("model").value,
    };
  }

  // ----- What the server can do: tasks, models, limits -----------------------------------------

  let known = { url: "", info: C.serverInfo(null) }; // the last /health read, for this backend URL

  /** The server's tasks, models and limits (GET /health, unauthenticated): the built-ins if it fails. */
  async function serverInfo(settings) {
    if (known.url === settings.backendUrl && known.info.known) return known.info;
    let answer;
    try {
      answer = await C.health(settings, { deadlineMs: 10000 });
    } catch (_) {
      return C.serverInfo(null); // the built-ins; the real request will report what is wrong
    }
    known = { url: settings.backendUrl, info: C.serverInfo(answer) };
    showServerInfo(known.info);
    return known.info;
  }

  /** Rebuild the task and model lists from the server's, keeping the user's choice when it is there. */
  function showServerInfo(info) {
    const option = (value, text, disabled = false) => {
      const o = document.createElement("option");
      o.value = value;
      o.textContent = text;
      o.disabled = disabled;
      return o;
    };
    const task = $("task-type").value;
    const tasks = info.tasks.map((t) => option(t.name, (TASK_LABELS[t.name] || t.name) + (t.supported ? "" : " (not with this server's provider)"), !t.supported));
    selectBox("task-type").replaceChildren(...tasks);
    $("task-type").value = info.tasks.some((t) => t.name === task) ? task : info.tasks[0].name;
    const model = $("model").value;
    const defaultName = info.defaultModel ? `Server default (${info.defaultModel})` : "Server default";
    selectBox("model").replaceChildren(option("", defaultName), ...info.models.map((m) => option(m, m)));
    $("model").value = info.models.includes(model) ? model : "";
    showTaskOptions();
  }

  /** Show the options the chosen task takes (its `takes` in /health), hide the others. */
  function showTaskOptions() {
    const task = known.info.tasks.find((t) => t.name === $("task-type").value);
    const takes = new Set(task ? [...task.takes, ...task.needs] : []);
    for (const name of OPTION_GROUPS) $(`${name}-group`).hidden = !takes.has(name);
    const needs = task && task.needs.includes("instruction") ? "The instruction applies to every row; each row's cell is the text it works on." : "";
    $("task-hint").textContent = task && !task.supported ? "The server's provider cannot do this task." : needs;
  }

  /** "Use selection as labels/fields": the selected cells' values into the box, one per line. */
  async function selectionIntoBox(box) {
    try {
      const values = await root.Excel.run(async (context) => {
        const range = context.workbook.getSelectedRange();
        range.load("values");
        await context.sync();
        return range.values;
      });
      const names = C.parseList(values);
      $(box).value = names.join("\n");
      setStatus(`${names.length} ${box} taken from the selection.`, names.length ? "ok" : "error");
    } catch (err) {
      setStatus(`Could not read the selection: ${err.message}`, "error");
    }
  }

  /** Persist what the form shows: every action uses exactly what the user sees. */
  function saveForm() {
    const settings = formSettings();
    if (!/^https?:\/\/[^\s/]+/i.test(settings.backendUrl.trim())) {
      throw new Error("Backend URL must start with https:// (or http:// for a local server)");
    }
    return C.saveSettings(settings);
  }

  async function testConnection() {
    let settings;
    try {
      settings = saveForm();
    } catch (err) {
      return setStatus(err.message, "error");
    }
    setStatus("Testing the connection…");
    try {
      const info = await C.health(settings, { deadlineMs: 10000 });
      known = { url: settings.backendUrl, info: C.serverInfo(info) };
      showServerInfo(known.info);
      const server = `FlaskLLM ${info.version || "?"} (provider ${info.provider || "?"})`;
      const token = await C.checkToken(settings, { deadlineMs: 10000 });
      if (token.ok) setStatus(`Connected to ${server}. ${token.message}.`, "ok");
      else setStatus(`Reached ${server}, but: ${token.message.toLowerCase()}.`, "error");
    } catch (err) {
      setStatus(`Connection failed: ${err.message}`, "error");
    }
  }

  // ----- The job record in the document's settings -------------------------------------------

  /** Office.context.document.settings, or null where the host has none. */
  function documentSettings() {
    const office = root.Office;
    const doc = office && office.context && office.context.document;
    return doc && doc.settings ? doc.settings : null;
  }

  /** The stored job record, or null. Unreadable settings count as none. */
  function loadJobRecord() {
    const store = documentSettings();
    if (!store) return null;
    try {
      const record = store.get(JOB_SETTING);
      return record && typeof record === "object" && record.id ? record : null;
    } catch (_) {
      return null;
    }
  }

  /** saveAsync as a promise that always resolves: a record that fails to persist only costs the resume. */
  function persist(store) {
    return new Promise((resolve) => {
      try {
        store.saveAsync((result) => resolve(!result || result.status !== "failed"));
      } catch (_) {
        resolve(false);
      }
    });
  }

  function saveJobRecord(record) {
    const store = documentSettings();
    if (!store) return Promise.resolve(false);
    store.set(JOB_SETTING, record);
    return persist(store);
  }

  function clearJobRecord() {
    const store = documentSettings();
    if (!store) return Promise.resolve(false);
    store.remove(JOB_SETTING);
    return persist(store);
  }

  // ----- Reading and writing the sheet ---------------------------------------------------------

  /** The selection's first column, trimmed to the used range, and the column to its right. */
  function readSelection() {
    return root.Excel.run(async (context) => {
      const selection = context.workbook.getSelectedRange();
      selection.load("address,rowIndex,columnIndex,rowCount,columnCount");
      const sheet = selection.worksheet;
      sheet.load("name");
      const used = sheet.getUsedRangeOrNullObject(true);
      used.load("rowIndex,rowCount");
      await context.sync();
      const base = { sheet: sheet.name, address: selection.address, column: selection.columnIndex, wide: selection.columnCount > 1 };
      const first = used.isNullObject ? 0 : Math.max(selection.rowIndex, used.rowIndex);
      const end = used.isNullObject ? 0 : Math.min(selection.rowIndex + selection.rowCount, used.rowIndex + used.rowCount);
      const columns = await readColumns(context, sheet, first, Math.max(0, end - first), selection.columnIndex);
      return { ...base, firstRow: first, ...columns };
    });
  }

  /** `count` rows of a column and the one to its right, in blocks of bounded bytes. */
  async function readColumns(context, sheet, first, count, column) {
    const inputs = [];
    const outputs = [];
    let size = FIRST_READ_ROWS;
    for (let top = 0; top < count; ) {
      const n = Math.min(size, count - top);
      const input = sheet.getRangeByIndexes(first + top, column, n, 1);
      const output = input.getOffsetRange(0, 1);
      input.load("values");
      output.load("values");
      try {
        await context.sync();
      } catch (err) {
        if (n > 1 && /payload|size|limit/i.test(`${err.code} ${err.message}`)) {
          size = Math.ceil(n / 2); // Excel refused the response: the same rows in smaller blocks
          continue;
        }
        throw err;
      }
      input.values.forEach((r) => inputs.push(r[0]));
      output.values.forEach((r) => outputs.push(r[0]));
      top += n;
      size = nextBlockRows(n, jsonBytes(input.values) + jsonBytes(output.values));
    }
    return { inputs, outputs };
  }

  /** Write cells ({row, text}) into the column right of `column`: runs of rows, syncs under 4 MB. */
  function writeCells(sheetName, column, cells) {
    if (!cells.length) return Promise.resolve();
    return root.Excel.run(async (context) => {
      const sheet = context.workbook.worksheets.getItem(sheetName);
      for (const sync of planWrites(cells)) {
        for (const run of sync) {
          const rows = run.texts.map((t) => (Array.isArray(t) ? (t.length ? t : [""]) : [t]).map(asCellText));
          sheet.getRangeByIndexes(run.row, column + 1, run.texts.length, run.width).values = rows;
        }
        await context.sync();
      }
    });
  }

  function showProgress(p) {
    const bar = /** @type {HTMLProgressElement} */ (document.getElementById("progress"));
    bar.max = Math.max(p.total, 1);
    bar.value = p.done;
    $("progress-text").textContent = progressText(p);
  }

  // ----- Shared by both paths ------------------------------------------------------------------

  /**
   * Call `fn`; on 429 wait Retry-After and call it again. Throws what ends the run, a used-up
   * budget at once: its Retry-After is the time until the budget resets.
   */
  async function withRateLimit(fn, signal) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err.kind === "http" && err.status === 429 && !err.budgetExceeded && attempt < MAX_RATE_LIMIT_WAITS)) throw err;
        const wait = Math.min(err.retryAfter ?? 5, 60);
        setStatus(`Rate limited: waiting ${wait} s before going on…`);
        await sleep(wait * 1000, signal);
        if (signal && signal.aborted) throw new C.ApiError("Cancelled", { kind: "cancelled" });
      }
    }
  }

  function rowItem(settings, sel, i) {
    const item = { id: String(sel.firstRow + i + 1), prompt: String(sel.inputs[i]), type: settings.type };
    if (settings.language) item.language = settings.language;
    return item;
  }

  /** Set up the running-work state and the buttons; `finishWork` undoes it. */
  function startWork() {
    const work = { controller: new AbortController(), done: null };
    current = work;
    $("process").disabled = true;
    $("cancel").disabled = false;
    return work;
  }

  function finishWork(work) {
    if (current === work) current = null;
    $("process").disabled = false;
    $("cancel").disabled = true;
  }

  /** Run `body(work)` as the pane's current work; every failure ends in a status line. */
  function runWork(body) {
    const work = startWork();
    work.done = (async () => {
      try {
        await body(work);
      } catch (err) {
        setStatus(`Stopped: ${err.message}`, "error");
      } finally {
        finishWork(work);
      }
    })();
    return work.done;
  }

  // ----- The /batch path -----------------------------------------------------------------------

  /** Send one chunk; on 429 wait Retry-After and try again. Throws only errors that end the run. */
  async function sendChunk(settings, items, defaults, signal) {
    try {
      return await withRateLimit(() => C.postBatch(settings, items, { signal, defaults }), signal);
    } catch (err) {
      const fatal = ["network", "format", "cancelled"].includes(err.kind) || [401, 404, 429].includes(err.status);
      if (fatal || !(err instanceof C.ApiError)) throw err;
      return { failedWith: err.message }; // this chunk's rows get the error; the run goes on
    }
  }

  /** The cell text for row offset `i`, the k-th row of a chunk's `answer`; counts it in `progress`. */
  function cellFor(sel, i, answer, k, progress) {
    const row = answer.results && answer.results[k];
    if (row && row.ok) {
      if (row.cached) progress.cached += 1;
      return { row: sel.firstRow + i, text: cellValue(row, C.rowText) };
    }
    progress.failed += 1;
    const message = answer.failedWith || (row && row.error && row.error.message) || "failed";
    return { row: sel.firstRow + i, text: ERROR_PREFIX + message };
  }

  async function runBatches(settings, sel, rows, defaults, controller) {
    const progress = { done: 0, total: rows.length, cached: 0, failed: 0 };
    showProgress(progress);
    const queue = chunks(rows, CHUNK_ROWS);
    /** @type {any} */
    let fatal = null; // the first error that ends the run
    let budget = ""; // the server's message once a row failed for a used-up budget: no more chunks go out
    const worker = async () => {
      try {
        while (queue.length && !controller.signal.aborted && !budget) {
          const offsets = queue.shift();
          const answer = await sendChunk(settings, offsets.map((i) => rowItem(settings, sel, i)), defaults, controller.signal);
          // Written even if Cancel was pressed meanwhile: these rows are done and paid for.
          await writeCells(sel.sheet, sel.column, offsets.map((i, k) => cellFor(sel, i, answer, k, progress)));
          const spent = (answer.results || []).find(C.isBudgetRow);
          if (spent) budget = budget || clause(spent.error.message || "The API token's budget is used up");
          progress.done += offsets.length;
          showProgress(progress);
        }
      } catch (err) {
        if (err.kind !== "cancelled") fatal = fatal || err;
        controller.abort(); // one worker's fatal error stops the other
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, worker));
    const where = `${progress.done} of ${progress.total} rows`;
    if (fatal) {
      const later = fatal.budgetExceeded ? ". Rows not sent stay empty: run again once the budget resets." : "";
      const message = later ? clause(fatal.message) : fatal.message;
      setStatus(`Stopped after ${where}: ${message}${later}`, "error");
    } else if (budget) {
      setStatus(`Stopped after ${where}: ${budget}. Rows marked ERROR and rows not sent are retried by the next run, once the budget resets.`, "error");
    } else if (controller.signal.aborted) {
      setStatus(`Cancelled after ${where}. Run again to continue: filled rows are skipped.`, "info");
    } else {
      const failed = progress.failed ? `, ${progress.failed} failed (their cells say ERROR)` : "";
      setStatus(`Done: ${progress.done} rows, ${progress.cached} from the cache${failed}.`, progress.failed ? "error" : "ok");
    }
  }

  // ----- The job path --------------------------------------------------------------------------

  /**
   * POST a job. The Idempotency-Key hashes the target, the task, the rows and a per-run nonce: a
   * POST retried after a timeout or a lost answer attaches to the job it made instead of starting a
   * second one, while pressing Process again is a new run with a new job (the earlier job's failed
   * rows must be retried, not handed back).
   */
  async function submitJob(settings, sel, items, defaults, nonce, signal) {
    const parts = ["pane", sel.sheet, sel.column, settings.type, settings.language, JSON.stringify(defaults), nonce];
    for (const item of items) parts.push(item.id, item.prompt);
    const idempotencyKey = C.idempotencyKey("pane", parts);
    for (let attempt = 0; ; attempt++) {
      try {
        return await withRateLimit(() => C.postJob(settings, items, { idempotencyKey, defaults, signal }), signal);
      } catch (err) {
        if (!["timeout", "network"].includes(err.kind) || attempt >= 2) throw err;
        setStatus("No answer from the server: sending the job again (it will not run twice)…");
      }
    }
  }

  async function runJobs(settings, sel, rows, defaults, limits, work) {
    const parts = chunks(rows, limits.jobMax);
    const nonce = `${Date.now().toString(36)}.${Math.random().toString(36).slice(2)}`;
    for (let k = 0; k < parts.length; k++) {
      const items = parts[k].map((i) => rowItem(settings, sel, i));
      const of = parts.length > 1 ? ` (job ${k + 1} of ${parts.length})` : "";
      setStatus(`Submitting ${items.length} rows of ${sel.address} as a server job${of}…`);
      let job;
      try {
        ({ job } = await submitJob(settings, sel, items, defaults, nonce, work.controller.signal));
      } catch (err) {
        if (err.budgetExceeded) return setStatus(`Not submitted: ${clause(err.message)}. Run again once the budget resets: filled rows are skipped.`, "error");
        if (err.kind !== "cancelled") throw err;
        return setStatus("Cancelled before the job was submitted. Run again to continue: filled rows are skipped.", "info");
      }
      const record = {
        id: String(job.id),
        backendUrl: settings.backendUrl,
        sheet: sel.sheet,
        column: sel.column,
        address: sel.address,
        type: settings.type,
        language: settings.language,
        total: items.length,
        after: null,
        part: k + 1,
        parts: parts.length,
      };
      await saveJobRecord(record);
      const outcome = await followJob(settings, record, work);
      if (outcome !== "done" || record.budget) return; // a used-up budget: the next parts would fail too
    }
  }

  /**
   * Poll the job and write its results page by page from `record.after` on, keeping the record's
   * cursor in the document so a reopened pane continues there. Resolves with "done", "cancelled"
   * or "stopped"; the status line says what happened.
   */
  async function followJob(settings, record, work) {
    const signal = work.controller.signal;
    setStatus(`Processing ${record.total} rows of ${record.address} as server job ${record.id}…`);
    try {
      for (;;) {
        if (signal.aborted) return await cancelJob(settings, record);
        const page = await withRateLimit(() => C.getJobResults(settings, record.id, record.after, PAGE_ROWS, { signal }), signal);
        if (page.results.length) await writePage(record, page.results);
        if (page.next === null) break;
        if (page.results.length < PAGE_ROWS) {
          const job = await withRateLimit(() => C.getJob(settings, record.id, { signal }), signal);
          showJobProgress(job);
          await sleep(tuning.pollMs, signal);
        }
      }
    } catch (err) {
      if (err.kind === "cancelled" || signal.aborted) return await cancelJob(settings, record);
      if (err.status === 404) {
        await clearJobRecord();
        setStatus(`Stopped: ${err.message}. Run again to process the rows still empty.`, "error");
        return "stopped";
      }
      setStatus(`Stopped: ${err.message}. Press Process selection, or reopen the pane, to resume job ${record.id}.`, "error");
      return "stopped";
    }
    return finishJob(settings, record);
  }

  /** Write a page of finished rows and move the stored cursor past them. */
  async function writePage(record, results) {
    const cells = [];
    for (const row of results) {
      const at = Number(row.id) - 1;
      if (!Number.isInteger(at) || at < 0) continue;
      if (row.ok) cells.push({ row: at, text: cellValue(row, C.rowText) });
      else if (!(row.error && row.error.code === "cancelled")) {
        cells.push({ row: at, text: ERROR_PREFIX + ((row.error && row.error.message) || "failed") });
        if (C.isBudgetRow(row) && !record.budget) record.budget = row.error.message || "The API token's budget is used up";
      } // a cancelled row stays empty: the next run picks it up
    }
    await writeCells(record.sheet, record.column, cells);
    record.after = Math.max(record.after ?? -1, ...results.map((r) => r.index));
    await saveJobRecord(record);
  }

  function showJobProgress(job) {
    showProgress({ done: job.done, total: job.total, cached: job.cached, failed: job.failed, eta: job.eta_seconds });
  }

  async function finishJob(settings, record) {
    let job = null;
    try {
      job = await C.getJob(settings, record.id, { deadlineMs: 10000 });
      showJobProgress({ ...job, eta_seconds: null });
    } catch (_) {
      /* the counts are a nicety; the rows are written */
    }
    await clearJobRecord();
    const done = job ? job.done : record.total;
    const cached = job ? job.cached : 0;
    const failedCount = job ? job.failed : 0;
    const failed = failedCount ? `, ${failedCount} failed (their cells say ERROR)` : "";
    const cancelled = job && job.status === "cancelled" ? " The job was cancelled: run again for the rows still empty." : "";
    const budget = record.budget ? ` ${clause(record.budget)}: run again once the budget resets to retry the rows marked ERROR.` : "";
    setStatus(`Done: ${done} rows, ${cached} from the cache${failed}.${cancelled}${budget}`, failedCount || cancelled || budget ? "error" : "ok");
    return "done";
  }

  /** Cancel: DELETE the job, write the rows that had finished, forget the job. No more polling. */
  async function cancelJob(settings, record) {
    setStatus(`Cancelling job ${record.id}…`);
    let job = null;
    try {
      job = await C.cancelJob(settings, record.id, { deadlineMs: 10000 });
      for (let more = true; more; ) {
        const page = await C.getJobResults(settings, record.id, record.after, PAGE_ROWS, { deadlineMs: 10000 });
        if (page.results.length) await writePage(record, page.results);
        more = page.results.length === PAGE_ROWS;
      }
    } catch (err) {
      if (!job) {
        setStatus(`Could not cancel job ${record.id}: ${err.message}. Press Cancel again, or reopen the pane to resume it.`, "error");
        return "stopped";
      }
    }
    await clearJobRecord();
    if (job) showJobProgress({ ...job, eta_seconds: null });
    setStatus(`Cancelled job ${record.id}; rows it had finished are written. Run again to continue: filled rows are skipped.`, "info");
    return "cancelled";
  }

  /** Pick up the job stored in this document: show it, then poll and write the rest. */
  function resumeStoredJob(record) {
    const settings = C.loadSettings();
    if (!settings.token) {
      setStatus(`A job for ${record.address} is stored in this workbook: set your API token, Save, then press Process selection to resume it.`, "error");
      return Promise.resolve();
    }
    const target = { ...settings, backendUrl: record.backendUrl || settings.backendUrl };
    return runWork(async (work) => {
      setStatus(`Resuming job ${record.id} for ${record.address} (${record.type})…`);
      showProgress({ done: 0, total: record.total, cached: 0, failed: 0 });
      const outcome = await followJob(target, record, work);
      if (outcome === "done" && record.part < record.parts) {
        setStatus(`${$("status").textContent} Press Process selection for the remaining rows of the selection.`, $("status").className);
      }
    });
  }

  // ----- The cost estimate and the go-ahead ----------------------------------------------------

  /**
   * The estimate for the rows a run will send: exactly the items and defaults of its requests, one
   * estimate per job-sized part (the endpoint takes what one job takes), combined. null when the
   * server has no estimate endpoint (an older server); other failures reject.
   * @returns {Promise<import("./client.js").Estimate | null>}
   */
  async function estimateRun(settings, sel, rows, defaults, limits, signal) {
    const found = [];
    for (const part of chunks(rows, limits.jobMax)) {
      const items = part.map((i) => rowItem(settings, sel, i));
      const e = await withRateLimit(() => C.estimate(settings, items, defaults, { signal, deadlineMs: tuning.estimateMs }), signal);
      if (e === null) return null;
      found.push(e);
    }
    return C.combineEstimates(found);
  }

  /** The estimate line under the buttons; hidden when there is none. */
  function showEstimate(estimate) {
    $("estimate").textContent = estimate ? estimateText(estimate) : "";
    $("estimate").hidden = !estimate;
  }

  /**
   * Show the question with Run and Cancel in the pane (an add-in has no window.confirm) and resolve
   * with the answer: true for Run; false for Cancel, or when the pane's Cancel aborts `signal`.
   */
  function askToRun(text, signal) {
    return new Promise((resolve) => {
      const onAbort = () => done(false);
      const done = (go) => {
        answerConfirm = null;
        $("confirm").hidden = true;
        signal.removeEventListener("abort", onAbort);
        resolve(go);
      };
      if (signal.aborted) return done(false);
      signal.addEventListener("abort", onAbort, { once: true });
      $("confirm-text").textContent = text;
      $("confirm").hidden = false;
      answerConfirm = done;
      const run = $("confirm-run");
      if (typeof run.focus === "function") run.focus();
    });
  }

  /**
   * Estimate the run, show the estimate, and ask when the server says to. Resolves with true to go
   * on; false with the status saying why not (nothing was sent).
   */
  async function approveRun(settings, sel, rows, defaults, limits, work) {
    const signal = work.controller.signal;
    setStatus(`Estimating the cost of ${rows.length} rows…`);
    let estimate;
    try {
      estimate = await estimateRun(settings, sel, rows, defaults, limits, signal);
    } catch (err) {
      if (err.kind === "cancelled" || signal.aborted) setStatus("Cancelled: nothing was sent.", "info");
      else setStatus(`Not run: the cost estimate failed: ${err.message}`, "error");
      return false;
    }
    showEstimate(estimate);
    if (!estimate || !estimate.confirm) return true;
    setStatus("Waiting for your go-ahead: Run or Cancel.", "info");
    const go = await askToRun(confirmText(estimate), signal);
    if (!go) setStatus("Not run: nothing was sent. Press Process selection to see the estimate again.", "info");
    return go;
  }

  // ----- The button ----------------------------------------------------------------------------

  async function processSelection() {
    let settings;
    try {
      settings = saveForm();
    } catch (err) {
      return setStatus(err.message, "error");
    }
    if (!settings.token) return setStatus("Set your API token first, then Save.", "error");
    const stored = loadJobRecord();
    if (stored) return resumeStoredJob(stored); // finish the stored job before starting another
    showEstimate(null);
    return runWork(async (work) => {
      const info = await serverInfo(settings);
      const { defaults, error } = taskOptions(settings, info, C.parseList);
      if (error) return setStatus(error, "error");
      setStatus("Reading the selection…");
      const sel = await readSelection();
      const rows = planRows(sel.inputs, sel.outputs, $("skip-filled").checked);
      showProgress({ done: 0, total: rows.length, cached: 0, failed: 0 });
      if (!rows.length) return setStatus(sel.inputs.length ? "Nothing to do: every row is filled or empty." : "The selection has no data.", "info");
      if (!(await approveRun(settings, sel, rows, defaults, info.limits, work))) return;
      setStatus(`Processing ${rows.length} rows of ${sel.address}${sel.wide ? " (first column only)" : ""}…`);
      if (rows.length > info.limits.batchMax) await runJobs(settings, sel, rows, defaults, info.limits, work);
      else await runBatches(settings, sel, rows, defaults, work.controller);
    });
  }

  function cancel() {
    if (current) current.controller.abort();
    setStatus("Cancelling…");
  }

  function init(inOffice) {
    const settings = C.loadSettings();
    $("backend-url").value = settings.backendUrl;
    $("api-token").value = settings.token;
    $("task-type").value = settings.type;
    $("language").value = settings.language;
    for (const name of ["instruction", "labels", "fields", "count"]) $(name).value = settings[name];
    $("task-type").addEventListener("change", showTaskOptions);
    $("labels-from-selection").addEventListener("click", () => selectionIntoBox("labels"));
    $("fields-from-selection").addEventListener("click", () => selectionIntoBox("fields"));
    showTaskOptions();
    $("save-settings").addEventListener("click", () => {
      try {
        saveForm();
        setStatus("Settings saved.", "ok");
      } catch (err) {
        setStatus(err.message, "error");
      }
    });
    $("test-connection").addEventListener("click", testConnection);
    $("process").addEventListener("click", processSelection);
    $("cancel").addEventListener("click", cancel);
    $("confirm-run").addEventListener("click", () => answerConfirm && answerConfirm(true));
    $("confirm-cancel").addEventListener("click", () => answerConfirm && answerConfirm(false));
    $("office-missing").hidden = inOffice;
    $("process").disabled = !inOffice;
    const stored = inOffice ? loadJobRecord() : null;
    if (stored) resumeStoredJob(stored);
    if (settings.backendUrl) serverInfo(settings).then(() => ($("model").value = settings.model || $("model").value)); // the server's tasks and models; quiet if it is down
  }

  /** For tests and the e2e suite: a promise for the pane's current work (resolved when idle). */
  root.FlaskLLMPane = { idle: () => (current && current.done) || Promise.resolve() };

  if (root.Office && root.Office.onReady) root.Office.onReady((info) => init(Boolean(info && info.host)));
  else document.addEventListener("DOMContentLoaded", () => init(false));
})(globalThis);
