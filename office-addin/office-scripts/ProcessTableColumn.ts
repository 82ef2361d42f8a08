/**
 * FlaskLLM: process every row of one column of a named table (Excel > Automate).
 *
 * Results go to OUTPUT_COLUMN and errors to STATUS_COLUMN, both created at the table's end when
 * missing. The table body is read with one getValues(); each chunk's results are written with
 * setValues() as it arrives. Resumable like ProcessEmails.ts: rows with an output and an empty
 * status are skipped, rows with an error in their status are retried.
 *
 * Runs from Excel (on the web or desktop); not under Power Automate, where scripts cannot fetch.
 * Self-contained on purpose: an Office Script cannot import, so it repeats ProcessEmails.ts's helpers.
 */

// ----- Settings: edit these ------------------------------------------------------------------
const API_URL = "https://your-flaskllm-server.example.com"; // the FlaskLLM server, no /api/v1
const API_TOKEN = "paste-your-api-token-here";
const TABLE_NAME = "Emails";
const INPUT_COLUMN = "Body"; // header of the column holding the texts
const OUTPUT_COLUMN = "Summary"; // header of the results column (created if missing)
const STATUS_COLUMN = "FlaskLLM status"; // header of the error column (created if missing)
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
  error?: ApiError;
}

interface BatchResponse {
  results: BatchRow[];
}

interface ErrorResponse {
  error?: ApiError;
}

interface RowOutcome {
  output: string;
  status: string;
}

interface ChunkOutcome {
  rows: RowOutcome[];
  fatal: string;
}

async function main(workbook: ExcelScript.Workbook): Promise<void> {
  const table = workbook.getTable(TABLE_NAME);
  if (!table) {
    console.log(`No table named "${TABLE_NAME}" in this workbook.`);
    return;
  }
  const input = table.getColumnByName(INPUT_COLUMN);
  if (!input) {
    console.log(`Table "${TABLE_NAME}" has no column "${INPUT_COLUMN}".`);
    return;
  }
  const output = table.getColumnByName(OUTPUT_COLUMN) || table.addColumn(-1, undefined, OUTPUT_COLUMN);
  const status = table.getColumnByName(STATUS_COLUMN) || table.addColumn(-1, undefined, STATUS_COLUMN);
  const [inIdx, outIdx, statusIdx] = [input.getIndex(), output.getIndex(), status.getIndex()];

  const values = table.getRangeBetweenHeaderAndTotal().getValues(); // the only read
  const todo: number[] = [];
  values.forEach((row, i) => {
    const done = String(row[outIdx]) !== "" && String(row[statusIdx]) === "";
    if (String(row[inIdx]).trim() !== "" && !done) todo.push(i);
  });
  console.log(`${todo.length} rows to process, ${values.length - todo.length} empty or already done.`);

  let failed = 0;
  for (let start = 0; start < todo.length; start += CHUNK_SIZE) {
    const rows = todo.slice(start, start + CHUNK_SIZE);
    const outcome = await processChunk(rows.map((i) => makeItem(i + 1, String(values[i][inIdx]))));
    rows.forEach((i, k) => {
      values[i][outIdx] = cellText(outcome.rows[k].output);
      values[i][statusIdx] = outcome.rows[k].status;
      if (outcome.rows[k].status !== "") failed += 1;
    });
    const top = rows[0];
    const count = rows[rows.length - 1] - top + 1;
    writeColumn(output, values, outIdx, top, count);
    writeColumn(status, values, statusIdx, top, count);
    if (outcome.fatal !== "") {
      console.log(`Stopped after ${start + rows.length} of ${todo.length} rows: ${outcome.fatal}. Run again to resume.`);
      return;
    }
  }
  console.log(`Done: ${todo.length} rows, ${failed} failed (see "${STATUS_COLUMN}"; run again to retry them).`);
}

/** One setValues() for rows top..top+count-1 of a column, from the in-memory table body. */
function writeColumn(
  column: ExcelScript.TableColumn,
  values: ExcelScript.CellValue[][],
  index: number,
  top: number,
  count: number,
): void {
  const cells = values.slice(top, top + count).map((row) => [row[index]]);
  column.getRangeBetweenHeaderAndTotal().getCell(top, 0).getResizedRange(count - 1, 0).setValues(cells);
}

function makeItem(tableRow: number, prompt: string): BatchItem {
  const item: BatchItem = { id: String(tableRow), prompt: prompt, type: TASK_TYPE };
  if (LANGUAGE !== "") item.language = LANGUAGE;
  return item;
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
    const code = response.status;
    const said = errorMessage(text);
    if (code === 401) return failAll("the server rejected API_TOKEN", true);
    if (code === 429) {
      return failAll(`rate limited, retry in ${response.headers.get("Retry-After") || "a minute"} s`, true);
    }
    return failAll(`HTTP ${code}${said ? ": " + said : ""}`, code === 404);
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
