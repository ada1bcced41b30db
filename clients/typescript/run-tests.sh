#!/usr/bin/env bash
# The TypeScript SDK tier: installs the package's dependencies (npm ci) if needed, builds it
# (tsc, ESM and CommonJS), builds the gateway, then starts on free loopback ports
#   - `prism simulate`,
#   - `prism serve --config test/prism-test.toml` over it (the demo models, the guarded and
#     monitored models, and `fake/openai` pointed at the Node server the tests start themselves),
#   - `prism serve` on the embedded default (no provider credentials) for the product-page snippet,
# type-checks test/typecheck.{ts,cts} against the built .d.ts, runs the node:test suites (ESM and
# CommonJS) against the gateways, and stops the servers on exit.
# Needs node >= 18 and npm; exits non-zero on any failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "typescript sdk tier: node and npm are needed (node >= 18)" >&2
  exit 1
fi

if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
# The built declarations, as strict TypeScript users of the ESM and CommonJS entry points see them.
node node_modules/typescript/bin/tsc -p test/tsconfig.json

cargo build --quiet --locked -p prism --manifest-path "$root/Cargo.toml"
prism="${CARGO_TARGET_DIR:-$root/target}/debug/prism"

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
random_hex() { node -e 'console.log(require("crypto").randomBytes(8).toString("hex"))'; }

logs=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$logs"
}
trap cleanup EXIT

sim_port=$(free_port)
gw_port=$(free_port)
default_port=$(free_port)
fake_port=$(free_port)

"$prism" simulate --listen "127.0.0.1:$sim_port" >"$logs/sim.log" 2>&1 &
pids+=($!)

export PRISM_API_KEY="sk-prism-ts-$(random_hex)"
export PRISM_FAKE_PORT="$fake_port"
PRISM_SIM_URL="http://127.0.0.1:$sim_port" PRISM_FAKE_URL="http://127.0.0.1:$fake_port" RUST_LOG=warn \
  "$prism" serve --config "$here/test/prism-test.toml" --listen "127.0.0.1:$gw_port" >"$logs/gw.log" 2>&1 &
pids+=($!)
export PRISM_BASE_URL="http://127.0.0.1:$gw_port"

# The embedded default, as a new user runs it: no provider credentials in its environment.
export PRISM_DEFAULT_KEY="sk-prism-dev-$(random_hex)"
env -u OPENAI_API_KEY -u ANTHROPIC_API_KEY -u GEMINI_API_KEY -u GOOGLE_API_KEY \
  -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE -u AWS_REGION \
  PRISM_DEV_KEY="$PRISM_DEFAULT_KEY" RUST_LOG=warn \
  "$prism" serve --listen "127.0.0.1:$default_port" >"$logs/default.log" 2>&1 &
pids+=($!)
export PRISM_DEFAULT_BASE_URL="http://127.0.0.1:$default_port"

wait_healthy() {
  local url=$1 log=$2
  for _ in $(seq 1 200); do
    if node -e "fetch('$url/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "typescript sdk tier: $url/health never answered" >&2
  cat "$log" >&2
  return 1
}
wait_healthy "$PRISM_BASE_URL" "$logs/gw.log"
wait_healthy "$PRISM_DEFAULT_BASE_URL" "$logs/default.log"

if ! node --test test/sdk.test.mjs test/cjs.test.cjs; then
  echo "--- gateway log (prism-test.toml)" >&2; cat "$logs/gw.log" >&2
  echo "--- gateway log (embedded default)" >&2; cat "$logs/default.log" >&2
  exit 1
fi
