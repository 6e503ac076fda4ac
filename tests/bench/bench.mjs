// `scripts/bench`: the Workers build (tests/bench/routes.json), a bare JS pass-through worker
// (the floor) and a Hono + jose worker doing the full policy (the peer), each under Miniflare
// with a direct socket into the worker and outbound fetch going straight out: no Miniflare
// entry worker or CF-Connecting-IP-stripping worker on the path, neither of which production
// has. Same fast node upstream, same bounded wrk settings, rounds interleaved.
import http from "node:http";
import path from "node:path";
import { execFile, execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { Miniflare, Log, LogLevel } from "miniflare";
import { SignJWT, importJWK } from "jose";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const duration = process.env.BENCH_DURATION ?? "10s";
const connections = process.env.BENCH_CONNECTIONS ?? "32";
const rounds = Number(process.env.BENCH_ROUNDS ?? "2");

const body = JSON.stringify({ ok: true, items: [1, 2, 3] });
const upstream = http.createServer((req, res) => {
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
});
upstream.keepAliveTimeout = 60_000;
await new Promise((r) => upstream.listen(47281, "127.0.0.1", r));

const common = { modules: true, compatibilityDate: "2026-04-01", cf: false, host: "127.0.0.1", port: 0, log: new Log(LogLevel.WARN),
  stripCfConnectingIp: false,
  // Drained, not printed: an undrained pipe would block workerd on its first full buffer.
  handleRuntimeStdio(stdout, stderr) {
    stdout.resume();
    stderr.resume();
  },
};
// An ES256 token for the JWT route, signed by jose with the key tests/bench/routes.json trusts.
const signingKey = await importJWK(JSON.parse(readFileSync(path.join(root, "tests/conformance/keys/inline-es256.private.jwk.json"), "utf8")), "ES256");
const token = await new SignJWT({ sub: "bench-user", scope: "read" })
  .setProtectedHeader({ alg: "ES256", kid: "inline-es256" })
  .setIssuer("https://bench.test").setAudience("bench").setIssuedAt().setExpirationTime("2h")
  .sign(signingKey);
const edgegateOptions = { ...common, durableObjects: { EDGEGATE_LIMITER: "EdgegateLimiter" }, scriptPath: path.join(root, "target/bench/workers/entry.mjs"), modulesRules: [{ type: "ESModule", include: ["**/*.js", "**/*.mjs"] }, { type: "CompiledWasm", include: ["**/*.wasm"] }] };
const honoOptions = { ...common, scriptPath: path.join(root, "target/bench/hono-gateway.mjs"), durableObjects: { LIMITER: { className: "Limiter", useSQLite: true } } };
const allSubjects = [
  { name: "js-passthrough", options: { ...common, scriptPath: path.join(root, "tests/bench/passthrough.mjs") }, path: "/proxy/items?x=1" },
  { name: "edgegate-plain", options: edgegateOptions, path: "/proxy/items?x=1" },
  { name: "edgegate-es256", options: edgegateOptions, path: "/jwt/items?x=1", headers: { authorization: `Bearer ${token}` } },
  { name: "edgegate-full", options: edgegateOptions, path: "/jwt-limited/items?x=1", headers: { authorization: `Bearer ${token}` } },
  { name: "edgegate-full-lazy", options: edgegateOptions, path: "/jwt-limited-lazy/items?x=1", headers: { authorization: `Bearer ${token}` } },
  { name: "hono-jose-full", options: honoOptions, path: "/full/items?x=1", headers: { authorization: `Bearer ${token}` } },
  ...(process.env.BENCH_EXTRA ? [{ name: "extra", options: { ...edgegateOptions, scriptPath: path.resolve(process.env.BENCH_EXTRA) }, path: "/proxy/items?x=1" }] : []),
];
// BENCH_ONLY=name,name runs a subset (the floor always runs: ratios need it).
const only = process.env.BENCH_ONLY?.split(",");
const subjects = allSubjects.filter((s) => !only || s.name === "js-passthrough" || only.includes(s.name));

// Asynchronous, so this process keeps serving the upstream while wrk runs.
const run = promisify(execFile);

// CPU time (user + system, in clock ticks of 10 ms) the workerd processes this run started
// have used: a steadier cost per request than req/s on a machine the load generator shares.
function workerdTicks() {
  let pids = [];
  try {
    pids = execFileSync("pgrep", ["-P", String(process.pid), "workerd"], { encoding: "utf8" }).trim().split("\n");
  } catch {
    return NaN;
  }
  return pids.reduce((sum, pid) => {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return sum + Number(fields[11]) + Number(fields[12]);
  }, 0);
}

async function wrk(url, headers = {}) {
  const headerArgs = Object.entries(headers).flatMap(([name, value]) => ["-H", `${name}: ${value}`]);
  // A short warm-up, then the measured run.
  await run("wrk", ["-t2", "-c8", "-d2s", ...headerArgs, url]);
  const before = workerdTicks();
  const { stdout: out } = await run("wrk", ["-t2", `-c${connections}`, `-d${duration}`, "--latency", ...headerArgs, url]);
  const cpuMs = (workerdTicks() - before) * 10;
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

// Each subject in its own workerd, reached through a direct socket on its own port.
const results = Object.fromEntries(subjects.map((s) => [s.name, []]));
for (let round = 0; round < rounds; round++) {
  for (const [i, subject] of subjects.entries()) {
    const port = 47300 + round * 10 + i; // fresh per round: a disposed workerd may hold its port a moment
    const mf = new Miniflare({ ...subject.options, unsafeDirectSockets: [{ host: "127.0.0.1", port }] });
    await mf.ready;
    const url = `http://127.0.0.1:${port}${subject.path}`;
    const probe = await fetch(url, { headers: subject.headers });
    if (probe.status !== 200) throw new Error(`${subject.name}: probe answered ${probe.status}: ${await probe.text()}`);
    await probe.arrayBuffer();
    results[subject.name].push(await wrk(url, subject.headers));
    await mf.dispose();
  }
}
upstream.close();

const mean = (list, key) => list.reduce((sum, r) => sum + r[key], 0) / list.length;
const floor = mean(results["js-passthrough"], "rps");
console.log(`\nMiniflare (workerd) with direct sockets, wrk -t2 -c${connections} -d${duration}, ${rounds} interleaved round(s), GET → node upstream on 127.0.0.1`);
console.log("es256: an ES256 bearer token (reused, as clients do) and a claim header; full: plus an exact Durable Object limit per sub (one hot key), persisted every request (lazy: write-behind); hono-jose-full: the same policy in Hono + jose with a SQLite Durable Object\n");
console.log("subject               req/s   ratio   p50 ms   p99 ms   non-2xx   workerd CPU µs/req");
for (const [name, list] of Object.entries(results)) {
  const rps = mean(list, "rps");
  console.log(`${name.padEnd(20)} ${rps.toFixed(0).padStart(6)}   ${(rps / floor).toFixed(2).padStart(5)}x  ${mean(list, "p50").toFixed(2).padStart(7)}  ${mean(list, "p99").toFixed(2).padStart(7)}   ${String(list.reduce((s, r) => s + r.errors, 0)).padStart(7)}   ${mean(list, "cpuUs").toFixed(0).padStart(8)}`);
}
if (results["hono-jose-full"] && results["edgegate-full"]) {
  const peer = mean(results["hono-jose-full"], "rps");
  console.log(`\nedgegate-full / hono-jose-full: ${(mean(results["edgegate-full"], "rps") / peer).toFixed(2)}x`);
}
