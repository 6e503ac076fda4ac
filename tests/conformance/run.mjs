// Runs the conformance scenarios against one runtime with real upstream servers on 127.0.0.1.
//
//   node tests/conformance/run.mjs workers   # target/conformance/workers (worker-build output) in workerd via Miniflare
//   node tests/conformance/run.mjs spin      # target/conformance/spin/edgegate_spin.wasm in tools/wasmtime
//
// Both artifacts are built from tests/conformance/routes.json by scripts/test.
import fs from "node:fs";
import http from "node:http";
import { execFileSync, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { startUpstream } from "../upstream/upstream.mjs";
import { scenarios as staticScenarios } from "./scenarios.mjs";
import { authScenarios, rotation, IDP_PORT, SECRETS, STORED_CONSUMER } from "./auth.mjs";
import { startIdp } from "../idp/idp.mjs";
import { rateLimitChecks } from "./ratelimit.mjs";
import { transformScenarios } from "./transform.mjs";
import { balanceChecks } from "./balance.mjs";
import { accessRecords } from "./checks.mjs";
import { hardeningScenarios, hardeningChecks } from "./hardening.mjs";
import { streamChecks } from "./streams.mjs";
import { socketChecks } from "./sockets.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const runtime = process.argv[2];
const isMain = import.meta.url === `file://${process.argv[1]}`;
if (isMain && !["workers", "spin"].includes(runtime)) {
  console.error("usage: run.mjs workers|spin");
  process.exit(2);
}

const logLines = [];

/** Miniflare options for a worker-build output directory under target/conformance, its stdout lines collected into `lines`. */
export async function workersOptions(build, lines, extra) {
  const { Log, LogLevel } = await import("miniflare");
  return {
    modules: true,
    scriptPath: path.join(root, "target/conformance", build, "entry.mjs"),
    modulesRules: [{ type: "ESModule", include: ["**/*.js", "**/*.mjs"] }, { type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: "2026-04-01",
    cf: false,
    host: "127.0.0.1",
    port: 0,
    log: new Log(LogLevel.WARN),
    handleRuntimeStdio(stdout, stderr) {
      createInterface({ input: stdout }).on("line", (line) => lines.push(line));
      createInterface({ input: stderr }).on("line", (line) => process.stderr.write(`[workerd] ${line}\n`));
    },
    ...extra,
  };
}

export async function startWorkers({ fresh = true } = {}) {
  if (fresh) fs.rmSync(path.join(root, "target/conformance/durable-objects"), { recursive: true, force: true });
  const { Miniflare } = await import("miniflare");
  const mf = new Miniflare(await workersOptions("workers", logLines, {
    bindings: SECRETS,
    durableObjects: { EDGEGATE_LIMITER: { className: "EdgegateLimiter", useSQLite: true } },
    // On disk, so a restarted workerd (every object evicted) finds what the objects stored.
    durableObjectsPersist: path.join(root, "target/conformance/durable-objects"),
    kvNamespaces: ["EDGEGATE_KV"],
  }));
  const url = await mf.ready;
  await (await mf.getKVNamespace("EDGEGATE_KV")).put(STORED_CONSUMER.key, STORED_CONSUMER.value);
  // The workerd process Miniflare started, for memory checks.
  const pids = execFileSync("pgrep", ["-P", String(process.pid), "workerd"], { encoding: "utf8" }).trim().split("\n");
  return { port: Number(url.port), pids, stop: () => mf.dispose() };
}

export async function startSpin() {
  const host = path.join(root, "tools/wasmtime/target/release/spin-test-host");
  const wasm = path.join(root, "target/conformance/spin/edgegate_spin.wasm");
  const args = ["--listen", "127.0.0.1:0", "--component", wasm, "--kv", `${STORED_CONSUMER.key}=${STORED_CONSUMER.value}`];
  for (const [name, value] of Object.entries(SECRETS)) args.push("--var", `${name}=${value}`);
  const child = spawn(host, args, { stdio: ["ignore", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("spin-test-host did not start within 60 s")), 60_000);
    child.once("exit", (code) => reject(new Error(`spin-test-host exited with ${code}`)));
    lines.on("line", (line) => {
      const m = line.match(/^listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      } else {
        logLines.push(line);
      }
    });
  });
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(timer);
  };
  return { port, pids: [String(child.pid)], stop };
}

function bodyOf(spec) {
  if (!spec) return { data: null, chunked: false };
  const data = Buffer.alloc(spec.bytes, spec.repeat);
  return { data, chunked: !!spec.chunked };
}

/** Sends one raw HTTP/1.1 request (node's fetch forbids Host, TE, Keep-Alive...). */
export function send(port, { method, path: target, headers = {}, body, json, text, raw }) {
  const { data, chunked } =
    raw !== undefined ? { data: raw, chunked: false } : json !== undefined ? { data: Buffer.from(JSON.stringify(json)), chunked: false } : text !== undefined ? { data: Buffer.from(text), chunked: false } : bodyOf(body);
  return new Promise((resolve, reject) => {
    const outgoing = { ...headers };
    if (data && !chunked) outgoing["content-length"] = data.length;
    if (chunked) outgoing["transfer-encoding"] = "chunked";
    const req = http.request({ host: "127.0.0.1", port, method, path: target, headers: outgoing, agent: false, setHost: !("host" in headers) }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.setTimeout(30_000, () => req.destroy(new Error("no answer within 30 s")));
    if (data && chunked) {
      for (let i = 0; i < data.length; i += 512) req.write(data.subarray(i, i + 512));
    } else if (data) {
      req.write(data);
    }
    req.end();
  });
}

function check(failures, what, actual, expected) {
  if (expected === null) {
    if (actual !== undefined) failures.push(`${what}: expected absent, got ${JSON.stringify(actual)}`);
  } else if (expected instanceof RegExp) {
    if (actual === undefined || !expected.test(Array.isArray(actual) ? actual.join(", ") : String(actual))) failures.push(`${what}: expected ${expected}, got ${JSON.stringify(actual)}`);
  } else {
    const value = Array.isArray(actual) ? actual.join(", ") : actual;
    if (String(value) !== String(expected)) failures.push(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(value)}`);
  }
}

function subset(failures, what, actual, expected) {
  for (const [key, value] of Object.entries(expected)) {
    if (typeof value === "object" && value !== null && !(value instanceof RegExp)) subset(failures, `${what}.${key}`, actual?.[key], value);
    else check(failures, `${what}.${key}`, actual?.[key], value);
  }
}

async function main() {
  // Fixed ports (the routes files name them) below 32768, outside Linux's ephemeral range: no
  // outbound connection's local port can hold one when a listener wants it (47184 once did).
  const upstreams = {
    a: await startUpstream({ port: 27181, name: "a" }),
    b: await startUpstream({ port: 27182, name: "b" }),
    c: await startUpstream({ port: 27184, name: "c" }),
    d: await startUpstream({ port: 27185, name: "d" }),
  };
  const idp = await startIdp({ port: IDP_PORT });
  const scenarios = [...staticScenarios, ...transformScenarios, ...(await authScenarios(idp)), ...(await hardeningScenarios(runtime))];
  let gateway = runtime === "workers" ? await startWorkers() : await startSpin();
  let failed = 0;
  let checks = 0;
  let sent = 0;
  try {
    for (const scenario of scenarios) {
      for (const up of Object.values(upstreams)) up.requests.length = 0;
      const failures = [];
      let response;
      checks++;
      sent++;
      try {
        const started = Date.now();
        response = await send(gateway.port, scenario.request);
        if (scenario.expect.maxMs !== undefined && Date.now() - started > scenario.expect.maxMs) failures.push(`answered after ${Date.now() - started} ms, more than ${scenario.expect.maxMs}`);
      } catch (error) {
        failures.push(`request failed: ${error.message}`);
      }
      if (response) {
        const { expect } = scenario;
        if (expect.status !== undefined) check(failures, "status", response.status, expect.status);
        if (expect.statusIn && !expect.statusIn.includes(response.status)) failures.push(`status: expected one of ${expect.statusIn}, got ${response.status}`);
        for (const [name, value] of Object.entries(expect.headers ?? {})) check(failures, `header ${name}`, response.headers[name], value);
        if (expect.bodyLength !== undefined) check(failures, "body length", response.body.length, expect.bodyLength);
        if (expect.json || expect.problem) {
          let json;
          try {
            json = JSON.parse(response.body.toString("utf8"));
          } catch {
            failures.push(`body is not JSON: ${response.body.toString("utf8").slice(0, 200)}`);
          }
          if (json && expect.json) subset(failures, "body", json, expect.json);
          if (json && expect.problem) {
            check(failures, "content-type", response.headers["content-type"], "application/problem+json");
            check(failures, "problem type", json.type, `urn:edgegate:problem:${expect.problem}`);
            check(failures, "problem status", json.status, response.status);
            check(failures, "problem request_id", json.request_id, response.headers["x-request-id"]);
          }
        }
      }
      const received = Object.entries(upstreams).flatMap(([name, up]) => up.requests.map((r) => ({ ...r, on: name })));
      if (scenario.upstream === null && received.length > 0) failures.push(`upstream: expected nothing, got ${received.map((r) => r.method + " " + r.url).join(", ")}`);
      if (scenario.upstream) {
        const want = scenario.upstream;
        const got = received.filter((r) => !want.on || r.on === want.on);
        const count = want.count ?? 1;
        if (got.length !== count) failures.push(`upstream ${want.on}: expected ${count} request(s), got ${got.length}`);
        if (got.length > 0) {
          const r = got[got.length - 1];
          if (want.method) check(failures, "upstream method", r.method, want.method);
          if (want.url) check(failures, "upstream url", r.url, want.url);
          if (want.bodyLength !== undefined) check(failures, "upstream body length", r.bodyLength, want.bodyLength);
          for (const [name, value] of Object.entries(want.headers ?? {})) check(failures, `upstream header ${name}`, r.headers[name], value);
        }
      }
      if (failures.length) {
        failed++;
        console.log(`not ok - [${runtime}] ${scenario.name}\n${failures.map((f) => `    ${f}`).join("\n")}`);
      } else {
        console.log(`ok - [${runtime}] ${scenario.name}`);
      }
    }

    checks++;
    const rotated = await rotation(idp, (request) => send(gateway.port, request));
    sent += rotated.sent;
    if (rotated.failures.length) {
      failed++;
      console.log(`not ok - [${runtime}] JWKS rotation\n${rotated.failures.map((f) => `    ${f}`).join("\n")}`);
    } else {
      console.log(`ok - [${runtime}] JWKS rotation (${rotated.detail})`);
    }

    const limits = await rateLimitChecks(idp, (request) => send(gateway.port, request));
    const balance = await balanceChecks(runtime, (request) => send(gateway.port, request));
    const streams = await streamChecks(runtime, gateway.port, gateway.pids);
    const sockets = await socketChecks(runtime, gateway.port, (request) => send(gateway.port, request));
    const hardening = await hardeningChecks(runtime, (request) => send(gateway.port, request), gateway.port, idp);
    sent += limits.sent + balance.sent + streams.sent + sockets.sent + hardening.sent;
    for (const { name, failures } of [...limits.results, ...balance.results, ...hardening.results, ...streams.results, ...sockets.results]) {
      checks++;
      if (failures.length) {
        failed++;
        console.log(`not ok - [${runtime}] ${name}\n${failures.map((f) => `    ${f}`).join("\n")}`);
      } else {
        console.log(`ok - [${runtime}] ${name}`);
      }
    }

    if (runtime === "workers") {
      // Evict every Durable Object (restart workerd on the same storage): no count is lost.
      checks++;
      const clients = { "/rl/burst": `evict-${Date.now()}`, "/rl/lazy": `evict-lazy-${Date.now()}` };
      const round = async () => {
        const statuses = {};
        for (const [route, client] of Object.entries(clients)) {
          statuses[route] = [];
          for (let i = 0; i < 3; i++) {
            sent++;
            statuses[route].push((await send(gateway.port, { method: "GET", path: route, headers: { "x-client": client } })).status);
          }
        }
        return statuses;
      };
      const before = await round();
      await new Promise((r) => setTimeout(r, 1500)); // past the write_behind delay
      await gateway.stop();
      gateway = await startWorkers({ fresh: false });
      const after = await round();
      const want = { "/rl/burst": "200,200,429", "/rl/lazy": "200,200,429" };
      const bad = Object.keys(want).filter((r) => before[r].join() !== "200,200,200" || after[r].join() !== want[r]);
      if (bad.length) {
        failed++;
        console.log(`not ok - [${runtime}] counters survive an eviction\n${bad.map((r) => `    ${r}: before ${before[r]}, after restart ${after[r]}`).join("\n")}`);
      } else {
        console.log(`ok - [${runtime}] counters survive an eviction of every Durable Object (every_request and write_behind after its delay)`);
      }
    }

    // One JSON access-log line per request, with the documented fields.
    await new Promise((r) => setTimeout(r, 200));
    const records = accessRecords(logLines);
    const fields = ["time", "request_id", "route", "method", "path", "status", "upstream_status", "duration_ms", "upstream_ms"];
    const logFailures = [];
    if (records.length !== sent) logFailures.push(`expected ${sent} access-log lines, got ${records.length}`);

    const leaked = logLines.filter((line) => /eyJ[\w-]+\.eyJ/.test(line) || line.includes("acme-secret-key"));
    if (leaked.length) logFailures.push(`a credential reached the log: ${leaked[0].slice(0, 120)}`);
    for (const record of records) {
      const missing = fields.filter((f) => !(f in record));
      if (missing.length) logFailures.push(`log line lacks ${missing.join(", ")}: ${JSON.stringify(record)}`);
      if (record.path?.includes("?")) logFailures.push(`log line carries a query string: ${record.path}`);
    }
    const hello = records.find((r) => r.route === "hello");
    if (!hello || hello.status !== 200 || hello.upstream_status !== 200 || !/^\d{4}-\d\d-\d\dT/.test(hello.time)) logFailures.push(`no well-formed log line for the hello route: ${JSON.stringify(hello)}`);
    if (logFailures.length) {
      failed++;
      console.log(`not ok - [${runtime}] access log\n${logFailures.map((f) => `    ${f}`).join("\n")}`);
    } else {
      console.log(`ok - [${runtime}] access log: one JSON line per request, no credential in it`);
    }
    checks++;
  } finally {
    await gateway.stop();
    await idp.close();
    for (const up of Object.values(upstreams)) await up.close();
  }
  console.log(`${failed === 0 ? "PASS" : "FAIL"}: ${runtime}, ${checks - failed}/${checks}`);
  process.exit(failed === 0 ? 0 : 1);
}

if (isMain) await main();
