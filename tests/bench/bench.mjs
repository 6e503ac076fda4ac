// `scripts/bench`: the Workers build (tests/bench/routes.json), a bare JS pass-through worker
// (the floor) and a Hono + jose worker doing the full policy (the peer), each under Miniflare
// with a direct socket into the worker and outbound fetch going straight out: no Miniflare
// entry worker or CF-Connecting-IP-stripping worker on the path, neither of which production
// has. Same fast node upstream, same bounded wrk settings, rounds interleaved.
import path from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { benchToken, browserHeaders, bundleRules, root, startSpin, startUpstream, startWorkers, ticksOf, wrkHeaders } from "./common.mjs";

const duration = process.env.BENCH_DURATION ?? "10s";
const connections = process.env.BENCH_CONNECTIONS ?? "32";
const rounds = Number(process.env.BENCH_ROUNDS ?? "2");

const upstream = await startUpstream();
const token = await benchToken();
const edgegateOptions = { durableObjects: { EDGEGATE_LIMITER: { className: "EdgegateLimiter", useSQLite: true } }, scriptPath: path.join(root, "target/bench/workers/entry.mjs"), modulesRules: bundleRules };
const honoOptions = { scriptPath: path.join(root, "target/bench/hono-gateway.mjs"), durableObjects: { LIMITER: { className: "Limiter", useSQLite: true } } };
// A subject starts its runtime on a free port and answers { port, stop, ticks }: ticks is the
// CPU its process has used so far (user + system, clock ticks of 10 ms).
const measured = (started) => ({ port: started.port, stop: started.stop, ticks: () => ticksOf([started.pid]) });
const workers = (options) => async () => measured(await startWorkers(options));
// Spin: the project's wasmtime test host, a fresh instance per request as Spin runs components.
const spin = (wasm) => async () => measured(await startSpin(wasm));
const spinEdgegate = spin(path.join(root, "target/bench/spin/edgegate_spin.wasm"));
const bearer = { authorization: `Bearer ${token}` };
const allSubjects = [
  { name: "js-passthrough", runtime: "workers", start: workers({ scriptPath: path.join(root, "tests/bench/passthrough.mjs") }), path: "/proxy/items?x=1" },
  // What being Rust/wasm costs before any gateway work: a bare workers-rs pass-through.
  { name: "rust-passthrough", runtime: "workers", start: workers({ scriptPath: path.join(root, "target/bench/rust-passthrough/entry.mjs"), modulesRules: bundleRules }), path: "/proxy/items?x=1" },
  { name: "edgegate-plain", runtime: "workers", start: workers(edgegateOptions), path: "/proxy/items?x=1" },
  { name: "edgegate-plain-sampled", runtime: "workers", start: workers({ ...edgegateOptions, scriptPath: path.join(root, "target/bench/workers-sampled/entry.mjs") }), path: "/proxy/items?x=1" },
  { name: "edgegate-es256", runtime: "workers", start: workers(edgegateOptions), path: "/jwt/items?x=1", headers: bearer },
  { name: "edgegate-full", runtime: "workers", start: workers(edgegateOptions), path: "/jwt-limited/items?x=1", headers: bearer },
  { name: "edgegate-full-lazy", runtime: "workers", start: workers(edgegateOptions), path: "/jwt-limited-lazy/items?x=1", headers: bearer },
  // A client past its limit (1 an hour): the probe takes the one, every measured request is a 429.
  { name: "edgegate-refused", runtime: "workers", start: workers(edgegateOptions), path: "/jwt-refused/items?x=1", headers: bearer },
  { name: "hono-jose-full", runtime: "workers", start: workers(honoOptions), path: "/full/items?x=1", headers: bearer },
  // BENCH_EXTRA=path/to/entry.mjs (under the repository) measures another Workers build on
  // BENCH_EXTRA_PATH (default the plain route), for A/B runs.
  ...(process.env.BENCH_EXTRA ? [{ name: "extra", runtime: "workers", start: workers({ ...edgegateOptions, scriptPath: path.resolve(process.env.BENCH_EXTRA) }), path: process.env.BENCH_EXTRA_PATH ?? "/proxy/items?x=1", headers: bearer }] : []),
  { name: "spin-passthrough", runtime: "spin", start: spin(path.join(root, "target/bench/spin/spin_passthrough.wasm")), path: "/items?x=1" },
  { name: "spin-plain", runtime: "spin", start: spinEdgegate, path: "/proxy/items?x=1" },
  { name: "spin-es256", runtime: "spin", start: spinEdgegate, path: "/jwt/items?x=1", headers: bearer },
  { name: "spin-full", runtime: "spin", start: spinEdgegate, path: "/jwt-limited/items?x=1", headers: bearer },
  // BENCH_SPIN_EXTRA=path/to/component.wasm measures another Spin build on BENCH_EXTRA_PATH.
  ...(process.env.BENCH_SPIN_EXTRA ? [{ name: "spin-extra", runtime: "spin", start: spin(path.resolve(process.env.BENCH_SPIN_EXTRA)), path: process.env.BENCH_EXTRA_PATH ?? "/proxy/items?x=1", headers: bearer }] : []),
];
const floors = { workers: "js-passthrough", spin: "spin-passthrough" };
// BENCH_ONLY=name,name runs a subset (with the floor of each runtime it touches: ratios need it).
const only = process.env.BENCH_ONLY?.split(",");
const picked = allSubjects.filter((s) => !only || only.includes(s.name));
const subjects = allSubjects.filter((s) => picked.includes(s) || (s.name === floors[s.runtime] && picked.some((p) => p.runtime === s.runtime)));

// Asynchronous, so this process keeps serving the upstream while wrk runs.
const run = promisify(execFile);

async function wrk(url, headers, ticks) {
  const headerArgs = wrkHeaders(headers ?? {});
  // A short warm-up, then the measured run.
  await run("wrk", ["-t2", "-c8", "-d2s", ...headerArgs, url]);
  const before = ticks();
  const { stdout: out } = await run("wrk", ["-t2", `-c${connections}`, `-d${duration}`, "--latency", ...headerArgs, url]);
  const cpuMs = (ticks() - before) * 10;
  const rps = Number(out.match(/Requests\/sec:\s+([\d.]+)/)[1]);
  const toMs = (v, unit) => Number(v) * ({ us: 0.001, ms: 1, s: 1000 }[unit] ?? 1);
  const pct = (p) => {
    const m = out.match(new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`));
    return m ? toMs(m[1], m[2]) : NaN;
  };
  const errors = out.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? "0";
  const requests = Number(out.match(/(\d+) requests in/)[1]);
  return { rps, p50: pct(50), p99: pct(99), errors: Number(errors), cpuUs: (cpuMs * 1000) / requests };
}

// Each subject in its own runtime process, reached through a direct socket on its own port.
const results = Object.fromEntries(subjects.map((s) => [s.name, []]));
for (let round = 0; round < rounds; round++) {
  for (const subject of subjects) {
    const runtime = await subject.start();
    const url = `http://127.0.0.1:${runtime.port}${subject.path}`;
    const headers = { ...browserHeaders, ...subject.headers };
    const probe = await fetch(url, { headers });
    if (probe.status !== 200) throw new Error(`${subject.name}: probe answered ${probe.status}: ${await probe.text()}`);
    await probe.arrayBuffer();
    results[subject.name].push(await wrk(url, headers, runtime.ticks));
    await runtime.stop();
  }
}
upstream.close();

const mean = (list, key) => list.reduce((sum, r) => sum + r[key], 0) / list.length;
const headings = {
  workers: "Workers: Miniflare (workerd) with direct sockets",
  spin: "Spin: the wasmtime 48 test host (tools/wasmtime), configured as Spin (pooled instances, epoch interruption), a fresh instance per request",
};
console.log(`\nwrk -t2 -c${connections} -d${duration}, ${rounds} interleaved round(s), GET with a browser's 12 headers → node upstream on 127.0.0.1`);
console.log("es256: an ES256 bearer token (reused, as clients do) and a claim header; full: plus an exact limit per sub (one hot key): a Durable Object persisted every request on Workers (lazy: write-behind), the key-value store on Spin; hono-jose-full: the same policy in Hono + jose with a SQLite Durable Object");
for (const runtime of ["workers", "spin"]) {
  const names = Object.keys(results).filter((name) => subjects.find((s) => s.name === name).runtime === runtime);
  if (names.length === 0) continue;
  const floorList = results[floors[runtime]];
  const floor = mean(floorList, "rps");
  console.log(`\n${headings[runtime]}\n`);
  // The spread: each round's ratio to the floor's run of the same round, lowest to highest. On 2
  // shared cores it is often ±5 %, so differences inside it are not differences.
  console.log("subject               req/s   ratio   (rounds)      p50 ms   p99 ms   non-2xx   runtime CPU µs/req");
  for (const name of names) {
    const list = results[name];
    const rps = mean(list, "rps");
    const ratios = list.map((r, i) => r.rps / floorList[i].rps);
    const spread = `${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}`;
    console.log(`${name.padEnd(20)} ${rps.toFixed(0).padStart(6)}   ${(rps / floor).toFixed(2).padStart(5)}x  ${spread.padEnd(11)}  ${mean(list, "p50").toFixed(2).padStart(7)}  ${mean(list, "p99").toFixed(2).padStart(7)}   ${String(list.reduce((s, r) => s + r.errors, 0)).padStart(7)}   ${mean(list, "cpuUs").toFixed(0).padStart(8)}`);
  }
}
if (results["hono-jose-full"] && results["edgegate-full"]) {
  const peer = mean(results["hono-jose-full"], "rps");
  console.log(`\nedgegate-full / hono-jose-full: ${(mean(results["edgegate-full"], "rps") / peer).toFixed(2)}x`);
}
