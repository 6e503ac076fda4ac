// Entered as targets/cloudflare/entry.mjs enters edgegate: the handler called directly, not
// through worker-build's per-request class construction.
import worker from "./index.js";

const handler = worker.prototype.fetch;

export default {
  fetch(request, env, ctx) {
    return handler.call({ env, ctx }, request);
  },
};
