#!/usr/bin/env bash
# The agent tier: real coding agents as Prism clients, offline against `prism simulate`.
#   Claude Code (`@anthropic-ai/claude-code`, Anthropic Messages) with ANTHROPIC_BASE_URL at Prism;
#   Codex CLI (`@openai/codex`, OpenAI Responses) with a model provider whose base_url is Prism.
# The gateway serves prism-agents.toml over `prism simulate`.
# Each completes one turn against a demo model of every provider: the simulator's demo answer to
# a request that offers tools is a call to the first tool, so every run makes one tool call, gets
# its result back into the conversation and ends with the demo's text.
# Needs `npm ci` in this directory (`.ci/run` does it); says SKIPPED loudly otherwise, or fails
# when PRISM_REQUIRE_SDK=1.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
claude_cli="$here/node_modules/@anthropic-ai/claude-code/cli-wrapper.cjs"
codex_cli="$here/node_modules/@openai/codex/bin/codex.js"

if [ ! -f "$claude_cli" ] || [ ! -f "$codex_cli" ]; then
  if [ "${PRISM_REQUIRE_SDK:-0}" = 1 ]; then
    echo "agent tier: node_modules missing in tests/agents (run npm ci there) and PRISM_REQUIRE_SDK=1" >&2
    exit 1
  fi
  echo "agent tier: SKIPPED: Claude Code / Codex not installed (cd tests/agents && npm ci)" >&2
  exit 0
fi

cargo build --quiet --locked -p prism --manifest-path "$root/Cargo.toml"
prism="${CARGO_TARGET_DIR:-$root/target}/debug/prism"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sim_port=$(free_port)
gw_port=$(free_port)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$prism" simulate --listen "127.0.0.1:$sim_port" >"$work/sim.log" 2>&1 &
pids+=($!)
export PRISM_API_KEY="sk-prism-agents-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
export PRISM_SIM_URL="http://127.0.0.1:$sim_port"
RUST_LOG=warn "$prism" serve --config "$here/prism-agents.toml" --listen "127.0.0.1:$gw_port" >"$work/gw.log" 2>&1 &
pids+=($!)
base="http://127.0.0.1:$gw_port"
for _ in $(seq 1 100); do
  python3 -c "import urllib.request; urllib.request.urlopen('$base/health', timeout=1)" 2>/dev/null && break
  sleep 0.1
done

providers=(${PRISM_AGENT_PROVIDERS:-anthropic bedrock-invoke openai openai-responses gemini vertex bedrock})
codex_providers=(${PRISM_CODEX_PROVIDERS:-${providers[*]}})
failed=0
mkdir -p "$work/project" "$work/home" "$work/codex-home"
echo "hello" >"$work/project/README.md"

for provider in "${providers[@]}"; do
  model="claude-sonnet-4-5-via-$provider"
  out="$work/claude-${model//\//_}.json"
  if (cd "$work/project" && HOME="$work/home" ANTHROPIC_BASE_URL="$base" ANTHROPIC_API_KEY="$PRISM_API_KEY" \
      ANTHROPIC_SMALL_FAST_MODEL="$model" ANTHROPIC_DEFAULT_HAIKU_MODEL="$model" \
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1 \
      timeout 180 node "$claude_cli" -p "Look around this project, then say hello." \
        --model "$model" --output-format json --max-turns 4 </dev/null >"$out" 2>"$out.err") &&
     python3 - "$out" <<'PY'
import json, sys
result = json.load(open(sys.argv[1]))
assert not result.get("is_error"), result
assert result.get("num_turns", 0) >= 2, f"no tool call: {result}"
assert result.get("result", "").strip(), result
PY
  then
    echo "agent tier: Claude Code on $model: ok"
  else
    echo "agent tier: Claude Code on $model: FAILED" >&2
    cat "$out" "$out.err" >&2 || true
    failed=1
  fi
done

for provider in "${codex_providers[@]}"; do
  model="demo/$provider"
  # Codex also offers tools only an OpenAI Responses upstream can run (hosted `web_search`, a
  # `namespace` of sub-agent tools); Prism refuses those with a 400 naming the tool on translated
  # lanes, so there Codex runs as documented in docs/protocols.md: without them.
  codex_extra=()
  if [ "$provider" != openai-responses ]; then
    codex_extra=(-c 'web_search="disabled"' -c 'features.multi_agent=false')
  fi
  out="$work/codex-${model//\//_}.jsonl"
  if (cd "$work/project" && CODEX_HOME="$work/codex-home" HOME="$work/home" \
      timeout 180 node "$codex_cli" exec --json --skip-git-repo-check --sandbox read-only \
        -c model_provider=prism \
        -c 'model_providers.prism.name="Prism"' \
        -c "model_providers.prism.base_url=\"$base/v1\"" \
        -c 'model_providers.prism.env_key="PRISM_API_KEY"' \
        -c 'model_providers.prism.wire_api="responses"' \
        "${codex_extra[@]}" -m "$model" "Look around this project, then say hello." </dev/null >"$out" 2>"$out.err") &&
     python3 - "$out" <<'PY'
import json, sys
events = [json.loads(line) for line in open(sys.argv[1]) if line.strip().startswith("{")]
items = [e.get("item", {}) for e in events if e.get("type") == "item.completed"]
kinds = [i.get("type") for i in items]
assert not any(e.get("type") in ("error", "turn.failed") for e in events), events
assert any(k not in ("agent_message", "reasoning") for k in kinds), f"no tool call: {kinds}"
assert any(i.get("text", "").strip() for i in items if i.get("type") == "agent_message"), items
PY
  then
    echo "agent tier: Codex on $model: ok"
  else
    echo "agent tier: Codex on $model: FAILED" >&2
    cat "$out" "$out.err" >&2 || true
    failed=1
  fi
done

if [ "$failed" = 1 ]; then
  echo "--- gateway log" >&2; cat "$work/gw.log" >&2
  exit 1
fi
