#!/usr/bin/env bash
# Fails when a build, test, benchmark or script file of the repository reads from outside it:
# a clone of the repository alone must install, build, test and benchmark. It looks, in the
# files git tracks (documentation and the provenance notes of tests/data excepted), for the
# paths that used to leak out: the workplace's reference folder beside the repository and
# absolute paths of one machine.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each path written with a bracket class, so that this line does not match itself.
pattern='(\.\./share[d]|/wor[k]/|/hom[e]/[a-z]|/roo[t]/|LLMGW_SHARE[D])'
mapfile -t files < <(git ls-files -- CMakeLists.txt CMakePresets.json Makefile cmake api src tests bench fuzz \
  scripts .ci package.json | grep -Ev '(\.md$|^tests/data/|^scripts/check-self-contained\.sh$)')
if hits=$(grep -nE "$pattern" -- "${files[@]}"); then
  echo "check-self-contained: these lines reach outside the repository:" >&2
  echo "$hits" >&2
  exit 1
fi
echo "check-self-contained: ${#files[@]} files read nothing outside the repository" >&2
