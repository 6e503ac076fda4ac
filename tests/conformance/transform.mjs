// Transforms, validation, IP lists and retries: run by run.mjs against both runtimes.
// The upstream `a` echoes requests as JSON ({upstream, method, url, headers, body}).
const UUID = /^[0-9a-f-]{36}$/;

export const transformScenarios = [
  {
    name: "aggregation: 4 upstreams, a slow optional leg past its timeout and a failing one: partial, marked, within the deadline",
    request: { method: "GET", path: "/home/7", headers: { "accept-language": "de" } },
    expect: {
      status: 200,
      maxMs: 1500,
      headers: { "gateway-completed": "false", "content-type": /application\/json/ },
      json: { profile: { id: "7", upstream: "a" }, feed: { url: "/v1/users/feed-7", upstream: "b", headers: { "accept-language": "de" } }, ads: null, badges: null },
    },
  },
  {
    name: "aggregation: a failing required leg is a 502 problem naming it",
    request: { method: "GET", path: "/home-strict/7" },
    expect: { status: 502, problem: "upstream-unreachable", json: { detail: /"badges"/ } },
  },
  {
    name: "request headers: set from templates, removed, renamed; query allow-list plus a fixed parameter",
    request: { method: "GET", path: "/tx/users/42?page=2&debug=1&token=x", headers: { "x-debug": "1", "x-old": "v", "x-user-id-param": "spoofed" } },
    expect: { status: 200 },
    upstream: { on: "a", url: "/echo/users/42?page=2&src=edge", headers: { "x-user-id-param": "42", "x-client-ip": "127.0.0.1", "x-debug": null, "x-old": null, "x-new": "v" } },
  },
  {
    name: "response headers: set from the request id, upstream header removed",
    request: { method: "GET", path: "/tx/users/7" },
    expect: { status: 200, headers: { "x-request-echo": UUID, "x-upstream": null } },
    upstream: { on: "a", url: "/echo/users/7?src=edge" },
  },
  {
    name: "query deny-list removes only the listed parameter",
    request: { method: "GET", path: "/tx/deny?debug=1&q=shoes&debug=2" },
    expect: { status: 200 },
    upstream: { on: "a", url: "/echo/deny?q=shoes" },
  },
  {
    name: "response body: target, allow, rename, group",
    request: { method: "GET", path: "/tx/body", headers: { "user-agent": "conformance/1", "x-extra": "dropped" } },
    expect: { status: 200, json: { seen: { agent: "conformance/1", "x-request-id": UUID } }, headers: { "content-type": /application\/json/ } },
    upstream: { on: "a", url: "/echo/body" },
  },
  {
    name: "response body: a non-JSON answer passes through untouched (on_invalid pass_through)",
    request: { method: "GET", path: "/tx/raw/big?bytes=10" },
    expect: { status: 200, bodyLength: 10 },
    upstream: { on: "a", url: "/big?bytes=10" },
  },
  {
    name: "response body: a non-JSON answer is a 502 problem with on_invalid bad_gateway",
    request: { method: "GET", path: "/tx/raw502/big?bytes=10" },
    expect: { status: 502, problem: "bad-upstream-body" },
    upstream: { on: "a", url: "/big?bytes=10" },
  },
  {
    name: "body validation: a valid body goes upstream",
    request: { method: "POST", path: "/tx/orders", headers: { "content-type": "application/json" }, json: { items: [{ sku: "a1", qty: 2 }] } },
    expect: { status: 200 },
    upstream: { on: "a", url: "/echo/orders", method: "POST" },
  },
  {
    name: "body validation: 400 naming the failing path",
    request: { method: "POST", path: "/tx/orders", headers: { "content-type": "application/json" }, json: { items: [{ sku: "a1", qty: 2 }, { sku: "b2", qty: 0 }] } },
    expect: { status: 400, problem: "invalid-body", json: { detail: /^\$\.items\[1\]\.qty: / } },
    upstream: null,
  },
  {
    name: "body validation: a body that is not JSON is a 400",
    request: { method: "POST", path: "/tx/orders", headers: { "content-type": "application/json" }, text: "not json" },
    expect: { status: 400, problem: "invalid-body" },
    upstream: null,
  },
  {
    name: "IP deny list (CIDR) refuses the client",
    request: { method: "GET", path: "/tx/ip-deny" },
    expect: { status: 403, problem: "ip-denied" },
    upstream: null,
  },
  {
    name: "IP allow list admits a listed client",
    request: { method: "GET", path: "/tx/ip-allow" },
    expect: { status: 200 },
    upstream: { on: "a", url: "/tx/ip-allow" },
  },
  {
    name: "retries: an idempotent request is retried on 503 until it succeeds (3 upstream hits)",
    request: { method: "GET", path: "/tx/retry/flaky/get-1?fail=2" },
    expect: { status: 200, json: { attempt: 3 } },
    upstream: { on: "a", count: 3, url: "/flaky/get-1?fail=2" },
  },
  {
    name: "retries: the attempt cap is kept and the last upstream answer passes through",
    request: { method: "GET", path: "/tx/retry/flaky/get-2?fail=5" },
    expect: { status: 503, json: { attempt: 3 } },
    upstream: { on: "a", count: 3 },
  },
  {
    name: "retries: a POST is not retried unless configured",
    request: { method: "POST", path: "/tx/retry/flaky/post-1?fail=1", text: "{}" },
    expect: { status: 503 },
    upstream: { on: "a", count: 1 },
  },
  {
    name: "retries: a POST is retried where non_idempotent is set",
    request: { method: "POST", path: "/tx/retry-post/flaky/post-2?fail=1", text: "{\"a\":1}" },
    expect: { status: 200, json: { attempt: 2 } },
    upstream: { on: "a", count: 2, bodyLength: 7 },
  },
];
