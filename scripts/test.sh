#!/usr/bin/env bash
# The whole test suite: unit (cmocka) and end-to-end (pytest on the real binary), first on the
# normal build, then on an AddressSanitizer + UBSan build, then a short fuzz smoke run.
# The release pass also runs the packaging checks (tests/packaging: image, Kubernetes, systemd,
# Debian package, workflows, lint).
#   SPILLWAY_SOAK=1   also run the long soak tests
#   SPILLWAY_FAST=1   skip the sanitizer pass and fuzz smoke (for quick local iterations)
#   SPILLWAY_SUITE=release|sanitize|fuzz   only that part (CI runs the three as parallel jobs)
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

suite=${SPILLWAY_SUITE:-all}
[ "${SPILLWAY_FAST:-0}" != 1 ] || suite=release
case $suite in all | release | sanitize | fuzz) ;; *)
  echo "SPILLWAY_SUITE must be release, sanitize or fuzz" >&2
  exit 2 ;;
esac
if [ "$suite" = all ] || [ "$suite" = release ]; then
  scripts/build.sh build -DBUILD_TESTING=ON
  run_suite build release
  echo "== packaging tests"
  SPILLWAY_BIN="$PWD/build/spillway" $PY -m pytest -q -p no:cacheprovider tests/packaging
fi
if [ "$suite" = all ] || [ "$suite" = sanitize ]; then
  scripts/build.sh build-asan -DSANITIZE=ON -DBUILD_TESTING=ON
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    SPILLWAY_SANITIZED=1 run_suite build-asan "ASan+UBSan"
fi
if [ "$suite" = all ] || [ "$suite" = fuzz ]; then
  echo "== fuzz smoke"
  scripts/fuzz.sh 20
fi
echo "all tests passed"
