// The OpenAPI documents `edgegate openapi export` prints, checked by an independent validator
// (@seriousme/openapi-schema-validator, the OpenAPI 3.1 JSON Schemas): the repository's routes
// files, and the round trip import → check → export of the descriptions under
// cli/tests/fixtures/openapi.
//   node tests/openapi/validate.mjs path/to/edgegate
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Validator } from "@seriousme/openapi-schema-validator";

const edgegate = process.argv[2] ?? "target/debug/edgegate";
const run = (...args) => execFileSync(edgegate, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const scratch = mkdtempSync(path.join(tmpdir(), "edgegate-openapi-"));

const subjects = [
  ["routes.json", "routes.json"],
  ["tests/conformance/routes.json", "tests/conformance/routes.json"],
];
for (const [spec, flags] of [
  ["cli/tests/fixtures/openapi/shop.yaml", ["--prefix", "/shop"]],
  ["cli/tests/fixtures/openapi/ledger.json", ["--upstream", "ledger", "--upstream-url", "http://127.0.0.1:9000"]],
]) {
  const routes = path.join(scratch, `${path.basename(spec)}.routes.json`);
  run("openapi", "import", spec, ...flags, "-o", routes);
  run("check", "--routes-only", routes);
  subjects.push([`${spec} (imported, checked, exported)`, routes]);
}

let failed = 0;
// The validator is not vacuous: a document without `info` fails it.
if ((await new Validator().validate({ openapi: "3.1.0", paths: {} })).valid) {
  failed++;
  console.log("not ok - the validator accepted a document without info");
}
for (const [name, routes] of subjects) {
  const document = JSON.parse(run("openapi", "export", "--routes", routes));
  const result = await new Validator().validate(document);
  if (result.valid && document.openapi === "3.1.0" && Object.keys(document.paths).length > 0) {
    console.log(`ok - ${name}: a valid OpenAPI ${document.openapi} document, ${Object.keys(document.paths).length} paths`);
  } else {
    failed++;
    console.log(`not ok - ${name}\n${JSON.stringify(result.errors, null, 2).slice(0, 2000)}`);
  }
}
if (failed) process.exit(1);
