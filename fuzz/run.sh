#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for SECONDS (default 60).
#   fuzz/run.sh [SECONDS] [TARGET...]     targets: event_stream inspect_request
# Corpora are kept in $FUZZ_DIR (default: build/fuzz/corpus/<target>); a crash leaves its input
# in build/fuzz/ and exits non-zero. Needs Debian's clang (libFuzzer is in its runtime).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(event_stream inspect_request)
out=build/fuzz
mkdir -p "$out"
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
  -Isrc -DBOOST_JSON_NO_LIB -DBOOST_CONTAINER_NO_LIB)
for t in "${targets[@]}"; do
  case $t in
    event_stream) srcs=(src/providers/bedrock/event_stream.cpp); libs=(-lz) ;;
    inspect_request) srcs=(src/providers/openai.cpp src/core/json.cpp); libs=(-lboost_json) ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
  esac
  clang++ "${flags[@]}" "fuzz/${t}_fuzz.cpp" "${srcs[@]}" "${libs[@]}" -o "$out/$t"
  corpus=${FUZZ_DIR:-$out/corpus}/$t
  mkdir -p "$corpus"
  seeds=()
  extra=()
  [[ $t == event_stream ]] && seeds+=(tests/data/aws-eventstream/aws-sdk-go/encoded/positive)
  [[ $t == inspect_request ]] && seeds+=(fuzz/seeds/inspect_request) && extra+=(-dict="$PWD/fuzz/json.dict")
  echo "== $t: ${secs}s"
  (cd "$out" && "./$t" "${extra[@]}" -max_total_time="$secs" -max_len=4096 "$OLDPWD/$corpus" "${seeds[@]/#/$OLDPWD/}" 2>&1 | tail -4)
done
