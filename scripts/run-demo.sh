#!/usr/bin/env bash
# Installs, builds and starts the gateway on its embedded default (SQLite in ./data) with the
# demo configuration. Creates a demo API key on the first run and prints how to call it.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --no-test
cmake --preset release -DLLMGW_BUILD_TESTS=OFF >/dev/null
cmake --build --preset release --target llmgw

BIN=build/release/llmgw
DATA_DIR=${LLMGW_DATA_DIR:-./data}
PORT=${GATEWAY_HTTP_PORT:-8080}
CONFIG=${LLMGW_CONFIG:-config/demo.yaml}
KEY_FILE=$DATA_DIR/demo-key.txt

mkdir -p "$DATA_DIR"
if [[ ! -s $KEY_FILE ]]; then
  (umask 077 && "$BIN" keys create --data-dir "$DATA_DIR" --name demo | tail -n 1 >"$KEY_FILE")
fi
KEY=$(cat "$KEY_FILE")

cat <<MSG

  llmgw is starting on http://127.0.0.1:$PORT (data in $DATA_DIR, config $CONFIG)
  demo API key (kept in $KEY_FILE): $KEY

  try it:
    curl -s http://127.0.0.1:$PORT/v1/chat/completions \\
      -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \\
      -d '{"model":"demo","messages":[{"role":"user","content":"Hello, gateway"}]}'

  or through Anthropic's Messages API (the Anthropic SDK, Claude Code):
    ANTHROPIC_BASE_URL=http://127.0.0.1:$PORT ANTHROPIC_API_KEY=$KEY \\
      ANTHROPIC_MODEL=demo ANTHROPIC_SMALL_FAST_MODEL=demo claude -p "Hello, gateway"

  stop with Ctrl-C.

MSG
exec "$BIN" serve --data-dir "$DATA_DIR" --config "$CONFIG" --port "$PORT"
