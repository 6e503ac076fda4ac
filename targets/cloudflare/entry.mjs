// The Worker's entry: worker-build's module (the gateway's fetch handler) as it is, and the
// rate limiter's Durable Object as a class of the runtime's `DurableObject`, so that workers
// reach it through RPC (`stub.decide(policy, cost)`) instead of an HTTP-shaped fetch. The
// decision itself is the wasm's (targets/cloudflare/src/limiter.rs).
import { DurableObject } from "cloudflare:workers";
import gateway, { EdgegateLimiter as WasmLimiter } from "./index.js";

export default gateway;

export class EdgegateLimiter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.limiter = new WasmLimiter(ctx, env);
  }
  decide(policy, cost) {
    return this.limiter.decide(policy, cost);
  }
  fetch(request) {
    return this.limiter.fetch(request);
  }
  alarm() {
    return this.limiter.alarm();
  }
}
