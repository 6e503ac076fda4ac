// The Worker's entry: the routes module, the gateway's fetch handler from worker-build's module, and the rate
// limiter's Durable Object as a class of the runtime's `DurableObject`, so that workers reach it
// through RPC (`stub.decide(policy, cost)`) instead of an HTTP-shaped fetch. Every decision is
// the wasm's (targets/cloudflare/src); this file only wires it to the runtime.
import { DurableObject } from "cloudflare:workers";
import gateway, { EdgegateLimiter as WasmLimiter } from "./index.js";
import { routes, openapi } from "./routes.mjs";

// The routes file the build checked (`edgegate embed`), compiled by the wasm on first use. It
// lives outside the wasm so that a routes change rebuilds no Rust; a global, not a call into
// the wasm, so that an instance worker-build resets after a trap still finds it.
globalThis[Symbol.for("edgegate.config")] = { routes, openapi };

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
  // Made at once where it can be (a loaded counter, the synchronous storage of a SQLite-backed
  // object): no promise on either side of the boundary. Otherwise the awaiting path.
  decide(policy, cost) {
    return this.limiter.decideNow(policy, cost) ?? this.limiter.decide(policy, cost);
  }
  alarm() {
    return this.limiter.alarm();
  }
}
