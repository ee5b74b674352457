#!/usr/bin/env bash
# Configures and builds one flavour of spillway.
#   scripts/build.sh [DIR] [extra cmake args...]     default DIR: build
# The configure step is quiet when it succeeds; when it fails, CMake's whole output is shown (the
# line that names a missing package is a status line, not part of the error).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
mkdir -p "$dir"
log="$dir/configure.log"
if ! cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWERROR=ON "$@" >"$log" 2>&1; then
  cat "$log" >&2
  echo "build: configuring $dir failed (output above; also in $log)" >&2
  exit 1
fi
cmake --build "$dir" -j"$(nproc)" -- --no-print-directory
