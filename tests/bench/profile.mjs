// `scripts/profile`: a CPU profile of the Workers build (tests/bench/routes.json, wasm names
// kept) taken through workerd's inspector while wrk loads the plain route for 5 s. Prints the
// share of samples by kind (wasm, JS glue, the runtime's builtins, GC, idle) and the top
// functions by self time. Usage: node tests/bench/profile.mjs path/to/entry.mjs [route path]
import path from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import WebSocket from "ws";
import { bundleRules, startUpstream, startWorkers } from "./common.mjs";
const run = promisify(execFile);
const up = await startUpstream();
const script = process.argv[2];
const { port, stop } = await startWorkers({ inspectorPort: 27299, scriptPath: path.resolve(script),
  durableObjects: { EDGEGATE_LIMITER: { className: "EdgegateLimiter", useSQLite: true } }, modulesRules: bundleRules });
const url = `http://127.0.0.1:${port}${process.argv[3] ?? "/proxy/items?x=1"}`;
await run("wrk", ["-t2", "-c8", "-d2s", url]);
const list = await (await fetch("http://127.0.0.1:27299/json/list")).json();
const target = list.find((t) => !/limiter/i.test(t.title ?? "")) ?? list[0];
const ws = new WebSocket(target.webSocketDebuggerUrl);
await new Promise((r) => ws.once("open", r));
let id = 0; const pending = new Map();
ws.on("message", (m) => { const msg = JSON.parse(m); if (msg.id && pending.has(msg.id)) { pending.get(msg.id)(msg); pending.delete(msg.id); } });
const call = (method, params = {}) => new Promise((r) => { const i = ++id; pending.set(i, r); ws.send(JSON.stringify({ id: i, method, params })); });
await call("Profiler.enable");
await call("Profiler.setSamplingInterval", { interval: 100 });
await call("Profiler.start");
const { stdout } = await run("wrk", ["-t2", "-c32", "-d5s", url]);
const { result } = await call("Profiler.stop");
console.log(stdout.match(/Requests\/sec:.*/)[0]);
const nodes = new Map(result.profile.nodes.map((n) => [n.id, n]));
const self = new Map();
const total = result.profile.samples.length;
for (const s of result.profile.samples) {
  const f = nodes.get(s).callFrame;
  const key = `${f.functionName || "(anonymous)"} ${f.url ? path.basename(f.url) : ""}`;
  self.set(key, (self.get(key) ?? 0) + 1);
}
const byKind = {};
for (const [k, n] of self) {
  const kind = /wasm/.test(k) || /\.wasm/.test(k) ? "wasm" : /\(garbage collector\)/.test(k) ? "gc" : /\(idle\)/.test(k) ? "idle" : /\(program\)/.test(k) ? "program" : /index\.js|entry\.mjs/.test(k) ? "js glue" : "other";
  byKind[kind] = (byKind[kind] ?? 0) + n;
}
console.log("samples", total, Object.fromEntries(Object.entries(byKind).map(([k, n]) => [k, (100 * n / total).toFixed(1) + "%"])));
for (const [k, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 35)) console.log((100 * n / total).toFixed(2).padStart(6) + "%  " + k);
ws.close(); await stop(); up.close();
