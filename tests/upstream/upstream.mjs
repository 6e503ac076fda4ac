// A real HTTP upstream on 127.0.0.1 for the demo and the tests. Every request is recorded
// (method, url, headers, body) so tests can assert what the upstream received.
//
//   GET  /hello              a greeting
//   GET  /users/{id}         a user as JSON
//   POST /users              201 with the received JSON echoed
//   ANY  /slow?ms=N          answers after N ms (default 5000)
//   ANY  /status/{code}      answers with that status and a JSON body
//   ANY  /big?bytes=N        streams N bytes in 16 KiB chunks
//   ANY  /flaky/{key}?fail=N the first N requests for a key answer 503, the next ones 200
//   ANY  /header-bytes       hex of the x-bytes-* request header bytes; x-bytes-* response headers with non-ASCII bytes
//   ANY  /truncated?bytes=N&framing=chunked|length  a 200 promising more than N bytes, N sent, then the socket closed
//   ANY  /uploads/{key}      echoes; GET /uploads/{key}/outcome says whether that upload ended or was cut off
//   ANY  /sink               counts the request body without keeping it: {bytes, complete}
//   GET  /events?n=N&gap=MS  text/event-stream: N events MS apart, each carrying the upstream's send time
//   GET  /stall?bytes=N&framing=chunked|length&hold=MS  a 200 of 2N bytes: N sent, then nothing for MS ms, then the rest
//   ANY  /cors-reflect       echoes as JSON, reflecting any Origin with credentials (a careless upstream)
//   GET  /vary-tenant        cacheable JSON that varies on X-Tenant: {tenant, n} (n counts calls)
//   GET  /json-secret?pad=N  {"data": {"keep": 1, "secret": "..."}, "pad": "x"*N} with a Content-Length
//   GET  /coded-secret?coding=gzip|br  the /json-secret document compressed, whatever the request accepts
//   WS   /echo-socket?id=ID  a WebSocket: first sends {url, headers} of the upgrade, then echoes
//                            every message; "close:CODE:REASON" makes it close so; the code and
//                            reason the client closed with are kept for GET /socket-closes/ID
//   ANY  anything else       echoes the request as JSON
import http from "node:http";
import zlib from "node:zlib";
import { WebSocketServer } from "ws";

export function startUpstream({ port = 0, name = "upstream", quiet = true } = {}) {
  const requests = [];
  const flaky = new Map();
  const server = http.createServer((req, res) => {
    if (req.url.startsWith("/sink")) return sink(req, res);
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("close", () => req.complete || uploads.set(req.url, { outcome: "cut", bytes: Buffer.concat(chunks).length }));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const url = new URL(req.url, "http://upstream");
      requests.push({ method: req.method, url: req.url, path: url.pathname, headers: req.headers, body: body.toString("utf8"), bodyLength: body.length });
      if (!quiet) console.log(`[${name}] ${req.method} ${req.url}`);
      route(req, res, url, body, name, flaky);
    });
  });
  server.keepAliveTimeout = 60_000;
  const sockets = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, socket, head) => {
    const url = new URL(req.url, "http://upstream");
    if (url.pathname !== "/echo-socket") return socket.destroy();
    sockets.handleUpgrade(req, socket, head, (ws) => {
      ws.send(JSON.stringify({ url: req.url, headers: req.headers }));
      ws.on("message", (data, binary) => {
        const close = !binary && String(data).match(/^close:(\d+):(.*)$/);
        if (close) ws.close(Number(close[1]), close[2]);
        else ws.send(data, { binary });
      });
      ws.on("close", (code, reason) => socketCloses.set(url.searchParams.get("id"), { code, reason: String(reason) }));
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      resolve({ server, requests, port: server.address().port, url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }) });
    });
  });
}

// Large uploads: counted, not kept (and not recorded), so only the gateway's memory is measured.
function sink(req, res) {
  let bytes = 0;
  req.on("data", (c) => (bytes += c.length));
  req.on("end", () => json(res, 200, { bytes, complete: req.complete }));
}

// How each /echo-socket connection was closed by its client, by its id.
const socketCloses = new Map();
// Outcomes of /uploads/{key} requests, by URL.
const uploads = new Map();
// Non-ASCII response header values, as the bytes they are sent as (node writes header strings as Latin-1).
export const HEADER_BYTES = { "x-bytes-utf8": Buffer.from("café 日本 €"), "x-bytes-latin1": Buffer.from("caf\xe9", "latin1") };

let varyCalls = 0;

function json(res, status, value, headers = {}) {
  const text = JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

function route(req, res, url, body, name, flaky) {
  const path = url.pathname;
  let m;
  if ((m = path.match(/^\/flaky\/([^/]+)$/))) {
    const seen = (flaky.get(m[1]) ?? 0) + 1;
    flaky.set(m[1], seen);
    const failing = seen <= Number(url.searchParams.get("fail") ?? 1);
    return json(res, failing ? 503 : 200, { attempt: seen, upstream: name });
  }
  if (path === "/cors-reflect") {
    return json(res, 200, { upstream: name, origin: req.headers.origin ?? null }, {
      "access-control-allow-origin": req.headers.origin ?? "*",
      "access-control-allow-credentials": "true",
      "access-control-expose-headers": "x-internal",
      vary: "Accept-Encoding",
    });
  }
  if (path === "/vary-tenant") {
    varyCalls++;
    return json(res, 200, { tenant: req.headers["x-tenant"] ?? null, n: varyCalls, upstream: name }, { vary: "X-Tenant", "cache-control": "max-age=60" });
  }
  if (path === "/json-secret") {
    return json(res, 200, { data: { keep: 1, secret: "s3cr3t" }, pad: "x".repeat(Number(url.searchParams.get("pad") ?? 0)) });
  }
  if (path === "/coded-secret") {
    const coding = url.searchParams.get("coding") ?? "gzip";
    const plain = Buffer.from(JSON.stringify({ data: { keep: 1, secret: "s3cr3t" } }));
    const coded = coding === "br" ? zlib.brotliCompressSync(plain) : zlib.gzipSync(plain);
    res.writeHead(200, { "content-type": "application/json", "content-encoding": coding, "content-length": coded.length });
    return res.end(coded);
  }
  if (path === "/hello") return json(res, 200, { message: "Hello from the edgegate demo upstream", upstream: name });
  if ((m = path.match(/^\/users\/([^/]+)$/))) return json(res, 200, { id: decodeURIComponent(m[1]), name: `User ${m[1]}`, upstream: name });
  if (path === "/users" && req.method === "POST") return json(res, 201, { created: body.toString("utf8"), upstream: name }, { location: "/users/42" });
  if (path === "/slow") {
    const ms = Number(url.searchParams.get("ms") ?? 5000);
    const timer = setTimeout(() => json(res, 200, { slept: ms }), ms);
    res.on("close", () => clearTimeout(timer));
    return;
  }
  if ((m = path.match(/^\/status\/(\d{3})$/))) {
    return json(res, Number(m[1]), { upstream_error: Number(m[1]) }, { "x-upstream-header": "kept", "set-cookie": "a=b; Path=/" });
  }
  if (path === "/header-bytes") {
    const received = {};
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i].toLowerCase();
      if (name.startsWith("x-bytes")) received[name] = Buffer.from(req.rawHeaders[i + 1], "latin1").toString("hex");
    }
    // The body as a Buffer: node writes the head as Latin-1 only when it is not joined to a string body.
    res.writeHead(200, { "content-type": "application/json", ...Object.fromEntries(Object.entries(HEADER_BYTES).map(([n, b]) => [n, b.toString("latin1")])) });
    return res.end(Buffer.from(JSON.stringify({ received })));
  }
  if (path === "/events") {
    const n = Number(url.searchParams.get("n") ?? 3);
    const gap = Number(url.searchParams.get("gap") ?? 400);
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    let sent = 0;
    const send = () => {
      res.write(`id: ${sent}\ndata: ${JSON.stringify({ sent_at: Date.now() })}\n\n`);
      if (++sent >= n) return res.end();
      timer = setTimeout(send, gap);
    };
    let timer = setTimeout(send, 0);
    res.on("close", () => clearTimeout(timer));
    return;
  }
  if (path === "/truncated") {
    const n = Number(url.searchParams.get("bytes") ?? 1000);
    const length = url.searchParams.get("framing") === "length" ? { "content-length": 2 * n } : {};
    res.writeHead(200, { "content-type": "application/octet-stream", ...length });
    res.write(Buffer.alloc(n, 98), () => setTimeout(() => res.socket?.destroy(), 50));
    return;
  }
  if (path === "/stall") {
    const n = Number(url.searchParams.get("bytes") ?? 1000);
    const hold = Number(url.searchParams.get("hold") ?? 10_000);
    const length = url.searchParams.get("framing") === "length" ? { "content-length": 2 * n } : {};
    res.writeHead(200, { "content-type": "application/octet-stream", ...length });
    res.write(Buffer.alloc(n, 98));
    const rest = setTimeout(() => res.end(Buffer.alloc(n, 98)), hold);
    res.on("close", () => clearTimeout(rest));
    return;
  }
  if ((m = path.match(/^\/socket-closes\/([^/]+)$/))) return json(res, 200, socketCloses.get(m[1]) ?? { code: null });
  if ((m = path.match(/^\/uploads\/([^/]+)\/outcome$/))) return json(res, 200, uploads.get(`/uploads/${m[1]}`) ?? { outcome: "none" });
  if (path.startsWith("/uploads/")) uploads.set(req.url, { outcome: "complete", bytes: body.length });
  if (path === "/big") {
    const total = Number(url.searchParams.get("bytes") ?? 1 << 20);
    res.writeHead(200, { "content-type": "application/octet-stream" });
    let sent = 0;
    const chunk = Buffer.alloc(16384, 97);
    const pump = () => {
      while (sent < total) {
        const n = Math.min(chunk.length, total - sent);
        sent += n;
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return res.once("drain", pump);
      }
      res.end();
    };
    return pump();
  }
  return json(res, 200, {
    upstream: name,
    method: req.method,
    url: req.url,
    headers: req.headers,
    body: body.toString("utf8"),
  }, { connection: "keep-alive", "keep-alive": "timeout=60", "x-upstream": name, "server-timing": "db;dur=1" });
}

// `node tests/upstream/upstream.mjs [port]`: the demo upstream for `scripts/dev`.
if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.argv[2] ?? 8788);
  const up = await startUpstream({ port, name: "demo", quiet: false });
  console.log(`demo upstream listening on ${up.url}`);
}
