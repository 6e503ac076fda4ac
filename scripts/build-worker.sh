#!/usr/bin/env bash
# Builds the Workers bundle into targets/cloudflare/build (wrangler's [build] command).
# worker-build never looks at PATH and its GitHub downloads fail offline, so every tool
# comes from a registry: wasm-bindgen from crates.io (scripts/setup), wasm-opt and esbuild
# from npm. GATEWAY_ROUTES selects the routes file (default routes.json); an invalid file
# fails this build with every error and its JSON path. The wasm does not depend on the routes
# file: build/routes.mjs carries it.
set -euo pipefail
verbose=${EDGEGATE_VERBOSE:-0}
[ "${1:-}" = --verbose ] && verbose=1
root=$(cd "$(dirname "$0")/.." && pwd)
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$HOME/.cargo/bin/wasm-bindgen}"
export WASM_OPT_BIN="$root/node_modules/.bin/wasm-opt"
export ESBUILD_BIN="$root/node_modules/.bin/esbuild"
worker_build="${WORKER_BUILD_BIN:-$HOME/.cargo/bin/worker-build}"
# The routes file first: `edgegate embed` checks it and writes it as the bundle's routes module
# (the wasm compiles it on first use, so a routes change rebuilds no Rust). A broken one ends
# the build with its findings (file:line:column, JSON path, reason, hint) and nothing else,
# instead of under a page of cargo and worker-build output.
module="$root/target/edgegate-routes.mjs"
failed=0
if ! findings=$(cd "$root" && cargo run -q -p edgegate-cli -- embed "${GATEWAY_ROUTES:-routes.json}" "$module" 2>&1); then
  printf '%s\n' "$findings" >&2
  # --verbose (or EDGEGATE_VERBOSE=1, for `wrangler dev` / `spin build`, which pass no
  # arguments): go on into the toolchain and show its own output, then fail on the findings.
  [ "$verbose" = 1 ] || exit 1
  echo "--verbose: the toolchain's own output follows" >&2
  failed=1
fi
cd "$root/targets/cloudflare"
"$worker_build" --release
# wasm-bindgen's executor wakes through a resolved promise, not workerd's costlier
# queueMicrotask (scripts/executor-wake.mjs says why and by how much).
node "$root/scripts/executor-wake.mjs" build/index.js
# worker-build's own wasm-opt pass keeps names (--debuginfo); a plain -Oz pass is smaller. It
# takes ~20 s on node, so its output is kept per input: a rebuild that changed no Rust (a
# routes edit under `wrangler dev`, a second build in CI) reuses it.
flags=(-Oz --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int
  --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling)
cache="$root/target/wasm-opt-cache"
mkdir -p "$cache"
key=$( (sha256sum <build/index_bg.wasm; echo "${flags[*]}"; "$WASM_OPT_BIN" --version) | sha256sum | cut -c1-32)
if [ ! -f "$cache/$key.wasm" ]; then
  "$WASM_OPT_BIN" "${flags[@]}" build/index_bg.wasm -o "$cache/$key.tmp"
  mv "$cache/$key.tmp" "$cache/$key.wasm"
  # Only the newest few are kept.
  ls -t "$cache"/*.wasm | tail -n +9 | xargs -r rm -f
fi
cp "$cache/$key.wasm" build/index_bg.wasm
if [ "$failed" = 1 ]; then
  printf '\nedgegate: the routes file is invalid; nothing was built.\n%s\n' "$findings" >&2
  exit 1
fi
# The entry wrangler and the tests load (the Durable Object as an RPC-capable class), and the
# routes module it hands to the wasm.
cp entry.mjs build/entry.mjs
cp "$module" build/routes.mjs
