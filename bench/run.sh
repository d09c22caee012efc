#!/usr/bin/env bash
# bench/run.sh - the project's benchmark: llmgw beside its peers, in one run.
#
# With bench/peers.sh, on loopback only, it measures
#   direct   wrk -> static nginx mock of the OpenAI API (127.0.0.1:18080)    baseline
#   nginx    wrk -> nginx plain reverse proxy -> mock            floor for one proxy hop
#   portkey  wrk -> Portkey AI gateway -> mock                  only with PORTKEY=1 (npm)
#   llmgw    wrk -> llmgw serve (bearer-key auth, usage records on) -> mock
#   llmgw-anthropic  the same llmgw, OpenAI chat translated for its anthropic provider
#            -> mock's static Messages API answer (bench/data/anthropic*), and back
#   llmgw-bedrock    the same, bedrock provider (SigV4, Converse / ConverseStream event
#            stream) -> mock's static answer (bench/data/bedrock*)
# for JSON and SSE streaming at each of CONNS, plus peers.sh's fixed-rate run. llmgw gets
# one I/O thread pinned to CPU 0, like the nginx proxy's one worker.
# Then it prints a summary (req/s, p50, p99 per target; llmgw/nginx req/s; p50 overhead
# over direct; the translated targets' p50 difference and req/s ratio against the llmgw
# passthrough; llmgw RSS and CPU per request) and writes it to $ROOT/summary.md.
#
# It reports numbers and never fails on a timing. It exits non-zero only when the run itself
# went wrong: build or start-up failure, peers.sh failing, llmgw not measured, llmgw not
# exiting 0 on SIGTERM, or no usage record written (or, with TRANSLATED=1, a translated
# target not measured).
#
# Usage:
#   bench/run.sh [TARGET...]        TARGET: more peers.sh targets (NAME=URL[,stream=..][,pid=..][,hdr=..])
#   bench/run.sh --compare [TSV...] median (min-max) over earlier runs' results.tsv
#                                   (default: every $ROOT/results/*/results.tsv)
#   bench/run.sh --help
#
# Environment knobs (defaults):
#   LLMGW_BIN=             binary to measure; unset = build build/release/llmgw first
#                          (cmake --preset release && cmake --build --preset release --target llmgw)
#   LLMGW_PEERS=$REPO/bench/peers.sh   the peers harness (a copy of the workplace's shared/bench/peers.sh)
#   ROOT=$TMPDIR/llmgw-bench  work dir, shared with peers.sh: results/, logs/, llmgw/, summary.md
#   LLMGW_PORT=18090       llmgw's port (127.0.0.1)
#   LLMGW_THREADS=1        llmgw serve --threads
#   LLMGW_NAME=llmgw       llmgw's target name in the tables; name variants differently
#                          to set them side by side with --compare
#   TRANSLATED=1           also measure LLMGW_NAME-anthropic and LLMGW_NAME-bedrock (0 = not)
#   EXTRA_LLMGW_ENV=       space-separated VAR=value pairs set for llmgw, e.g. "LLMGW_ACCESS_LOG=0"
#   VARIANTS=              space-separated NAME:VAR=value[,VAR=value...]: each one more llmgw process
#                          (EXTRA_LLMGW_ENV, then its own pairs; its own data dir and key; port
#                          LLMGW_PORT+1, +2, ...; pinned like llmgw) measured in the same run as
#                          target LLMGW_NAME-NAME (passthrough only), e.g. the audit modes:
#                          VARIANTS="audit-off:LOGGING_AUDIT=false full:LOGGING_BODIES=full"
#   PORTKEY=0              1 = also measure Portkey (npm install into $ROOT/portkey on first use)
#   BUILTIN="direct nginx" peers.sh built-in targets ("direct nginx portkey" when PORTKEY=1)
#   INSTALL_DEPS=1         run scripts/install-deps.sh first (0 = only check the commands)
#   WAIT_IDLE=900          seconds to wait for a running compiler/linker to finish before
#                          measuring; the summary flags a run during which one ran
#   READY_TIMEOUT=30       seconds to wait for GET /readyz = 200
#   STOP_TIMEOUT=30        seconds to wait for llmgw to exit after SIGTERM
#   KEEP_DATA=0            1 = keep llmgw's temporary data dir (llmgw.db) after the run
#   BENCH_BUDGET=1000000   the bench key's monthly budget in USD, so pricing and the budget
#                          reservation/settlement run on every call (empty: no budget)
#   BENCH_RPM=1000000000   the bench key's requests and tokens per minute, so the key's rate
#   BENCH_TPM=1000000000000  limits run on every call (empty: none); every bench model has
#                          the same rpm_limit and tpm_limit (bench/mock_config.sh)
# llmgw runs with LOGGING_BODIES=metadata (the audit record issue 14 measures) unless
# EXTRA_LLMGW_ENV sets LOGGING_BODIES; metrics are always on.
# and peers.sh's own knobs, passed through: DURATION=10 WARMUP=10 CONNS="1 50" STREAM=1
#   RATE=200 RATE_SECS=10 PIN=1 GW_CPUS=0 LOAD_CPUS=1 PORTKEY_VERSION PORTKEY_HONO KEEP
#   (see peers.sh --help). STREAM_MODEL is always gpt-4o-mini-stream.
# Only 127.0.0.1 is contacted. Every process started here is stopped on exit.
set -Eeuo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS=${LLMGW_PEERS:-$REPO/bench/peers.sh}

ROOT=$(realpath -m "${ROOT:-${TMPDIR:-/tmp}/llmgw-bench}")
LLMGW_PORT=${LLMGW_PORT:-18090}
LLMGW_THREADS=${LLMGW_THREADS:-1}
LLMGW_NAME=${LLMGW_NAME:-llmgw}
TRANSLATED=${TRANSLATED:-1}
EXTRA_LLMGW_ENV=${EXTRA_LLMGW_ENV:-}
VARIANTS=${VARIANTS:-}
PORTKEY=${PORTKEY:-0}
INSTALL_DEPS=${INSTALL_DEPS:-1}
WAIT_IDLE=${WAIT_IDLE:-900}
READY_TIMEOUT=${READY_TIMEOUT:-30}
STOP_TIMEOUT=${STOP_TIMEOUT:-30}
KEEP_DATA=${KEEP_DATA:-0}
if [[ $PORTKEY == 1 ]]; then BUILTIN=${BUILTIN:-"direct nginx portkey"}; else BUILTIN=${BUILTIN:-"direct nginx"}; fi
# peers.sh's knobs, with its defaults: exported so that both scripts see the same values
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-10}
CONNS=${CONNS:-"1 50"}
STREAM=${STREAM:-1}
RATE=${RATE:-200}
RATE_SECS=${RATE_SECS:-10}
PIN=${PIN:-1}
GW_CPUS=${GW_CPUS:-0}
LOAD_CPUS=${LOAD_CPUS:-1}
STREAM_MODEL=gpt-4o-mini-stream
export ROOT BUILTIN DURATION WARMUP CONNS STREAM RATE RATE_SECS PIN GW_CPUS LOAD_CPUS STREAM_MODEL

HOST=127.0.0.1
UP_PORT=18080                 # fixed by peers.sh
WORK=$ROOT/llmgw              # config, logs and pid file of llmgw (not $ROOT/run: peers.sh owns that)
MOCK_LOCATIONS=$WORK/mock-translated.conf   # the translated providers' routes on the mock
CONFIG=$WORK/llmgw.yaml
GW_LOG=$WORK/llmgw.out
STAMP=$(date +%Y%m%d-%H%M%S)
COMPILERS='cc1plus|cc1|ninja|make|collect2|ld|ld.gold|ld.lld|mold'

log() { printf '[%s] run.sh: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; trap - ERR; exit 1; }

usage() { sed -n '2,/^set -Eeuo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

# --------------------------------------------------------------------------
# process management: only the PIDs started here are ever signalled
# --------------------------------------------------------------------------
GW_PID=""
PEERS_PID=""
DATA_DIR=""
VAR_NAMES=(); VAR_ENVS=(); VAR_PIDS=(); VAR_DIRS=(); VAR_KEYS=(); VAR_PORTS=()

alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $st != Z* ]]; }   # a zombie is gone

# shellcheck disable=SC2317  # called from the EXIT trap
stop_gw_now() { # SIGTERM, then SIGKILL after STOP_TIMEOUT; used on abnormal exit only
  local i
  kill -TERM "$GW_PID" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do alive "$GW_PID" || break; sleep 0.1; done
  if alive "$GW_PID"; then kill -KILL "$GW_PID" 2>/dev/null || true; fi
  wait "$GW_PID" 2>/dev/null || true
  log "stopped llmgw pid=$GW_PID"
}

# shellcheck disable=SC2317  # the EXIT trap
cleanup() {
  local rc=$?
  if [[ -n $PEERS_PID ]] && alive "$PEERS_PID"; then
    log "stopping peers.sh pid=$PEERS_PID (it stops its own servers)"
    kill -TERM "$PEERS_PID" 2>/dev/null || true
    wait "$PEERS_PID" 2>/dev/null || true
  fi
  if [[ -n $GW_PID ]] && alive "$GW_PID"; then stop_gw_now; fi
  local v
  for v in "${!VAR_PIDS[@]}"; do
    if alive "${VAR_PIDS[$v]}"; then kill -TERM "${VAR_PIDS[$v]}" 2>/dev/null || true; wait "${VAR_PIDS[$v]}" 2>/dev/null || true; fi
  done
  for v in "${VAR_DIRS[@]}"; do
    if [[ $v == */llmgw-bench-data.* && -d $v ]]; then rm -rf -- "$v"; fi
  done
  rm -f "$WORK/llmgw.pid"
  if [[ -n $DATA_DIR && -d $DATA_DIR && $DATA_DIR == */llmgw-bench-data.* ]]; then
    if [[ $KEEP_DATA == 1 ]]; then log "KEEP_DATA=1: llmgw data dir kept at $DATA_DIR"; else rm -rf -- "$DATA_DIR"; fi
  fi
  return "$rc"
}
trap cleanup EXIT
trap 'trap - ERR; exit 130' INT TERM
trap 'log "failed (rc=$?) at line $LINENO: $BASH_COMMAND"' ERR

# An llmgw left by an earlier, killed run: stop it only if it is still ours.
reap_stale() {
  local f=$WORK/llmgw.pid p
  [[ -f $f ]] || return 0
  p=$(cat "$f")
  if [[ $p =~ ^[0-9]+$ && -r /proc/$p/cmdline ]] && tr '\0' ' ' <"/proc/$p/cmdline" | grep -qF -- "$CONFIG"; then
    log "stale llmgw from an earlier run (pid $p): stopping it"
    kill -TERM "$p" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do [[ -d /proc/$p ]] || break; sleep 0.1; done
    if [[ -d /proc/$p ]]; then kill -KILL "$p" 2>/dev/null || true; fi
  fi
  rm -f "$f"
}

# --------------------------------------------------------------------------
# preparation
# --------------------------------------------------------------------------
ensure_deps() {
  if [[ $INSTALL_DEPS == 1 ]]; then
    log "scripts/install-deps.sh"
    "$REPO/scripts/install-deps.sh" || die "scripts/install-deps.sh failed"
  fi
  local c missing=()
  for c in nginx wrk curl jq sqlite3 taskset ss ps awk sha256sum; do
    command -v "$c" >/dev/null || missing+=("$c")
  done
  # h2load (nghttp2-client), node and npm: peers.sh installs them itself when absent
  ((${#missing[@]} == 0)) || die "missing commands: ${missing[*]} (scripts/install-deps.sh did not install them)"
}

pick_binary() {
  if [[ -n ${LLMGW_BIN:-} ]]; then
    BIN=$LLMGW_BIN
  else
    log "building the release binary (cmake --preset release; cmake --build --preset release --target llmgw)"
    (cd "$REPO" && cmake --preset release && cmake --build --preset release --target llmgw) >&2 \
      || die "build failed"
    BIN=$REPO/build/release/llmgw
  fi
  [[ -x $BIN ]] || die "llmgw binary not found or not executable: $BIN"
  BIN=$(realpath "$BIN")
}

compilers_running() { # "pid:name ..." of compilers and linkers running on the machine
  ps -e -o pid=,comm= | awk -v re="^($COMPILERS)\$" '$2 ~ re {printf "%s%s:%s", sep, $1, $2; sep = " "}'
}

BUSY_NOTE=""
wait_idle() {
  local busy waited=0
  busy=$(compilers_running)
  [[ -n $busy ]] || return 0
  log "a build is running ($busy): waiting up to ${WAIT_IDLE}s so that it does not skew the numbers"
  while [[ -n $busy ]] && ((waited < WAIT_IDLE)); do
    sleep 5; waited=$((waited + 5)); busy=$(compilers_running)
  done
  if [[ -n $busy ]]; then
    log "WARNING: still building after ${WAIT_IDLE}s; measuring anyway"
    BUSY_NOTE="compiler/linker running at the start ($busy)"
  fi
}

parse_extra_env() {
  XENV=()
  local kv
  read -r -a XENV <<<"$EXTRA_LLMGW_ENV"
  for kv in "${XENV[@]}"; do
    [[ $kv =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "EXTRA_LLMGW_ENV: '$kv' is not VAR=value"
  done
  if [[ " ${XENV[*]} " != *" LOGGING_BODIES="* ]]; then
    XENV=(LOGGING_BODIES=metadata "${XENV[@]}")
  fi
}

# key_args: `llmgw keys create` options for the bench key (budget, rpm, tpm)
KEY_ARGS=()
key_args() {
  local budget=${BENCH_BUDGET-1000000} rpm=${BENCH_RPM-1000000000} tpm=${BENCH_TPM-1000000000000}
  KEY_ARGS=()
  if [[ -n $budget ]]; then KEY_ARGS+=(--budget "$budget"); fi
  if [[ -n $rpm ]]; then KEY_ARGS+=(--rpm "$rpm"); fi
  if [[ -n $tpm ]]; then KEY_ARGS+=(--tpm "$tpm"); fi
}

parse_variants() {
  local v name pairs kv
  for v in $VARIANTS; do
    [[ $v == *:* ]] || die "VARIANTS: '$v' is not NAME:VAR=value[,VAR=value...]"
    name=${v%%:*}; pairs=${v#*:}
    [[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || die "VARIANTS: bad name '$name'"
    for kv in ${pairs//,/ }; do
      [[ $kv =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "VARIANTS: '$kv' is not VAR=value"
    done
    VAR_NAMES+=("$name"); VAR_ENVS+=("${pairs//,/ }")
  done
}

# Starts the variant processes: each with its own data dir (and so its own key), after llmgw.
start_variants() {
  local i env_v out key port code j
  for i in "${!VAR_NAMES[@]}"; do
    port=$((LLMGW_PORT + 1 + i))
    [[ -z $(ss -Hltn "sport = :$port" || true) ]] || die "port $port (variant ${VAR_NAMES[$i]}) is busy"
    VAR_DIRS[i]=$(mktemp -d "${TMPDIR:-/tmp}/llmgw-bench-data.XXXXXX")
    read -r -a env_v <<<"${VAR_ENVS[$i]}"
    key_args
    out=$(env "${XENV[@]}" "${env_v[@]}" "$BIN" keys create --data-dir "${VAR_DIRS[$i]}" --name bench \
            "${KEY_ARGS[@]}" 2>"$WORK/keys-${VAR_NAMES[$i]}.err") \
      || die "llmgw keys create failed for variant ${VAR_NAMES[$i]}: $(head -c 500 "$WORK/keys-${VAR_NAMES[$i]}.err")"
    key=$(tail -n 1 <<<"$out" | tr -d '[:space:]')
    VAR_KEYS[i]=$key; VAR_PORTS[i]=$port
    local cmd=("$BIN" serve --config "$CONFIG" --data-dir "${VAR_DIRS[$i]}" --host "$HOST" --port "$port"
               --threads "$LLMGW_THREADS")
    if [[ $PIN == 1 ]]; then cmd=(taskset -c "$GW_CPUS" "${cmd[@]}"); fi
    env "${XENV[@]}" "${env_v[@]}" "${cmd[@]}" >"$WORK/llmgw-${VAR_NAMES[$i]}.out" 2>&1 &
    VAR_PIDS[i]=$!
    log "started variant ${VAR_NAMES[$i]} pid=${VAR_PIDS[$i]}: ${XENV[*]} ${env_v[*]} ${cmd[*]}"
    code=""
    for ((j = 0; j < READY_TIMEOUT * 10; j++)); do
      alive "${VAR_PIDS[$i]}" || die "variant ${VAR_NAMES[$i]} exited during start-up (log: $WORK/llmgw-${VAR_NAMES[$i]}.out)"
      code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://$HOST:$port/readyz" || true)
      [[ $code == 200 ]] && break
      sleep 0.1
    done
    [[ $code == 200 ]] || die "variant ${VAR_NAMES[$i]}: GET /readyz did not answer 200 within ${READY_TIMEOUT}s"
  done
}

stop_variants() {
  local i rc
  for i in "${!VAR_PIDS[@]}"; do
    kill -TERM "${VAR_PIDS[$i]}" 2>/dev/null || true
    rc=0; wait "${VAR_PIDS[$i]}" || rc=$?
    log "variant ${VAR_NAMES[$i]} stopped: exit $rc"
    ((rc == 0)) || VARIANT_FAILED+=" ${VAR_NAMES[$i]}(exit $rc)"
  done
  VAR_PIDS=()
}
VARIANT_FAILED=""

# shellcheck source=bench/mock_config.sh
source "$(dirname "${BASH_SOURCE[0]}")/mock_config.sh"
write_config() {
  write_mock_config "$CONFIG" "$HOST" "$UP_PORT" "$STREAM_MODEL"
  if [[ $TRANSLATED == 1 ]]; then
    write_mock_locations "$MOCK_LOCATIONS" "$REPO/bench/data" || die "cannot write the mock's translated routes"
    export MOCK_CONF=$MOCK_LOCATIONS   # peers.sh includes it in its mock's server block
  fi
}

# the targets of the same llmgw process: passthrough first, then the translated ones
TR_NAMES=()
if [[ $TRANSLATED == 1 ]]; then TR_NAMES=("$LLMGW_NAME-anthropic" "$LLMGW_NAME-bedrock"); fi
GW_NAMES=("$LLMGW_NAME" "${TR_NAMES[@]}")

DB=""
usage_count() { # -> number of usage records, or NA
  local n
  if n=$(sqlite3 "$DB" 'SELECT count(*) FROM usage_records;' 2>>"$WORK/sqlite.err") && [[ $n =~ ^[0-9]+$ ]]; then
    echo "$n"
  else
    echo NA
  fi
}

create_key() {
  local out
  key_args
  out=$(env "${XENV[@]}" "$BIN" keys create --data-dir "$DATA_DIR" --name bench \
          "${KEY_ARGS[@]}" 2>"$WORK/keys.err") \
    || die "llmgw keys create failed: $(head -c 500 "$WORK/keys.err")"
  KEY=$(tail -n 1 <<<"$out" | tr -d '[:space:]')
  [[ -n $KEY && $KEY != *,* ]] || die "llmgw keys create printed no usable key on its last line: '$(tail -n 1 <<<"$out")'"
}

status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null || true; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo NA; }   # utime + stime

start_gw() {
  local port_busy
  port_busy=$(ss -Hltn "sport = :$LLMGW_PORT" || true)
  [[ -z $port_busy ]] || die "port $LLMGW_PORT is busy (set LLMGW_PORT)"
  local cmd=("$BIN" serve --config "$CONFIG" --data-dir "$DATA_DIR" --host "$HOST" --port "$LLMGW_PORT"
             --threads "$LLMGW_THREADS")
  if [[ $PIN == 1 ]]; then cmd=(taskset -c "$GW_CPUS" "${cmd[@]}"); fi
  # env and taskset exec: $! is llmgw itself
  env "${XENV[@]}" "${cmd[@]}" >"$GW_LOG" 2>&1 &
  GW_PID=$!
  echo "$GW_PID" >"$WORK/llmgw.pid"
  log "started llmgw pid=$GW_PID: ${XENV[*]} ${cmd[*]}"
  local i code=""
  for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
    alive "$GW_PID" || { tail -n 20 "$GW_LOG" >&2 || true; die "llmgw exited during start-up (log: $GW_LOG)"; }
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://$HOST:$LLMGW_PORT/readyz" || true)
    [[ $code == 200 ]] && break
    sleep 0.1
  done
  [[ $code == 200 ]] || { tail -n 20 "$GW_LOG" >&2 || true; die "GET /readyz did not answer 200 within ${READY_TIMEOUT}s (last: ${code:-none})"; }
  log "llmgw ready on $HOST:$LLMGW_PORT"
}

# --------------------------------------------------------------------------
# the measurement
# --------------------------------------------------------------------------
RES=""
PEERS_RC=0
run_peers() {
  local url="http://$HOST:$LLMGW_PORT/v1/chat/completions"
  local common="$url,stream=$url,hdr=Authorization: Bearer $KEY"
  local targets=("$LLMGW_NAME=$common,pid=$GW_PID")
  local i vurl
  for i in "${!VAR_NAMES[@]}"; do
    vurl="http://$HOST:${VAR_PORTS[$i]}/v1/chat/completions"
    targets+=("$LLMGW_NAME-${VAR_NAMES[$i]}=$vurl,stream=$vurl,hdr=Authorization: Bearer ${VAR_KEYS[$i]},pid=${VAR_PIDS[$i]}")
  done
  # the same process: its RSS is reported once, under LLMGW_NAME
  if [[ $TRANSLATED == 1 ]]; then
    targets+=("${TR_NAMES[0]}=$common,model=$BENCH_ANTHROPIC_MODEL,stream_model=$BENCH_ANTHROPIC_STREAM_MODEL,verify=translated")
    targets+=("${TR_NAMES[1]}=$common,model=$BENCH_BEDROCK_MODEL,verify=translated")
  fi
  local marker=$WORK/peers.start busy
  touch "$marker"
  log "peers.sh BUILTIN=\"$BUILTIN\" + ${GW_NAMES[*]} (DURATION=$DURATION WARMUP=$WARMUP CONNS=\"$CONNS\" RATE=$RATE)"
  bash "$PEERS" "${targets[@]}" "$@" >"$WORK/peers.out" &
  PEERS_PID=$!
  # wait for it here, noting any build that starts meanwhile
  while alive "$PEERS_PID"; do
    busy=$(compilers_running)
    if [[ -n $busy && $BUSY_NOTE != *"during"* ]]; then
      BUSY_NOTE+="${BUSY_NOTE:+; }compiler/linker running during the measurement ($busy)"
      log "WARNING: a build started during the measurement ($busy): these numbers are skewed"
    fi
    sleep 2
  done
  wait "$PEERS_PID" || PEERS_RC=$?
  PEERS_PID=""
  RES=$(sed -n 's/^raw outputs: //p' "$WORK/peers.out" | tail -n 1)
  if [[ -z $RES ]]; then   # peers.sh stopped before its report: take the results dir it made
    RES=$(find "$ROOT/results" -mindepth 1 -maxdepth 1 -type d -newer "$marker" 2>/dev/null | sort | tail -n 1)
  fi
  ((PEERS_RC == 0)) || log "peers.sh exited with $PEERS_RC"
  [[ -n $RES && -f $RES/results.tsv ]] || die "peers.sh wrote no results.tsv (output: $WORK/peers.out, logs: $ROOT/logs)"
}

GW_RC=""
GW_STOP_S=""
stop_gw() { # SIGTERM; record exit status and how long the shutdown took
  if ! alive "$GW_PID"; then
    GW_RC=0; wait "$GW_PID" || GW_RC=$?
    GW_RC="$GW_RC (died during the run)"; GW_PID=""; return 0
  fi
  local t0 i
  t0=$(date +%s%N)
  kill -TERM "$GW_PID" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do alive "$GW_PID" || break; sleep 0.1; done
  if alive "$GW_PID"; then
    kill -KILL "$GW_PID" 2>/dev/null || true
    wait "$GW_PID" 2>/dev/null || true
    GW_RC="killed: still running ${STOP_TIMEOUT}s after SIGTERM"
  else
    GW_RC=0; wait "$GW_PID" || GW_RC=$?
  fi
  GW_STOP_S=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN{printf "%.2f", (b - a) / 1e9}')
  GW_PID=""
  rm -f "$WORK/llmgw.pid"
  log "llmgw stopped: exit $GW_RC after ${GW_STOP_S}s"
}

# requests llmgw answered that should each have left a usage record: wrk's completed
# requests minus non-2xx, the h2load 200s, and peers.sh's two verification requests, for
# each of its targets (passthrough and translated)
gw_requests() {
  local n=0 f r mode c t files=()
  for t in "${GW_NAMES[@]}"; do
    n=$((n + 2))
    for mode in json stream; do
      files+=("$RES/warmup-$mode-$t.txt")
      for c in $CONNS; do files+=("$RES/wrk-$mode-$t-c$c.txt"); done
    done
    files+=("$RES/rate-$t.log")
  done
  for f in "${files[@]}"; do
    [[ -f $f ]] || continue
    if [[ $f == */rate-*.log ]]; then
      r=$(awk '$2 == 200' "$f" | wc -l)
    else
      r=$(awk '/^RESULT /{for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } n = v["requests"] - v["err_status"]} END{print n + 0}' "$f")
    fi
    n=$((n + r))
  done
  echo "$n"
}

# --------------------------------------------------------------------------
# the summary
# --------------------------------------------------------------------------
mib() {
  if [[ $1 =~ ^[0-9]+$ ]]; then awk -v k="$1" 'BEGIN{printf "%.1f MiB", k / 1024}'; else echo NA; fi
}

tables() { # results.tsv -> markdown tables
  local lo hi
  lo=$(tr ' ' '\n' <<<"$CONNS" | grep . | sort -n | head -n 1)
  hi=$(tr ' ' '\n' <<<"$CONNS" | grep . | sort -n | tail -n 1)
  awk -F'\t' -v gw="$LLMGW_NAME" -v trs="${TR_NAMES[*]}" -v conns="$CONNS" -v lo="$lo" -v hi="$hi" '
    NR == 1 { next }
    {
      k = $1 SUBSEP $2 SUBSEP $3
      rps[k] = $4; p50[k] = $5; p99[k] = $7; err[k] = $9
      if (!($2 in seen)) { seen[$2] = 1; tg[++nt] = $2 }
      if ($1 ~ /^rate/) { rmode = $1 }
    }
    function na(v) { return v == "" || v == "NA" }
    function us(v) { return na(v) ? "NA" : sprintf("%.0f", v * 1000) }
    function ratio(m, a, b, c,   ka, kb) {
      ka = m SUBSEP a SUBSEP c; kb = m SUBSEP b SUBSEP c
      if (!(ka in rps) || !(kb in rps) || na(rps[ka]) || na(rps[kb]) || rps[kb] == 0) return "NA"
      return sprintf("%.2f", rps[ka] / rps[kb])
    }
    function over(m, t, c,   kt, kd) {
      kt = m SUBSEP t SUBSEP c; kd = m SUBSEP "direct" SUBSEP c
      if (!(kt in p50) || !(kd in p50) || na(p50[kt]) || na(p50[kd])) return "NA"
      return sprintf("%+.0f", (p50[kt] - p50[kd]) * 1000)
    }
    function delta(v, m, t, b, c,   kt, kb) {   # v[t] - v[b] in µs
      kt = m SUBSEP t SUBSEP c; kb = m SUBSEP b SUBSEP c
      if (!(kt in v) || !(kb in v) || na(v[kt]) || na(v[kb])) return "NA"
      return sprintf("%+.0f", (v[kt] - v[kb]) * 1000)
    }
    END {
      nc = split(conns, cs, " ")
      ntr = split(trs, tr, " ")
      for (i = 1; i <= ntr; i++) istr[tr[i]] = 1
      hdr = "| target | mode |"; sep = "|---|---|"
      for (i = 1; i <= nc; i++) { hdr = hdr " c=" cs[i] " req/s | p50 µs | p99 µs |"; sep = sep "---:|---:|---:|" }
      print hdr " errors |"; print sep "---:|"
      for (t = 1; t <= nt; t++) for (mi = 1; mi <= 2; mi++) {
        m = (mi == 1) ? "json" : "stream"; line = "| " tg[t] " | " m " |"; any = 0; e = 0; ena = 0
        for (i = 1; i <= nc; i++) {
          k = m SUBSEP tg[t] SUBSEP cs[i]
          if (k in rps) {
            any = 1; line = line " " rps[k] " | " us(p50[k]) " | " us(p99[k]) " |"
            if (na(err[k])) ena = 1; else e += err[k]
          } else line = line " - | - | - |"
        }
        if (any) print line " " (ena ? "NA" : e) " |"
      }
      if (!(gw in seen)) print "\n**" gw " NOT MEASURED** (peers.sh verification failed: see its log and verify-" gw ".json)"
      print ""
      print "| at a glance | JSON | stream |"
      print "|---|---:|---:|"
      for (t = 1; t <= nt; t++) if (tg[t] != gw && tg[t] != "direct" && !(tg[t] in istr))
        print "| " gw " / " tg[t] " req/s at c=" hi " | " ratio("json", gw, tg[t], hi) " | " ratio("stream", gw, tg[t], hi) " |"
      for (t = 1; t <= nt; t++) if (tg[t] != "direct")
        print "| " tg[t] " p50 overhead over direct at c=" lo " (µs) | " over("json", tg[t], lo) " | " over("stream", tg[t], lo) " |"
      if (ntr > 0) {
        print ""
        print "translated providers against the passthrough, same llmgw process (Δ = translated target - " gw ", same mode and connections):"
        print ""
        print "| target | mode | conns | p50 Δ µs | p99 Δ µs | req/s / " gw " |"
        print "|---|---|---:|---:|---:|---:|"
        for (i = 1; i <= ntr; i++) {
          if (!(tr[i] in seen)) { print "| " tr[i] " | NOT MEASURED (verification failed: see the peers.sh log and verify-" tr[i] ".json) | | | | |"; continue }
          for (mi = 1; mi <= 2; mi++) {
            m = (mi == 1) ? "json" : "stream"
            for (c = 1; c <= nc; c++) {
              if (!((m SUBSEP tr[i] SUBSEP cs[c]) in rps)) { if (m == "stream") { print "| " tr[i] " | stream | " cs[c] " | not measured | | |" }; continue }
              print "| " tr[i] " | " m " | " cs[c] " | " delta(p50, m, tr[i], gw, cs[c]) " | " delta(p99, m, tr[i], gw, cs[c]) " | " ratio(m, tr[i], gw, cs[c]) " |"
            }
          }
          if (rmode != "" && ((rmode SUBSEP tr[i] SUBSEP 1) in p50))
            print "| " tr[i] " | fixed rate " substr(rmode, 5) "/s | 1 | " delta(p50, rmode, tr[i], gw, 1) " | " delta(p99, rmode, tr[i], gw, 1) " | - |"
        }
        print ""
        print "issue 12 goals: p50 Δ at most +10 µs (read it at c=" lo " and at the fixed rate), stream req/s / " gw " at least 0.80 (at c=" hi ")."
      }
      if (rmode != "") {
        print ""
        print "fixed rate (" substr(rmode, 5) " req/s evenly spaced on 1 connection, h2load, JSON):"
        print ""
        print "| target | req/s | p50 µs | p99 µs | p50 over direct µs | errors |"
        print "|---|---:|---:|---:|---:|---:|"
        for (t = 1; t <= nt; t++) {
          k = rmode SUBSEP tg[t] SUBSEP 1
          if (k in rps) print "| " tg[t] " | " rps[k] " | " us(p50[k]) " | " us(p99[k]) " | " (tg[t] == "direct" ? "-" : over(rmode, tg[t], 1)) " | " err[k] " |"
        }
      }
    }' "$1"
}

git_rev() {
  local rev dirty=""
  rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null) || { echo "no commit"; return 0; }
  if [[ -n $(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null) ]]; then dirty="+dirty"; fi
  echo "$rev$dirty"
}

summary() {
  local cpu_per_req="NA" reqs ticks hz
  reqs=$(gw_requests)
  hz=$(getconf CLK_TCK)
  if [[ $CPU0 =~ ^[0-9]+$ && $CPU1 =~ ^[0-9]+$ ]] && ((reqs > 2)); then
    ticks=$((CPU1 - CPU0))
    cpu_per_req=$(awk -v t="$ticks" -v hz="$hz" -v n="$reqs" 'BEGIN{printf "%.1f", t / hz * 1e6 / n}')
  fi
  local grew="no"
  if [[ $U0 =~ ^[0-9]+$ && $U1 =~ ^[0-9]+$ ]] && ((U1 > U0)); then grew="yes"; fi
  {
    echo "# llmgw benchmark $STAMP"
    echo
    echo "host: $(nproc) CPU ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)), kernel $(uname -r), load average before the run: $LOAD0"
    echo "llmgw: $BIN (sha256 $(sha256sum "$BIN" | cut -c1-12), git $(git_rev)), serve --threads $LLMGW_THREADS$(if [[ $PIN == 1 ]]; then echo " on CPU $GW_CPUS"; fi), every feature on (auth; key: ${KEY_ARGS[*]:-no limits}; model rpm/tpm limits; pricing; usage records; audit records; metrics), env: ${XENV[*]:-none}"
    local i
    for i in "${!VAR_NAMES[@]}"; do echo "variant $LLMGW_NAME-${VAR_NAMES[$i]}: another llmgw process, env: ${EXTRA_LLMGW_ENV:+$EXTRA_LLMGW_ENV }${VAR_ENVS[$i]}"; done
    echo "run: DURATION=${DURATION}s WARMUP=${WARMUP}s CONNS=\"$CONNS\" STREAM=$STREAM RATE=$RATE RATE_SECS=$RATE_SECS PIN=$PIN (gateways on CPU $GW_CPUS, wrk + mock on CPU $LOAD_CPUS), BUILTIN=\"$BUILTIN\""
    if [[ -n $BUSY_NOTE ]]; then echo; echo "**WARNING: $BUSY_NOTE: the numbers are skewed.**"; fi
    if ((PEERS_RC != 0)); then echo; echo "**WARNING: peers.sh exited with $PEERS_RC: results may be partial.**"; fi
    echo
    echo "Latencies in µs; errors = wrk's connect/read/write/timeout/non-2xx responses."
    echo
    tables "$RES/results.tsv"
    echo
    echo "$LLMGW_NAME process: RSS idle $(mib "$RSS0") (VmRSS $RSS0 kB), after load $(mib "$RSS1") (VmRSS $RSS1 kB), peak $(mib "$HWM1")"
    echo "$LLMGW_NAME CPU: ≈ $cpu_per_req µs per request over $reqs requests (JSON and stream mixed, warm-up included)"
    echo "$LLMGW_NAME shutdown: SIGTERM -> exit $GW_RC${GW_STOP_S:+ after ${GW_STOP_S}s}"
    echo "usage_records in llmgw.db: $U0 before, $U1 after (grew: $grew); requests answered with 2xx ≈ $reqs"
    echo
    echo "raw outputs: $RES (peers.sh's own summary.md, wrk outputs); llmgw log: $GW_LOG"
  } >"$ROOT/summary.md"
  cp "$ROOT/summary.md" "$RES/run-summary.md"
  SUMMARY_GREW=$grew
}

# --------------------------------------------------------------------------
compare() {
  local files=("$@")
  if ((${#files[@]} == 0)); then
    shopt -s nullglob
    files=("$ROOT"/results/*/results.tsv)
    shopt -u nullglob
  fi
  ((${#files[@]})) || die "no results.tsv to compare (none under $ROOT/results)"
  bash "$PEERS" --compare "${files[@]}"
}

main() {
  case ${1:-} in
    -h | --help) usage; exit 0 ;;
    --compare) shift; [[ -f $PEERS ]] || die "peers.sh not found at $PEERS (set LLMGW_PEERS)"; compare "$@"; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
  esac
  [[ -f $PEERS ]] || die "peers.sh not found at $PEERS (set LLMGW_PEERS)"
  [[ $LLMGW_NAME =~ ^[A-Za-z0-9_.-]+$ && " direct nginx portkey " != *" $LLMGW_NAME "* ]] \
    || die "bad LLMGW_NAME '$LLMGW_NAME'"
  parse_extra_env
  parse_variants
  mkdir -p "$WORK"
  : >"$WORK/sqlite.err"
  reap_stale
  ensure_deps
  pick_binary
  wait_idle
  LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

  DATA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/llmgw-bench-data.XXXXXX")
  DB=$DATA_DIR/llmgw.db
  write_config
  create_key
  U0=$(usage_count)
  start_gw
  start_variants
  RSS0=$(status_kib "$GW_PID" VmRSS)
  CPU0=$(cpu_ticks "$GW_PID")
  log "llmgw idle RSS: ${RSS0:-NA} kB; usage_records before: $U0"

  run_peers "$@"

  RSS1=$(status_kib "$GW_PID" VmRSS); RSS1=${RSS1:-NA}
  HWM1=$(status_kib "$GW_PID" VmHWM); HWM1=${HWM1:-NA}
  CPU1=$(cpu_ticks "$GW_PID")
  stop_gw
  stop_variants
  U1=$(usage_count)
  summary
  echo
  cat "$ROOT/summary.md"

  local rc=0
  if ((PEERS_RC != 0)); then rc=1; fi
  if [[ $GW_RC != 0 ]]; then log "llmgw did not exit 0 on SIGTERM: $GW_RC"; rc=1; fi
  if [[ -n $VARIANT_FAILED ]]; then log "variants that did not exit 0 on SIGTERM:$VARIANT_FAILED"; rc=1; fi
  if [[ $SUMMARY_GREW != yes ]]; then
    log "usage_records did not grow ($U0 -> $U1)$(if [[ -s $WORK/sqlite.err ]]; then echo "; sqlite3: $(tail -n 1 "$WORK/sqlite.err")"; fi)"
    rc=1
  fi
  local t
  for t in "${GW_NAMES[@]}"; do
    if ! awk -F'\t' -v g="$t" '$2 == g {f = 1} END {exit !f}' "$RES/results.tsv"; then
      log "$t was not measured (verification failed)"; rc=1
    elif [[ $STREAM == 1 ]] && ! awk -F'\t' -v g="$t" '$1 == "stream" && $2 == g {f = 1} END {exit !f}' "$RES/results.tsv"; then
      log "$t: no stream rows (stream verification failed)"; rc=1
    fi
  done
  exit "$rc"
}

main "$@"
