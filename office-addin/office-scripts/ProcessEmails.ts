/**
 * FlaskLLM: process one column of the active sheet into the next column (Excel > Automate).
 *
 * Texts are in INPUT_COLUMN; results go to the column to its right and errors to the one after
 * that (the status column). Rows are sent as durable server jobs (POST /api/v1/jobs, up to the
 * server's job_max_items rows each), and results are written as the server finishes them.
 *
 * Bounded workbook calls: Excel on the web refuses any single getValues()/setValues() over 5 MB, and
 * 2,000 e-mails of 3 KB are 6 MB. The columns are read in blocks that start at FIRST_BLOCK_ROWS rows
 * and are then sized by the measured JSON size of the last block (at most MAX_CALL_BYTES per call; a
 * call Excel refuses anyway is retried with half the rows), and results are written in runs of
 * consecutive rows that are each under MAX_CALL_BYTES.
 *
 * Resuming (Office Scripts have a time limit; a network failure or a rejected token also stops the
 * run). The status column records which job a row belongs to:
 *   "pending <key>"   submitted in the job whose Idempotency-Key is <key>, result not written yet
 *   "done <key>"      written by that job (cleared to "" once every row of the job is written)
 *   "ERROR: … [<key>]" that job failed the row
 *   ""                with an output: done; without one: to do
 * Rows to do are non-empty inputs with an empty output, or with an ERROR status. They are split into
 * jobs in sheet order, each with the key "xl-" + a hash of the sheet name, column, task, language and
 * each row's Excel row number, text and status before the run, and marked "pending <key>" as soon as
 * the server accepts the job. A re-run finds the pending rows, rebuilds that job's rows from every
 * row tagged with its key (pending, done or ERROR: rows already written are still part of it), posts
 * them again with the same key, and the server answers 200 with the existing job: it attaches, pages
 * the results from the start and writes only the rows still pending. Nothing is submitted twice. If
 * the script stops after the server accepted a job but before the rows were marked, the re-run
 * computes the same key from the unchanged sheet and attaches all the same.
 *
 * Retrying failed rows: the status a row had before the run is part of the key, and an ERROR status
 * names the job that failed it, so the rows a finished job failed make a different key on the next
 * run: a new job that really retries them, instead of the server handing back the finished job with
 * the same failures. (Keying on the row texts alone would attach to the failed job forever.)
 *
 * Cost estimate and approval: before submitting anything, the script sends each new job's body to
 * POST /api/v1/estimate (nothing is run) and logs the estimate: rows, cached, to run, tokens, cost,
 * time and the budget left. When the server asks for a go-ahead (`confirm`: above the operator's
 * threshold, or more than the token's budget has left), the run stops there, nothing submitted or
 * marked, and the log says how to approve it: run the script again with main's approveCostUsd at
 * least the estimated cost, or approveUnknownPrice true when the server cannot price the model.
 * Jobs being resumed are not estimated again (attaching costs nothing). An older server without
 * the endpoint (404/405) runs as before, without an estimate.
 *
 * A used-up budget ("budget_exceeded": a 429 whose Retry-After is the time until the budget resets,
 * or a row's error) is never waited out like a rate limit: the script stops submitting, and rows a
 * job failed with it get "ERROR: … [<key>]" like any failed row, so the next run after the reset
 * retries them as a new job.
 *
 * Runs from Excel (on the web or desktop). Not under Power Automate: scripts there cannot fetch.
 * Self-contained on purpose: an Office Script cannot import, so ProcessTableColumn.ts repeats the
 * shared section below word for word (a test checks they match).
 */

// ----- Settings: edit these ------------------------------------------------------------------
const API_URL = "https://your-flaskllm-server.example.com"; // the FlaskLLM server, no /api/v1
const API_TOKEN = "paste-your-api-token-here";
const INPUT_COLUMN = "A"; // the texts; results go to the next column, errors to the one after
const HEADER_ROWS = 1; // rows above the data
const TASK_TYPE = "summary"; // summary, keywords, sentiment, entities, translation, custom, classify, extract, prompt or a server template
const LANGUAGE = ""; // ISO 639-1 target language, e.g. "de" (needed for translation)
const INSTRUCTION = ""; // what to do with each row's text: needed for prompt, optional for custom
const LABELS = ""; // for classify, e.g. "billing,shipping,complaint,other": each row gets exactly one
const FIELDS = ""; // for extract, e.g. "name,amount,date": each row gets a record of them
const POLL_SECONDS = 1; // how often to ask the server for progress while a job runs
// ------------------------------------------------------------------------------------------------

/**
 * Process the rows to do (see the header). Excel asks for these values when the script starts.
 * @param approveCostUsd The most this run may cost, in US dollars, when the server asks for a go-ahead
 *   (its estimate is above the operator's threshold, or more than your budget has left). With 0, such a
 *   run stops before anything is submitted, and the log says the amount to enter.
 * @param approveUnknownPrice true: run even when the server asks for a go-ahead and cannot price the model.
 */
async function main(workbook: ExcelScript.Workbook, approveCostUsd: number = 0, approveUnknownPrice: boolean = false): Promise<void> {
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
  const block = (top: number, count: number, offset: number, width: number) =>
    sheet.getRangeByIndexes(HEADER_ROWS + top, column + offset, count, width);
  await run({
    rows: end - HEADER_ROWS,
    scope: ["sheet", sheet.getName(), INPUT_COLUMN.toUpperCase(), String(HEADER_ROWS), TASK_TYPE, LANGUAGE, ...taskScope()],
    rowId: (offset) => String(HEADER_ROWS + offset + 1),
    read: (top, count) => block(top, count, 0, 3).getValues(),
    write: (top, cells) => block(top, cells.length, 1, 2).setValues(cells),
    writeStatus: (top, cells) => block(top, cells.length, 2, 1).setValues(cells),
  }, { costUsd: approveCostUsd, unknownPrice: approveUnknownPrice });
}

/** "A" -> 0, "AB" -> 27. */
function columnIndex(letters: string): number {
  let n = 0;
  for (const ch of letters.toUpperCase()) n = n * 26 + ch.charCodeAt(0) - 64;
  return n - 1;
}

// ===== Shared with ProcessTableColumn.ts from here to the end of the file: keep both identical =====

const MAX_CALL_BYTES = 4000000; // per getValues/setValues: Excel on the web refuses any over 5 MB
const FIRST_BLOCK_ROWS = 200; // rows in the first read; later reads are sized by measured bytes
const MAX_BLOCK_ROWS = 5000; // rows per workbook call, however small they are
const PAGE_ROWS = 1000; // results per GET (the server's maximum)
const DEFAULT_JOB_MAX_ITEMS = 5000; // rows per job when /health does not say
const MAX_RATE_LIMIT_WAITS = 10; // 429s in a row on one request before the run stops
const MAX_RETRY_AFTER_SECONDS = 120;
const LOG_EVERY_MS = 10000; // progress lines while a job runs
const BUDGET_EXCEEDED = "budget_exceeded"; // the error code of a used-up spending budget
const KEY_PATTERN = /^xl-[0-9a-f]{28}$/;
const TAG_PATTERN = /^(pending|done) (xl-[0-9a-f]{28})$/;
const ERROR_TAG_PATTERN = /^ERROR: [\s\S]*\[(xl-[0-9a-f]{28})\]$/;

type Cell = string | number | boolean;

/** How the shared code reaches the rows: the one part ProcessEmails.ts and ProcessTableColumn.ts do differently. */
interface ColumnAccess {
  rows: number; // data rows
  scope: string[]; // what names this column and task in Idempotency-Keys
  rowId(offset: number): string; // the row's id in a job: its Excel row or table row number
  read(top: number, count: number): Cell[][]; // [input, output, status] per row
  write(top: number, cells: Cell[][]): void; // [output, status] per row
  writeStatus(top: number, cells: Cell[][]): void; // [status] per row
}

/** A row in a job: its offset among the data rows, its text and its current status cell. */
interface WorkRow {
  offset: number;
  text: string;
  status: string;
}

interface Job {
  key: string;
  rows: WorkRow[]; // in sheet order: rows[i] is the job's row index i
  resumed: boolean; // an earlier run submitted it and marked its rows
  id: string;
  pending: number; // rows whose result is not written yet
  written: number; // rows this run wrote
  failed: number; // of which failed
  budgetRows: number; // of which failed because the token's budget is used up
  budgetMessage: string; // the server's message for them
}

interface Plan {
  open: Map<string, WorkRow[]>; // key -> every row tagged with it, for jobs with pending rows
  todo: WorkRow[];
  cleanup: number[]; // offsets still saying "done <key>" of a job that is fully written
}

/** A cell write: `cells` is [output, status] or [status]. */
interface Entry {
  offset: number;
  cells: Cell[];
}

interface BatchItem {
  id: string;
  prompt: string;
  type: string;
  language?: string;
}

/** The task options every row of a job takes (the job's `defaults`); the server ignores those its task does not use. */
interface TaskDefaults {
  instruction?: string;
  labels?: string[];
  fields?: string[];
}

interface ApiError {
  code: string;
  message: string;
}

/** What POST /api/v1/estimate says a body of rows would cost (as the server spells it). */
interface Estimate {
  rows: number;
  invalid: number; // rows that would fail validation (cost nothing)
  cached: number; // rows answered from the cache or duplicates (cost nothing)
  to_run: number; // rows that would call the provider
  input_tokens: number;
  output_tokens: number;
  cost_usd: number | null; // null: the model has no known price
  seconds: number | null;
  provider: string;
  model: string;
  confirm: boolean; // the server says: ask before running
  budget: Budget | null;
}

interface Budget {
  limit_usd: number | null;
  spent_usd: number | null;
  remaining_usd: number | null;
  period: string;
  resets_at: string;
}

/** What the person running the script approved: main's parameters. */
interface Approval {
  costUsd: number;
  unknownPrice: boolean;
}

interface JobInfo {
  id: string;
  status: string;
  total: number;
  done: number;
  failed: number;
  cached: number;
  eta_seconds: number | null;
}

interface ResultRow {
  index: number;
  ok: boolean;
  summary?: string;
  result?: unknown;
  error?: ApiError;
}

interface ApiBody {
  job?: JobInfo;
  results?: ResultRow[];
  next?: number | null;
  error?: ApiError;
  job_max_items?: number;
  estimate?: Estimate;
}

/** A server answer; status 0 = unreachable, -1 = not JSON. `message` says what went wrong. */
interface Reply {
  status: number;
  body: ApiBody;
  message: string;
  retryAfter: number;
}

interface HashState {
  h1: number;
  h2: number;
}

async function run(io: ColumnAccess, approval: Approval): Promise<void> {
  const plan = scan(io);
  writeEntries(io, plan.cleanup.map((offset) => ({ offset: offset, cells: [""] })), true);
  let resumable = 0;
  plan.open.forEach((rows) => (resumable += rows.length));
  const unfinished = plan.open.size ? `, ${plan.open.size} unfinished job(s) of ${resumable} rows to pick up` : "";
  console.log(`${plan.todo.length} rows to process${unfinished}, ${io.rows - plan.todo.length - resumable} rows empty or already done.`);
  if (plan.todo.length === 0 && plan.open.size === 0) {
    console.log("Nothing to do.");
    return;
  }
  const jobMax = await jobMaxItems();
  const jobs: Job[] = [];
  plan.open.forEach((rows, key) => jobs.push(makeJob(key, rows, true)));
  for (let start = 0; start < plan.todo.length; start += jobMax) {
    const rows = plan.todo.slice(start, start + jobMax);
    jobs.push(makeJob(jobKey(io, rows), rows, false));
  }
  if (!(await approved(io, jobs, approval))) return;
  const started: Job[] = [];
  for (let i = 0; i < jobs.length; i++) {
    const outcome = await submit(io, jobs[i]);
    if (outcome === "stop") return;
    if (outcome === "split") jobs.splice(i + 1, 0, ...halves(io, jobs[i]));
    if (outcome === "ok") started.push(jobs[i]);
  }
  let written = 0;
  let failed = 0;
  let budgetRows = 0;
  let budgetMessage = "";
  for (const job of started) {
    const finished = await follow(io, job);
    written += job.written;
    failed += job.failed;
    budgetRows += job.budgetRows;
    if (job.budgetMessage !== "") budgetMessage = job.budgetMessage;
    if (!finished) return;
    finish(io, job);
  }
  console.log(`Done: ${written} rows, ${failed} failed (see the status column; run again to retry them).`);
  if (budgetRows > 0) {
    console.log(`${budgetRows} rows were not run: ${sentence(budgetMessage)}. Run the script again once the budget resets to retry them.`);
  }
}

/**
 * The cost estimate of the jobs about to be submitted, logged; true when the run may go on. Each new
 * job's exact body goes to POST /api/v1/estimate (nothing is run; jobs being resumed were submitted
 * before, and attaching to them costs nothing more). When the server says `confirm`, the run stops
 * here, before anything is submitted or marked, unless `approval` covers it: approveCostUsd at least
 * the estimated cost, or approveUnknownPrice when the server cannot price the model. A job the
 * estimate refuses as too big (413) is split in two, as submit would. An older server without the
 * endpoint (404/405) gives no estimate and the run goes on; any other failure stops it.
 */
async function approved(io: ColumnAccess, jobs: Job[], approval: Approval): Promise<boolean> {
  let total: Estimate | null = null;
  for (let i = 0; i < jobs.length; i++) {
    if (jobs[i].resumed) continue;
    const reply = await api("POST", "/api/v1/estimate", jobBody(io, jobs[i]));
    if (reply.status === 404 || reply.status === 405) {
      console.log("No cost estimate: this server has no /api/v1/estimate (an older FlaskLLM); going on without one.");
      return true;
    }
    if (reply.status === 413 && jobs[i].rows.length > 1) {
      jobs.splice(i, 1, ...halves(io, jobs[i]));
      i -= 1;
      continue;
    }
    const estimate = reply.body.estimate;
    if (isBudgetExceeded(reply.body)) {
      console.log(`Stopped: ${sentence(reply.message)}. Nothing was submitted; run the script again once the budget resets.`);
      return false;
    }
    if (reply.status !== 200 || !estimate || typeof estimate !== "object") {
      // Unreachable, not JSON or a rejected token: the same words as for every call; the rest name the estimate.
      const why = reply.status === 200 ? "the server's estimate answer has no estimate in it" : reply.status >= 400 && reply.status !== 401 ? `the cost estimate failed: ${reply.message}` : reply.message;
      console.log(`Stopped: ${why}. Nothing was submitted; run the script again.`);
      return false;
    }
    total = addEstimate(total, readEstimate(estimate));
  }
  if (total === null) return true; // only jobs to resume
  console.log(estimateLine(total));
  if (!total.confirm) return true;
  const cost = total.cost_usd;
  if (cost === null ? approval.unknownPrice : cost <= approval.costUsd) {
    console.log(`Approved (${cost === null ? "approveUnknownPrice" : `approveCostUsd ${approval.costUsd}`}): going on.`);
    return true;
  }
  const what = cost === null ? `the server cannot price ${total.model || "the model"}` : `estimated ${usd(cost)}`;
  const b = total.budget;
  const over = b && b.remaining_usd !== null && cost !== null && cost > b.remaining_usd ? `, more than the ${usd(b.remaining_usd)} left in your budget` : "";
  console.log(`Not run: the server asks for a go-ahead (${what} for ${total.to_run} rows to run${over}). Nothing was submitted.`);
  const how = cost === null ? "approveUnknownPrice set to true" : `approveCostUsd set to ${centsUp(cost)} or more`;
  console.log(`To approve it, run the script again with ${how} (Excel asks for it when the script starts).`);
  return false;
}

/** An /estimate answer's estimate with every count a number (0 if missing) and cost and time a number or null. */
function readEstimate(raw: Estimate): Estimate {
  const count = (n: unknown): number => (typeof n === "number" && isFinite(n) && n >= 0 ? n : 0);
  const amount = (n: unknown): number | null => (typeof n === "number" && isFinite(n) && n >= 0 ? n : null);
  const text = (v: unknown): string => (typeof v === "string" ? v : "");
  const b = raw.budget && typeof raw.budget === "object" ? raw.budget : null;
  return {
    rows: count(raw.rows),
    invalid: count(raw.invalid),
    cached: count(raw.cached),
    to_run: count(raw.to_run),
    input_tokens: count(raw.input_tokens),
    output_tokens: count(raw.output_tokens),
    cost_usd: amount(raw.cost_usd),
    seconds: amount(raw.seconds),
    provider: text(raw.provider),
    model: text(raw.model),
    confirm: raw.confirm === true,
    budget: b && { limit_usd: amount(b.limit_usd), spent_usd: amount(b.spent_usd), remaining_usd: amount(b.remaining_usd), period: text(b.period), resets_at: text(b.resets_at) },
  };
}

/**
 * Two jobs' estimates as one run's: counts, tokens and time add up; the cost is unknown if either is;
 * the budget is the later answer's; it asks first if either asks, or if the total is over the budget left.
 */
function addEstimate(total: Estimate | null, e: Estimate): Estimate {
  if (total === null) return e;
  const cost = total.cost_usd === null || e.cost_usd === null ? null : total.cost_usd + e.cost_usd;
  const budget = e.budget || total.budget;
  const overBudget = budget !== null && budget.remaining_usd !== null && cost !== null && cost > budget.remaining_usd;
  return {
    rows: total.rows + e.rows,
    invalid: total.invalid + e.invalid,
    cached: total.cached + e.cached,
    to_run: total.to_run + e.to_run,
    input_tokens: total.input_tokens + e.input_tokens,
    output_tokens: total.output_tokens + e.output_tokens,
    cost_usd: cost,
    seconds: total.seconds === null || e.seconds === null ? null : total.seconds + e.seconds,
    provider: total.provider,
    model: total.model,
    confirm: total.confirm || e.confirm || overBudget,
    budget: budget,
  };
}

/** "Estimate: 120 rows (20 cached, 2 invalid), 98 to run, ~12345 input + 6000 output tokens, est. $0.01, about 15 s, gpt-4 on openai; budget left …". */
function estimateLine(e: Estimate): string {
  const parts = [`${e.rows} rows (${e.cached} cached, ${e.invalid} invalid)`, `${e.to_run} to run`, `~${e.input_tokens} input + ${e.output_tokens} output tokens`];
  parts.push(e.cost_usd === null ? "price unknown" : `est. ${usd(e.cost_usd)}`);
  if (durationText(e.seconds) !== "") parts.push(durationText(e.seconds));
  if (e.model !== "") parts.push(e.provider !== "" ? `${e.model} on ${e.provider}` : e.model);
  const b = e.budget;
  let budget = "";
  if (b && b.remaining_usd !== null) {
    const of = b.limit_usd !== null ? ` of ${usd(b.limit_usd)}` : "";
    budget = `; budget left ${usd(b.remaining_usd)}${of}${b.period !== "" ? ` per ${b.period}` : ""}${b.resets_at !== "" ? ` (resets ${b.resets_at})` : ""}`;
  }
  return `Estimate: ${parts.join(", ")}${budget}.`;
}

/** US dollars: "$0.00", "< $0.01", "$12.30". */
function usd(n: number): string {
  if (n === 0) return "$0.00";
  if (n < 0.01) return "< $0.01";
  return "$" + n.toFixed(2);
}

/** An amount rounded up to whole cents (at least 0.01), as the value to approve it with: 0.0123 -> "0.02". */
function centsUp(n: number): string {
  return Math.max(0.01, Math.ceil(Math.round(n * 1e6) / 1e4) / 100).toFixed(2);
}

/** A message without its final full stop, to end a sentence of ours. */
function sentence(text: string): string {
  return text.replace(/[.\s]+$/, "");
}

/** Read every row once, in bounded blocks, and sort rows into jobs to resume, rows to do and tags to clear. */
function scan(io: ColumnAccess): Plan {
  const tagged = new Map<string, WorkRow[]>();
  const pendingKeys: string[] = [];
  const needWork: WorkRow[] = [];
  const doneTags: { offset: number; key: string }[] = [];
  readBlocks(io, (offset, values) => {
    const row: WorkRow = { offset: offset, text: String(values[0]), status: String(values[2]) };
    if (row.text.trim() === "") return;
    const output = String(values[1]);
    const tag = tagOf(row.status);
    if (tag.key !== "") {
      if (!tagged.has(tag.key)) tagged.set(tag.key, []);
      (tagged.get(tag.key) as WorkRow[]).push(row);
    }
    if (tag.kind === "pending") {
      if (pendingKeys.indexOf(tag.key) < 0) pendingKeys.push(tag.key);
      return;
    }
    if (tag.kind === "done") doneTags.push({ offset: offset, key: tag.key });
    if (output === "" || row.status.startsWith("ERROR")) needWork.push(row);
  });
  const open = new Map<string, WorkRow[]>();
  for (const key of pendingKeys) open.set(key, tagged.get(key) as WorkRow[]);
  const todo = needWork.filter((row) => !open.has(tagOf(row.status).key));
  for (const row of todo) if (tagOf(row.status).kind === "done") row.status = ""; // what the cleanup writes
  return {
    open: open,
    todo: todo,
    cleanup: doneTags.filter((tag) => !open.has(tag.key)).map((tag) => tag.offset),
  };
}

/** Rows [0, io.rows) in blocks of bounded bytes: the block size follows the measured size of the last one. */
function readBlocks(io: ColumnAccess, visit: (offset: number, values: Cell[]) => void): void {
  let size = FIRST_BLOCK_ROWS;
  for (let top = 0; top < io.rows; ) {
    const count = Math.min(size, io.rows - top);
    let values: Cell[][] = [];
    if (count === 1) {
      values = io.read(top, 1);
    } else {
      try {
        values = io.read(top, count);
      } catch {
        size = Math.ceil(count / 2); // Excel refused the payload after all: try half as many rows
        continue;
      }
    }
    for (let i = 0; i < values.length; i++) visit(top + i, values[i]);
    top += count;
    size = nextBlockRows(count, jsonBytes(values));
  }
}

/** Rows for the next block: as many as fit MAX_CALL_BYTES at the last block's bytes per row, at most double. */
function nextBlockRows(count: number, bytes: number): number {
  const perRow = Math.max(1, bytes / count);
  return Math.max(1, Math.min(Math.floor(MAX_CALL_BYTES / perRow), count * 2, MAX_BLOCK_ROWS));
}

function makeJob(key: string, rows: WorkRow[], resumed: boolean): Job {
  const pending = resumed ? rows.filter((row) => row.status === "pending " + key).length : rows.length;
  return { key: key, rows: rows, resumed: resumed, id: "", pending: pending, written: 0, failed: 0, budgetRows: 0, budgetMessage: "" };
}

/** A job the server found too big (413) as two new jobs of half the rows, each with its own key. */
function halves(io: ColumnAccess, job: Job): Job[] {
  const middle = Math.ceil(job.rows.length / 2);
  return [job.rows.slice(0, middle), job.rows.slice(middle)].map((rows) => makeJob(jobKey(io, rows), rows, false));
}

/**
 * POST the job with its Idempotency-Key. "ok": the server has it (202 new, 200 attached); "split":
 * too big, submit it as two halves; "skip": a resumed job the server will not take back, its
 * pending rows were cleared for the next run; "stop": the run cannot go on.
 */
async function submit(io: ColumnAccess, job: Job): Promise<string> {
  const reply = await api("POST", "/api/v1/jobs", jobBody(io, job), job.key);
  if ((reply.status === 200 || reply.status === 202) && reply.body.job && reply.body.job.id !== undefined) {
    job.id = String(reply.body.job.id);
    const how = reply.status === 200 ? "Attached to job" : "Submitted job";
    console.log(`${how} ${job.id}: ${job.rows.length} rows (key ${job.key}).`);
    if (!job.resumed) mark(io, job);
    return "ok";
  }
  if (reply.status === 200 || reply.status === 202) {
    console.log("Stopped: the server's answer has no job in it; check API_URL.");
    return "stop";
  }
  if (job.resumed && [400, 409, 413].indexOf(reply.status) >= 0) {
    release(io, job);
    console.log(`The server would not resume the job with key ${job.key} (${reply.message}); its unwritten rows will be sent again by the next run.`);
    return "skip";
  }
  if (reply.status === 413 && job.rows.length > 1) {
    console.log(`The server refused ${job.rows.length} rows in one job (${reply.message}); sending them as two jobs.`);
    return "split";
  }
  if (isBudgetExceeded(reply.body)) {
    console.log(`Stopped: ${sentence(reply.message)}. Nothing more was submitted; run the script again once the budget resets.`);
    return "stop";
  }
  console.log(`Stopped: ${reply.message}. Run the script again to resume.`);
  return "stop";
}

/** The body of a job's POST, and of its estimate: the rows, and the task options when set. */
function jobBody(io: ColumnAccess, job: Job): string {
  const items = job.rows.map((row) => makeItem(io, row));
  const defaults = taskDefaults();
  return JSON.stringify(Object.keys(defaults).length ? { items: items, defaults: defaults } : { items: items });
}

/** A refusal because the token's spending budget is used up (not a rate limit to wait out). */
function isBudgetExceeded(body: ApiBody): boolean {
  return body.error !== undefined && body.error.code === BUDGET_EXCEEDED;
}

/** INSTRUCTION, LABELS and FIELDS as the job's defaults: only those set, names trimmed, repeats dropped. */
function taskDefaults(): TaskDefaults {
  const defaults: TaskDefaults = {};
  if (INSTRUCTION.trim() !== "") defaults.instruction = INSTRUCTION.trim();
  const labels = nameList(LABELS);
  if (labels.length > 0) defaults.labels = labels;
  const fields = nameList(FIELDS);
  if (fields.length > 0) defaults.fields = fields;
  return defaults;
}

function nameList(text: string): string[] {
  const names: string[] = [];
  text.split(",").forEach((part) => {
    const name = part.trim().split(/\s+/).join(" ");
    if (name !== "" && names.every((n) => n.toLowerCase() !== name.toLowerCase())) names.push(name);
  });
  return names;
}

/**
 * The task options as part of the Idempotency-Key scope: changing the labels makes a new job, and
 * with none set the scope (and so every key) is what it was before the options existed.
 */
function taskScope(): string[] {
  const defaults = taskDefaults();
  return Object.keys(defaults).length ? ["options", JSON.stringify(defaults)] : [];
}

function makeItem(io: ColumnAccess, row: WorkRow): BatchItem {
  const item: BatchItem = { id: io.rowId(row.offset), prompt: row.text, type: TASK_TYPE };
  if (LANGUAGE !== "") item.language = LANGUAGE;
  return item;
}

/** Mark a new job's rows "pending <key>": from now on a re-run can rebuild the job from the sheet. */
function mark(io: ColumnAccess, job: Job): void {
  for (const row of job.rows) row.status = "pending " + job.key;
  writeEntries(io, job.rows.map((row) => ({ offset: row.offset, cells: [row.status] })), true);
}

/** Clear the pending rows of a job that cannot be resumed, so the next run plans them afresh. */
function release(io: ColumnAccess, job: Job): void {
  const pending = job.rows.filter((row) => row.status === "pending " + job.key);
  for (const row of pending) row.status = "";
  writeEntries(io, pending.map((row) => ({ offset: row.offset, cells: [""] })), true);
}

/**
 * Page the job's results from the start and write the rows still pending, polling while the server
 * works. true when every row came back; false when the run had to stop (the log says why).
 */
async function follow(io: ColumnAccess, job: Job): Promise<boolean> {
  const base = `/api/v1/jobs/${encodeURIComponent(job.id)}`;
  let after = -1; // the highest row index received
  let lastLog = 0;
  let idle = 0;
  let rereads = 0;
  for (;;) {
    const query = (after >= 0 ? `after=${after}&` : "") + `limit=${PAGE_ROWS}`;
    const page = await api("GET", `${base}/results?${query}`);
    const results = page.body.results;
    if (page.status !== 200 || !Array.isArray(results)) return stopped(page, job);
    writeResults(io, job, results);
    for (const row of results) after = Math.max(after, row.index);
    if (typeof page.body.next !== "number") {
      if (job.pending === 0 || rereads++ > 0) break;
      after = -1; // the server says all rows came back, yet some did not: read the pages once more
      continue;
    }
    if (results.length === PAGE_ROWS) continue;
    const info = await api("GET", base);
    if (info.status !== 200 || !info.body.job) return stopped(info, job);
    if (Date.now() - lastLog >= LOG_EVERY_MS) {
      console.log(progressLine(info.body.job));
      lastLog = Date.now();
    }
    if (info.body.job.status === "done" || info.body.job.status === "cancelled") {
      if (results.length === 0 && ++idle > 3) {
        console.log(`Stopped: job ${job.id} is ${info.body.job.status} but its last rows do not come back. Run the script again.`);
        return false;
      }
      continue; // finished: fetch the rest without waiting
    }
    idle = 0;
    await sleep(POLL_SECONDS * 1000);
  }
  if (job.pending > 0) console.log(`Job ${job.id}: ${job.pending} rows did not come back; run the script again to pick them up.`);
  return true;
}

function stopped(reply: Reply, job: Job): boolean {
  console.log(`Stopped while following job ${job.id}: ${reply.message}. Run the script again to resume: rows marked "pending" are picked up.`);
  return false;
}

/** Write a page of results into the rows of this job that are still pending. */
function writeResults(io: ColumnAccess, job: Job, results: ResultRow[]): void {
  const entries: Entry[] = [];
  for (const result of results) {
    const row = job.rows[result.index];
    if (!row || row.status !== "pending " + job.key) continue; // unknown, or written by an earlier run
    let output = "";
    if (result.ok) {
      output = cellText(rowText(result));
      row.status = "done " + job.key;
    } else {
      const message = result.error && result.error.message ? result.error.message : "failed";
      row.status = `ERROR: ${message} [${job.key}]`;
      job.failed += 1;
      if (result.error && result.error.code === BUDGET_EXCEEDED) {
        job.budgetRows += 1; // retried by the next run like any failed row, never in this one
        job.budgetMessage = message;
      }
    }
    job.pending -= 1;
    job.written += 1;
    entries.push({ offset: row.offset, cells: [output, row.status] });
  }
  writeEntries(io, entries, false);
}

/** Every row of the job is written: clear its "done <key>" tags (errors keep theirs, see the header). */
function finish(io: ColumnAccess, job: Job): void {
  const done = job.rows.filter((row) => row.status === "done " + job.key);
  for (const row of done) row.status = "";
  writeEntries(io, done.map((row) => ({ offset: row.offset, cells: [""] })), true);
  console.log(`Job ${job.id} finished: ${job.written} rows written by this run, ${job.failed} of them failed.`);
}

/** Write entries (in offset order) as runs of consecutive rows, each call under MAX_CALL_BYTES. */
function writeEntries(io: ColumnAccess, entries: Entry[], statusOnly: boolean): void {
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < entries.length; i++) {
    const size = jsonBytes(entries[i].cells) + 1;
    const gap = i > start && entries[i].offset !== entries[i - 1].offset + 1;
    if (i > start && (gap || bytes + size > MAX_CALL_BYTES || i - start >= MAX_BLOCK_ROWS)) {
      writeRun(io, entries.slice(start, i), statusOnly);
      start = i;
      bytes = 0;
    }
    bytes += size;
  }
  if (start < entries.length) writeRun(io, entries.slice(start), statusOnly);
}

function writeRun(io: ColumnAccess, run: Entry[], statusOnly: boolean): void {
  const cells = run.map((e) => e.cells);
  if (statusOnly) io.writeStatus(run[0].offset, cells);
  else io.write(run[0].offset, cells);
}

/** What a status cell says about jobs: kind "pending", "done", "error" (with a key) or "" (no tag). */
function tagOf(status: string): { kind: string; key: string } {
  const tag = TAG_PATTERN.exec(status);
  if (tag) return { kind: tag[1], key: tag[2] };
  const error = ERROR_TAG_PATTERN.exec(status);
  if (error) return { kind: "error", key: error[1] };
  return { kind: "", key: "" };
}

/**
 * The Idempotency-Key of a new job: "xl-" and two cyrb53 hashes (106 bits) of the scope (sheet or
 * table, column, task, language) and of each row's id, text and current status, each part
 * length-prefixed. Equal sheets give equal keys; a changed text, row or earlier error gives another.
 */
function jobKey(io: ColumnAccess, rows: WorkRow[]): string {
  const states = [hashState(1), hashState(2)];
  const add = (part: string) => states.forEach((state) => hashUpdate(state, `${part.length}:${part}`));
  ["flaskllm-job-v1"].concat(io.scope).forEach(add);
  for (const row of rows) {
    add(io.rowId(row.offset));
    add(row.text);
    add(row.status);
  }
  const key = "xl-" + states.map(hashDigest).join("");
  if (!KEY_PATTERN.test(key)) throw new Error(`bad job key ${key}`);
  return key;
}

function hashState(seed: number): HashState {
  return { h1: 0xdeadbeef ^ seed, h2: 0x41c6ce57 ^ seed };
}

function hashUpdate(state: HashState, text: string): void {
  let h1 = state.h1;
  let h2 = state.h2;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  state.h1 = h1;
  state.h2 = h2;
}

function hashDigest(state: HashState): string {
  let h1 = state.h1;
  let h2 = state.h2;
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16).padStart(14, "0");
}

/** Bytes of a value's JSON in UTF-8: what a workbook call carries. */
function jsonBytes(value: Cell[][] | Cell[]): number {
  const text = JSON.stringify(value);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4; // a surrogate pair
      i += 1;
    } else n += 3;
  }
  return n;
}

/** job_max_items from /health, or the default when it does not say. */
async function jobMaxItems(): Promise<number> {
  const reply = await api("GET", "/api/v1/health");
  const max = reply.body.job_max_items;
  return reply.status === 200 && typeof max === "number" && max >= 1 ? Math.floor(max) : DEFAULT_JOB_MAX_ITEMS;
}

/**
 * One API call; a 429 is waited out (Retry-After) and retried, up to MAX_RATE_LIMIT_WAITS times,
 * except a used-up budget: its Retry-After is the time until the budget resets, often hours.
 */
async function api(method: string, path: string, body?: string, key?: string): Promise<Reply> {
  for (let waits = 0; ; waits++) {
    const reply = await callOnce(method, path, body, key);
    if (reply.status !== 429 || isBudgetExceeded(reply.body) || waits >= MAX_RATE_LIMIT_WAITS) return reply;
    const seconds = Math.min(reply.retryAfter, MAX_RETRY_AFTER_SECONDS);
    console.log(`Rate limited on ${method} ${path.split("?")[0]}: waiting ${seconds} s, then trying again.`);
    await sleep(seconds * 1000);
  }
}

async function callOnce(method: string, path: string, body?: string, key?: string): Promise<Reply> {
  const headers: Record<string, string> = { Accept: "application/json", "X-API-Token": API_TOKEN };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (key) headers["Idempotency-Key"] = key;
  const unreachable: Reply = { status: 0, body: {}, message: `cannot reach the FlaskLLM server at ${API_URL}`, retryAfter: 0 };
  let response: Response;
  let text = "";
  try {
    response = await fetch(API_URL.replace(/\/+$/, "") + path, { method: method, headers: headers, body: body });
    text = await response.text();
  } catch {
    return unreachable;
  }
  let parsed: ApiBody | null = null;
  try {
    parsed = JSON.parse(text) as ApiBody;
  } catch {
    parsed = null;
  }
  const json = parsed !== null && typeof parsed === "object";
  if (response.ok && !json) {
    return { status: -1, body: {}, message: "the server did not answer with JSON; check API_URL", retryAfter: 0 };
  }
  const answer: ApiBody = json ? (parsed as ApiBody) : {};
  const retryAfter = retryAfterSeconds(response.headers.get("Retry-After"));
  return {
    status: response.status,
    body: answer,
    message: describe(response.status, answer, retryAfter),
    retryAfter: retryAfter,
  };
}

function describe(status: number, body: ApiBody, retryAfter: number): string {
  const said = body.error && body.error.message ? body.error.message : "";
  if (status >= 200 && status < 300) return "";
  if (isBudgetExceeded(body)) return said || `the API token's budget is used up; it resets in ${durationText(retryAfter)}`;
  if (status === 401) return "the server rejected API_TOKEN";
  if (status === 404) return said ? `not found (${said}); check API_URL` : "no FlaskLLM API at API_URL";
  if (status === 429) return "still rate limited after waiting; run the script again later";
  return `HTTP ${status}${said ? ": " + said : ""}`;
}

/** Seconds from a Retry-After header (seconds or an HTTP date); 5 when missing or unreadable. */
function retryAfterSeconds(value: string | null): number {
  if (value && /^\d+$/.test(value.trim())) return Number(value.trim());
  const date = value ? Date.parse(value) : NaN;
  return isNaN(date) ? 5 : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

function progressLine(job: JobInfo): string {
  const eta = etaText(job.eta_seconds);
  return `Job ${job.id}: ${job.done}/${job.total} rows done (${job.cached} cached, ${job.failed} failed)${eta ? ", " + eta : ""}.`;
}

/** Seconds as words: "about 40 s", "about 3 min"; "" when there is no number. */
function durationText(seconds: number | null): string {
  if (typeof seconds !== "number" || !(seconds >= 0)) return "";
  if (seconds < 10) return `about ${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 60) return `about ${Math.round(seconds / 5) * 5} s`;
  if (seconds < 3600) return `about ${Math.round(seconds / 60)} min`;
  return `about ${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}

/** eta_seconds as words: "about 40 s left", "about 3 min left"; "" when the server has no estimate. */
function etaText(seconds: number | null): string {
  const duration = durationText(seconds);
  return duration === "" ? "" : duration + " left";
}

/** The text a cell shows for a finished row: the server's text form, else the result as JSON. */
function rowText(row: ResultRow): string {
  if (typeof row.summary === "string") return row.summary;
  return row.result === undefined ? "" : JSON.stringify(row.result);
}

/** Keep results text: a leading = + - @ would make Excel read LLM output as a formula. */
function cellText(text: string): string {
  return /^[=+\-@]/.test(text) && isNaN(Number(text)) ? "'" + text : text;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
