#!/usr/bin/env bash
# The whole test suite: unit (cmocka) and end-to-end (pytest on the real binary), first on the
# normal build, then on an AddressSanitizer + UBSan build, then a short fuzz smoke run.
#   SPILLWAY_SOAK=1   also run the long soak tests
#   SPILLWAY_FAST=1   skip the sanitizer pass and fuzz smoke (for quick local iterations)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test
PY=/usr/bin/python3   # Debian's python, where the python3-* test packages live

run_suite() { # $1 build dir, $2 label
  echo "== unit tests ($2)"
  ctest --test-dir "$1" --output-on-failure -j2
  echo "== end-to-end tests ($2)"
  SPILLWAY_BIN="$PWD/$1/spillway" $PY -m pytest -q -p no:cacheprovider tests/e2e
}

scripts/build.sh build
run_suite build release
if [ "${SPILLWAY_FAST:-0}" != 1 ]; then
  scripts/build.sh build-asan -DSANITIZE=ON
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    SPILLWAY_SANITIZED=1 run_suite build-asan "ASan+UBSan"
  echo "== fuzz smoke"
  scripts/fuzz.sh 20
fi
echo "all tests passed"
