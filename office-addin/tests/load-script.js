// Loads an Office Script's `main` into Node: TypeScript's transpileModule strips the types (the
// same compiler `npm test` type-checks with), a vm context supplies the globals Excel provides
// (fetch, console, setTimeout). Constants at the top of a script can be overridden by name, so tests
// run the shipped file, not a copy.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");
const ts = require("typescript");

const transpiled = new Map(); // source -> JavaScript: transpiling is most of a small test's time

function transpile(name, source) {
  if (!transpiled.has(source)) {
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: { target: ts.ScriptTarget.ES2019, module: ts.ModuleKind.None },
      fileName: name,
    });
    transpiled.set(source, outputText);
  }
  return transpiled.get(source);
}

/**
 * @param {string} name file name in office-scripts/
 * @param {{fetch: Function, settings?: object, setTimeout?: Function, onLog?: Function}} options
 *   settings: {CONSTANT_NAME: value}; setTimeout: the timer the script sleeps with (tests pass a
 *   fast or failing one); onLog: called with each log line as it is written
 * @returns {{main: Function, logs: string[]}}
 */
function loadScript(name, { fetch, settings = {}, setTimeout: timer = setTimeout, onLog } = {}) {
  const source = fs.readFileSync(path.join(__dirname, "..", "office-scripts", name), "utf8");
  // Overrides apply to the JavaScript: the `const NAME = value;` lines come through transpiling as
  // they are, and one transpile per file keeps the suite fast.
  let outputText = transpile(name, source);
  for (const [key, value] of Object.entries(settings)) {
    const pattern = new RegExp(`^const ${key} = .*;.*$`, "m");
    if (!pattern.test(source) || !pattern.test(outputText)) throw new Error(`${name} has no setting ${key}`);
    outputText = outputText.replace(pattern, `const ${key} = ${JSON.stringify(value)};`);
  }
  const logs = [];
  const log = (...args) => {
    const line = args.join(" ");
    logs.push(line);
    if (onLog) onLog(line);
  };
  const context = vm.createContext({ fetch, setTimeout: timer, console: { log } });
  // Wrapped in a function that binds Math locally: a vm context reaches its globals through an
  // interceptor, which makes the scripts' per-character hashing (Math.imul) ~70x slower than in
  // Excel or plain Node. Nothing else changes: the script still sees only the context's globals.
  const wrapped = `(function (Math) {\n${outputText}\n;return main;\n})(Math)`;
  const main = vm.runInContext(wrapped, context, { filename: name, lineOffset: -1 });
  return { main, logs };
}

module.exports = { loadScript };
