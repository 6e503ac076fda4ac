// The JS side of the Workers adapter's boundary (lib.rs and limiter.rs import it through
// `#[wasm_bindgen(module = "/src/glue.js")]`): the few calls per request that cross it, the body
// guards (limits, idle bounds, declared lengths), the WebSocket relay, the rate limiter's
// storage. Decisions stay in the wasm; this file only does what JS must.

function head(first, headers) {
  let s = first + "\n";
  for (const [k, v] of headers) s += k + "\n" + v + "\n";
  return s;
}
export function eg_request_head(req) {
  return head(req.method + "\n" + req.url, req.headers);
}
export function eg_response_head(res) {
  return head(res.status, res.headers);
}
function headers(packed) {
  const h = new Headers();
  const p = packed.split("\n");
  for (let i = 0; i + 1 < p.length; i += 2) h.append(p[i], p[i + 1]);
  return h;
}
export function eg_response(status, packed, body) {
  const h = headers(packed);
  if (body?.eg_idle !== undefined) body = withLength(guarded(body, Infinity, body.eg_idle, () => {}), h);
  return new Response(body === undefined ? null : body, { status, headers: h });
}
// The stream, read chunk by chunk as its consumer asks (pull, no buffer ahead): counted
// against `limit` and given up when a read waits longer than `idle` ms for the source (time
// the consumer spends not reading does not count). `fail` hears why it failed.
function guarded(source, limit, idle, fail) {
  const reader = source.getReader();
  let seen = 0;
  return new ReadableStream({
    async pull(out) {
      let timer;
      try {
        const read = reader.read();
        const step = idle === undefined ? await read : await Promise.race([read, new Promise((_, stall) => {
          timer = setTimeout(() => stall("edgegate:body-stalled"), idle);
        })]);
        if (step.done) return out.close();
        seen += step.value.byteLength;
        if (seen > limit) throw "edgegate:body-too-large";
        out.enqueue(step.value);
      } catch (e) {
        fail(e);
        reader.cancel(e).catch(() => {});
        out.error(typeof e === "string" ? new Error(e) : e);
      } finally {
        clearTimeout(timer);
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
// A declared length survives the guard: a body that ends short of it is an error at the
// receiver, never a complete message.
function withLength(stream, h) {
  const length = Number(h.get("content-length") ?? NaN);
  if (!Number.isSafeInteger(length)) return stream;
  const fixed = new FixedLengthStream(length);
  stream.pipeTo(fixed.writable).catch(() => {});
  return fixed.readable;
}
// `timeout` (ms, 0 for none) bounds the wait for the response head: the timer lives here,
// not in wasm, and is cleared once the head arrives (the body may stream for longer).
export function eg_fetch(url, method, packed, body, controller, timeout) {
  if (timeout > 0) {
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; controller.abort(); }, timeout);
    return send(url, method, packed, body, controller).then(
      (response) => { clearTimeout(timer); return response; },
      (e) => { clearTimeout(timer); throw timedOut ? "edgegate:timeout" : e; },
    );
  }
  return send(url, method, packed, body, controller);
}
function send(url, method, packed, body, controller) {
  const init = { method, headers: headers(packed), body: body === undefined ? null : body, redirect: "manual", signal: controller.signal };
  if (body?.eg_limit === undefined && body?.eg_idle === undefined) return fetch(url, init);
  // Counted and timed in JS as it passes (never copied into wasm). workerd ends a chunked
  // upload whose source errors as if it were complete, so a source that breaks off, passes
  // the limit or stalls aborts the whole upstream request instead.
  let failure;
  const fail = (e) => {
    if (typeof e === "string" && e.startsWith("edgegate:")) failure = e;
    controller.abort();
  };
  init.body = withLength(guarded(body, body.eg_limit ?? Infinity, body.eg_idle, fail), init.headers);
  return fetch(url, init).catch((e) => { throw failure ?? e; });
}
// Marks a body of unknown length for eg_fetch to count.
export function eg_limited(stream, limit) {
  stream.eg_limit = limit;
  return stream;
}
// The client's end of a WebSocket whose upstream end is `upstream` (an accepted upgrade).
// Without bounds the runtime joins the two itself; with an idle bound or a lifetime (ms, 0 for
// none) messages are relayed here so they can be timed, and close codes pass both ways.
export function eg_socket(upstream, packed, idle, lifetime) {
  const h = headers(packed);
  h.delete("upgrade");
  h.delete("connection");
  h.delete("sec-websocket-accept");
  if (!idle && !lifetime) return new Response(null, { status: 101, webSocket: upstream, headers: h });
  const [client, server] = Object.values(new WebSocketPair());
  upstream.accept();
  server.accept();
  // Binary messages as bytes, which send() takes back (a Blob it would send as text).
  upstream.binaryType = server.binaryType = "arraybuffer";
  let idleTimer, lifeTimer;
  const end = (code, reason) => {
    clearTimeout(idleTimer);
    clearTimeout(lifeTimer);
    for (const socket of [server, upstream]) try { socket.close(code, reason); } catch {}
  };
  const touch = () => {
    if (!idle) return;
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => end(1001, "idle timeout"), idle);
  };
  touch();
  if (lifetime) lifeTimer = setTimeout(() => end(1001, "maximum lifetime"), lifetime);
  const relay = (from, to) => {
    from.addEventListener("message", (event) => {
      touch();
      try { to.send(event.data); } catch { end(1011, "relay failed"); }
    });
    // 1005 (no code) and 1006 (abnormal) cannot be sent: the other side gets a plain close.
    from.addEventListener("close", (event) => {
      clearTimeout(idleTimer);
      clearTimeout(lifeTimer);
      try { event.code === 1005 || event.code === 1006 ? to.close() : to.close(event.code, event.reason); } catch {}
    });
    from.addEventListener("error", () => end(1011, "socket error"));
  };
  relay(server, upstream);
  relay(upstream, server);
  return new Response(null, { status: 101, webSocket: client, headers: h });
}
// Marks a body for eg_fetch or eg_response to give up when it stalls for `idle` ms.
export function eg_idle(stream, idle) {
  stream.eg_idle = idle;
  return stream;
}

// WebCrypto's import and verify parameters by JWS algorithm. HMAC stays in the wasm: a hash over
// a few hundred bytes costs less than a promise round trip.
const rsa = (name, bits, verify = { name }) => [{ name, hash: `SHA-${bits}` }, verify];
const ecdsa = (curve, bits) => [{ name: "ECDSA", namedCurve: curve }, { name: "ECDSA", hash: `SHA-${bits}` }];
const WEBCRYPTO = {
  RS256: rsa("RSASSA-PKCS1-v1_5", 256), RS384: rsa("RSASSA-PKCS1-v1_5", 384), RS512: rsa("RSASSA-PKCS1-v1_5", 512),
  PS256: rsa("RSA-PSS", 256, { name: "RSA-PSS", saltLength: 32 }),
  PS384: rsa("RSA-PSS", 384, { name: "RSA-PSS", saltLength: 48 }),
  PS512: rsa("RSA-PSS", 512, { name: "RSA-PSS", saltLength: 64 }),
  ES256: ecdsa("P-256", 256), ES384: ecdsa("P-384", 384),
  EdDSA: [{ name: "Ed25519" }, { name: "Ed25519" }],
};
// Public JWK text → imported key, for the isolate's life.
const cryptoKeys = new Map();
// `undefined` leaves the check to the wasm: no such algorithm here, or a key the runtime refuses.
export async function eg_verify(alg, jwk, signature, message) {
  const params = WEBCRYPTO[alg];
  if (params === undefined) return undefined;
  // Copied before the first await: the arguments are views of the wasm's memory.
  signature = signature.slice();
  message = message.slice();
  try {
    let key = cryptoKeys.get(jwk);
    if (key === undefined) {
      key = await crypto.subtle.importKey("jwk", JSON.parse(jwk), params[0], false, ["verify"]);
      cryptoKeys.set(jwk, key);
    }
    return await crypto.subtle.verify(params[1], key, signature, message);
  } catch {
    return undefined;
  }
}

export function eg_config(name) {
  return globalThis[Symbol.for("edgegate.config")]?.[name];
}

export function put_unawaited(storage, key, value) {
  storage.put(key, value).catch(() => {});
}
export function kv_get(kv, key) {
  return kv.get(key);
}
export function kv_put(kv, key, value) {
  kv.put(key, value);
}
export function eg_limit(env, binding, key, policy, cost) {
  const namespace = env[binding];
  if (namespace === undefined) return undefined;
  return namespace.get(namespace.idFromName(key)).decide(policy, cost);
}
