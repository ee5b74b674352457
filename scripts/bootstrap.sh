#!/usr/bin/env bash
# Installs what spillway needs on Debian bookworm. Idempotent: only missing packages are installed.
#   scripts/bootstrap.sh          build + run dependencies
#   scripts/bootstrap.sh package  also what `make package` needs (dpkg-shlibdeps)
#   scripts/bootstrap.sh test     also test dependencies (cmocka, pytest, clang, the npm S3 server,
#                                 the packaging checks' linters, systemd-analyze and kubectl)
set -euo pipefail
cd "$(dirname "$0")/.."

build_pkgs=(cmake make gcc pkg-config libuv1-dev libcurl4-openssl-dev zlib1g-dev libdeflate-dev libzstd-dev libcjson-dev
  libpcre2-dev libsqlite3-dev libyaml-dev libsystemd-dev python3 ca-certificates)
test_pkgs=(libcmocka-dev python3-pytest python3-requests python3-boto3 python3-zstandard
  python3-prometheus-client prometheus
  python3-yaml zstd sqlite3 clang libclang-rt-14-dev logrotate
  yamllint shellcheck systemd man-db systemd-journal-remote)
package_pkgs=(dpkg-dev)

want=("${build_pkgs[@]}")
if [ "${1:-}" = package ] || [ "${1:-}" = test ]; then
  want+=("${package_pkgs[@]}")
fi
if [ "${1:-}" = test ]; then
  want+=("${test_pkgs[@]}")
  command -v npm >/dev/null 2>&1 || want+=(nodejs npm)
  # `kubectl kustomize` renders the Kubernetes manifests. Debian's kubernetes-client only where
  # no kubectl is installed: it would conflict with another vendor's kubectl package.
  command -v kubectl >/dev/null 2>&1 || want+=(kubernetes-client)
fi

# apt-get, waiting (up to 5 minutes) while another apt or unattended-upgrades holds the dpkg or
# lists lock instead of failing at once. DPkg::Lock::Timeout covers the dpkg lock of `install`;
# `update` takes the lists lock, which that option does not cover, hence the retry loop.
apt_wait() {
  local deadline=$((SECONDS + 300)) out rc
  while :; do
    rc=0
    out=$(DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=60 "$@" 2>&1) || rc=$?
    if [ "$rc" -eq 0 ]; then return 0; fi
    if ! grep -qiE 'could not get lock|unable to lock|is held by process' <<<"$out" ||
      [ "$SECONDS" -ge "$deadline" ]; then
      printf '%s\n' "$out" >&2
      echo "bootstrap: apt-get $1 failed (exit $rc)" >&2
      return "$rc"
    fi
    echo "bootstrap: waiting for another package manager to release its lock" >&2
    sleep 5
  done
}

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  apt_wait update -qq
  apt_wait install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "${1:-}" = test ] && [ ! -x tests/servers/node_modules/.bin/s3rver ]; then
  echo "bootstrap: installing the S3 test server (s3rver, pinned by tests/servers/package-lock.json)"
  (cd tests/servers && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ "${1:-}" = test ] && [ ! -x tests/packaging/tools/node_modules/.bin/action-validator ]; then
  echo "bootstrap: installing the GitHub workflow validator (pinned by tests/packaging/tools/package-lock.json)"
  (cd tests/packaging/tools && npm ci --no-audit --no-fund --loglevel=error)
fi
