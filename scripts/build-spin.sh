#!/usr/bin/env bash
# Builds the Spin component (spin.toml's build command) into target/spin/edgegate_spin.wasm.
# The routes file and the manifest are checked first: a broken file or a manifest out of step
# ends the build with the findings only. Then the component is pre-initialized
# (tools/wasmtime's spin-preinit, wasmtime's wizer): it starts with routes.json already
# compiled, where Spin would otherwise compile it for every request. The first build compiles
# that tool (wasmtime: several minutes, once).
# GATEWAY_ROUTES and EDGEGATE_SPIN_MANIFEST select another routes file and manifest.
set -euo pipefail
verbose=${EDGEGATE_VERBOSE:-0}
[ "${1:-}" = --verbose ] && verbose=1
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if ! findings=$(cargo run -q -p edgegate-cli -- check "${GATEWAY_ROUTES:-routes.json}" 2>&1); then
  printf '%s\n' "$findings" >&2
  # --verbose (or EDGEGATE_VERBOSE=1, for `wrangler dev` / `spin build`, which pass no
  # arguments): go on into the toolchain, which fails on the same findings with its own output.
  [ "$verbose" = 1 ] || exit 1
  echo "--verbose: the toolchain's own output follows" >&2
fi
cargo build -p edgegate-spin --target wasm32-wasip2 --release
preinit=tools/wasmtime/target/release/spin-preinit
[ -x "$preinit" ] || echo "building the pre-initializer (tools/wasmtime: several minutes, once)" >&2
(cd tools/wasmtime && cargo build -q --release --locked --bin spin-preinit)
mkdir -p target/spin
"$preinit" target/wasm32-wasip2/release/edgegate_spin.wasm target/spin/edgegate_spin.wasm
