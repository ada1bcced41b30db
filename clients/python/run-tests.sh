#!/usr/bin/env bash
# The Python client tier: builds the gateway, starts on free loopback ports
#   - `prism simulate`,
#   - `prism serve --config tests/prism-test.toml` over it (the demo models, a guarded and a
#     monitored model, and `fake/openai` pointed at the fake upstream the tests start themselves),
#   - `prism serve` on the embedded default (no provider credentials) for the product-page snippet,
# then type-checks the package (`mypy --strict`) and runs the pytest suite against the working tree,
# and stops the servers on exit. Needs python3 with openai, pytest and mypy (`.ci/run` installs them).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"

for module in openai pytest mypy; do
  if ! python3 -c "import $module" >/dev/null 2>&1; then
    echo "python client tier: the python '$module' package is missing (pip install openai pytest mypy)" >&2
    exit 1
  fi
done

cargo build --quiet --locked -p prism --manifest-path "$root/Cargo.toml"
prism="${CARGO_TARGET_DIR:-$root/target}/debug/prism"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
random_hex() { python3 -c 'import secrets; print(secrets.token_hex(8))'; }

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
export PRISM_FAKE_PORT=$(free_port)

"$prism" simulate --listen "127.0.0.1:$sim_port" >"$logs/sim.log" 2>&1 &
pids+=($!)

export PRISM_API_KEY="sk-prism-py-$(random_hex)"
PRISM_SIM_URL="http://127.0.0.1:$sim_port" PRISM_FAKE_URL="http://127.0.0.1:$PRISM_FAKE_PORT" RUST_LOG=warn \
  "$prism" serve --config "$here/tests/prism-test.toml" --listen "127.0.0.1:$gw_port" >"$logs/gw.log" 2>&1 &
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
    python3 -c "import urllib.request; urllib.request.urlopen('$url/health', timeout=1)" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "python client tier: $url/health never answered" >&2
  cat "$log" >&2
  return 1
}
wait_healthy "$PRISM_BASE_URL" "$logs/gw.log"
wait_healthy "$PRISM_DEFAULT_BASE_URL" "$logs/default.log"

python3 -m mypy --strict src/prism
if ! PYTHONPATH="$here/src:$here/tests" python3 -m pytest -q -p no:cacheprovider tests; then
  echo "--- gateway log" >&2
  cat "$logs/gw.log" >&2
  exit 1
fi
