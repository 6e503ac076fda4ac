// A measuring aid, not a subject of the default run: a JS worker asking the runtime for exactly
// what the Workers adapter asks on the plain route (the head read, headers rebuilt for the fetch
// and the response, a timer raced against the fetch, a fresh Response, the access-log line), with
// no wasm. `BENCH_EXTRA=tests/bench/adapter-mimic.mjs BENCH_ONLY=edgegate-plain,extra scripts/bench`
// puts it beside the real build: the difference is the cost of the wasm side.
function head(first, headers) { let s = first + "\n"; for (const [k, v] of headers) s += k + "\n" + v + "\n"; return s; }
function headers(packed) { const h = new Headers(); const p = packed.split("\n"); for (let i = 0; i + 1 < p.length; i += 2) h.append(p[i], p[i + 1]); return h; }
export default {
  async fetch(request) {
    const started = Date.now();
    const reqHead = head(request.method + "\n" + request.url, request.headers);
    const lines = reqHead.split("\n");
    const url = new URL(lines[1]);
    const target = "http://127.0.0.1:27281" + url.pathname.replace(/^\/proxy/, "") + url.search;
    let packed = "";
    for (let i = 2; i + 1 < lines.length; i += 2) if (lines[i] !== "host") packed += lines[i] + "\n" + lines[i + 1] + "\n";
    packed += "x-request-id\n" + crypto.randomUUID() + "\nx-forwarded-for\n127.0.0.1\n";
    const controller = new AbortController();
    let timer;
    const timeout = new Promise((_, reject) => { timer = setTimeout(() => { controller.abort(); reject(new Error("timeout")); }, 30000); });
    const upstream = await Promise.race([fetch(target, { method: request.method, headers: headers(packed), redirect: "manual", signal: controller.signal }), timeout]);
    clearTimeout(timer);
    const resHead = head(upstream.status, upstream.headers);
    const resLines = resHead.split("\n");
    let out = "";
    for (let i = 1; i + 1 < resLines.length; i += 2) out += resLines[i] + "\n" + resLines[i + 1] + "\n";
    out += "server-timing\nedgegate;dur=0\n";
    console.log(JSON.stringify({ time: new Date().toISOString(), route: "proxy", method: request.method, path: url.pathname, status: upstream.status, duration_ms: Date.now() - started }));
    return new Response(upstream.body, { status: upstream.status, headers: headers(out) });
  },
};
export class EdgegateLimiter {}
