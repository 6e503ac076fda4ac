// A measuring aid, not a subject of the default run: the least any exactly counting Worker can
// do per admitted request. The bare pass-through plus one Durable Object RPC whose object adds
// one to a counter in memory and writes it through the synchronous `storage.kv` (not awaited:
// the output gate holds the answer until it is durable), as edgegate's limiter does; no
// token, no headers, no log line. Beside the JS floor it bounds the ratio of any gateway whose
// every admitted request asks one object: `node tests/bench/ab.mjs floor=tests/bench/passthrough.mjs
// limit-floor=tests/bench/limit-floor.mjs@/proxy/items?x=1 ...`.
import { DurableObject } from "cloudflare:workers";

export class Counter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.count = ctx.storage.kv.get("n") ?? 0;
  }
  hit() {
    this.count += 1;
    this.ctx.storage.kv.put("n", this.count);
    return true;
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const counter = env.COUNTER.get(env.COUNTER.idFromName("one-hot-key"));
    if (!(await counter.hit())) return new Response("limited", { status: 429 });
    const upstream = new URL(url.pathname.replace(/^\/proxy/, "") + url.search, "http://127.0.0.1:27281");
    return fetch(new Request(upstream, request));
  },
};
