#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang and runs each for N seconds (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
CC=clang scripts/build.sh build-fuzz -DFUZZ=ON -DBUILD_TESTING=OFF -DSANITIZE=ON >/dev/null
for f in build-fuzz/fuzz_*; do
  name=$(basename "$f")
  corpus="tests/fuzz/corpus/${name#fuzz_}"
  work=$(mktemp -d)
  [ -d "$corpus" ] && cp -r "$corpus/." "$work/"
  echo "fuzz: $name for ${secs}s"
  "$f" -max_total_time="$secs" -max_len=65536 -print_final_stats=0 "$work" >"$work.log" 2>&1 || {
    tail -50 "$work.log"; echo "fuzz: $name FAILED"; exit 1; }
  rm -rf "$work" "$work.log"
done
