#!/usr/bin/env bash
# Runs README command 1 (scripts/dev) in the background, waits for the demo to answer on
# 127.0.0.1:8787 through wrangler dev, checks a route and a problem answer, and stops it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log=$(mktemp)
setsid scripts/dev >"$log" 2>&1 &
dev=$!
stop() { kill -- -"$dev" 2>/dev/null || true; wait "$dev" 2>/dev/null || true; rm -f "$log"; }
trap stop EXIT
for _ in $(seq 1 180); do
  if curl -sf -o /dev/null http://127.0.0.1:8787/; then break; fi
  if ! kill -0 "$dev" 2>/dev/null; then cat "$log"; echo "FAIL: scripts/dev exited"; exit 1; fi
  sleep 1
done
body=$(curl -sf http://127.0.0.1:8787/) || { cat "$log"; echo "FAIL: the demo did not answer within 180 s"; exit 1; }
grep -q "Hello from the edgegate demo upstream" <<<"$body" || { echo "FAIL: unexpected body: $body"; exit 1; }
user=$(curl -sf http://127.0.0.1:8787/api/users/7)
grep -q '"id":"7"' <<<"$user" || { echo "FAIL: unexpected body: $user"; exit 1; }
problem=$(curl -s -o /dev/null -w '%{http_code} %{content_type}' http://127.0.0.1:8787/missing)
[ "$problem" = "404 application/problem+json" ] || { echo "FAIL: /missing answered $problem"; exit 1; }
echo "ok - the demo answers through wrangler dev: / , /api/users/7 and a 404 problem"
