// Authentication scenarios, run by run.mjs against both runtimes after the static ones.
// Tokens are minted by `jose` (tests/idp/idp.mjs): an implementation independent of the
// gateway's verifier. The issuer's JWKS and OIDC documents are served on 127.0.0.1:27183.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { SignJWT, importJWK, importPKCS8 } from "jose";
import { ASYMMETRIC } from "../idp/idp.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
export const IDP_PORT = 27183;

/** Runtime secrets: Miniflare bindings on Workers, `--var` on the Spin host. */
export const SECRETS = {
  jwt_hs256: "conformance-hs256-secret-0123456789abcdef",
  jwt_hs384: "conformance-hs384-secret-0123456789abcdef-0123456789abcdef",
  jwt_hs512: "conformance-hs512-secret-0123456789abcdef-0123456789abcdef-0123456789abcdef",
  // 32 random bytes, as a key generator gives them, stored base64 (routes.json says `"encoding": "base64"`).
  jwt_b64: "7f3vAAEC/wiQh5K+Y2a0uX3Lq0Zk9m1c8aS4n2bV0xE=",
};

/** A consumer that lives only in the key-value store. */
export const STORED_CONSUMER_KEY = "globex-secret-key";
export const STORED_CONSUMER = {
  key: `apikey:${crypto.createHash("sha256").update(STORED_CONSUMER_KEY).digest("hex")}`,
  value: JSON.stringify({ id: "globex", name: "Globex", tags: ["trial"] }),
};

const b64 = (value) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);
const UUID = /^[0-9a-f-]{36}$/;

function claims(issuer, extra = {}) {
  const base = { iss: issuer, sub: "user-7", aud: "edgegate-tests", iat: now() - 5, exp: now() + 600, scope: "orders:read", realm_access: { roles: ["dev"] }, org: { id: "org-1" } };
  const out = { ...base, ...extra };
  for (const [k, v] of Object.entries(extra)) if (v === undefined) delete out[k];
  return out;
}

async function hmac(alg, extra = {}, header = {}) {
  const secret = SECRETS[`jwt_${alg.toLowerCase()}`];
  return new SignJWT(claims("https://hmac.test", extra)).setProtectedHeader({ alg, kid: alg.toLowerCase(), ...header }).sign(new TextEncoder().encode(secret));
}

const bearer = (token) => ({ authorization: `Bearer ${token}` });

/** A token for the `link` scheme (HS256, read from the `access_token` query parameter). */
export const linkToken = () => hmac("HS256", {}, { kid: undefined });

/** Passes through to upstream `a` with the user's claims as headers, without the credential. */
function forwarded(url, headers = {}) {
  return { on: "a", url, headers: { authorization: null, "x-user-id": "user-7", ...headers } };
}

/** Refused before the upstream; `challenge` is a RegExp for WWW-Authenticate, or the text its error_description contains. */
function refused(name, request, challenge, problem = "unauthorized", status = 401) {
  const www = typeof challenge === "string" ? new RegExp(`error="invalid_token", error_description="[^"]*${challenge}`) : challenge;
  return { name, request, expect: { status, problem, headers: { "www-authenticate": www } }, upstream: null };
}

export async function authScenarios(idp) {
  const issuer = idp.origin;
  const list = [];

  // Every algorithm, each signed by jose.
  for (const alg of ASYMMETRIC) {
    const token = await idp.sign(alg, claims(issuer));
    list.push({
      name: `JWT ${alg} from the JWKS verifies; claims become headers; the token is stripped`,
      request: { method: "GET", path: `/auth/jwt/${alg}`, headers: { ...bearer(token), "x-user-id": "spoofed", "x-org": "spoofed" } },
      expect: { status: 200 },
      upstream: forwarded(`/${alg}`, { "x-user-roles": "dev", "x-org": "org-1" }),
    });
  }
  for (const alg of ["HS256", "HS384", "HS512"]) {
    list.push({
      name: `JWT ${alg} with a runtime secret verifies`,
      request: { method: "GET", path: `/auth/jwt/${alg}`, headers: bearer(await hmac(alg)) },
      expect: { status: 200 },
      upstream: forwarded(`/${alg}`),
    });
  }
  const inlineEs = await importJWK(JSON.parse(fs.readFileSync(path.join(here, "keys/inline-es256.private.jwk.json"), "utf8")), "ES256");
  const inlineEd = await importPKCS8(fs.readFileSync(path.join(here, "keys/inline-eddsa.private.pem"), "utf8"), "EdDSA");
  list.push({
    name: "JWT ES256 with an inline JWK verifies",
    request: { method: "GET", path: "/auth/jwt/inline-jwk", headers: bearer(await new SignJWT(claims("https://inline.test")).setProtectedHeader({ alg: "ES256", kid: "inline-es256" }).sign(inlineEs)) },
    expect: { status: 200 },
    upstream: forwarded("/inline-jwk"),
  });
  list.push({
    name: "JWT EdDSA with an inline PEM key verifies",
    request: { method: "GET", path: "/auth/jwt/inline-pem", headers: bearer(await new SignJWT(claims("https://inline.test")).setProtectedHeader({ alg: "EdDSA", kid: "inline-eddsa" }).sign(inlineEd)) },
    expect: { status: 200 },
    upstream: forwarded("/inline-pem"),
  });
  list.push({
    name: "JWT from an issuer found through OIDC discovery verifies",
    request: { method: "GET", path: "/auth/jwt/oidc", headers: bearer(await idp.sign("ES256", claims(`${issuer}/oidc`), { key: idp.oidcKey })) },
    expect: { status: 200 },
    upstream: forwarded("/oidc"),
  });

  // Scopes and roles.
  list.push({
    name: "all_of scopes granted by `scope`: allowed",
    request: { method: "GET", path: "/auth/admin", headers: bearer(await idp.sign("ES256", claims(issuer, { scope: "orders:write orders:read" }))) },
    expect: { status: 200 },
    upstream: forwarded("/auth/admin"),
  });
  list.push({
    name: "all_of scopes granted by an `scp` array: allowed",
    request: { method: "GET", path: "/auth/admin", headers: bearer(await idp.sign("ES256", claims(issuer, { scope: undefined, scp: ["orders:read", "orders:write"] }))) },
    expect: { status: 200 },
    upstream: forwarded("/auth/admin"),
  });
  list.push(refused("a missing scope: 403 insufficient_scope", { method: "GET", path: "/auth/admin", headers: bearer(await idp.sign("ES256", claims(issuer))) }, /error="insufficient_scope", scope="orders:read orders:write"/, "insufficient-scope", 403));
  list.push(refused("a missing role at realm_access.roles: 403", { method: "GET", path: "/auth/ops", headers: bearer(await idp.sign("RS256", claims(issuer))) }, /insufficient_scope/, "insufficient-scope", 403));
  list.push({
    name: "a role at realm_access.roles: allowed",
    request: { method: "GET", path: "/auth/ops", headers: bearer(await idp.sign("RS256", claims(issuer, { realm_access: { roles: ["dev", "ops"] } }))) },
    expect: { status: 200 },
    upstream: forwarded("/auth/ops", { "x-user-roles": "dev,ops" }),
  });

  // Attacks and bad tokens: every one refused before anything reaches the upstream.
  const good = await idp.sign("RS256", claims(issuer));
  const [h, p, s] = good.split(".");
  const unsigned = (header) => `${b64(header)}.${p}.`;
  const rsaPublicPem = crypto.createPublicKey({ key: await exportRsaPublic(idp), format: "jwk" }).export({ type: "spki", format: "pem" });
  const confused = await new SignJWT(claims(issuer)).setProtectedHeader({ alg: "HS256", kid: "RS256" }).sign(new TextEncoder().encode(rsaPublicPem));
  const stranger = await idp.stranger();
  const attacks = [
    ["no credential at all", {}, /^Bearer realm="edgegate"$/],
    ['alg "none"', bearer(unsigned({ alg: "none", typ: "JWT" })), "algorithm is not accepted"],
    ['alg "None"', bearer(unsigned({ alg: "None" })), "algorithm is not accepted"],
    ['alg "NONE"', bearer(unsigned({ alg: "NONE" })), "algorithm is not accepted"],
    ['alg "nOnE" with the original signature', bearer(`${b64({ alg: "nOnE", kid: "RS256" })}.${p}.${s}`), "algorithm is not accepted"],
    ["HS256 signed with the RSA public key (key confusion)", bearer(confused), "algorithm is not accepted"],
    ["tampered payload", bearer(`${h}.${b64(claims(issuer, { sub: "admin" }))}.${s}`), "signature is invalid"],
    ["tampered header", bearer(`${b64({ alg: "RS256", kid: "RS256", typ: "at+jwt" })}.${p}.${s}`), "signature is invalid"],
    ["unknown kid", bearer(await idp.sign("ES256", claims(issuer), { key: stranger })), "key is unknown"],
    ["expired", bearer(await idp.sign("ES256", claims(issuer, { iat: now() - 7200, exp: now() - 3600 }))), "expired"],
    ["nbf in the future", bearer(await idp.sign("ES256", claims(issuer, { nbf: now() + 3600 }))), "not valid yet"],
    ["iat in the future", bearer(await idp.sign("ES256", claims(issuer, { iat: now() + 3600, exp: now() + 7200 }))), "issued in the future"],
    ["lifetime above max_lifetime_s", bearer(await idp.sign("ES256", claims(issuer, { exp: now() + 3 * 86400 }))), "lifetime is too long"],
    ["wrong iss", bearer(await idp.sign("ES256", claims("https://evil.example"))), "issuer is not accepted"],
    ["wrong aud", bearer(await idp.sign("ES256", claims(issuer, { aud: ["other-api"] }))), "audience is not accepted"],
    ["required claim sub missing", bearer(await idp.sign("ES256", claims(issuer, { sub: undefined }))), "lacks a required claim"],
    ["unknown crit extension", bearer(await idp.sign("ES256", claims(issuer), { header: { crit: ["urn:example:ext"], "urn:example:ext": true } })), "critical"],
    ["oversized token", bearer(await idp.sign("ES256", claims(issuer, { padding: "x".repeat(9000) }))), "too large"],
    ["two segments", bearer(`${h}.${p}`), "malformed"],
    ["four segments", bearer(`${h}.${p}.${s}.${s}`), "malformed"],
    ["segment that is not base64url", bearer(`${h}.${p}.***`), "malformed"],
    ["header that is not JSON", bearer(`${b64("not json")}.${p}.${s}`), "malformed"],
    ["an embedded jwk header is never trusted", bearer(await idp.sign("ES256", claims(issuer), { key: stranger, header: { jwk: stranger.jwk } })), "key is unknown"],
  ];
  for (const [what, headers, description] of attacks) {
    list.push(refused(`rejected: ${what}`, { method: "GET", path: "/auth/jwt/x", headers }, description));
  }
  list.push({
    name: "no key can be obtained and none is cached: 503",
    request: { method: "GET", path: "/auth/jwt/x", headers: bearer(await idp.sign("ES256", claims("https://down.test"))) },
    expect: { status: 503, problem: "auth-unavailable", headers: { "www-authenticate": null } },
    upstream: null,
  });

  // Transports.
  list.push({
    name: "a token in a cookie verifies and only that cookie is removed",
    request: { method: "GET", path: "/auth/cookie", headers: { cookie: `theme=dark; session=${await hmac("HS256", {}, { kid: undefined })}` } },
    expect: { status: 200 },
    upstream: { on: "a", url: "/auth/cookie", headers: { cookie: "theme=dark", "x-user-id": "user-7" } },
  });
  list.push({
    name: "a token in the query string (enabled for this scheme) verifies and leaves the URL",
    request: { method: "GET", path: `/auth/link?page=2&access_token=${await hmac("HS256", {}, { kid: undefined })}` },
    expect: { status: 200 },
    upstream: { on: "a", url: "/auth/link?page=2" },
  });
  list.push(refused("a query token where the scheme reads the header only", { method: "GET", path: `/auth/jwt/x?access_token=${good}` }, /^Bearer realm="edgegate"$/));

  // Optional auth, any_of and API keys.
  list.push({
    name: "optional auth: anonymous passes, a spoofed identity header does not",
    request: { method: "GET", path: "/auth/maybe", headers: { "x-user-id": "admin" } },
    expect: { status: 200 },
    upstream: { on: "a", url: "/auth/maybe", headers: { "x-user-id": null } },
  });
  list.push(refused("optional auth: a bad token is still refused", { method: "GET", path: "/auth/maybe", headers: bearer(`${h}.${p}.AAAA`) }, "signature is invalid"));
  list.push({
    name: "any_of: a declared API key passes, consumer headers replace spoofed ones, the key is stripped",
    request: { method: "GET", path: "/auth/either", headers: { "x-api-key": "acme-secret-key", "x-consumer-id": "root" } },
    expect: { status: 200 },
    upstream: { on: "a", url: "/auth/either", headers: { "x-api-key": null, "x-consumer-id": "acme", "x-consumer-name": "Acme Corp", "x-consumer-tags": "gold,eu" } },
  });
  list.push({
    name: "any_of: a JWT passes too",
    request: { method: "GET", path: "/auth/either", headers: bearer(await idp.sign("EdDSA", claims(issuer))) },
    expect: { status: 200 },
    upstream: forwarded("/auth/either"),
  });
  list.push({
    name: "an API key from the query string (enabled) passes and leaves the URL",
    request: { method: "GET", path: "/auth/either?api_key=acme-secret-key&q=1" },
    expect: { status: 200 },
    upstream: { on: "a", url: "/auth/either?q=1", headers: { "x-consumer-id": "acme" } },
  });
  list.push({
    name: "an API key found in the key-value store passes",
    request: { method: "GET", path: "/auth/either", headers: { "x-api-key": STORED_CONSUMER_KEY } },
    expect: { status: 200 },
    upstream: { on: "a", url: "/auth/either", headers: { "x-consumer-id": "globex", "x-consumer-tags": "trial" } },
  });
  list.push({
    name: "a wrong API key: 401 with one challenge per scheme",
    request: { method: "GET", path: "/auth/either", headers: { "x-api-key": "guess" } },
    expect: { status: 401, problem: "unauthorized", headers: { "www-authenticate": /Bearer realm="edgegate", ApiKey realm="edgegate", error="invalid_token", error_description="The API key is not valid"/, "x-request-id": UUID } },
    upstream: null,
  });
  return list;
}

async function exportRsaPublic(idp) {
  const res = await fetch(`${idp.origin}/jwks.json`);
  const { keys } = await res.json();
  return keys.find((k) => k.kid === "RS256");
}

/**
 * JWKS rotation against the live issuer: junk kids cause at most one refetch per cooldown,
 * and a rotated key is accepted after one refetch. Returns failures (empty = pass) and the
 * number of gateway requests sent.
 */
export async function rotation(idp, sendTo) {
  const failures = [];
  let sent = 0;
  const get = async (token) => {
    sent++;
    return (await sendTo({ method: "GET", path: "/auth/jwt/rotation", headers: bearer(token) })).status;
  };
  const issuer = idp.origin;
  const warm = await get(await idp.sign("ES256", claims(issuer)));
  if (warm !== 200) failures.push(`a known key: expected 200, got ${warm}`);
  await new Promise((r) => setTimeout(r, 3200)); // past the cooldown of the warm-up's fetch, if any
  const before = idp.hits.jwks;
  const stranger = await idp.stranger();
  const statuses = [];
  for (let i = 0; i < 20; i++) statuses.push(await get(await idp.sign("ES256", claims(issuer), { key: { ...stranger, kid: `junk-${i}` } })));
  if (statuses.some((s) => s !== 401)) failures.push(`junk kids: expected 401 each, got ${statuses.join(",")}`);
  const junkFetches = idp.hits.jwks - before;
  if (junkFetches > 1) failures.push(`20 junk kids within one cooldown caused ${junkFetches} JWKS fetches (at most 1 allowed)`);
  const kid = await idp.rotate("ES256");
  await new Promise((r) => setTimeout(r, 3200));
  const beforeRotation = idp.hits.jwks;
  const rotated = await get(await idp.sign("ES256", claims(issuer), { kid }));
  if (rotated !== 200) failures.push(`the rotated key ${kid}: expected 200, got ${rotated}`);
  const again = await get(await idp.sign("ES256", claims(issuer), { kid }));
  if (again !== 200) failures.push(`the rotated key, second use: expected 200, got ${again}`);
  const rotationFetches = idp.hits.jwks - beforeRotation;
  if (rotationFetches !== 1) failures.push(`accepting the rotated key took ${rotationFetches} JWKS fetches (expected exactly 1)`);
  return { failures, sent, detail: `junk kids: ${junkFetches} fetch(es); rotation: ${rotationFetches} fetch` };
}
