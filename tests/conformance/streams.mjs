// Bytes and message ends through the gateway, seen with raw node clients: non-ASCII header
// bytes reach the other side unchanged, and a body that breaks off mid-way (an upstream that
// dies, a client whose upload is cut) is passed on as broken, never as a short complete one.
import http from "node:http";
import { readFileSync } from "node:fs";
import { checkRunner } from "./checks.mjs";
import { HEADER_BYTES } from "../upstream/upstream.mjs";

const hex = (bytes) => Buffer.from(bytes).toString("hex");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * One request over a fresh connection. Resolves with the response and `complete`: whether its
 * body ended properly (last chunk, or Content-Length reached) rather than with the connection
 * breaking. Header values are written and read as Latin-1, one char per byte.
 * `cut: { after, waitMs }` sends `after` bytes of `body`, waits, then destroys the socket.
 */
function exchange(port, { method = "GET", path, headers = {}, body, cut }) {
  return new Promise((resolve) => {
    const req = http.request({ host: "127.0.0.1", port, method, path, headers, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("error", () => {});
      res.on("close", () =>
        resolve({ status: res.statusCode, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks), complete: res.complete }),
      );
    });
    req.on("error", (error) => resolve({ error }));
    req.setTimeout(15_000, () => req.destroy(new Error("no answer within 15 s")));
    if (cut) {
      req.write(body.subarray(0, cut.after));
      setTimeout(() => {
        req.destroy();
        resolve({ cut: true });
      }, cut.waitMs);
      return;
    }
    if (body) req.write(body);
    req.end();
  });
}

/** A response header's bytes (node reads header values as Latin-1). */
function headerBytes(response, name) {
  const raw = response.rawHeaders ?? [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i].toLowerCase() === name) return Buffer.from(raw[i + 1], "latin1");
  return undefined;
}

/** `count` chunks of `size` bytes, chunked (no Content-Length), written as the socket drains. */
function chunkedUpload(port, path, count, size) {
  return new Promise((resolve) => {
    const req = http.request({ host: "127.0.0.1", port, method: "POST", path, agent: false, headers: { "transfer-encoding": "chunked" } }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
    });
    req.on("error", (error) => resolve({ error }));
    req.setTimeout(60_000, () => req.destroy(new Error("no answer within 60 s")));
    const chunk = Buffer.alloc(size, 0x61);
    let written = 0;
    const more = () => {
      while (written < count) {
        written++;
        if (!req.write(chunk)) return req.once("drain", more);
      }
      req.end();
    };
    more();
  });
}

/**
 * A POST declaring `total` bytes that sends `sent` of them and then nothing, keeping the
 * connection open: resolves with the gateway's answer and how long it took.
 */
function stalledUpload(port, path, total, sent) {
  return new Promise((resolve) => {
    const started = Date.now();
    const req = http.request({ host: "127.0.0.1", port, method: "POST", path, agent: false, headers: { "content-length": total } }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        resolve({ status: res.statusCode, contentType: res.headers["content-type"], body: Buffer.concat(chunks).toString("utf8"), ms: Date.now() - started });
        req.destroy();
      });
    });
    req.on("error", (error) => resolve({ error, ms: Date.now() - started }));
    req.setTimeout(15_000, () => req.destroy(new Error("no answer within 15 s")));
    req.write(Buffer.alloc(sent, 100));
  });
}

/** Reads an event stream, noting when each event (`data: {"sent_at": ms}`) arrived. */
function eventArrivals(port, path) {
  return new Promise((resolve) => {
    const req = http.request({ host: "127.0.0.1", port, path, agent: false, headers: { accept: "text/event-stream" } }, (res) => {
      const events = [];
      let buffer = "";
      res.setEncoding("utf8");
      res.on("data", (text) => {
        buffer += text;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const data = buffer.slice(0, end).split("\n").find((line) => line.startsWith("data: "));
          buffer = buffer.slice(end + 2);
          if (data) events.push({ ...JSON.parse(data.slice(6)), arrived: Date.now() });
        }
      });
      res.on("end", () => resolve({ status: res.statusCode, contentType: res.headers["content-type"], events }));
      res.on("error", (error) => resolve({ error }));
    });
    req.on("error", (error) => resolve({ error }));
    req.setTimeout(15_000, () => req.destroy(new Error("no answer within 15 s")));
    req.end();
  });
}

export async function streamChecks(runtime, port, pids) {
  const runner = checkRunner((request) => exchange(port, request));
  const { send, check } = runner;
  // workerd decodes header bytes as UTF-8 and cannot carry bytes that are not (workerd#6927;
  // a plain JS worker loses them too): Latin-1 bytes are checked on Spin only.
  const names = runtime === "spin" ? Object.keys(HEADER_BYTES) : ["x-bytes-utf8"];

  await check("non-ASCII request header bytes reach the upstream unchanged", async () => {
    const headers = Object.fromEntries(names.map((n) => [n, HEADER_BYTES[n].toString("latin1")]));
    const response = await send({ path: "/svc/header-bytes", headers });
    if (response.status !== 200) return [`status ${response.status ?? response.error?.message}`];
    const received = JSON.parse(response.body.toString("utf8")).received;
    return names.filter((n) => received[n] !== hex(HEADER_BYTES[n])).map((n) => `${n}: upstream got ${received[n]}, sent ${hex(HEADER_BYTES[n])}`);
  });

  await check("non-ASCII response header bytes reach the client unchanged", async () => {
    const response = await send({ path: "/svc/header-bytes" });
    if (response.status !== 200) return [`status ${response.status ?? response.error?.message}`];
    return names
      .filter((n) => !HEADER_BYTES[n].equals(headerBytes(response, n) ?? Buffer.alloc(0)))
      .map((n) => `${n}: client got ${headerBytes(response, n) && hex(headerBytes(response, n))}, upstream sent ${hex(HEADER_BYTES[n])}`);
  });

  await check("a streamed body that ends properly ends properly at the client", async () => {
    const response = await send({ path: "/svc/big?bytes=200000" });
    return response.complete && response.body.length === 200000 ? [] : [`complete ${response.complete}, ${response.body.length} of 200000 bytes`];
  });

  for (const framing of ["chunked", "length"]) {
    const how = framing === "chunked" ? "chunked, no last chunk" : "short of its Content-Length";
    // workerd writes the last chunk of a chunked response whenever its body ends, also when the
    // body stream failed (kj's HttpChunkedEntityWriter writes "0\r\n\r\n" when destroyed), so
    // a plain JS worker cannot abort one either; only a declared length tells the client there.
    // On Workers the chunked case is checked for the bytes passed on, not for the abort.
    const platformLimit = runtime === "workers" && framing === "chunked";
    const name = platformLimit
      ? `an upstream that dies mid-body (${how}) is passed on as far as it got (workerd then ends the response itself)`
      : `an upstream that dies mid-body (${how}) aborts the client's response`;
    await check(name, async () => {
      const response = await send({ path: `/svc/truncated?bytes=40000&framing=${framing}` });
      if (response.error) return [`the request failed before a response head: ${response.error.message}`];
      const failures = [];
      if (response.status !== 200) failures.push(`status ${response.status}`);
      if (response.complete && !platformLimit) failures.push(`the client got a complete ${response.body.length}-byte body`);
      if (platformLimit ? response.body.length !== 40000 : response.body.length > 40000) failures.push(`${response.body.length} bytes, the upstream sent 40000`);
      return failures;
    });
  }

  // idle_timeout_ms (500 on /idle): a body that stalls ends, in both directions, as broken.
  for (const framing of ["length", "chunked"]) {
    // As above: workerd ends a chunked answer itself when its body fails.
    const platformLimit = runtime === "workers" && framing === "chunked";
    const how = framing === "chunked" ? "chunked" : "Content-Length";
    const name = platformLimit
      ? `an upstream answer that stalls mid-body (${how}) is cut after idle_timeout_ms (workerd then ends the response itself)`
      : `an upstream answer that stalls mid-body (${how}) is aborted at the client after idle_timeout_ms`;
    await check(name, async () => {
      const started = Date.now();
      const response = await send({ path: `/idle/stall?bytes=1000&framing=${framing}&hold=8000` });
      const ms = Date.now() - started;
      if (response.error) return [`the request failed before a response head: ${response.error.message}`];
      const failures = [];
      if (response.status !== 200) failures.push(`status ${response.status}`);
      if (response.complete && !platformLimit) failures.push(`the client got a complete ${response.body.length}-byte body`);
      if (response.body.length !== 1000) failures.push(`${response.body.length} bytes, the upstream sent 1000 before stalling`);
      if (ms < 450 || ms > 4000) failures.push(`ended after ${ms} ms (idle bound 500 ms, the upstream holds 8000 ms)`);
      return failures;
    });
  }
  await check("a streamed upload that stalls is answered 408 after idle_timeout_ms and never reaches the upstream complete", async () => {
    const key = `stall-${process.pid}-${Date.now()}`;
    const answer = await stalledUpload(port, `/idle/uploads/${key}`, 64 * 1024, 16 * 1024);
    const failures = [];
    if (answer.status !== 408) failures.push(`status ${answer.status ?? answer.error?.message} after ${answer.ms} ms`);
    else if (!/problem\+json/.test(answer.contentType ?? "") || !answer.body.includes("request-timeout")) failures.push(`not a request-timeout problem: ${answer.body}`);
    if (answer.ms > 4000) failures.push(`answered after ${answer.ms} ms (idle bound 500 ms)`);
    let outcome = { outcome: "none" };
    for (let i = 0; i < 15 && outcome.outcome === "none"; i++) {
      await sleep(100);
      outcome = JSON.parse((await send({ path: `/svc/uploads/${key}/outcome` })).body.toString("utf8") || "{}");
    }
    if (outcome.outcome === "complete") failures.push(`the upstream got a complete ${outcome.bytes}-byte body`);
    return failures;
  });
  runner.sent += 1;

  const upload = Buffer.alloc(64 * 1024, 99);
  await check("a complete streamed upload reaches the upstream complete", async () => {
    const key = `whole-${process.pid}-${Date.now()}`;
    const response = await send({ method: "POST", path: `/svc/uploads/${key}`, headers: { "transfer-encoding": "chunked" }, body: upload });
    const outcome = JSON.parse((await send({ path: `/svc/uploads/${key}/outcome` })).body.toString("utf8") || "{}");
    return response.status === 200 && outcome.outcome === "complete" && outcome.bytes === upload.length
      ? []
      : [`status ${response.status}, upstream saw ${JSON.stringify(outcome)}`];
  });

  // Both framings stream through (a chunked one counted against the route's limit as it
  // passes): an upload cut by the client arrives cut, never complete.
  for (const framing of ["length", "chunked"]) {
    const how = framing === "chunked" ? "chunked, counted as it streams" : "Content-Length, streamed";
    await check(`a client upload cut off mid-body (${how}) never reaches the upstream as complete`, async () => {
      const key = `cut-${framing}-${process.pid}-${Date.now()}`;
      const headers = framing === "chunked" ? { "transfer-encoding": "chunked" } : { "content-length": upload.length };
      await send({ method: "POST", path: `/svc/uploads/${key}`, headers, body: upload, cut: { after: 16 * 1024, waitMs: 300 } });
      let outcome = { outcome: "none" };
      for (let i = 0; i < 15 && outcome.outcome === "none"; i++) {
        await sleep(100);
        outcome = JSON.parse((await send({ path: `/svc/uploads/${key}/outcome` })).body.toString("utf8") || "{}");
      }
      if (outcome.outcome === "complete") return [`the upstream got a complete ${outcome.bytes}-byte body from a 16 KiB piece of a 64 KiB upload`];
      if (outcome.outcome !== "cut") return [`the upstream never saw the streamed upload start: ${JSON.stringify(outcome)}`];
      return [];
    });
  }

  // Server-sent events reach the client as the upstream sends them, not when the stream ends.
  await check("server-sent events pass through unbuffered: each event arrives within 250 ms of its send", async () => {
    const arrivals = await eventArrivals(port, "/svc/events?n=4&gap=400");
    const failures = [];
    if (arrivals.status !== 200) return [`status ${arrivals.status ?? arrivals.error?.message}`];
    if (!/^text\/event-stream/.test(arrivals.contentType ?? "")) failures.push(`content-type ${arrivals.contentType}`);
    if (arrivals.events.length !== 4) failures.push(`${arrivals.events.length} events, expected 4`);
    const lags = arrivals.events.map((e) => e.arrived - e.sent_at);
    console.log(`  ${runtime}: SSE lag per event (ms): ${lags.join(", ")}`);
    if (lags.some((lag) => lag > 250)) failures.push(`an event arrived late: lags ${lags.join(", ")} ms (events 400 ms apart)`);
    return failures;
  });
  runner.sent += 1;

  // Counting a chunked upload must not mean holding it: a Workers isolate has 128 MB.
  const MiB = 1024 * 1024;
  await check("a 100 MiB chunked upload streams through with the runtime's memory growing < 64 MB", async () => {
    const rssKiB = () => pids.reduce((sum, pid) => sum + Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)?.[1] ?? 0), 0);
    const before = rssKiB();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssKiB())), 20);
    const response = await chunkedUpload(port, "/big/sink", 100, MiB);
    clearInterval(sampler);
    peak = Math.max(peak, rssKiB());
    const failures = [];
    if (response.status !== 200) failures.push(`status ${response.status ?? response.error?.message}`);
    const counted = response.status === 200 ? JSON.parse(response.body.toString("utf8")) : {};
    if (counted.bytes !== 100 * MiB) failures.push(`the upstream counted ${counted.bytes} bytes`);
    const grewMB = ((peak - before) * 1024) / 1e6;
    console.log(`  ${runtime}: 100 MiB chunked upload, runtime RSS ${(before / 1024).toFixed(0)} MiB before, peak +${grewMB.toFixed(1)} MB`);
    if (grewMB >= 64) failures.push(`the runtime's RSS grew by ${grewMB.toFixed(1)} MB`);
    return failures;
  });
  runner.sent += 1;

  // And downloads: a 1 GiB answer streams through without being held.
  await check("a 1 GiB download streams through with the runtime's memory growing < 64 MB", async () => {
    const rssKiB = () => pids.reduce((sum, pid) => sum + Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)?.[1] ?? 0), 0);
    const before = rssKiB();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssKiB())), 20);
    const started = Date.now();
    const got = await new Promise((resolve) => {
      const req = http.request({ host: "127.0.0.1", port, path: `/big/big?bytes=${1024 * MiB}`, agent: false }, (res) => {
        let bytes = 0;
        res.on("data", (c) => (bytes += c.length));
        res.on("end", () => resolve({ status: res.statusCode, bytes, complete: res.complete }));
        res.on("error", (error) => resolve({ error }));
      });
      req.on("error", (error) => resolve({ error }));
      req.setTimeout(120_000, () => req.destroy(new Error("no progress within 120 s")));
      req.end();
    });
    clearInterval(sampler);
    peak = Math.max(peak, rssKiB());
    const failures = [];
    if (got.status !== 200 || !got.complete) failures.push(`status ${got.status ?? got.error?.message}, complete ${got.complete}`);
    if (got.bytes !== 1024 * MiB) failures.push(`${got.bytes} bytes arrived`);
    const grewMB = ((peak - before) * 1024) / 1e6;
    console.log(`  ${runtime}: 1 GiB download in ${Date.now() - started} ms, runtime RSS peak +${grewMB.toFixed(1)} MB`);
    if (grewMB >= 64) failures.push(`the runtime's RSS grew by ${grewMB.toFixed(1)} MB`);
    return failures;
  });
  runner.sent += 1;

  return { results: runner.results, sent: runner.sent };
}
