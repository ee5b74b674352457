#!/usr/bin/env bash
# `make run`: generate demo container logs and run the agent on packaging/examples/demo.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
demo=packaging/examples/demo-data
if [ ! -d "$demo/containers" ]; then
  /usr/bin/python3 scripts/demo-logs.py "$demo" --lines 2000
fi
/usr/bin/python3 scripts/demo-logs.py "$demo" --lines 0 --follow &
gen=$!
trap 'kill $gen 2>/dev/null || true' EXIT
cat <<MSG
spillway demo: tailing $demo/{containers,pods,app}, buffering in $demo/state/spillway.db
  shipped records:  tail -f $demo/out/shipped.ndjson
  status:           build/spillway status -c packaging/examples/demo.yaml
  stop:             Ctrl-C
MSG
build/spillway run -c packaging/examples/demo.yaml
