// Rate-limit checks, run by run.mjs against both runtimes: exactness under concurrency (the
// Durable Object on Workers, key-value compare-and-swap on Spin), the IETF RateLimit headers,
// Retry-After that is honoured, UTC-day quotas, keys from headers, JWT claims and consumers.
import { checkRunner } from "./checks.mjs";
import { STORED_CONSUMER_KEY } from "./auth.mjs";

const unique = (name) => `${name}-${process.pid}-${Date.now()}`;

function problemType(response) {
  try {
    return JSON.parse(response.body.toString("utf8")).type;
  } catch {
    return undefined;
  }
}

/** N concurrent requests against a limit of L: exactly L pass, the rest get 429 with Retry-After. */
async function exactUnderConcurrency(sendTo, path, policy, n, limit) {
  const failures = [];
  const client = unique(policy);
  const responses = await Promise.all(Array.from({ length: n }, () => sendTo({ method: "GET", path, headers: { "x-client": client } })));
  const passed = responses.filter((r) => r.status === 200);
  const limited = responses.filter((r) => r.status === 429);
  if (passed.length !== limit || limited.length !== n - limit) {
    failures.push(`${n} concurrent requests, limit ${limit}: ${passed.length} passed, ${limited.length} limited, others ${responses.filter((r) => r.status !== 200 && r.status !== 429).map((r) => r.status)}`);
  }
  const remaining = passed.map((r) => Number(/;r=(\d+)/.exec(r.headers["ratelimit"] ?? "")?.[1])).sort((a, b) => a - b);
  const expected = Array.from({ length: limit }, (_, i) => i);
  if (JSON.stringify(remaining) !== JSON.stringify(expected)) failures.push(`RateLimit r= values ${JSON.stringify(remaining)}, expected ${JSON.stringify(expected)}`);
  for (const r of passed) {
    if (r.headers["ratelimit-policy"] !== `"${policy}";q=${limit};w=60`) failures.push(`RateLimit-Policy: ${r.headers["ratelimit-policy"]}`);
  }
  for (const r of limited) {
    if (problemType(r) !== "urn:edgegate:problem:rate-limited") failures.push(`429 problem type ${problemType(r)}`);
    if (!(Number(r.headers["retry-after"]) >= 1)) failures.push(`429 Retry-After ${r.headers["retry-after"]}`);
    if (!/;r=0;t=\d+/.test(r.headers["ratelimit"] ?? "")) failures.push(`429 RateLimit ${r.headers["ratelimit"]}`);
  }
  return [...new Set(failures)].slice(0, 5);
}

export async function rateLimitChecks(idp, sendTo) {
  const runner = checkRunner(sendTo);
  const { send, check } = runner;

  await check("20 concurrent requests against a limit of 5: exactly 5 pass (every_request persistence)", () => exactUnderConcurrency(send, "/rl/burst", "burst5", 20, 5));
  await check("20 concurrent requests against a limit of 5: exactly 5 pass (write_behind persistence)", () => exactUnderConcurrency(send, "/rl/lazy", "lazy5", 20, 5));

  await check("a refused client stays refused, with Retry-After counted down, and a request after Retry-After succeeds", async () => {
    const failures = [];
    const headers = { "x-client": unique("fast") };
    const statuses = [];
    for (let i = 0; i < 2; i++) statuses.push((await send({ method: "GET", path: "/rl/fast", headers })).status);
    const denied = await send({ method: "GET", path: "/rl/fast", headers });
    if (statuses.join() !== "200,200" || denied.status !== 429) return [`expected 200,200 then 429, got ${statuses.join()},${denied.status}`];
    const retryAfter = Number(denied.headers["retry-after"]);
    if (!(retryAfter >= 1 && retryAfter <= 2)) failures.push(`Retry-After ${denied.headers["retry-after"]}, expected 1 or 2`);
    // Refused again at once (on Workers, by the isolate's memory of the refusal, without asking
    // the Durable Object): the same answer, counted down.
    for (let i = 0; i < 3; i++) {
      const again = await send({ method: "GET", path: "/rl/fast", headers });
      const after = Number(again.headers["retry-after"]);
      if (again.status !== 429 || problemType(again) !== "urn:edgegate:problem:rate-limited") failures.push(`refused again: ${again.status} ${problemType(again)}`);
      if (!(after >= 1 && after <= retryAfter)) failures.push(`refused again: Retry-After ${again.headers["retry-after"]}, expected 1..${retryAfter}`);
      if (!/;r=0;t=\d+/.test(again.headers["ratelimit"] ?? "")) failures.push(`refused again: RateLimit ${again.headers["ratelimit"]}`);
    }
    await new Promise((r) => setTimeout(r, retryAfter * 1000 + 50));
    const again = await send({ method: "GET", path: "/rl/fast", headers });
    if (again.status !== 200) failures.push(`after Retry-After: ${again.status}`);
    return failures;
  });

  await check("a daily quota: 3 pass, the 4th waits until the next UTC midnight", async () => {
    const headers = { "x-client": unique("daily") };
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await send({ method: "GET", path: "/rl/daily", headers })).status);
    const denied = await send({ method: "GET", path: "/rl/daily", headers });
    const midnight = new Date();
    midnight.setUTCHours(24, 0, 0, 0);
    const untilMidnight = Math.ceil((midnight.getTime() - Date.now()) / 1000);
    const failures = [];
    if (statuses.join() !== "200,200,200" || denied.status !== 429) failures.push(`expected 3×200 then 429, got ${statuses.join()},${denied.status}`);
    if (Math.abs(Number(denied.headers["retry-after"]) - untilMidnight) > 3) failures.push(`Retry-After ${denied.headers["retry-after"]}, expected about ${untilMidnight}`);
    if (denied.headers["ratelimit-policy"] !== '"daily";q=3;w=86400') failures.push(`RateLimit-Policy ${denied.headers["ratelimit-policy"]}`);
    return failures;
  });

  await check("a missing key part with on_missing_key reject: 403; headers off when configured", async () => {
    const failures = [];
    const missing = await send({ method: "GET", path: "/rl/tenant" });
    if (missing.status !== 403 || problemType(missing) !== "urn:edgegate:problem:rate-limit-key-missing") failures.push(`without x-tenant: ${missing.status} ${problemType(missing)}`);
    const present = await send({ method: "GET", path: "/rl/tenant", headers: { "x-tenant": "t1" } });
    if (present.status !== 200) failures.push(`with x-tenant: ${present.status}`);
    if (present.headers["ratelimit"] !== undefined || present.headers["ratelimit-policy"] !== undefined) failures.push("RateLimit headers sent although the policy turns them off");
    return failures;
  });

  await check("a key from a JWT claim: each subject has its own limit", async () => {
    const claims = (sub) => ({ iss: idp.origin, sub, aud: "edgegate-tests", iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 600 });
    const alice = `Bearer ${await idp.sign("ES256", claims(unique("alice")))}`;
    const bob = `Bearer ${await idp.sign("ES256", claims(unique("bob")))}`;
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await send({ method: "GET", path: "/rl/user", headers: { authorization: alice } })).status);
    const other = (await send({ method: "GET", path: "/rl/user", headers: { authorization: bob } })).status;
    return statuses.join() === "200,200,429" && other === 200 ? [] : [`alice ${statuses.join()}, bob ${other}`];
  });

  await check("a key from the API-key consumer: each consumer has its own limit", async () => {
    // Runs once per runtime process, so the consumers' counters start fresh.
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await send({ method: "GET", path: "/rl/consumer", headers: { "x-api-key": "acme-secret-key" } })).status);
    const other = (await send({ method: "GET", path: "/rl/consumer", headers: { "x-api-key": STORED_CONSUMER_KEY } })).status;
    return statuses.join() === "200,200,429" && other === 200 ? [] : [`acme ${statuses.join()}, globex ${other}`];
  });

  return { results: runner.results, sent: runner.sent };
}
