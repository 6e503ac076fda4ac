// Several targets per upstream: a canary split within statistical bounds, stable sticky
// cohorts, round robin, failover, and (Workers, whose isolates keep state) the circuit breaker.
import { checkRunner } from "./checks.mjs";
const landed = (response) => {
  try {
    return JSON.parse(response.body.toString("utf8")).upstream;
  } catch {
    return undefined;
  }
};

export async function balanceChecks(runtime, sendTo) {
  const runner = checkRunner(sendTo);
  const { send, check } = runner;

  await check("a 90/10 canary split lands within bounds over 200 requests", async () => {
    const counts = { a: 0, b: 0 };
    for (let i = 0; i < 200; i++) counts[landed(await send({ method: "GET", path: `/lb/canary/echo/${i}` }))]++;
    // Binomial(200, 0.1): mean 20, sd 4.2; 6 sd either side.
    return counts.b >= 1 && counts.b <= 46 && counts.a + counts.b === 200 ? [] : [`stable ${counts.a}, canary ${counts.b}`];
  });

  await check("sticky cohorts: a user stays on one target, users spread over both", async () => {
    const failures = [];
    const seen = { a: 0, b: 0 };
    for (let user = 0; user < 20; user++) {
      const targets = new Set();
      for (let i = 0; i < 5; i++) targets.add(landed(await send({ method: "GET", path: "/lb/cohorts/echo", headers: { "x-user": `user-${user}` } })));
      if (targets.size !== 1) failures.push(`user-${user} landed on ${[...targets]}`);
      seen[[...targets][0]]++;
    }
    if (seen.a === 0 || seen.b === 0) failures.push(`20 users all on one target: ${JSON.stringify(seen)}`);
    return failures;
  });

  if (runtime === "workers") {
    // Round robin needs a counter that outlives a request: per isolate on Workers.
    await check("round robin alternates targets", async () => {
      const order = [];
      for (let i = 0; i < 6; i++) order.push(landed(await send({ method: "GET", path: "/lb/rr/echo" })));
      const alternating = order.every((t, i) => i === 0 || t !== order[i - 1]);
      return alternating ? [] : [`order ${order.join(",")}`];
    });
  }

  await check("failover: the standby answers when the primary cannot be reached", async () => {
    const response = await send({ method: "GET", path: "/lb/standby/echo/x" });
    return response.status === 200 && landed(response) === "a" ? [] : [`${response.status} from ${landed(response)}`];
  });

  if (runtime === "workers") {
    await check("the breaker opens after failures and half-opens after the cool-down", async () => {
      const failures = [];
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await send({ method: "GET", path: "/lb/fragile/status/500" })).status);
      const open = await send({ method: "GET", path: "/lb/fragile/status/200" });
      const type = JSON.parse(open.body.toString("utf8") || "{}").type;
      if (statuses.join() !== "500,500,500") failures.push(`failures passed through as ${statuses.join()}`);
      if (open.status !== 503 || type !== "urn:edgegate:problem:upstream-circuit-open") failures.push(`while open: ${open.status} ${type}`);
      await new Promise((r) => setTimeout(r, 2100));
      const probe = await send({ method: "GET", path: "/lb/fragile/status/200" });
      const after = await send({ method: "GET", path: "/lb/fragile/status/200" });
      if (probe.status !== 200 || after.status !== 200) failures.push(`after the cool-down: probe ${probe.status}, then ${after.status}`);
      return failures;
    });
  }
  await check(runtime === "workers" ? "edge cache: miss then hit, Vary, bypass with credentials, never Set-Cookie" : "edge cache: Spin has none, and Cache-Status says so", async () => {
    const failures = [];
    const path = `/cached/echo/${process.pid}-${Date.now()}`;
    const status = (r) => r.headers["cache-status"];
    const first = await send({ method: "GET", path, headers: { "accept-language": "en" } });
    const second = await send({ method: "GET", path, headers: { "accept-language": "en" } });
    const other = await send({ method: "GET", path, headers: { "accept-language": "de" } });
    const credentialed = await send({ method: "GET", path, headers: { "accept-language": "en", authorization: "Bearer x" } });
    const cookie = await send({ method: "GET", path: `/cached/status/200?${Date.now()}` });
    const cookieAgain = await send({ method: "GET", path: `/cached/status/200?${Date.now() - 1}` });
    if (runtime === "workers") {
      if (status(first) !== "edgegate; fwd=uri-miss; stored") failures.push(`first: ${status(first)}`);
      if (status(second) !== "edgegate; hit") failures.push(`second: ${status(second)}`);
      if (second.body.toString() !== first.body.toString()) failures.push("the hit's body differs from the stored answer");
      if (status(other) !== "edgegate; fwd=uri-miss; stored") failures.push(`another accept-language: ${status(other)}`);
      if (status(credentialed) !== "edgegate; fwd=bypass") failures.push(`with credentials: ${status(credentialed)}`);
      if (status(cookie) !== "edgegate; fwd=uri-miss" || status(cookieAgain) !== "edgegate; fwd=uri-miss") failures.push(`Set-Cookie answers: ${status(cookie)} / ${status(cookieAgain)}`);
    } else {
      for (const r of [first, second, other]) if (status(r) !== "edgegate; fwd=uri-miss; detail=no-edge-cache") failures.push(`Spin: ${status(r)}`);
      if (status(credentialed) !== "edgegate; fwd=bypass") failures.push(`with credentials: ${status(credentialed)}`);
    }
    return failures;
  });
  return { results: runner.results, sent: runner.sent };
}
