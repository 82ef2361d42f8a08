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
  const DEFAULT_LIMITS = { batchMax: 100, jobMax: 5000 }; // when /health does not say

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

  /** eta_seconds as words: "about 40 s left", "about 3 min left"; "" when the server has no estimate. */
  function formatEta(seconds) {
    if (typeof seconds !== "number" || !(seconds >= 0)) return "";
    if (seconds < 10) return `about ${Math.max(1, Math.round(seconds))} s left`;
    if (seconds < 60) return `about ${Math.round(seconds / 5) * 5} s left`;
    if (seconds < 3600) return `about ${Math.round(seconds / 60)} min left`;
    return `about ${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min left`;
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
   * Cells ({row, text}, any order) as writes: runs of consecutive rows, grouped into syncs of at most
   * MAX_SYNC_BYTES. Returns [[{row, texts}...] per sync].
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
      if (run && cell.row === run.row + run.texts.length) run.texts.push(cell.text);
      else sync.push((run = { row: cell.row, texts: [cell.text] }));
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

  if (typeof module === "object" && module.exports) {
    module.exports = { planRows, chunks, asCellText, formatEta, progressText, jsonBytes, nextBlockRows, planWrites, CHUNK_ROWS, ERROR_PREFIX, JOB_SETTING };
    return;
  }

  const C = root.FlaskLLMClient;
  const $ = (id) => document.getElementById(id);
  const tuning = { pollMs: POLL_MS, ...(root.FlaskLLMPaneTuning || {}) }; // tests shorten the poll
  let current = null; // the running work: {controller, done: Promise}

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
    };
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
          sheet.getRangeByIndexes(run.row, column + 1, run.texts.length, 1).values = run.texts.map((t) => [asCellText(t)]);
        }
        await context.sync();
      }
    });
  }

  function showProgress(p) {
    $("progress").max = Math.max(p.total, 1);
    $("progress").value = p.done;
    $("progress-text").textContent = progressText(p);
  }

  // ----- Shared by both paths ------------------------------------------------------------------

  /** Call `fn`; on 429 wait Retry-After and call it again. Throws what ends the run. */
  async function withRateLimit(fn, signal) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err.kind === "http" && err.status === 429 && attempt < MAX_RATE_LIMIT_WAITS)) throw err;
        const wait = Math.min(err.retryAfter ?? 5, 60);
        setStatus(`Rate limited: waiting ${wait} s before going on…`);
        await sleep(wait * 1000, signal);
        if (signal && signal.aborted) throw new C.ApiError("Cancelled", { kind: "cancelled" });
      }
    }
  }

  /** The limits this server reports in /health (unauthenticated, cheap), or the defaults. */
  async function serverLimits(settings) {
    try {
      const info = await C.health(settings, { deadlineMs: 10000 });
      const positive = (n, fallback) => (Number.isInteger(n) && n > 0 ? n : fallback);
      return { batchMax: positive(info.batch_max_items, DEFAULT_LIMITS.batchMax), jobMax: positive(info.job_max_items, DEFAULT_LIMITS.jobMax) };
    } catch (_) {
      return { ...DEFAULT_LIMITS }; // the real request will report what is wrong
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
  async function sendChunk(settings, items, signal) {
    try {
      return await withRateLimit(() => C.postBatch(settings, items, { signal }), signal);
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
      return { row: sel.firstRow + i, text: C.rowText(row) };
    }
    progress.failed += 1;
    const message = answer.failedWith || (row && row.error && row.error.message) || "failed";
    return { row: sel.firstRow + i, text: ERROR_PREFIX + message };
  }

  async function runBatches(settings, sel, rows, controller) {
    const progress = { done: 0, total: rows.length, cached: 0, failed: 0 };
    showProgress(progress);
    const queue = chunks(rows, CHUNK_ROWS);
    let fatal = null;
    const worker = async () => {
      try {
        while (queue.length && !controller.signal.aborted) {
          const offsets = queue.shift();
          const answer = await sendChunk(settings, offsets.map((i) => rowItem(settings, sel, i)), controller.signal);
          // Written even if Cancel was pressed meanwhile: these rows are done and paid for.
          await writeCells(sel.sheet, sel.column, offsets.map((i, k) => cellFor(sel, i, answer, k, progress)));
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
      setStatus(`Stopped after ${where}: ${fatal.message}`, "error");
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
  async function submitJob(settings, sel, items, nonce, signal) {
    const parts = ["pane", sel.sheet, sel.column, settings.type, settings.language, nonce];
    for (const item of items) parts.push(item.id, item.prompt);
    const idempotencyKey = C.idempotencyKey("pane", parts);
    for (let attempt = 0; ; attempt++) {
      try {
        return await withRateLimit(() => C.postJob(settings, items, { idempotencyKey, signal }), signal);
      } catch (err) {
        if (!["timeout", "network"].includes(err.kind) || attempt >= 2) throw err;
        setStatus("No answer from the server: sending the job again (it will not run twice)…");
      }
    }
  }

  async function runJobs(settings, sel, rows, limits, work) {
    const parts = chunks(rows, limits.jobMax);
    const nonce = `${Date.now().toString(36)}.${Math.random().toString(36).slice(2)}`;
    for (let k = 0; k < parts.length; k++) {
      const items = parts[k].map((i) => rowItem(settings, sel, i));
      const of = parts.length > 1 ? ` (job ${k + 1} of ${parts.length})` : "";
      setStatus(`Submitting ${items.length} rows of ${sel.address} as a server job${of}…`);
      let job;
      try {
        ({ job } = await submitJob(settings, sel, items, nonce, work.controller.signal));
      } catch (err) {
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
      if (outcome !== "done") return;
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
      if (row.ok) cells.push({ row: at, text: C.rowText(row) });
      else if (!(row.error && row.error.code === "cancelled")) {
        cells.push({ row: at, text: ERROR_PREFIX + ((row.error && row.error.message) || "failed") });
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
    setStatus(`Done: ${done} rows, ${cached} from the cache${failed}.${cancelled}`, failedCount || cancelled ? "error" : "ok");
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
    return runWork(async (work) => {
      setStatus("Reading the selection…");
      const sel = await readSelection();
      const rows = planRows(sel.inputs, sel.outputs, $("skip-filled").checked);
      showProgress({ done: 0, total: rows.length, cached: 0, failed: 0 });
      if (!rows.length) return setStatus(sel.inputs.length ? "Nothing to do: every row is filled or empty." : "The selection has no data.", "info");
      const limits = await serverLimits(settings);
      setStatus(`Processing ${rows.length} rows of ${sel.address}${sel.wide ? " (first column only)" : ""}…`);
      if (rows.length > limits.batchMax) await runJobs(settings, sel, rows, limits, work);
      else await runBatches(settings, sel, rows, work.controller);
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
    $("office-missing").hidden = inOffice;
    $("process").disabled = !inOffice;
    const stored = inOffice ? loadJobRecord() : null;
    if (stored) resumeStoredJob(stored);
  }

  /** For tests and the e2e suite: a promise for the pane's current work (resolved when idle). */
  root.FlaskLLMPane = { idle: () => (current && current.done) || Promise.resolve() };

  if (root.Office && root.Office.onReady) root.Office.onReady((info) => init(Boolean(info && info.host)));
  else document.addEventListener("DOMContentLoaded", () => init(false));
})(typeof globalThis !== "undefined" ? globalThis : this);
