// WebSockets through the gateway, seen with a real client (the `ws` package): on Workers the
// upgrade passes the route's checks (a token in the query, as browsers cannot set headers on
// a WebSocket; the Origin against the route's CORS origins), messages and close codes pass
// both ways and an idle socket is closed; on Spin, whose wasi-http has no upgrade, the gateway
// answers 501 itself.
import WebSocket from "ws";
import { checkRunner } from "./checks.mjs";
import { linkToken } from "./auth.mjs";

const ORIGIN = "https://app.example.com";

/** Opens a socket; resolves once it is open (with the upstream's hello) or refused (with the answer). */
function open(port, path, origin = ORIGIN) {
  return new Promise((resolve) => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}${path}`, { origin, handshakeTimeout: 10_000 });
    const messages = [];
    const waiting = [];
    socket.on("message", (data, binary) => {
      const message = { data: binary ? Buffer.from(data) : String(data), binary };
      const next = waiting.shift();
      if (next) next(message);
      else messages.push(message);
    });
    const next = (ms = 5_000) =>
      new Promise((res) => {
        if (messages.length) return res(messages.shift());
        const timer = setTimeout(() => res(undefined), ms);
        waiting.push((m) => (clearTimeout(timer), res(m)));
      });
    const closed = new Promise((res) => socket.on("close", (code, reason) => res({ code, reason: String(reason), at: Date.now() })));
    socket.on("unexpected-response", (_req, res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ refused: { status: res.statusCode, contentType: res.headers["content-type"], body: Buffer.concat(chunks).toString("utf8") } }));
    });
    socket.on("error", (error) => resolve({ error }));
    socket.on("open", async () => resolve({ socket, next, closed, hello: JSON.parse((await next())?.data ?? "null"), openedAt: Date.now() }));
  });
}

export async function socketChecks(runtime, port, sendTo) {
  const runner = checkRunner(sendTo);
  const { check, send } = runner;
  const token = await linkToken();
  // Each upgrade, accepted or refused, is one request (and one access-log line).
  const connect = (path, origin) => {
    runner.sent++;
    return open(port, path, origin);
  };

  if (runtime === "spin") {
    await check("a WebSocket upgrade is answered 501 websocket-unsupported (wasi-http has no upgrade)", async () => {
      const opened = await connect(`/ws/echo-socket?id=spin&access_token=${token}`);
      if (!opened.refused) return [`expected a refusal, got ${opened.error?.message ?? "an open socket"}`];
      const { status, contentType, body } = opened.refused;
      return status === 501 && /problem\+json/.test(contentType ?? "") && body.includes("websocket-unsupported") ? [] : [`${status} ${contentType} ${body}`];
    });
    return { results: runner.results, sent: runner.sent };
  }

  await check("a WebSocket opens with a query token, which the upstream never sees", async () => {
    const opened = await connect(`/ws/echo-socket?id=hello&access_token=${token}`);
    if (!opened.socket) return [`not opened: ${opened.refused ? JSON.stringify(opened.refused) : opened.error?.message}`];
    opened.socket.close();
    const failures = [];
    if (!opened.hello) return ["no hello from the upstream"];
    if (opened.hello.url.includes("access_token")) failures.push(`the token reached the upstream: ${opened.hello.url}`);
    if (!opened.hello.headers["x-request-id"]) failures.push("no X-Request-Id: not the gateway's request");
    return failures;
  });

  await check("messages pass both ways, text and binary", async () => {
    const opened = await connect(`/ws/echo-socket?id=echo&access_token=${token}`);
    if (!opened.socket) return [`not opened: ${JSON.stringify(opened.refused ?? opened.error?.message)}`];
    const failures = [];
    opened.socket.send("ping");
    const text = await opened.next();
    if (text?.data !== "ping" || text.binary) failures.push(`text echo ${JSON.stringify(text)}`);
    opened.socket.send(Buffer.from([0, 1, 2, 255]));
    const bytes = await opened.next();
    if (!bytes?.binary || !Buffer.from([0, 1, 2, 255]).equals(bytes.data)) failures.push(`binary echo ${JSON.stringify(bytes)}`);
    opened.socket.close();
    return failures;
  });

  await check("close codes pass both ways: the upstream's 4001 reaches the client, the client's 4002 the upstream", async () => {
    const failures = [];
    const first = await connect(`/ws/echo-socket?id=upclose&access_token=${token}`);
    if (!first.socket) return [`not opened: ${JSON.stringify(first.refused ?? first.error?.message)}`];
    first.socket.send("close:4001:bye");
    const closed = await Promise.race([first.closed, new Promise((r) => setTimeout(() => r(null), 5_000))]);
    if (closed?.code !== 4001 || closed.reason !== "bye") failures.push(`the client saw ${JSON.stringify(closed)}`);
    const id = `downclose-${process.pid}-${Date.now()}`;
    const second = await connect(`/ws/echo-socket?id=${id}&access_token=${token}`);
    if (!second.socket) return [...failures, `not opened: ${JSON.stringify(second.refused ?? second.error?.message)}`];
    second.socket.close(4002, "done");
    await second.closed;
    let seen = { code: null };
    for (let i = 0; i < 20 && seen.code === null; i++) {
      await new Promise((r) => setTimeout(r, 100));
      seen = JSON.parse((await send({ method: "GET", path: `/svc/socket-closes/${id}` })).body.toString("utf8") || "{}");
    }
    if (seen.code !== 4002 || seen.reason !== "done") failures.push(`the upstream saw ${JSON.stringify(seen)}`);
    return failures;
  });

  await check("an upgrade without a token is refused 401 problem+json", async () => {
    const opened = await connect("/ws/echo-socket?id=none");
    if (!opened.refused) return [`expected a refusal, got ${opened.error?.message ?? "an open socket"}`];
    const { status, contentType } = opened.refused;
    return status === 401 && /problem\+json/.test(contentType ?? "") ? [] : [`${status} ${contentType}`];
  });

  await check("an upgrade from an origin outside the route's allow_origins is refused 403", async () => {
    const opened = await connect(`/ws/echo-socket?id=evil&access_token=${token}`, "https://evil.example");
    if (!opened.refused) return [`expected a refusal, got ${opened.error?.message ?? "an open socket"}`];
    const { status, body } = opened.refused;
    return status === 403 && body.includes("cors-rejected") ? [] : [`${status} ${body}`];
  });

  /**
   * Waits up to 6 s for the gateway to close an open socket, and checks it closed with 1001
   * `reason` between `earliest` and 4000 ms after opening (`bound` names the route's setting).
   */
  const closedByGateway = async (opened, reason, earliest, bound) => {
    const closed = await Promise.race([opened.closed, new Promise((r) => setTimeout(() => r(null), 6_000))]);
    if (!closed) {
      opened.socket.terminate();
      return [`still open after 6 s (${bound})`];
    }
    const after = closed.at - opened.openedAt;
    const failures = [];
    if (closed.code !== 1001 || closed.reason !== reason) failures.push(`closed ${closed.code} "${closed.reason}"`);
    if (after < earliest || after > 4000) failures.push(`closed ${after} ms after opening (${bound})`);
    return failures;
  };

  await check("an idle WebSocket is closed (1001 idle timeout) after the route's idle_timeout_ms", async () => {
    const opened = await connect(`/ws/echo-socket?id=idle&access_token=${token}`);
    if (!opened.socket) return [`not opened: ${JSON.stringify(opened.refused ?? opened.error?.message)}`];
    return closedByGateway(opened, "idle timeout", 1000, "idle bound 1500 ms");
  });

  await check("a busy WebSocket is closed (1001 maximum lifetime) after the route's websocket.max_lifetime_ms", async () => {
    const opened = await connect("/wsb/echo-socket?id=brief");
    if (!opened.socket) return [`not opened: ${JSON.stringify(opened.refused ?? opened.error?.message)}`];
    let echoed = 0;
    opened.socket.on("message", () => echoed++);
    const talk = setInterval(() => opened.socket.readyState === WebSocket.OPEN && opened.socket.send("busy"), 200);
    const failures = await closedByGateway(opened, "maximum lifetime", 900, "lifetime 1200 ms");
    clearInterval(talk);
    if (echoed < 3) failures.push(`only ${echoed} echoes while it was open: it was not busy`);
    return failures;
  });

  return { results: runner.results, sent: runner.sent };
}
