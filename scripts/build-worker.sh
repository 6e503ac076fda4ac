#!/usr/bin/env bash
# Builds the Workers bundle into targets/cloudflare/build (wrangler's [build] command).
# worker-build never looks at PATH and its GitHub downloads fail offline, so every tool
# comes from a registry: wasm-bindgen from crates.io (scripts/setup), wasm-opt and esbuild
# from npm. GATEWAY_ROUTES selects the routes file (default routes.json); an invalid file
# fails this build with every error and its JSON path.
set -euo pipefail
verbose=${EDGEGATE_VERBOSE:-0}
[ "${1:-}" = --verbose ] && verbose=1
root=$(cd "$(dirname "$0")/.." && pwd)
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$HOME/.cargo/bin/wasm-bindgen}"
export WASM_OPT_BIN="$root/node_modules/.bin/wasm-opt"
export ESBUILD_BIN="$root/node_modules/.bin/esbuild"
worker_build="${WORKER_BUILD_BIN:-$HOME/.cargo/bin/worker-build}"
# The routes file first: a broken one ends the build with its findings (file:line:column, JSON
# path, reason, hint) and nothing else, instead of under a page of cargo and worker-build output.
if ! findings=$(cd "$root" && cargo run -q -p edgegate-cli -- check --routes-only "${GATEWAY_ROUTES:-routes.json}" 2>&1); then
  printf '%s\n' "$findings" >&2
  # --verbose (or EDGEGATE_VERBOSE=1, for `wrangler dev` / `spin build`, which pass no
  # arguments): go on into the toolchain, which fails on the same findings with its own output.
  [ "$verbose" = 1 ] || exit 1
  echo "--verbose: the toolchain's own output follows" >&2
fi
cd "$root/targets/cloudflare"
"$worker_build" --release
# worker-build's own wasm-opt pass keeps names (--debuginfo); a plain -Oz pass is smaller.
"$WASM_OPT_BIN" -Oz \
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
  --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling \
  build/index_bg.wasm -o build/index_bg.wasm
# The entry wrangler and the tests load: the Durable Object as an RPC-capable class.
cp entry.mjs build/entry.mjs
