# Thin wrapper over the scripts; each target installs what it needs and builds first.
.PHONY: all build run test test-fast bench bench-search bench-archive bench-lokiapi bench-journald bench-journal-tail fuzz docs package clean

all: build

# The agent alone: no test binaries, so nothing beyond the bootstrap's build set is needed.
build:
	@scripts/bootstrap.sh
	@scripts/build.sh build -DBUILD_TESTING=OFF

run: build
	@scripts/demo.sh

test:
	@scripts/test.sh

test-fast:
	@SPILLWAY_FAST=1 scripts/test.sh

bench: build
	@/usr/bin/python3 bench/bench.py

bench-search: build
	@/usr/bin/python3 bench/bench_search.py

bench-archive: build
	@scripts/bootstrap.sh test
	@/usr/bin/python3 bench/bench_archive.py

bench-lokiapi: build
	@/usr/bin/python3 bench/bench_lokiapi.py

bench-journald: build
	@scripts/bootstrap.sh test
	@/usr/bin/python3 bench/bench_journald.py

bench-journal-tail: build
	@scripts/bootstrap.sh test
	@/usr/bin/python3 bench/bench_journal_tail.py

fuzz:
	@scripts/bootstrap.sh test
	@scripts/fuzz.sh 300

package:
	@scripts/package.sh

docs: build
	@build/spillway config-docs > docs/configuration.md

clean:
	rm -rf build build-asan build-fuzz build-deb packaging/examples/demo-data bench/.work
