// Makes wasm-bindgen's future executor (js-sys `futures::queue`) wake through a resolved
// promise's `then` instead of the global `queueMicrotask`, in a built bundle's index.js.
// The executor picks `queueMicrotask` when the global has one and falls back to `then`
// otherwise; in workerd each `queueMicrotask` call wraps its callback into a new runtime
// function, which cost ~5–8 % of a plain route's CPU (concurrent A/B runs with
// tests/bench/ab.mjs; see the README's Benchmarks). The rewrite answers the executor's
// one-time "is there a queueMicrotask?" with no; both ways run the same work as a microtask.
// Fails if the bundle has no such check (a wasm-bindgen upgrade that changed it): the gain
// must not vanish unseen.
// Usage: node scripts/executor-wake.mjs path/to/index.js
import { readFileSync, writeFileSync } from "node:fs";
const file = process.argv[2];
const source = readFileSync(file, "utf8");
const check = /(__wbg_queueMicrotask_[0-9a-f]+:function\((\w+)\)\{)return \2\.queueMicrotask\}/g;
const found = source.match(check) ?? [];
if (found.length !== 1) {
  console.error(`executor-wake: expected one queueMicrotask check in ${file}, found ${found.length}`);
  process.exit(1);
}
writeFileSync(file, source.replace(check, "$1return void 0}"));
