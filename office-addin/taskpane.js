/**
 * FlaskLLM task pane: settings, a connection test, and "Process selection".
 *
 * Processing reads the selection's first column once, sends its non-empty rows in chunks of
 * CHUNK_ROWS through /api/v1/batch (WORKERS chunks at a time) and writes each chunk's results into
 * the column to the right as soon as it arrives, so a long run shows progress, survives a failed
 * row ("ERROR: message" in its cell) and can be cancelled. With "skip filled" on, a second run
 * resumes where the first stopped: filled rows are skipped, ERROR rows are retried.
 *
 * The pure helpers at the top are exported to Node for unit tests; the DOM part runs in a page only.
 */
(function (root) {
  "use strict";

  const CHUNK_ROWS = 20;
  const WORKERS = 2;
  const MAX_RATE_LIMIT_WAITS = 5;
  const ERROR_PREFIX = "ERROR: ";

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

  function sleep(ms, signal) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      if (signal) signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
    });
  }

  if (typeof module === "object" && module.exports) {
    module.exports = { planRows, chunks, asCellText, CHUNK_ROWS, ERROR_PREFIX };
    return;
  }

  const C = root.FlaskLLMClient;
  const $ = (id) => document.getElementById(id);
  let current = null; // the running job: {controller}

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
      const base = { sheet: sheet.name, address: selection.address, column: selection.columnIndex };
      const first = used.isNullObject ? 0 : Math.max(selection.rowIndex, used.rowIndex);
      const end = used.isNullObject ? 0 : Math.min(selection.rowIndex + selection.rowCount, used.rowIndex + used.rowCount);
      if (end <= first) return { ...base, firstRow: 0, inputs: [], outputs: [], wide: false };
      const input = sheet.getRangeByIndexes(first, selection.columnIndex, end - first, 1);
      const output = input.getOffsetRange(0, 1);
      input.load("values");
      output.load("values");
      await context.sync();
      return {
        ...base,
        firstRow: first,
        inputs: input.values.map((r) => r[0]),
        outputs: output.values.map((r) => r[0]),
        wide: selection.columnCount > 1,
      };
    });
  }

  function writeCells(sheetName, column, cells) {
    return root.Excel.run(async (context) => {
      const sheet = context.workbook.worksheets.getItem(sheetName);
      for (const { row, text } of cells) sheet.getRangeByIndexes(row, column + 1, 1, 1).values = [[asCellText(text)]];
      await context.sync();
    });
  }

  function showProgress(p) {
    $("progress").max = Math.max(p.total, 1);
    $("progress").value = p.done;
    $("progress-text").textContent = `${p.done} / ${p.total} rows · ${p.cached} cached · ${p.failed} failed`;
  }

  /** Send one chunk; on 429 wait Retry-After and try again. Throws only errors that end the run. */
  async function sendChunk(settings, items, signal) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await C.postBatch(settings, items, { signal });
      } catch (err) {
        if (err.kind === "http" && err.status === 429 && attempt < MAX_RATE_LIMIT_WAITS) {
          const wait = Math.min(err.retryAfter ?? 5, 60);
          setStatus(`Rate limited: waiting ${wait} s before going on…`);
          await sleep(wait * 1000, signal);
          if (signal.aborted) throw new C.ApiError("Cancelled", { kind: "cancelled" });
          continue;
        }
        const fatal = ["network", "format", "cancelled"].includes(err.kind) || [401, 404, 429].includes(err.status);
        if (fatal || !(err instanceof C.ApiError)) throw err;
        return { failedWith: err.message }; // this chunk's rows get the error; the run goes on
      }
    }
  }

  function rowItem(settings, sel, i) {
    const item = { id: String(sel.firstRow + i + 1), prompt: String(sel.inputs[i]), type: settings.type };
    if (settings.language) item.language = settings.language;
    return item;
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

  async function processSelection() {
    let settings;
    try {
      settings = saveForm();
    } catch (err) {
      return setStatus(err.message, "error");
    }
    if (!settings.token) return setStatus("Set your API token first, then Save.", "error");
    const controller = new AbortController();
    current = { controller };
    $("process").disabled = true;
    $("cancel").disabled = false;
    const progress = { done: 0, total: 0, cached: 0, failed: 0 };
    try {
      setStatus("Reading the selection…");
      const sel = await readSelection();
      const rows = planRows(sel.inputs, sel.outputs, $("skip-filled").checked);
      progress.total = rows.length;
      showProgress(progress);
      if (!rows.length) return setStatus(sel.inputs.length ? "Nothing to do: every row is filled or empty." : "The selection has no data.", "info");
      setStatus(`Processing ${rows.length} rows of ${sel.address}${sel.wide ? " (first column only)" : ""}…`);
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
    } catch (err) {
      setStatus(`Stopped: ${err.message}`, "error"); // reading the selection failed
    } finally {
      current = null;
      $("process").disabled = false;
      $("cancel").disabled = true;
    }
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
  }

  if (root.Office && root.Office.onReady) root.Office.onReady((info) => init(Boolean(info && info.host)));
  else document.addEventListener("DOMContentLoaded", () => init(false));
})(typeof globalThis !== "undefined" ? globalThis : this);
