/**
 * FlaskLLM: process one column of the active sheet into the next column (Excel > Automate).
 *
 * Reads the input column, the output column to its right and a status column after that with one
 * getValues(), sends the rows in chunks through /api/v1/batch and writes each chunk back with
 * setValues() as soon as it arrives. A run that stops (Office Scripts have a time limit, or the
 * server refused) is resumed by running the script again: rows with an output and no status are
 * skipped, rows whose status holds an error are retried.
 *
 * Runs from Excel (on the web or desktop). Not under Power Automate: scripts there cannot fetch.
 * Self-contained on purpose: an Office Script cannot import, so ProcessTableColumn.ts repeats the
 * few helpers below.
 */

// ----- Settings: edit these ------------------------------------------------------------------
const API_URL = "https://your-flaskllm-server.example.com"; // the FlaskLLM server, no /api/v1
const API_TOKEN = "paste-your-api-token-here";
const INPUT_COLUMN = "A"; // the texts; results go to the next column, errors to the one after
const HEADER_ROWS = 1; // rows above the data
const TASK_TYPE = "summary"; // summary, keywords, sentiment, entities, translation or custom
const LANGUAGE = ""; // ISO 639-1 target language, e.g. "de" (needed for translation)
const CHUNK_SIZE = 20; // rows per request: small enough to finish well inside a minute
// ------------------------------------------------------------------------------------------------

interface BatchItem {
  id: string;
  prompt: string;
  type: string;
  language?: string;
}

interface ApiError {
  code: string;
  message: string;
}

interface BatchRow {
  index: number;
  ok: boolean;
  summary?: string;
  cached?: boolean;
  error?: ApiError;
}

interface BatchResponse {
  results: BatchRow[];
}

interface ErrorResponse {
  error?: ApiError;
}

/** Per row: the text for the output cell and for the status cell ("" when it worked). */
interface RowOutcome {
  output: string;
  status: string;
}

/** A chunk's outcomes, and why the run must stop (wrong token, server unreachable), if it must. */
interface ChunkOutcome {
  rows: RowOutcome[];
  fatal: string;
}

async function main(workbook: ExcelScript.Workbook): Promise<void> {
  const sheet = workbook.getActiveWorksheet();
  const used = sheet.getUsedRange(true);
  if (!used) {
    console.log("The sheet is empty.");
    return;
  }
  const column = columnIndex(INPUT_COLUMN);
  const end = used.getRowIndex() + used.getRowCount();
  if (end <= HEADER_ROWS) {
    console.log("No data rows below the header.");
    return;
  }
  const block = sheet.getRangeByIndexes(HEADER_ROWS, column, end - HEADER_ROWS, 3);
  const values = block.getValues(); // [input, output, status] per row: the only read
  const todo: number[] = [];
  values.forEach((row, i) => {
    const filled = String(row[1]) !== "" && String(row[2]) === "";
    if (String(row[0]).trim() !== "" && !filled) todo.push(i);
  });
  console.log(`${todo.length} rows to process, ${values.length - todo.length} empty or already done.`);

  let done = 0;
  let failed = 0;
  for (let start = 0; start < todo.length; start += CHUNK_SIZE) {
    const rows = todo.slice(start, start + CHUNK_SIZE);
    const items = rows.map((i) => makeItem(HEADER_ROWS + i + 1, String(values[i][0])));
    const outcome = await processChunk(items);
    rows.forEach((i, k) => {
      values[i][1] = cellText(outcome.rows[k].output);
      values[i][2] = outcome.rows[k].status;
      if (outcome.rows[k].status !== "") failed += 1;
    });
    // Write the chunk's span (rows skipped inside it keep the values just read).
    const top = rows[0];
    const bottom = rows[rows.length - 1];
    const span = values.slice(top, bottom + 1).map((row) => [row[1], row[2]]);
    sheet.getRangeByIndexes(HEADER_ROWS + top, column + 1, span.length, 2).setValues(span);
    done += rows.length;
    if (outcome.fatal !== "") {
      console.log(`Stopped after ${done} of ${todo.length} rows: ${outcome.fatal}. Run again to resume.`);
      return;
    }
  }
  console.log(`Done: ${done} rows, ${failed} failed (see the status column; run again to retry them).`);
}

function makeItem(excelRow: number, prompt: string): BatchItem {
  const item: BatchItem = { id: String(excelRow), prompt: prompt, type: TASK_TYPE };
  if (LANGUAGE !== "") item.language = LANGUAGE;
  return item;
}

/** "A" -> 0, "AB" -> 27. */
function columnIndex(letters: string): number {
  let n = 0;
  for (const ch of letters.toUpperCase()) n = n * 26 + ch.charCodeAt(0) - 64;
  return n - 1;
}

/** Keep results text: a leading = + - @ would make Excel read LLM output as a formula. */
function cellText(text: string): string {
  return /^[=+\-@]/.test(text) && isNaN(Number(text)) ? "'" + text : text;
}

async function processChunk(items: BatchItem[]): Promise<ChunkOutcome> {
  const failAll = (message: string, fatal: boolean): ChunkOutcome => ({
    rows: items.map(() => ({ output: "", status: "ERROR: " + message })),
    fatal: fatal ? message : "",
  });
  let response: Response;
  try {
    response = await fetch(API_URL.replace(/\/+$/, "") + "/api/v1/batch", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-API-Token": API_TOKEN },
      body: JSON.stringify({ items: items }),
    });
  } catch {
    return failAll(`cannot reach the FlaskLLM server at ${API_URL}`, true);
  }
  const text = await response.text();
  if (!response.ok) {
    const status = response.status;
    const said = errorMessage(text);
    if (status === 401) return failAll("the server rejected API_TOKEN", true);
    if (status === 429) {
      return failAll(`rate limited, retry in ${response.headers.get("Retry-After") || "a minute"} s`, true);
    }
    return failAll(`HTTP ${status}${said ? ": " + said : ""}`, status === 404);
  }
  let body: BatchResponse;
  try {
    body = JSON.parse(text) as BatchResponse;
  } catch {
    return failAll("the server did not answer with JSON; check API_URL", true);
  }
  if (!Array.isArray(body.results) || body.results.length !== items.length) {
    return failAll("the server's answer does not match the request", true);
  }
  return {
    rows: body.results.map((row) =>
      row.ok && typeof row.summary === "string"
        ? { output: row.summary, status: "" }
        : { output: "", status: "ERROR: " + (row.error ? row.error.message : "failed") },
    ),
    fatal: "",
  };
}

function errorMessage(text: string): string {
  try {
    const body = JSON.parse(text) as ErrorResponse;
    return body.error ? body.error.message : "";
  } catch {
    return "";
  }
}
