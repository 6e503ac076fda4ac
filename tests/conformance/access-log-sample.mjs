// Workers: `defaults.access_log_sample` in the real runtime, built from
// tests/conformance/sampled.routes.json (share 0.25) into target/conformance/workers-sampled.
// Every error gets its line; about a quarter of the successes get theirs.
//   node tests/conformance/access-log-sample.mjs

import { Miniflare } from "miniflare";
import { startUpstream } from "../upstream/upstream.mjs";
import { send, workersOptions } from "./run.mjs";
import { accessRecords } from "./checks.mjs";

const logLines = [];
const upstream = await startUpstream({ port: 27181, name: "a" });
const mf = new Miniflare(await workersOptions("workers-sampled", logLines, {}));
const port = Number((await mf.ready).port);
const failures = [];
const successes = 200;
const errors = 20;
try {
  for (let i = 0; i < successes; i++) {
    const r = await send(port, { method: "GET", path: "/ok" });
    if (r.status !== 200) failures.push(`/ok answered ${r.status}`);
  }
  for (let i = 0; i < errors; i++) await send(port, { method: "GET", path: "/nowhere" });
  await new Promise((r) => setTimeout(r, 300));
  const records = accessRecords(logLines);
  const logged404 = records.filter((r) => r.status === 404).length;
  const logged200 = records.filter((r) => r.status === 200).length;
  if (logged404 !== errors) failures.push(`${logged404} of ${errors} errors logged, expected every one`);
  // Binomial(200, 0.25): mean 50, standard deviation 6.1; 20..80 is five deviations each way.
  if (logged200 < 20 || logged200 > 80) failures.push(`${logged200} of ${successes} successes logged, expected about 50`);
  console.error(`  (${logged200} of ${successes} successes logged, ${logged404} of ${errors} errors)`);
} finally {
  await mf.dispose();
  await upstream.close();
}
const unique = [...new Set(failures)];
if (unique.length) {
  console.log(`not ok - [workers] access_log_sample\n${unique.map((f) => `    ${f}`).join("\n")}`);
  process.exit(1);
}
console.log("ok - [workers] access_log_sample 0.25: every error logged, about a quarter of the successes");
