#!/usr/bin/env bash
# The test command (`make test`): installs what the tests need, builds, and runs every test.
#   1. preset dev (Debug + ASan/UBSan): unit tests (GoogleTest), then the integration and
#      end-to-end suites against the sanitized binary
#   2. preset release: the same suites against the binary users run
# The JavaScript suites (node:test, the official openai SDK) start their own mock upstreams on
# 127.0.0.1 with free ports and stop them. A throw-away PostgreSQL server (scripts/pg.sh:
# initdb in a temporary directory, a free port) serves the store tests and the integration
# suites (CTest entry integration_pg runs them all on PostgreSQL) through
# LLMGW_TEST_DATABASE_URL and is stopped on exit.
# First, scripts/check-self-contained.sh fails the run when a build, test, benchmark or script
# file reads from outside the repository.
# Extra arguments go to the final ctest run (e.g. -R echo).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/check-self-contained.sh  # a clone of the repository alone must pass
scripts/install-deps.sh
npm ci --no-audit --no-fund --loglevel=error

echo "== PostgreSQL for the store tests"
pg_env=$(scripts/pg.sh start)  # an assignment, so that a failed start stops the script
eval "$pg_env"
trap 'scripts/pg.sh stop "$LLMGW_PG_DIR"' EXIT

echo "== dev preset (ASan + UBSan): unit, integration and end-to-end tests"
cmake --preset dev -DLLMGW_BUILD_TESTS=ON -DLLMGW_WERROR=ON >/dev/null
cmake --build --preset dev
ctest --preset dev -L 'unit|integration|e2e'

echo "== release preset: unit, integration and end-to-end tests"
cmake --preset release -DLLMGW_BUILD_TESTS=ON -DLLMGW_WERROR=ON >/dev/null
cmake --build --preset release
ctest --preset release -L 'unit|integration|e2e' "$@"
