// `node tests/bench/crossings.mjs [build dir]`: how often one request crosses the JS↔wasm
// boundary, per route of the bench's routes file, counted in workerd (Miniflare, direct socket)
// on a copy of a Workers build (default targets/cloudflare/build; the wasm does not depend on
// the routes file, and the copy gets the bench's as its routes module).
// The copy's glue is rewritten so that every import the wasm calls (into JS) and every export
// JS calls (into the wasm: the handler, the allocator for strings, closures woken by promises)
// is counted; a wrapping entry reads the counters before and after each request and answers
// them in a header. What is counted is the request's own work until its response is handed
// back (the body then streams inside the runtime).
//
// With CROSSINGS_MAX=route=n,... it exits non-zero when a route crosses more often than n,
// which keeps "a few crossings per request, not one per header" from eroding unseen; with
// CROSSINGS_NEVER=route:import,... when a route calls that import at all (refused:eg_limit: a
// remembered refusal asks no Durable Object).
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { benchToken, browserHeaders, bundleRules, root, startUpstream, startWorkers } from "./common.mjs";

const build = path.resolve(process.argv[2] ?? path.join(root, "targets/cloudflare/build"));
const copy = path.join(root, "target/crossings");
rmSync(copy, { recursive: true, force: true });
mkdirSync(copy, { recursive: true });
cpSync(build, copy, { recursive: true });
execFileSync("cargo", ["run", "-q", "-p", "edgegate-cli", "--", "embed", "tests/bench/routes.json", path.join(copy, "routes.mjs")], { cwd: root, stdio: "inherit" });

const glue = path.join(copy, "index.js");
const source = readFileSync(glue, "utf8");
const instance = /(\w+)=new WebAssembly\.Instance\((\w+),(\w+)\(\)\),(\w+)=\1\.exports/g;
const found = source.match(instance)?.length ?? 0;
if (found === 0) throw new Error(`${glue}: no wasm instantiation of the expected shape (a wasm-bindgen upgrade?)`);
writeFileSync(glue, source.replace(instance, "$1=new WebAssembly.Instance($2,globalThis.__egCount.imports($3())),$4=globalThis.__egCount.exports($1.exports)"));

writeFileSync(path.join(copy, "count-setup.mjs"), `
const counts = new Map();
const bump = (name) => counts.set(name, (counts.get(name) ?? 0) + 1);
const wrap = (name, f) => function (...args) { bump(name); return f.apply(this, args); };
globalThis.__egCount = {
  counts,
  imports(modules) {
    for (const [module, fields] of Object.entries(modules)) {
      if (module !== "./index_bg.js") continue;
      for (const [name, value] of Object.entries(fields)) {
        if (typeof value === "function") fields[name] = wrap("into JS: " + name.replace(/^__wbg_/, "").replace(/_[0-9a-f]{16}$/, ""), value);
      }
    }
    return modules;
  },
  exports(exports) {
    const wrapped = {};
    for (const [name, value] of Object.entries(exports)) {
      wrapped[name] = typeof value === "function" ? wrap("into wasm: " + name.replace(/__h[0-9a-f]{16}$/, ""), value) : value;
    }
    return wrapped;
  },
};
`);
writeFileSync(path.join(copy, "count-entry.mjs"), `
import "./count-setup.mjs";
import gateway from "./entry.mjs";
export * from "./entry.mjs";
export default {
  async fetch(request, env, ctx) {
    const before = new Map(globalThis.__egCount.counts);
    const response = await gateway.fetch(request, env, ctx);
    const delta = {};
    for (const [name, n] of globalThis.__egCount.counts) if (n > (before.get(name) ?? 0)) delta[name] = n - (before.get(name) ?? 0);
    const counted = new Response(response.body, response);
    counted.headers.set("x-crossings", JSON.stringify(delta));
    return counted;
  },
};
`);

const upstream = await startUpstream();
const token = await benchToken();
const worker = await startWorkers({
  scriptPath: path.join(copy, "count-entry.mjs"),
  durableObjects: { EDGEGATE_LIMITER: { className: "EdgegateLimiter", useSQLite: true } },
  modulesRules: bundleRules,
});
const bearer = { authorization: `Bearer ${token}` };
const routes = [
  ["plain", "/proxy/items?x=1", {}],
  ["es256", "/jwt/items?x=1", bearer],
  ["full", "/jwt-limited/items?x=1", bearer],
  ["refused", "/jwt-refused/items?x=1", bearer],
];
const limits = Object.fromEntries((process.env.CROSSINGS_MAX ?? "").split(",").filter(Boolean).map((item) => item.split("=")).map(([k, v]) => [k, Number(v)]));
const never = (process.env.CROSSINGS_NEVER ?? "").split(",").filter(Boolean).map((item) => item.split(":"));
const failures = [];
console.log("JS↔wasm crossings of one request (the third of each route, every cache warm), with the browser's 12 headers:");
for (const [name, route, headers] of routes) {
  let crossings;
  // The third: the first compiles the routes file and fetches nothing twice; "refused" is
  // refused from its second request on.
  for (let i = 0; i < 3; i++) {
    const response = await fetch(`http://127.0.0.1:${worker.port}${route}`, { headers: { ...browserHeaders, ...headers } });
    await response.arrayBuffer();
    crossings = JSON.parse(response.headers.get("x-crossings") ?? "{}");
  }
  const total = (prefix) => Object.entries(crossings).filter(([k]) => k.startsWith(prefix)).reduce((sum, [, n]) => sum + n, 0);
  const all = total("");
  console.log(`\n${name} (${route}): ${all} crossings, ${total("into JS")} into JS and ${total("into wasm")} into the wasm`);
  for (const [what, n] of Object.entries(crossings).sort((a, b) => b[1] - a[1])) console.log(`  ${String(n).padStart(3)}  ${what}`);
  if (limits[name] !== undefined && all > limits[name]) failures.push(`${name}: ${all} crossings, at most ${limits[name]} expected`);
  for (const [route, call] of never) {
    if (route === name && crossings[`into JS: ${call}`]) failures.push(`${name}: called ${call}, which it never should`);
  }
}
await worker.stop();
upstream.close();
if (failures.length > 0) {
  console.error(`\nnot ok - ${failures.join("; ")}`);
  process.exit(1);
}
