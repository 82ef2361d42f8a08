// The globals the kit's plain scripts share in a page (Excel's shared runtime, the task pane):
// client.js defines FlaskLLMClient, taskpane.js reads FlaskLLMPaneTuning (tests shorten its
// poll and its estimate deadline) and defines FlaskLLMPane. Only for `npm run typecheck`;
// nothing here is loaded by Excel.
declare var FlaskLLMClient: typeof import("../client.js");
declare var FlaskLLMPaneTuning: { pollMs?: number; estimateMs?: number } | undefined;
declare var FlaskLLMPane: { idle(): Promise<void> };
// CommonJS, for the Node side of the dual-use scripts (node --test requires them).
declare var module: { exports: unknown } | undefined;
declare function require(id: string): any;
