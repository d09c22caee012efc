#!/usr/bin/env bash
# The test command (`make test`): installs what the tests need, builds, and runs every test.
#   1. unit tests (GoogleTest) under ASan + UBSan (preset dev)
#   2. integration and end-to-end tests (node:test, the official openai SDK) against the
#      release binary; they start their own mock upstreams on 127.0.0.1 with free ports.
# Extra arguments go to the final ctest run (e.g. -R echo).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
npm ci --no-audit --no-fund --loglevel=error

echo "== unit tests (ASan + UBSan)"
cmake --preset dev >/dev/null
cmake --build --preset dev
ctest --preset dev -L unit

echo "== integration and end-to-end tests (release build)"
cmake --preset release >/dev/null
cmake --build --preset release
ctest --preset release -L 'unit|integration|e2e' "$@"
