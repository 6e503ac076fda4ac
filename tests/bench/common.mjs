// What the load tools share (bench.mjs, ab.mjs, profile.mjs): the upstream, the request every
// run sends, the bench's token, how a Workers subject and a Spin subject are started, and CPU
// readings.
import http from "node:http";
import path from "node:path";
import { execFileSync, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Miniflare, Log, LogLevel } from "miniflare";
import { SignJWT, importJWK } from "jose";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/**
 * The node upstream every subject proxies to, on 127.0.0.1:27281 (tests/bench/routes.json): below
 * 32768, outside the ephemeral range, so no outbound connection can be holding the port.
 */
export async function startUpstream() {
  const body = JSON.stringify({ ok: true, items: [1, 2, 3] });
  const upstream = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
  upstream.keepAliveTimeout = 60_000;
  await new Promise((r) => upstream.listen(27281, "127.0.0.1", r));
  return upstream;
}

// Every request carries what a browser's fetch() from a single-page app sends (12 headers, ~600
// bytes), not wrk's bare Host: a gateway's per-header work shows, as it does in production.
export const browserHeaders = {
  accept: "application/json",
  "accept-encoding": "gzip, deflate, br, zstd",
  "accept-language": "en-US,en;q=0.9",
  origin: "https://app.example.com",
  referer: "https://app.example.com/dashboard",
  "sec-ch-ua": '"Chromium";v="131", "Not_A Brand";v="24"',
  "sec-ch-ua-mobile": "?0",
  "sec-ch-ua-platform": '"Linux"',
  "sec-fetch-dest": "empty",
  "sec-fetch-mode": "cors",
  "sec-fetch-site": "same-site",
  "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
};

/** wrk's `-H` arguments for a set of headers. */
export const wrkHeaders = (headers) => Object.entries(headers).flatMap(([name, value]) => ["-H", `${name}: ${value}`]);

/** An ES256 token for the JWT routes, signed with the key tests/bench/routes.json trusts. */
export async function benchToken() {
  const key = await importJWK(JSON.parse(readFileSync(path.join(root, "tests/conformance/keys/inline-es256.private.jwk.json"), "utf8")), "ES256");
  return new SignJWT({ sub: "bench-user", scope: "read" })
    .setProtectedHeader({ alg: "ES256", kid: "inline-es256" })
    .setIssuer("https://bench.test").setAudience("bench").setIssuedAt().setExpirationTime("2h")
    .sign(key);
}

/** Miniflare options every Workers subject shares. */
export const miniflareCommon = {
  modules: true, compatibilityDate: "2026-04-01", cf: false, host: "127.0.0.1", port: 0, log: new Log(LogLevel.WARN),
  stripCfConnectingIp: false,
  // Drained, not printed: an undrained pipe would block workerd on its first full buffer.
  handleRuntimeStdio(stdout, stderr) {
    stdout.resume();
    stderr.resume();
  },
};

/** Module rules for a worker-build bundle (the JS glue and the compiled wasm). */
export const bundleRules = [{ type: "ESModule", include: ["**/*.js", "**/*.mjs"] }, { type: "CompiledWasm", include: ["**/*.wasm"] }];

const workerdPids = () => {
  try {
    return execFileSync("pgrep", ["-P", String(process.pid), "workerd"], { encoding: "utf8" }).trim().split("\n").filter(Boolean);
  } catch {
    return [];
  }
};

/**
 * A Workers subject under Miniflare with a direct socket into the worker (no entry worker on the
 * path, as in production): { port, pid, stop }, pid being its own workerd process.
 */
export async function startWorkers(options) {
  const before = new Set(workerdPids());
  // Port 0: workerd picks a free one (a fixed port may be some connection's ephemeral port).
  const mf = new Miniflare({ ...miniflareCommon, ...options, unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }] });
  await mf.ready;
  const port = Number((await mf.unsafeGetDirectURL()).port);
  return { port, pid: workerdPids().find((p) => !before.has(p)), stop: () => mf.dispose() };
}

/** A component on the project's Spin test host (its bench build, opt-level 3): { port, pid, stop }. */
export async function startSpin(wasm) {
  const host = path.join(root, "tools/wasmtime/target/bench-host/spin-test-host");
  // Port 0: the host picks a free one (a fixed port may be some connection's ephemeral port).
  const child = spawn(host, ["--listen", "127.0.0.1:0", "--component", wasm], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`spin-test-host exited with ${code}`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      const m = line.match(/^listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) resolve(Number(m[1]));
    });
  });
  const stop = async () => {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  };
  return { port, pid: String(child.pid), stop };
}

/** CPU time (user + system, in clock ticks of 10 ms) the given processes have used so far. */
export function ticksOf(pids) {
  if (pids.length === 0 || pids.some((pid) => pid === undefined)) return NaN;
  return pids.reduce((sum, pid) => {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return sum + Number(fields[11]) + Number(fields[12]);
  }, 0);
}
