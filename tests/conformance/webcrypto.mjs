// Workers: the adapter's WebCrypto path (targets/cloudflare/src/glue.js `eg_verify`) in the real
// runtime, for every asymmetric JWS algorithm the gateway accepts. The conformance suite cannot
// see this path: where WebCrypto declines (an unknown algorithm, a key or parameters the runtime
// refuses), the core verifies in wasm and every answer is the same, only slower. So this checks
// that workerd itself says yes to a good signature and no to a tampered one, and leaves HMAC to
// the wasm.
//   node tests/conformance/webcrypto.mjs

import path from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";
import { generateKeyPair, exportJWK, CompactSign } from "jose";
import { ASYMMETRIC } from "../idp/idp.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const worker = `import { eg_verify } from "./targets/cloudflare/src/glue.js";
const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
export default {
  async fetch(request) {
    const results = [];
    for (const c of await request.json()) results.push((await eg_verify(c.alg, c.jwk, bytes(c.signature), bytes(c.message))) ?? "undefined");
    return Response.json(results);
  },
};`;
const cases = [];
const expected = [];
for (const alg of ASYMMETRIC) {
  const { publicKey, privateKey } = await generateKeyPair(alg, alg === "EdDSA" ? { crv: "Ed25519", extractable: true } : { extractable: true });
  const jwk = JSON.stringify(await exportJWK(publicKey));
  const [h, p, s] = (await new CompactSign(new TextEncoder().encode("edgegate")).setProtectedHeader({ alg }).sign(privateKey)).split(".");
  const message = Buffer.from(`${h}.${p}`).toString("base64");
  const signature = Buffer.from(s, "base64url");
  const tampered = Buffer.from(signature);
  tampered[4] ^= 1;
  // Twice valid: the second time the key comes from the isolate's cache.
  cases.push({ alg, jwk, message, signature: signature.toString("base64") }, { alg, jwk, message, signature: tampered.toString("base64") }, { alg, jwk, message, signature: signature.toString("base64") });
  expected.push([alg, "good", true], [alg, "tampered", false], [alg, "good, cached key", true]);
}
cases.push({ alg: "HS256", jwk: "{}", message: "", signature: "" });
expected.push(["HS256", "left to the wasm", "undefined"]);

const mf = new Miniflare({ modules: [{ type: "ESModule", path: path.join(root, "webcrypto-check.mjs"), contents: worker }, { type: "ESModule", path: path.join(root, "targets/cloudflare/src/glue.js") }], modulesRoot: root, compatibilityDate: "2026-04-01" });
const failures = [];
try {
  const results = await (await mf.dispatchFetch("http://check/", { method: "POST", body: JSON.stringify(cases) })).json();
  expected.forEach(([alg, what, answer], i) => {
    if (results[i] !== answer) failures.push(`${alg}, ${what}: answered ${JSON.stringify(results[i])}, expected ${JSON.stringify(answer)}`);
  });
} finally {
  await mf.dispose();
}
if (failures.length) {
  console.log(`not ok - [workers] WebCrypto verifies the asymmetric algorithms\n${failures.map((f) => `    ${f}`).join("\n")}`);
  process.exit(1);
}
console.log(`ok - [workers] WebCrypto verifies ${ASYMMETRIC.join(", ")} in the runtime (good, tampered, cached key); HMAC is left to the wasm`);
