#!/usr/bin/env bash
# Installs every Debian package the build, the gateway, the tests and the benchmark need.
# Idempotent: packages already present are skipped by apt-get.
# Usage: scripts/install-deps.sh [--no-test]   (--no-test: only what building and running need)
set -euo pipefail

build_pkgs=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev ca-certificates libsqlite3-dev libpq-dev libhiredis-dev zlib1g-dev libargon2-dev
  libcli11-dev libyaml-cpp-dev libhowardhinnant-date-dev
)
test_pkgs=(
  libgtest-dev libgmock-dev libbenchmark-dev
  curl jq procps iproute2 nginx wrk sqlite3 nghttp2-client util-linux postgresql redis-server prometheus
)

pkgs=("${build_pkgs[@]}")
if [[ ${1:-} != --no-test ]]; then pkgs+=("${test_pkgs[@]}"); fi

missing=()
# Node.js may come from another source that bundles npm (it conflicts with Debian's npm):
# install Debian's only when the command is absent.
if [[ ${1:-} != --no-test ]]; then
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
fi
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  sudo_cmd=()
  if [[ $(id -u) != 0 ]]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all packages present" >&2
fi
