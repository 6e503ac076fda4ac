// The peer a user would write instead of edgegate for the full-policy route: Hono + jose,
// an exact GCRA limit per `sub` in a SQLite-backed Durable Object written on every request,
// the `sub` claim forwarded as a header. Bundled by esbuild for the bench (scripts/bench).
import { Hono } from "hono";
import { DurableObject } from "cloudflare:workers";
import { importJWK, jwtVerify } from "jose";

const PUBLIC_JWK = { kty: "EC", x: "xat8YyOKNAkiUJayz6K1CicJw7XlsUM3P6pQSCJujTc", y: "zmFIpwCgMiW38mUtCk0qu9_-bJLM2gz5e5lKn-L8eVs", crv: "P-256", kid: "inline-es256", alg: "ES256" };
const UPSTREAM = "http://127.0.0.1:27281";
// The same policy as tests/bench/routes.json's per-user limit: 1,000,000 per second.
const RATE = 1_000_000;
const PERIOD_MS = 1000;

let keyPromise;
const key = () => (keyPromise ??= importJWK(PUBLIC_JWK, "ES256"));

export class Limiter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS gcra (k TEXT PRIMARY KEY, tat INTEGER)");
  }
  /** GCRA: admit when the theoretical arrival time is not beyond now + burst. */
  async admit(k) {
    const now = Date.now();
    const interval = PERIOD_MS / RATE;
    const burst = PERIOD_MS;
    const row = this.ctx.storage.sql.exec("SELECT tat FROM gcra WHERE k = ?", k).toArray()[0];
    const tat = Math.max(row ? row.tat : now, now);
    if (tat - now > burst) return false;
    this.ctx.storage.sql.exec("INSERT OR REPLACE INTO gcra (k, tat) VALUES (?, ?)", k, tat + interval);
    return true;
  }
}

const app = new Hono();
app.get("/full/*", async (c) => {
  const header = c.req.header("authorization") ?? "";
  if (!header.startsWith("Bearer ")) return c.json({ error: "unauthorized" }, 401);
  let payload;
  try {
    ({ payload } = await jwtVerify(header.slice(7), await key(), { issuer: "https://bench.test", audience: "bench", algorithms: ["ES256"] }));
  } catch {
    return c.json({ error: "unauthorized" }, 401);
  }
  const limiter = c.env.LIMITER.get(c.env.LIMITER.idFromName(String(payload.sub)));
  if (!(await limiter.admit(String(payload.sub)))) return c.json({ error: "rate limited" }, 429);
  const url = new URL(c.req.url);
  const request = new Request(UPSTREAM + url.pathname.replace(/^\/full/, "") + url.search, c.req.raw);
  request.headers.delete("authorization");
  request.headers.set("x-user-id", String(payload.sub));
  return fetch(request);
});

export default app;
