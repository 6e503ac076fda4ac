#!/usr/bin/env bash
# Builds the Spin component (spin.toml's build command). The routes file and the manifest are
# checked first: a broken file or a manifest out of step ends the build with the findings only.
# GATEWAY_ROUTES and EDGEGATE_SPIN_MANIFEST select another routes file and manifest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if ! findings=$(cargo run -q -p edgegate-cli -- check "${GATEWAY_ROUTES:-routes.json}" 2>&1); then
  printf '%s\n' "$findings" >&2
  exit 1
fi
cargo build -p edgegate-spin --target wasm32-wasip2 --release
