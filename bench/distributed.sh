#!/usr/bin/env bash
# distributed.sh - what Redis-backed limits cost: llmgw with every key check in process
# (embedded default) against llmgw with the rate-limit windows and the budget ledger in
# Redis (REDIS_ADDRESS), measured in one peers.sh run beside direct and nginx.
#
#   bench/distributed.sh            (knobs: see bench/run.sh; DURATION, WARMUP, CONNS, RATE,
#                                    STREAM, PIN, GW_CPUS, LOAD_CPUS pass through to peers.sh)
#
# Both gateways: the same config and a bench key with rpm, tpm and a budget, so every call
# runs the rate-limit check, the budget hold and its settlement. Both pinned to GW_CPUS and
# measured one after the other; redis-server runs on LOAD_CPUS (a real deployment has it on
# another machine). Each gateway keeps its own SQLite store: only the limits differ.
# Only 127.0.0.1 is contacted. Every process started here is stopped on exit.
set -Eeuo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS=${LLMGW_PEERS:-$REPO/bench/peers.sh}
ROOT=$(realpath -m "${ROOT:-${TMPDIR:-/tmp}/llmgw-bench}")
PIN=${PIN:-1}
GW_CPUS=${GW_CPUS:-0}
LOAD_CPUS=${LOAD_CPUS:-1}
HOST=127.0.0.1
UP_PORT=18080
EMB_PORT=${EMB_PORT:-18090}
RED_PORT=${RED_PORT:-18091}
REDIS_PORT=${REDIS_PORT:-18379}
export STREAM_MODEL=gpt-4o-mini-stream
WORK=$(mktemp -d "${TMPDIR:-/tmp}/llmgw-dist.XXXXXX")
PIDS=()

log() { printf '[%s] distributed.sh: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

[[ -f $PEERS ]] || die "peers.sh not found at $PEERS (set LLMGW_PEERS)"
command -v redis-server >/dev/null || die "redis-server is not installed (scripts/install-deps.sh)"
BIN=${LLMGW_BIN:-}
if [[ -z $BIN ]]; then
  (cd "$REPO" && cmake --preset release >/dev/null && cmake --build --preset release --target llmgw) >&2
  BIN=$REPO/build/release/llmgw
fi
PINCMD=()
LOADPINCMD=()
if [[ $PIN == 1 ]]; then PINCMD=(taskset -c "$GW_CPUS"); LOADPINCMD=(taskset -c "$LOAD_CPUS"); fi

# shellcheck source=bench/mock_config.sh
source "$REPO/bench/mock_config.sh"
write_mock_config "$WORK/config.yaml" "$HOST" "$UP_PORT" "$STREAM_MODEL"

"${LOADPINCMD[@]}" redis-server --port "$REDIS_PORT" --bind $HOST --save '' --appendonly no \
  --dir "$WORK" >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$REDIS_PORT" ping >/dev/null || die "redis-server did not start"

start() { # NAME PORT [VAR=value...] -> sets KEY_<NAME>, PID_<NAME>
  local name=$1 port=$2
  shift 2
  local dir=$WORK/$name
  mkdir -p "$dir"
  local key
  key=$(env "$@" "$BIN" keys create --data-dir "$dir" --name bench --rpm 1000000000 \
          --tpm 1000000000000 --budget 9000000 | tail -n 1)
  env LLMGW_ACCESS_LOG=1 "$@" "${PINCMD[@]}" "$BIN" serve --config "$WORK/config.yaml" --data-dir "$dir" \
    --host $HOST --port "$port" --threads 1 >"$dir/log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 100); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$HOST:$port/readyz") == 200 ]] && break
    sleep 0.1
  done
  printf -v "KEY_$name" '%s' "$key"
  printf -v "PID_$name" '%s' "$pid"
  log "$name ready on $port (pid $pid)"
}
start embedded "$EMB_PORT"
start redis "$RED_PORT" "REDIS_ADDRESS=$HOST:$REDIS_PORT"

target() { # NAME PORT KEY PID
  echo "$1=http://$HOST:$2/v1/chat/completions,stream=http://$HOST:$2/v1/chat/completions,pid=$4,hdr=Authorization: Bearer $3"
}
BUILTIN=${BUILTIN:-"direct nginx"} ROOT=$ROOT bash "$PEERS" \
  "$(target llmgw-embedded "$EMB_PORT" "$KEY_embedded" "$PID_embedded")" \
  "$(target llmgw-redis "$RED_PORT" "$KEY_redis" "$PID_redis")"
# The Redis gateway really used Redis: its bench key has windows there.
log "redis keys after the run: $(redis-cli -p "$REDIS_PORT" --scan --pattern 'llmgw:*' | wc -l)"
