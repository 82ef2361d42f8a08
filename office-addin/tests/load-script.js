// Loads an Office Script's `main` into Node: TypeScript's transpileModule strips the types (the
// same compiler `npm test` type-checks with), a vm context supplies the globals Excel provides
// (fetch, console). Settings constants at the top of a script can be overridden by name, so tests
// run the shipped file, not a copy.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");
const ts = require("typescript");

/**
 * @param {string} name file name in office-scripts/
 * @param {{fetch: Function, settings?: object}} options settings: {CONSTANT_NAME: value}
 * @returns {{main: Function, logs: string[]}}
 */
function loadScript(name, { fetch, settings = {} }) {
  let source = fs.readFileSync(path.join(__dirname, "..", "office-scripts", name), "utf8");
  for (const [key, value] of Object.entries(settings)) {
    const pattern = new RegExp(`^const ${key} = .*;.*$`, "m");
    if (!pattern.test(source)) throw new Error(`${name} has no setting ${key}`);
    source = source.replace(pattern, `const ${key} = ${JSON.stringify(value)};`);
  }
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { target: ts.ScriptTarget.ES2019, module: ts.ModuleKind.None },
    fileName: name,
  });
  const logs = [];
  const context = vm.createContext({ fetch, console: { log: (...args) => logs.push(args.join(" ")) } });
  const main = vm.runInContext(`${outputText}\n;main`, context, { filename: name });
  return { main, logs };
}

module.exports = { loadScript };
