#!/usr/bin/env bash
# The Python SDK tier (the official `openai` SDK's Chat Completions and Responses, the official
# `anthropic` SDK's Messages): starts `prism simulate` and `prism serve` with prism-sdk.toml on free
# loopback ports, runs the test_*.py files against the gateway, and stops both.
# Needs python3 with the `openai` package (`.ci/run` installs it); says SKIPPED loudly otherwise,
# or fails when PRISM_REQUIRE_SDK=1.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if ! python3 -c 'import openai' >/dev/null 2>&1; then
  if [ "${PRISM_REQUIRE_SDK:-0}" = 1 ]; then
    echo "sdk tier: the python 'openai' package is missing and PRISM_REQUIRE_SDK=1" >&2
    exit 1
  fi
  echo "sdk tier: SKIPPED: python3 with the 'openai' package not found (pip install openai)" >&2
  exit 0
fi

cargo build --quiet --locked -p prism --manifest-path "$root/Cargo.toml"
prism="${CARGO_TARGET_DIR:-$root/target}/debug/prism"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sim_port=$(free_port)
gw_port=$(free_port)
logs=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$logs"; }
trap cleanup EXIT

"$prism" simulate --listen "127.0.0.1:$sim_port" >"$logs/sim.log" 2>&1 &
pids+=($!)
export PRISM_API_KEY="sk-prism-sdk-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
export PRISM_SIM_URL="http://127.0.0.1:$sim_port"
RUST_LOG=warn "$prism" serve --config "$here/prism-sdk.toml" --listen "127.0.0.1:$gw_port" >"$logs/gw.log" 2>&1 &
pids+=($!)
export PRISM_BASE_URL="http://127.0.0.1:$gw_port"

for _ in $(seq 1 100); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen('$PRISM_BASE_URL/health', timeout=1)" 2>/dev/null; then
    break
  fi
  sleep 0.1
done

failed=0
python3 "$here/test_openai_sdk.py" || failed=1
python3 "$here/test_openai_responses.py" || failed=1
if python3 -c 'import anthropic' >/dev/null 2>&1; then
  python3 "$here/test_anthropic_sdk.py" || failed=1
elif [ "${PRISM_REQUIRE_SDK:-0}" = 1 ]; then
  echo "sdk tier: the python 'anthropic' package is missing and PRISM_REQUIRE_SDK=1" >&2
  failed=1
else
  echo "sdk tier: Anthropic SDK tests SKIPPED: python3 'anthropic' package not found (pip install anthropic)" >&2
fi
if [ "$failed" = 1 ]; then
  echo "--- gateway log" >&2; cat "$logs/gw.log" >&2
  exit 1
fi
