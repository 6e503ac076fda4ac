// The Worker's entry: the gateway's fetch handler from worker-build's module, and the rate
// limiter's Durable Object as a class of the runtime's `DurableObject`, so that workers reach it
// through RPC (`stub.decide(policy, cost)`) instead of an HTTP-shaped fetch. Every decision is
// the wasm's (targets/cloudflare/src); this file only wires it to the runtime.
import { DurableObject } from "cloudflare:workers";
import gateway, { EdgegateLimiter as WasmLimiter } from "./index.js";

// worker-build exports the handler as a `WorkerEntrypoint` class behind two Proxies (one built
// per request, one per method call) that reset the wasm instance after a trap. The runtime
// constructs that class for every request; calling the handler directly saved ~50 µs of CPU
// per request (scripts/bench). The reset is kept: a trap marks the shared state critical, and
// constructing the class once runs worker-build's own reinitialisation.
const handler = gateway.prototype.fetch;
const initState = globalThis.__worker_init_state;

export default {
  async fetch(request, env, ctx) {
    try {
      return await handler.call({ env, ctx }, request);
    } catch (error) {
      if (error instanceof WebAssembly.RuntimeError && initState) {
        console.error("Critical", error);
        initState.criticalError = true;
        try {
          Reflect.construct(gateway, [ctx, env]);
        } catch {
          // The state stays critical: the next construction resets it.
        }
      }
      throw error;
    }
  },
};

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
