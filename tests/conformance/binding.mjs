// Workers only: a policy counted by Cloudflare's `ratelimits` binding (approximate, per
// location), and exact policies whose Durable Object binding is missing (fail closed / open),
// built from tests/conformance/binding.routes.json into target/conformance/workers-binding.
//   node tests/conformance/binding.mjs

import { Miniflare } from "miniflare";
import { startUpstream } from "../upstream/upstream.mjs";
import { send, workersOptions } from "./run.mjs";
import { accessRecords } from "./checks.mjs";

const logLines = [];
const upstream = await startUpstream({ port: 27181, name: "a" });
const mf = new Miniflare(
  await workersOptions("workers-binding", logLines, {
    ratelimits: { EDGE_LIMITER: { simple: { limit: 3, period: 60 } } },
    // No EDGEGATE_LIMITER binding: the exact policies cannot reach their counter.
  }),
);
const port = Number((await mf.ready).port);
const failures = [];
try {
  const responses = [];
  // The binding counts in 60 s windows aligned to the clock: five requests straddling a
  // window's end would see the count start again. Start them in a fresh window instead.
  const intoWindow = Date.now() % 60_000;
  if (intoWindow > 50_000) await new Promise((r) => setTimeout(r, 60_000 - intoWindow + 200));
  for (let i = 0; i < 5; i++) responses.push(await send(port, { method: "GET", path: "/edge", headers: { "x-client": "c1" } }));
  const statuses = responses.map((r) => r.status).join();
  if (statuses !== "200,200,200,429,429") failures.push(`statuses ${statuses}, expected 200,200,200,429,429`);
  const denied = responses[4];
  if (denied.headers["retry-after"] !== "60") failures.push(`Retry-After ${denied.headers["retry-after"]}, expected 60 (the binding's period)`);
  if (!String(denied.headers["content-type"]).startsWith("application/problem+json")) failures.push(`429 content-type ${denied.headers["content-type"]}`);
  for (const r of responses) {
    if (r.headers["ratelimit-policy"] !== '"edge";q=3;w=60') failures.push(`RateLimit-Policy ${r.headers["ratelimit-policy"]}`);
    if (r.headers["ratelimit"] !== undefined) failures.push(`RateLimit ${r.headers["ratelimit"]}: the binding cannot tell what remains`);
  }
  const other = await send(port, { method: "GET", path: "/edge", headers: { "x-client": "c2" } });
  if (other.status !== 200) failures.push(`another key: ${other.status}`);
  const closed = await send(port, { method: "GET", path: "/closed" });
  const problem = JSON.parse(closed.body.toString("utf8") || "{}").type;
  if (closed.status !== 503 || problem !== "urn:edgegate:problem:rate-limit-unavailable") failures.push(`unreachable counter, on_error closed: ${closed.status} ${problem}`);
  const open = await send(port, { method: "GET", path: "/open" });
  if (open.status !== 200) failures.push(`unreachable counter, on_error open: ${open.status}`);
  if (!logLines.some((line) => line.includes("rate limiter unavailable"))) failures.push("the unreachable counter was not logged");
  // This build says `"access_log": "errors"`: the two 429s and the 503 have a line, the 200s none.
  await new Promise((r) => setTimeout(r, 200));
  const logged = accessRecords(logLines).map((r) => r.status).sort().join();
  if (logged !== "429,429,503") failures.push(`access_log errors: lines for statuses ${logged}, expected 429,429,503`);
} finally {
  await mf.dispose();
  await upstream.close();
}
const unique = [...new Set(failures)];
if (unique.length) {
  console.log(`not ok - [workers] Cloudflare ratelimits binding backend\n${unique.map((f) => `    ${f}`).join("\n")}`);
  process.exit(1);
}
console.log("ok - [workers] Cloudflare ratelimits binding backend: 3 of 5 pass, 429 with Retry-After 60, RateLimit-Policy without RateLimit");
console.log("ok - [workers] an unreachable counter: on_error closed answers 503, open admits, both logged");
console.log("ok - [workers] access_log errors: a line for each answer of 400 and above, none for the rest");
