#!/usr/bin/env bash
# `make package`: the Debian package, built by CPack from its own build directory.
#   scripts/package.sh [DIR]      default DIR: build-deb; prints the path of the .deb
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-deb}
scripts/bootstrap.sh package >&2
scripts/build.sh "$dir" -DCMAKE_INSTALL_PREFIX=/usr -DBUILD_TESTING=OFF -DMANPAGE=ON >&2
rm -f "$dir"/spillway_*.deb
(cd "$dir" && cpack -G DEB >&2)
ls "$dir"/spillway_*.deb
