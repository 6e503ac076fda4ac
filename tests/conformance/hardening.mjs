// What hostile and careful use found (issue 9), as conformance: the same checks against both
// runtimes; a few need state that only Workers isolates keep (breaker, edge cache, in-isolate
// single flight) and say so.
import net from "node:net";
import zlib from "node:zlib";
import { SignJWT } from "jose";
import { SECRETS } from "./auth.mjs";
import { checkRunner } from "./checks.mjs";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const INCOMING_TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const now = () => Math.floor(Date.now() / 1000);

/** Every header a client could use to lie to the upstream about identity, address or URL. */
const SPOOFED = {
  "x-user-id": "victim",
  "x-org": "victim-org",
  "x-consumer-id": "acme",
  "x-consumer-name": "Acme Corp",
  "x-forwarded-port": "8443",
  "x-forwarded-prefix": "/admin",
  "x-forwarded-server": "evil.example",
  "x-forwarded-scheme": "http",
  "x-forwarded-ssl": "off",
  "x-original-url": "/admin/x",
  "x-rewrite-url": "/admin/x",
  "x-real-ip": "10.9.8.7",
  forwarded: "for=10.9.8.7;proto=http",
  "true-client-ip": "10.9.8.7",
  "x-client-ip": "10.9.8.7",
  "x-http-method-override": "DELETE",
};
const absent = Object.fromEntries(Object.keys(SPOOFED).map((name) => [name, null]));

async function hs256(key, issuer, extra = {}) {
  const claims = { iss: issuer, sub: "user-7", iat: now() - 5, exp: now() + 600, ...extra };
  return new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(key);
}

/**
 * Paths a public prefix must not turn into the protected one upstream (issue 15), with the
 * reason the refusal names. Workers' URL parser resolves some of them (`..`, `%2e%2e`) before
 * the gateway sees the request: those land on the protected route itself, which wants a
 * credential (401). Either way nothing reaches the upstream.
 */
const HOSTILE_PATHS = [
  // [path, reason, whether Workers' URL parser resolves it before the gateway sees it]
  ["/h/pub/..;/admin/x", /';' parameters/],
  ["/h/pub/.;x/admin/x", /';' parameters/],
  ["/h/pub/../admin/x", /'\.\.' segments/, true],
  ["/h/pub/%2e%2e/admin/x", /'\.\.' segments/, true],
  ["/h/pub/.%2E/admin/x", /'\.\.' segments/, true],
  ["/h/pub/..%2fadmin/x", /'\.\.' segments/],
  ["/h/pub/%2e%2e%2fadmin/x", /'\.\.' segments/],
  ["/h/pub/x%2f..%2f..%2fadmin", /'\.\.' segments/],
  ["/h/pub/..%5cadmin/x", /backslash/],
  ["/h/pub/..\\admin/x", /backslash/, true],
  ["/h/pub/%252e%252e/admin/x", /double-encoded/],
  ["/h/pub/%252e%252e%252fadmin/x", /double-encoded/],
  ["/h/pub/%252fadmin", /double-encoded/],
  ["/h/pub/%ef%bc%8e%ef%bc%8e/admin/x", /look like a dot/],
  ["/h/pub/%e3%80%82%e3%80%82/admin/x", /look like a dot/],
  ["/h/pub/%00/admin", /control characters/],
  ["/h/pub/a%2fb", /encoded '\/'/],
];

export async function hardeningScenarios(runtime) {
  const hmacKey = new TextEncoder().encode(SECRETS.jwt_hs256);
  const binaryKey = Buffer.from(SECRETS.jwt_b64, "base64");
  const paths = HOSTILE_PATHS.map(([path, reason, resolvedByWorkers]) => ({
    name: `paths: ${path} never reaches the upstream (${resolvedByWorkers && runtime === "workers" ? "resolved by the runtime onto the protected route" : `refused: ${reason.source}`})`,
    request: { method: "GET", path },
    expect: resolvedByWorkers && runtime === "workers" ? { status: 401, problem: "unauthorized" } : { status: 400, problem: "bad-request", json: { detail: reason } },
    upstream: null,
  }));
  return [
    ...paths,
    {
      name: "encodings: a gzip'd upstream answer (sent whatever was asked) is filtered decoded",
      request: { method: "GET", path: "/h/filter/coded-secret?coding=gzip" },
      expect: { status: 200, json: { data: { keep: 1, secret: null } }, headers: { "content-encoding": null } },
      upstream: { on: "a", headers: { "accept-encoding": "identity" } },
    },
    {
      name: `encodings: a br answer is ${runtime === "workers" ? "decoded by the runtime and filtered" : "refused (502), never passed unfiltered"}`,
      request: { method: "GET", path: "/h/filter/coded-secret?coding=br" },
      expect: runtime === "workers" ? { status: 200, json: { data: { keep: 1, secret: null } } } : { status: 502, problem: "bad-upstream-body" },
    },
    {
      name: "encodings: a gzip'd request body is validated decoded and forwarded as sent",
      request: { method: "POST", path: "/h/validated", headers: { "content-type": "application/json", "content-encoding": "gzip" }, raw: zlib.gzipSync(Buffer.from('{"ok":true}')) },
      expect: { status: 200 },
      upstream: { on: "a", headers: { "content-encoding": "gzip" }, bodyLength: zlib.gzipSync(Buffer.from('{"ok":true}')).length },
    },
    {
      name: "encodings: a gzip'd request body that decodes to a non-object fails validation",
      request: { method: "POST", path: "/h/validated", headers: { "content-type": "application/json", "content-encoding": "gzip" }, raw: zlib.gzipSync(Buffer.from("[1]")) },
      expect: { status: 400, problem: "invalid-body" },
      upstream: null,
    },
    {
      name: "encodings: a request body in a coding the gateway cannot read is 415, never validated as bytes",
      request: { method: "POST", path: "/h/validated", headers: { "content-type": "application/json", "content-encoding": "br" }, raw: zlib.brotliCompressSync(Buffer.from('{"ok":true}')) },
      expect: { status: 415, problem: "unsupported-content-encoding" },
      upstream: null,
    },
    {
      name: "paths: the upstream gets the normalized path (unreserved escapes decoded, slashes merged)",
      request: { method: "GET", path: "/h/pub//echo/%41%7e/b%c3%a9?q=%2e" },
      expect: { status: 200 },
      upstream: { on: "a", url: "/echo/A~/b%C3%A9?q=%2e" },
    },
    {
      name: "paths: a route with allow_encoded_slashes forwards %2F encoded",
      request: { method: "GET", path: "/h/ids/a%2Fb" },
      expect: { status: 200 },
      upstream: { on: "a", url: "/echo/ids/a%2Fb" },
    },
    {
      name: "hardening: identity, forwarding and override headers from the client never reach the upstream",
      request: { method: "POST", path: "/h/pub/echo", headers: SPOOFED },
      expect: { status: 200 },
      upstream: { on: "a", url: "/echo", headers: { ...absent, "x-forwarded-for": /^127\.0\.0\.1$|^::1$/, "x-forwarded-proto": "http" } },
    },
    {
      name: "hardening: a route that opts in keeps X-HTTP-Method-Override, never identity headers",
      request: { method: "POST", path: "/h/override", headers: SPOOFED },
      expect: { status: 200 },
      upstream: { on: "a", url: "/echo/override", headers: { "x-http-method-override": "DELETE", "x-user-id": null, "x-forwarded-prefix": null } },
    },
    {
      name: "hardening: an upstream reflecting any origin with credentials cannot widen the route's CORS policy",
      request: { method: "GET", path: "/cors/cors-reflect", headers: { origin: "https://evil.example" } },
      expect: {
        status: 200,
        headers: { "access-control-allow-origin": null, "access-control-allow-credentials": null, "access-control-expose-headers": null, vary: /(^|, )Origin$/ },
      },
    },
    {
      name: "hardening: Vary: Origin also when the request has no Origin, never twice",
      request: { method: "GET", path: "/cors/cors-reflect" },
      expect: { status: 200, headers: { "access-control-allow-origin": null, vary: /^(?!.*Origin.*Origin)(.*, )?Origin$/ } },
    },
    {
      name: "hardening: an allowed origin gets the policy's headers, not the upstream's",
      request: { method: "GET", path: "/cors/cors-reflect", headers: { origin: "https://app.example.com" } },
      expect: {
        status: 200,
        headers: { "access-control-allow-origin": "https://app.example.com", "access-control-allow-credentials": "true", "access-control-expose-headers": "x-request-id, x-upstream", vary: /Origin/ },
      },
    },
    {
      name: "hardening: a * policy answers * to every request, with or without Origin",
      request: { method: "GET", path: "/h/any" },
      expect: { status: 200, headers: { "access-control-allow-origin": "*", "access-control-allow-credentials": null } },
    },
    {
      name: "hardening: keep_upstream_headers leaves the upstream's CORS headers alone",
      request: { method: "GET", path: "/h/cors-keep", headers: { origin: "https://evil.example" } },
      expect: { status: 200, headers: { "access-control-allow-origin": "https://evil.example" } },
    },
    {
      name: "hardening: the query deny-list compares decoded names (d%65bug is debug)",
      request: { method: "GET", path: "/tx/deny?d%65bug=1&q=shoes&%64ebug=2&debu%67=3" },
      expect: { status: 200 },
      upstream: { on: "a", url: "/echo/deny?q=shoes" },
    },
    {
      name: "hardening: a denied body field is removed",
      request: { method: "GET", path: "/h/filter/json-secret" },
      expect: { status: 200, json: { data: { keep: 1, secret: null } } },
    },
    {
      name: "hardening: a body over the filter's limit is refused (502), never passed unfiltered",
      request: { method: "GET", path: "/h/filter/json-secret?pad=400" },
      expect: { status: 502, problem: "bad-upstream-body" },
    },
    {
      name: "hardening: aggregation legs carry X-Request-Id and a span of the client's trace",
      request: { method: "GET", path: "/home/7", headers: { traceparent: INCOMING_TRACE, "x-request-id": "agg-req-1" } },
      expect: { status: 200, headers: { "x-request-id": "agg-req-1" } },
      upstream: { on: "a", url: "/users/7", headers: { "x-request-id": "agg-req-1", traceparent: /^00-4bf92f3577b34da6a3ce929d0e0e4736-(?!00f067aa0ba902b7)[0-9a-f]{16}-01$/ } },
    },
    {
      name: "hardening: a token whose sub is a number is invalid (RFC 7519 claim types)",
      request: { method: "GET", path: "/auth/jwt/typed", headers: { authorization: `Bearer ${await hs256(hmacKey, "https://hmac.test", { sub: 12345 })}` } },
      expect: { status: 401, problem: "unauthorized" },
      upstream: null,
    },
    {
      name: "hardening: an audience array with a number is invalid",
      request: { method: "GET", path: "/auth/jwt/typed", headers: { authorization: `Bearer ${await hs256(hmacKey, "https://hmac.test", { aud: ["edgegate-tests", 7] })}` } },
      expect: { status: 401, problem: "unauthorized" },
      upstream: null,
    },
    {
      name: "hardening: an HMAC key stored base64 verifies with its bytes",
      request: { method: "GET", path: "/h/binkey", headers: { authorization: `Bearer ${await hs256(binaryKey, "https://b64.test")}` } },
      expect: { status: 200 },
      upstream: { on: "a", headers: { "x-user-id": "user-7", authorization: null } },
    },
    {
      name: "hardening: the base64 text of that key is not the key",
      request: { method: "GET", path: "/h/binkey", headers: { authorization: `Bearer ${await hs256(new TextEncoder().encode(SECRETS.jwt_b64), "https://b64.test")}` } },
      expect: { status: 401, problem: "unauthorized" },
      upstream: null,
    },
  ];
}

/** A chunked POST that sends a few bytes, then nothing: the answer and how long it took. */
function stalledUpload(port, path) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = net.connect(port, "127.0.0.1", () => {
      socket.write(`POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{"a"\r\n`);
    });
    let data = "";
    socket.on("data", (chunk) => {
      data += chunk.toString("latin1");
      const end = data.indexOf("\r\n\r\n");
      if (end >= 0 && /\r\n\r\n[\s\S]*"type"/.test(data.slice(end)) ) {
        socket.destroy();
        resolve({ status: Number(data.slice(9, 12)), text: data, ms: Date.now() - started });
      }
    });
    socket.on("error", reject);
    socket.on("close", () => resolve({ status: Number(data.slice(9, 12)) || 0, text: data, ms: Date.now() - started }));
    setTimeout(() => socket.destroy(), 8000);
  });
}

export async function hardeningChecks(runtime, sendTo, port, idp) {
  const runner = checkRunner(sendTo);
  const { send, check } = runner;
  const run = Date.now().toString(36);

  await check("hardening: the edge cache keeps answers apart by the upstream's Vary (X-Tenant)", async () => {
    const failures = [];
    const get = async (tenant) => {
      const response = await send({ method: "GET", path: "/h/vary/vary-tenant", headers: { "x-tenant": tenant } });
      return { tenant: JSON.parse(response.body.toString("utf8")).tenant, status: response.headers["cache-status"] ?? "" };
    };
    const one = `one-${run}`;
    const two = `two-${run}`;
    const sequence = [await get(one), await get(one), await get(two), await get(two)];
    const wanted = [one, one, two, two];
    sequence.forEach((r, i) => r.tenant !== wanted[i] && failures.push(`request ${i + 1} for ${wanted[i]} got ${r.tenant}'s answer`));
    if (runtime === "workers") {
      const hits = sequence.map((r) => /hit/.test(r.status));
      if (hits.join() !== "false,true,false,true") failures.push(`cache hits ${hits.join()} (expected miss, hit, miss, hit): ${sequence.map((r) => r.status).join(" | ")}`);
    }
    return failures;
  });

  await check("hardening: a stalled upload on a route that reads the body is answered 408 within the route timeout", async () => {
    runner.sent++;
    const answer = await stalledUpload(port, "/h/validated");
    const failures = [];
    if (answer.status !== 408) failures.push(`status ${answer.status}: ${answer.text.slice(0, 300)}`);
    else if (!answer.text.includes("urn:edgegate:problem:request-timeout")) failures.push(`not the request-timeout problem: ${answer.text.slice(0, 300)}`);
    if (answer.ms > 4000) failures.push(`answered after ${answer.ms} ms`);
    return failures;
  });

  await check("hardening: a header value that spells the missing-key marker is counted on its own", async () => {
    const statuses = [];
    statuses.push((await send({ method: "GET", path: "/h/limited" })).status);
    for (const spelled of ["?missing", "|?missing", "%3Fmissing"]) statuses.push((await send({ method: "GET", path: "/h/limited", headers: { "x-h-tenant": spelled } })).status);
    statuses.push((await send({ method: "GET", path: "/h/limited" })).status);
    return statuses.join() === "200,200,200,200,429" ? [] : [`statuses ${statuses.join()} (expected 200,200,200,200,429)`];
  });

  if (runtime === "workers") {
    // Breakers live in isolate memory, which Spin (an instance per request) has not.
    await check("hardening: route timeouts count against the breaker: two hung attempts open it", async () => {
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await send({ method: "GET", path: "/h/hung" })).status);
      return statuses.join() === "504,504,503" ? [] : [`statuses ${statuses.join()} (expected 504,504,503)`];
    });
  }

  // Workers: one isolate, one flight. Spin: an instance per request; the key-value store's
  // compare-and-swap decides which one fetches.
  await check("hardening: 50 concurrent tokens with unknown kids cause one JWKS fetch", async () => {
    await new Promise((r) => setTimeout(r, 3200)); // past the cooldown of earlier fetches
    const stranger = await idp.stranger();
    const claims = { iss: idp.origin, sub: "user-7", aud: "edgegate-tests", iat: now() - 5, exp: now() + 600 };
    const tokens = await Promise.all(Array.from({ length: 50 }, (_, i) => idp.sign("ES256", claims, { key: { ...stranger, kid: `burst-${run}-${i}` } })));
    const before = idp.hits.jwks;
    const statuses = await Promise.all(tokens.map((token) => send({ method: "GET", path: "/auth/jwt/burst", headers: { authorization: `Bearer ${token}` } }).then((r) => r.status)));
    const fetches = idp.hits.jwks - before;
    const failures = [];
    if (statuses.some((s) => s !== 401)) failures.push(`expected 401 each, got ${statuses.join(",")}`);
    if (fetches > 1) failures.push(`${fetches} JWKS fetches (at most 1)`);
    return failures;
  });
  return runner;
}
