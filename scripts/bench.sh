#!/usr/bin/env bash
# npm run bench: builds, makes sure the real Keystone runs, then measures our webhook against a
# bare Fastify TLS route in one run (test/bench/webhook.mjs). Figures go to BENCHMARKS.md by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
export KEYSTONE_DEV_DIR=${KEYSTONE_DEV_DIR:-/tmp/keystone-dev}
[ -x node_modules/.bin/tsc ] || npm ci --no-audit --no-fund >&2
npm run --silent build >&2
bash test/keystone/keystone-dev.sh seed >/dev/null
node test/bench/webhook.mjs
if [ -f test/bench/plugin.mjs ]; then node test/bench/plugin.mjs; fi
