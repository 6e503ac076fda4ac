// A token issuer for the tests: keys for every asymmetric JWS algorithm the gateway accepts,
// generated at start with `jose` (an implementation independent of the gateway's), served as
// a JWKS and through OIDC discovery on 127.0.0.1, with a hit counter per document.
//
//   /jwks.json                               every key, kid = algorithm name (+ rotated keys)
//   /oidc/.well-known/openid-configuration   names issuer {origin}/oidc and its jwks_uri
//   /oidc/jwks.json                          one ES256 key, kid "oidc-es256"
import http from "node:http";
import { generateKeyPair, exportJWK, SignJWT, importJWK, importPKCS8 } from "jose";

export const ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];

async function keyFor(alg, kid) {
  const { publicKey, privateKey } = await generateKeyPair(alg, alg === "EdDSA" ? { crv: "Ed25519", extractable: true } : { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { alg, kid, privateKey, jwk };
}

export async function startIdp({ port }) {
  const origin = `http://127.0.0.1:${port}`;
  const keys = new Map();
  for (const alg of ASYMMETRIC) keys.set(alg, await keyFor(alg, alg));
  const oidcKey = await keyFor("ES256", "oidc-es256");
  const hits = { jwks: 0, oidcJwks: 0, discovery: 0 };
  let rotations = 0;

  const server = http.createServer((req, res) => {
    const json = (status, body, headers = {}) => {
      res.writeHead(status, { "content-type": "application/json", ...headers });
      res.end(JSON.stringify(body));
    };
    if (req.url === "/jwks.json") {
      hits.jwks++;
      return json(200, { keys: [...keys.values()].map((k) => k.jwk) }, { "cache-control": "max-age=300" });
    }
    if (req.url === "/oidc/.well-known/openid-configuration") {
      hits.discovery++;
      return json(200, { issuer: `${origin}/oidc`, jwks_uri: `${origin}/oidc/jwks.json` });
    }
    if (req.url === "/oidc/jwks.json") {
      hits.oidcJwks++;
      return json(200, { keys: [oidcKey.jwk] });
    }
    json(404, { error: "not found" });
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });

  /** Signs `claims` with the key of `alg` (or the key named by `kid`), adding `header` fields. */
  async function sign(alg, claims, { kid, header = {}, key } = {}) {
    const entry = key ?? (kid ? [...keys.values(), oidcKey].find((k) => k.kid === kid) : keys.get(alg));
    // `crit` names extensions jose would refuse to sign; tell it they are understood.
    const crit = Object.fromEntries((header.crit ?? []).map((name) => [name, true]));
    return new SignJWT(claims).setProtectedHeader({ alg, kid: entry.kid, ...header }).sign(entry.privateKey, { crit });
  }

  return {
    origin,
    hits,
    sign,
    oidcKey,
    /** Adds a new key to /jwks.json and returns its kid. */
    async rotate(alg = "ES256") {
      rotations++;
      const kid = `rotated-${rotations}`;
      keys.set(kid, await keyFor(alg, kid));
      return kid;
    },
    /** A key that is in no JWKS, for unknown-kid tokens. */
    stranger: () => keyFor("ES256", "stranger"),
    importJWK,
    importPKCS8,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
