// `node tests/bench/ab.mjs name=entry.mjs[@path][#jwt][!429] ...`: a concurrent A/B of Workers builds
// (or of Spin components: `name=component.wasm[@path]`, on the bench's Spin test host),
// for ranking changes smaller than the sequential bench's spread (its rounds differ by up to
// ±15 % on the 2-core machine, because the host's speed drifts within minutes and a workerd
// process keeps a speed of its own from start to exit). Here every round starts each subject in
// a fresh workerd (Miniflare, direct socket, as scripts/bench) and loads all of them at once,
// each with its own wrk, for the same seconds; the measure is each workerd's CPU per request
// (user + system from /proc; the host process's for a component), so drift hits all subjects
// alike. Prints each round, then each subject's mean and its median ratio to the first subject
// over the rounds (with the range).
// List a subject twice to see the method's own noise (a median within ±2 % of 1 is typical at
// 8 rounds). `#jwt` sends the bench's ES256 token; `!429` says every answer after the probe is
// a 429 (a client past its limit: the probe takes the one request the route allows).
//
// AB_SECONDS (6) and AB_ROUNDS (8) bound the run; AB_PERF=1 also samples every workerd during
// the first round with `perf record` (cpu-clock, call stacks) and prints where each subject's
// CPU goes per request, by the innermost runtime API or kind of work on the stack: the JIT's
// code (JS and wasm themselves, and other runtime calls made from it), Headers, the fetch call,
// Response building, timers, the log line, GC and wrapper bookkeeping, the kernel's network
// (workerd's kinds: a Spin host's samples land in the kernel and "runtime: other").
// The builds under test are plain directories as scripts/bench leaves them (target/bench/...).
import path from "node:path";
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { benchToken, browserHeaders, bundleRules, root, startSpin, startUpstream, startWorkers, ticksOf, wrkHeaders } from "./common.mjs";

const run = promisify(execFile);
const seconds = Number(process.env.AB_SECONDS ?? "6");
const rounds = Number(process.env.AB_ROUNDS ?? "8");
const specs = process.argv.slice(2).map((arg) => {
  const m = arg.match(/^([\w-]+)=([^@#!]+)(?:@([^#!]+))?(#jwt)?(!429)?$/);
  if (!m) throw new Error(`usage: name=entry.mjs[@path][#jwt][!429], not ${arg}`);
  return { name: m[1], entry: path.resolve(m[2]), route: m[3] ?? "/proxy/items?x=1", jwt: Boolean(m[4]), refused: Boolean(m[5]) };
});
if (specs.length === 0) throw new Error("usage: node tests/bench/ab.mjs name=entry.mjs[@path][#jwt][!429] ...");

const upstream = await startUpstream();
const token = await benchToken();
const headerArgs = (spec) => wrkHeaders({ ...browserHeaders, ...(spec.jwt ? { authorization: `Bearer ${token}` } : {}) });
// The Durable Object classes each kind of Workers subject exports (none for the bare ones).
const durableObjects = (entry) =>
  /hono/.test(entry) ? { LIMITER: { className: "Limiter", useSQLite: true } }
    : /limit-floor/.test(entry) ? { COUNTER: { className: "Counter", useSQLite: true } }
    : /passthrough|mimic/.test(entry) ? {}
      : { EDGEGATE_LIMITER: { className: "EdgegateLimiter", useSQLite: true } };

async function start(spec) {
  const started = spec.entry.endsWith(".wasm")
    ? await startSpin(spec.entry)
    : await startWorkers({ scriptPath: spec.entry, durableObjects: durableObjects(spec.entry), modulesRules: bundleRules });
  return { ...spec, ...started, url: `http://127.0.0.1:${started.port}${spec.route}` };
}

const cpu = Object.fromEntries(specs.map((s) => [s.name, []]));
let profile;
for (let round = 0; round < rounds; round++) {
  // Started in a rotating order: no subject always starts first.
  const order = specs.map((_, i) => specs[(i + round) % specs.length]);
  const subjects = [];
  for (const spec of order) {
    const subject = await start(spec);
    const probe = await run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", ...headerArgs(subject), subject.url]);
    if (probe.stdout !== "200") throw new Error(`${subject.name}: probe answered ${probe.stdout}`);
    subjects.push(subject);
  }
  for (const s of subjects) await run("wrk", ["-t1", "-c4", "-d2s", ...headerArgs(s), s.url]);
  const before = subjects.map((s) => ticksOf([s.pid]));
  const perfFile = path.join(root, "target/ab-perf.data");
  const perf = process.env.AB_PERF && round === 0
    ? run("perf", ["record", "-q", "-e", "cpu-clock", "-F", "999", "-g", "-o", perfFile, "-p", subjects.map((s) => s.pid).join(","), "--", "sleep", String(seconds - 1)])
    : null;
  const connections = String(Math.max(4, Math.floor(24 / subjects.length)));
  const outs = await Promise.all(subjects.map((s) => run("wrk", ["-t1", `-c${connections}`, `-d${seconds}s`, ...headerArgs(s), s.url])));
  await perf;
  const line = subjects.map((s, i) => {
    const requests = Number(outs[i].stdout.match(/(\d+) requests in/)[1]);
    const non2xx = Number(outs[i].stdout.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0);
    if (non2xx !== (s.refused ? requests : 0)) throw new Error(`${s.name}: ${non2xx} of ${requests} answers were not 2xx`);
    const us = ((ticksOf([s.pid]) - before[i]) * 10_000) / requests;
    cpu[s.name].push(us);
    return `${s.name} ${us.toFixed(0)} µs`;
  });
  console.log(`round ${round + 1}: ${line.join("  ")}`);
  if (perf) profile = breakdown(perfFile, subjects, outs.map((o) => Number(o.stdout.match(/(\d+) requests in/)[1])), seconds - 1);
  for (const s of subjects) await s.stop();
}
upstream.close();

console.log(`\nruntime CPU per request (workerd, or the Spin host), ${rounds} rounds of ${seconds} s, all subjects loaded at once (wrk -t1 each)`);
const base = cpu[specs[0].name];
for (const [name, list] of Object.entries(cpu)) {
  const ratios = list.map((us, i) => us / base[i]).sort((a, b) => a - b);
  const mean = list.reduce((a, b) => a + b) / list.length;
  console.log(`${name.padEnd(14)} ${mean.toFixed(0).padStart(6)} µs   vs ${specs[0].name}: median ${ratios[Math.floor(ratios.length / 2)].toFixed(3)} (${ratios[0].toFixed(3)}–${ratios.at(-1).toFixed(3)})`);
}
if (profile) console.log(profile);

// Samples per subject, each put in the kind of work of the innermost frame on its stack that
// names one; µs per request from the sampling rate and the requests wrk counted over the same
// seconds (scaled to the sampled part of the round).
function breakdown(file, subjects, requests, sampledSeconds) {
  const kinds = [
    ["log line", /handleLog|Builtin_ConsoleLog|unix_stream_sendmsg/],
    ["timers", /setTimeout|clearTimeout|TimeoutManager/],
    ["Headers", /workerd::api::Headers|getHeaderKeyFor/],
    ["fetch call", /ServiceWorkerGlobalScope::fetch\b/],
    ["Response built", /workerd::api::Response::(constructor|Response)/],
    ["GC, wrappers", /Scaveng|MarkCompact|Sweeper|ConcurrentMarking|HeapTracer|GlobalHandles|Wrappable|RefToDelete/],
  ];
  const script = execFileSync("perf", ["script", "-i", file, "-F", "pid,ip,sym,dso"], { encoding: "utf8", maxBuffer: 1 << 30 });
  const counts = new Map(subjects.map((s) => [s.pid, new Map()]));
  for (const sample of script.split("\n\n")) {
    const lines = sample.trim().split("\n");
    const pid = lines[0]?.trim().split(/\s+/)[0];
    const frames = lines.slice(1).map((l) => l.trim());
    if (!counts.has(pid) || frames.length === 0) continue;
    // The innermost frame that names a kind decides; a JS or wasm frame reached first makes the
    // sample the code's own work (a leaf) or an unnamed runtime call from it.
    let kind;
    for (const [depth, frame] of frames.entries()) {
      if (/\[JIT\]|perf-\d+\.map/.test(frame)) {
        kind = depth === 0 ? "JS and wasm code" : "called from JS";
        break;
      }
      kind = kinds.find(([, pattern]) => pattern.test(frame))?.[0];
      if (kind) break;
    }
    kind ??= frames[0].includes("kernel") ? (frames.some((f) => /tcp_|inet_|ip_/.test(f)) ? "kernel: network" : "kernel: other") : "runtime: other";
    const map = counts.get(pid);
    map.set(kind, (map.get(kind) ?? 0) + 1);
  }
  const names = ["JS and wasm code", "called from JS", ...kinds.map(([k]) => k), "kernel: network", "kernel: other", "runtime: other"];
  const perRequest = subjects.map((s, i) => {
    const map = counts.get(s.pid);
    const share = sampledSeconds / seconds;
    return names.map((k) => ((map.get(k) ?? 0) * (1e6 / 999)) / (requests[i] * share));
  });
  let out = `\nwhere each subject's CPU went in round 1 (perf, µs per request)\n${"".padEnd(18)}${subjects.map((s) => ` ${s.name}`.padStart(13)).join("")}\n`;
  names.forEach((k, j) => { out += `${k.padEnd(18)}${perRequest.map((row) => row[j].toFixed(1).padStart(13)).join("")}\n`; });
  out += `${"total".padEnd(18)}${perRequest.map((row) => row.reduce((a, b) => a + b).toFixed(1).padStart(13)).join("")}`;
  return out;
}
