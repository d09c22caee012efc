#!/usr/bin/env bash
# The store micro-benchmark: Store::insert_usage on SQLite and PostgreSQL, in rows per second.
# Builds store_bench (release preset, -DLLMGW_BUILD_BENCH=ON, -Werror), starts a throw-away
# PostgreSQL server (scripts/pg.sh), runs it, prints rows/s min / median / max per store and
# batch size, and stops the server. It reports numbers; it never fails on a timing.
#
#   bench/store.sh [store_bench arguments...]     e.g. --benchmark_filter=sqlite
#
# Settings (environment):
#   REPETITIONS=5      runs of each benchmark (each on an empty database)
#   MIN_TIME=0.5       seconds each run lasts at least (Google Benchmark's --benchmark_min_time)
#   INSTALL_DEPS=0     skip scripts/install-deps.sh
#   STORE_BENCH_BIN    a store_bench already built: no configure, no build
#   LLMGW_TEST_DATABASE_URL   measure this PostgreSQL database instead of starting a server
#                      (the benchmark creates and drops a schema of its own in it)
#   OUT                where the JSON results go (default build/release/bench/store-<stamp>.json)
set -euo pipefail
cd "$(dirname "$0")/.."

REPETITIONS=${REPETITIONS:-5}
MIN_TIME=${MIN_TIME:-0.5}
STAMP=$(date +%Y%m%d-%H%M%S)
COMPILERS='cc1plus|cc1|collect2|ld|ld.gold|ld.lld|mold'

log() { printf '[%s] store.sh: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

compilers_running() { # "pid:name ..." of compilers and linkers running on the machine
  ps -e -o pid=,comm= | awk -v re="^($COMPILERS)\$" '$2 ~ re {printf "%s%s:%s", sep, $1, $2; sep = " "}'
}

if [[ ${INSTALL_DEPS:-1} != 0 ]]; then scripts/install-deps.sh; fi

bin=${STORE_BENCH_BIN:-}
if [[ -z $bin ]]; then
  log "building store_bench (release preset, LLMGW_BUILD_BENCH=ON, LLMGW_WERROR=ON)"
  cmake --preset release -DLLMGW_BUILD_BENCH=ON -DLLMGW_WERROR=ON >/dev/null
  cmake --build --preset release --target store_bench >&2
  bin=build/release/bench/micro/store_bench
fi
[[ -x $bin ]] || { log "ERROR: $bin is not an executable"; exit 1; }

if [[ -z ${LLMGW_TEST_DATABASE_URL:-} ]]; then
  pg_env=$(scripts/pg.sh start) # an assignment, so that a failed start stops the script
  eval "$pg_env"
  trap 'scripts/pg.sh stop "$LLMGW_PG_DIR"' EXIT
fi

out=${OUT:-build/release/bench/store-$STAMP.json}
mkdir -p "$(dirname "$out")"
busy_before=$(compilers_running)
[[ -z $busy_before ]] || log "WARNING: a build is running ($busy_before): the numbers are skewed"
log "running $bin: $REPETITIONS repetitions of at least ${MIN_TIME}s each"
"$bin" --benchmark_repetitions="$REPETITIONS" --benchmark_min_time="$MIN_TIME" \
  --benchmark_report_aggregates_only=true --benchmark_out="$out" --benchmark_out_format=json \
  "$@" >&2
busy_after=$(compilers_running)

echo
load=$(cut -d' ' -f1-3 /proc/loadavg)
echo "## Store::insert_usage, rows/s ($REPETITIONS runs; $(nproc) cores, load $load)"
echo
echo "| store | batch | min | median | max | rows per CPU-second, median |"
echo "|---|---:|---:|---:|---:|---:|"
# Aggregate rows are named "<benchmark>/batch:<n>/real_time_<statistic>". The last column is
# this process's CPU only (PostgreSQL's own work is not in it): on a busy machine it moves
# less than the wall-clock rates, which also count the time spent waiting for a core.
jq -r '
  [.benchmarks[] | select(.run_type == "aggregate")
   | {name: .run_name, stat: .aggregate_name, rate: .["rows/s"], cpu_us: .cpu_time}]
  | group_by(.name)
  | map((.[0].name | capture("^(?<store>[a-z]+)_insert_usage/batch:(?<batch>[0-9]+)"))
        + {s: (map({(.stat): .rate}) | add)}
        + {cpu_us: (map(select(.stat == "median")) | .[0].cpu_us)})
  | sort_by(.store != "sqlite", (.batch | tonumber))[]
  | "| \(.store) | \(.batch) | \(.s.min | round) | \(.s.median | round) | \(.s.max | round)"
    + " | \((.batch | tonumber) * 1e6 / .cpu_us | round) |"
' "$out"
echo
if [[ -n $busy_before || -n $busy_after ]]; then
  echo "**WARNING: a compiler or linker ran during the measurement: the numbers are skewed.**"
fi
echo "(JSON: $out)"
