#!/usr/bin/env node
/**
 * Writes functions.json from the JSDoc of functions.js with Microsoft's generator
 * (custom-functions-metadata), so what Excel shows (names, parameters, types, options such as
 * cancelable) cannot drift from the code: `npm run metadata` after changing a function, and
 * tests/metadata.test.js fails when the committed file differs from a fresh one.
 *
 *   node tools/make-metadata.js [output]   (default: functions.json next to functions.js)
 *
 * Uses the package's API rather than its CLI because the CLI reports JSDoc errors and still
 * exits 0; here any error exits 1 and writes nothing.
 */
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { generateCustomFunctionsMetadata } = require("custom-functions-metadata");

const ADDIN = path.join(__dirname, "..");
const SOURCE = path.join(ADDIN, "functions.js");

/** The metadata as the generator makes it, with a final newline; throws on JSDoc errors. */
async function metadata(source = SOURCE) {
  const result = await generateCustomFunctionsMetadata(source);
  if (result.errors.length) throw new Error(`custom-functions-metadata found errors in ${source}:\n${result.errors.join("\n")}`);
  if (!result.metadataJson) throw new Error(`custom-functions-metadata found no @customfunction in ${source}`);
  return result.metadataJson + "\n";
}

async function main(output = path.join(ADDIN, "functions.json")) {
  fs.writeFileSync(output, await metadata());
}

if (require.main === module) {
  main(process.argv[2]).catch((err) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  });
}

module.exports = { metadata, SOURCE };
