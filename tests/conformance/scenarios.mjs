// The conformance scenarios: one list, run unchanged against the Workers build (workerd via
// Miniflare) and the Spin component (the wasmtime-based test host), with tests/conformance/routes.json.
//
// A scenario sends `request` to the gateway and checks `expect` on the answer and, when given,
// `upstream` on what the upstream server received (or `upstream: null`: nothing reached it).
//   expect.headers: { name: "exact" | RegExp | null (must be absent) }
//   expect.json:    a subset the JSON body must contain;  expect.problem: the problem `type` suffix
//   expect.bodyLength: exact byte count of the body
//   upstream: { on: "a" | "b", method, url, headers: {...same matchers}, bodyLength, body }

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const INCOMING_TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

export const scenarios = [
  {
    name: "the gateway's OpenAPI document is served from the edge at openapi.path, ahead of the routes",
    request: { method: "GET", path: "/openapi.json" },
    expect: { status: 200, headers: { "content-type": "application/vnd.oai.openapi+json" }, json: { openapi: "3.1.0", info: { title: "edgegate conformance" } } },
    upstream: null,
  },
  // Routing and forwarding
  {
    name: "exact path forwards unchanged, with a generated request id and Server-Timing",
    request: { method: "GET", path: "/hello" },
    expect: { status: 200, json: { upstream: "a" }, headers: { "x-request-id": UUID, "server-timing": /edgegate;dur=\d+, upstream;dur=\d+/ } },
    upstream: { on: "a", method: "GET", url: "/hello", headers: { "x-request-id": UUID, "content-length": null, "transfer-encoding": null } },
  },
  {
    name: "HEAD is routed like any listed method",
    request: { method: "HEAD", path: "/hello" },
    expect: { status: 200, bodyLength: 0 },
    upstream: { on: "a", method: "HEAD", url: "/hello" },
  },
  {
    name: "path parameters fill the rewrite template under the upstream's base path",
    request: { method: "GET", path: "/api/users/42" },
    expect: { status: 200, json: { url: "/v1/users/42", upstream: "b" } },
    upstream: { on: "b", method: "GET", url: "/v1/users/42" },
  },
  {
    name: "strip_prefix keeps the rest of the path and the query string",
    request: { method: "GET", path: "/svc/echo/x?a=1&b=two%20words" },
    expect: { status: 200, json: { url: "/echo/x?a=1&b=two%20words" } },
    upstream: { on: "a", url: "/echo/x?a=1&b=two%20words" },
  },
  {
    name: "catch-all forwards the whole path",
    request: { method: "GET", path: "/files/a/b/c.txt" },
    expect: { status: 200 },
    upstream: { on: "a", url: "/files/a/b/c.txt" },
  },
  {
    name: "no route: 404 problem+json",
    request: { method: "GET", path: "/nowhere" },
    expect: { status: 404, problem: "route-not-found", headers: { "x-request-id": UUID } },
    upstream: null,
  },
  {
    name: "path matches but method does not: 405 with Allow",
    request: { method: "POST", path: "/api/users/42" },
    expect: { status: 405, problem: "method-not-allowed", headers: { allow: "GET, DELETE" } },
    upstream: null,
  },
  {
    name: "exact host beats wildcard host",
    request: { method: "GET", path: "/tenant", headers: { host: "acme.example.com" } },
    expect: { status: 200 },
    upstream: { on: "a", url: "/echo/exact" },
  },
  {
    name: "wildcard host matches a subdomain",
    request: { method: "GET", path: "/tenant", headers: { host: "other.example.com" } },
    expect: { status: 200 },
    upstream: { on: "a", url: "/echo/wildcard" },
  },
  {
    name: "a route without host catches the other hosts",
    request: { method: "GET", path: "/tenant", headers: { host: "example.org" } },
    expect: { status: 200 },
    upstream: { on: "a", url: "/echo/any" },
  },
  {
    name: "header matcher selects the more specific route",
    request: { method: "GET", path: "/versioned", headers: { "x-api-version": "2" } },
    expect: { status: 200 },
    upstream: { on: "a", url: "/echo/v2" },
  },
  {
    name: "without the header the plain route answers",
    request: { method: "GET", path: "/versioned", headers: { "x-api-version": "3" } },
    expect: { status: 200 },
    upstream: { on: "a", url: "/echo/v1" },
  },

  // Pass-through
  {
    name: "upstream errors pass through unchanged: status, headers, body",
    request: { method: "GET", path: "/svc/status/418" },
    expect: { status: 418, json: { upstream_error: 418 }, headers: { "x-upstream-header": "kept", "set-cookie": "a=b; Path=/", "content-type": "application/json" } },
    upstream: { on: "a", url: "/status/418" },
  },
  {
    name: "a 5 MiB response streams through intact",
    request: { method: "GET", path: "/svc/big?bytes=5242880" },
    expect: { status: 200, bodyLength: 5242880 },
    upstream: { on: "a", url: "/big?bytes=5242880" },
  },
  {
    name: "a 2 MiB request body with Content-Length reaches the upstream intact",
    request: { method: "POST", path: "/upload-large", body: { repeat: "x", bytes: 2097152 }, headers: { "content-type": "application/octet-stream" } },
    expect: { status: 200 },
    upstream: { on: "a", method: "POST", url: "/echo/upload-large", bodyLength: 2097152 },
  },

  // Hygiene
  {
    name: "hop-by-hop request headers never reach the upstream",
    request: { method: "GET", path: "/svc/echo/h", headers: { te: "trailers", "keep-alive": "timeout=5", "proxy-authorization": "Basic eA==", "x-keep": "yes" } },
    expect: { status: 200 },
    upstream: { on: "a", headers: { te: null, "keep-alive": null, "proxy-authorization": null, "x-keep": "yes" } },
  },
  {
    name: "hop-by-hop response headers never reach the client",
    request: { method: "GET", path: "/svc/echo/r" },
    expect: { status: 200, headers: { "keep-alive": null, "x-upstream": "a" } },
  },
  {
    name: "client-sent forwarding headers are replaced with what the runtime says",
    request: { method: "GET", path: "/svc/echo/f", headers: { "x-forwarded-for": "6.6.6.6", "x-forwarded-host": "evil.example", "x-forwarded-proto": "https", forwarded: "for=6.6.6.6", "x-real-ip": "6.6.6.6" } },
    expect: { status: 200 },
    upstream: { on: "a", headers: { "x-forwarded-for": "127.0.0.1", "x-forwarded-proto": "http", "x-forwarded-host": /^127\.0\.0\.1:\d+$/, forwarded: null, "x-real-ip": null } },
  },
  {
    name: "a well-formed incoming X-Request-Id is kept end to end",
    request: { method: "GET", path: "/svc/echo/id", headers: { "x-request-id": "client-abc.123" } },
    expect: { status: 200, headers: { "x-request-id": "client-abc.123" } },
    upstream: { on: "a", headers: { "x-request-id": "client-abc.123" } },
  },
  {
    name: "a malformed incoming X-Request-Id is replaced",
    request: { method: "GET", path: "/svc/echo/id2", headers: { "x-request-id": "not ok; <script>" } },
    expect: { status: 200, headers: { "x-request-id": UUID } },
    upstream: { on: "a", headers: { "x-request-id": UUID } },
  },
  {
    name: "a valid traceparent continues the trace with a new parent id",
    request: { method: "GET", path: "/svc/echo/t", headers: { traceparent: INCOMING_TRACE, tracestate: "vendor=1" } },
    expect: { status: 200 },
    upstream: { on: "a", headers: { traceparent: /^00-4bf92f3577b34da6a3ce929d0e0e4736-(?!00f067aa0ba902b7)[0-9a-f]{16}-01$/, tracestate: "vendor=1" } },
  },
  {
    name: "an invalid traceparent starts a new trace and drops tracestate",
    request: { method: "GET", path: "/svc/echo/t2", headers: { traceparent: "00-zz-bad-01", tracestate: "vendor=1" } },
    expect: { status: 200 },
    upstream: { on: "a", headers: { traceparent: TRACEPARENT, tracestate: null } },
  },
  {
    name: "dot segments never reach the upstream",
    request: { method: "GET", path: "/svc/%2e%2e/admin" },
    expect: { statusIn: [400, 404] },
    upstream: null,
  },

  // Failures
  {
    name: "an upstream slower than the route timeout gives 504",
    request: { method: "GET", path: "/slow?ms=4000" },
    expect: { status: 504, problem: "upstream-timeout" },
  },
  {
    name: "an unreachable upstream gives 502",
    request: { method: "GET", path: "/down" },
    expect: { status: 502, problem: "upstream-unreachable" },
  },

  // Body limits
  {
    name: "a declared Content-Length over the limit is refused before reading: 413",
    request: { method: "POST", path: "/upload", body: { repeat: "y", bytes: 2048 } },
    expect: { status: 413, problem: "payload-too-large" },
    upstream: null,
  },
  {
    name: "a chunked body over the limit is counted and refused: 413",
    request: { method: "POST", path: "/upload", body: { repeat: "y", bytes: 4096, chunked: true } },
    expect: { status: 413, problem: "payload-too-large" },
    upstream: null,
  },
  {
    name: "a chunked body under the limit is forwarded whole",
    request: { method: "PUT", path: "/upload", body: { repeat: "z", bytes: 1000, chunked: true } },
    expect: { status: 200 },
    upstream: { on: "a", method: "PUT", bodyLength: 1000 },
  },

  // CORS
  {
    name: "an allowed preflight is answered at the edge",
    request: { method: "OPTIONS", path: "/cors/echo/p", headers: { origin: "https://app.example.com", "access-control-request-method": "POST", "access-control-request-headers": "content-type, x-client" } },
    expect: { status: 204, headers: { "access-control-allow-origin": "https://app.example.com", "access-control-allow-methods": "GET, POST", "access-control-allow-headers": "content-type, x-client", "access-control-allow-credentials": "true", "access-control-max-age": "600", vary: /Origin/ } },
    upstream: null,
  },
  {
    name: "a wildcard origin pattern allows a subdomain",
    request: { method: "OPTIONS", path: "/cors/echo/p", headers: { origin: "https://shop.tenant.example.com", "access-control-request-method": "GET" } },
    expect: { status: 204, headers: { "access-control-allow-origin": "https://shop.tenant.example.com" } },
    upstream: null,
  },
  {
    name: "a preflight from another origin is refused",
    request: { method: "OPTIONS", path: "/cors/echo/p", headers: { origin: "https://evil.example", "access-control-request-method": "GET" } },
    expect: { status: 403, problem: "cors-rejected", headers: { "access-control-allow-origin": null } },
    upstream: null,
  },
  {
    name: "an actual cross-origin request gets the CORS headers",
    request: { method: "GET", path: "/cors/echo/a", headers: { origin: "https://app.example.com" } },
    expect: { status: 200, headers: { "access-control-allow-origin": "https://app.example.com", "access-control-expose-headers": "x-request-id, x-upstream", "access-control-allow-credentials": "true" } },
    upstream: { on: "a", url: "/echo/a" },
  },
  {
    name: "a request from a disallowed origin gets no CORS headers",
    request: { method: "GET", path: "/cors/echo/b", headers: { origin: "https://evil.example" } },
    expect: { status: 200, headers: { "access-control-allow-origin": null } },
  },
];
