#!/usr/bin/env bash
# npm run bench: builds, makes sure the real Keystone runs, then measures in one run
#  1. our webhook against a bare Fastify TLS route (test/bench/webhook.mjs);
#  2. kubectl through client-keystone-auth, warm cache vs cache off, against a second Keystone
#     with Keystone's default password-hashing cost (the test Keystone lowers it).
# Figures go to BENCHMARKS.md by hand, with the date and machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export KEYSTONE_DEV_DIR=${KEYSTONE_DEV_DIR:-/tmp/keystone-dev}
[ -x node_modules/.bin/tsc ] || npm ci --no-audit --no-fund >&2
npm run --silent build >&2
bash test/keystone/keystone-dev.sh seed >/dev/null

echo "## Webhook"
node test/bench/webhook.mjs

echo
echo "## kubectl with client-keystone-auth (Keystone with its default password-hashing cost)"
BENCH_KS_DIR=/tmp/keystone-bench
stop_bench_ks() { KEYSTONE_DEV_DIR=$BENCH_KS_DIR bash test/keystone/keystone-dev.sh stop >/dev/null 2>&1 || true; }
trap stop_bench_ks EXIT
KEYSTONE_DEV_DIR=$BENCH_KS_DIR KEYSTONE_DEV_PORT=5055 KEYSTONE_DEV_PASSWORD_HASH_ROUNDS=default \
  bash test/keystone/keystone-dev.sh seed >/dev/null
# The seed's users were created under this cost, so their hashes use it.
BENCH_KEYSTONE_URL=http://127.0.0.1:5055/v3 BENCH_USER=demo BENCH_PASSWORD=demo-pass BENCH_PROJECT=demo \
  node --import=tsx test/plugin/bench-kubectl.ts "${BENCH_RUNS:-20}"
