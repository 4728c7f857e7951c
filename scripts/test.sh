#!/usr/bin/env bash
# Runs every test of the project: installs what is missing (npm packages; Debian's Keystone and
# uWSGI through test/keystone/keystone-dev.sh, which needs root for apt), builds, starts and seeds
# a real Keystone on 127.0.0.1:5000, runs the suite with tap, then the tests that stop and restart
# Keystone, alone. Last line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
export KEYSTONE_DEV_DIR=${KEYSTONE_DEV_DIR:-/tmp/keystone-dev}
LOG_DIR=${TEST_LOG_DIR:-$(mktemp -d /tmp/ksa-test.XXXXXX)}
mkdir -p "$LOG_DIR"

step() { printf '\n== %s\n' "$*"; }
fail_setup() { echo "test setup failed: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

need() { command -v "$1" >/dev/null 2>&1; }
missing=()
need openssl || missing+=(openssl)
need curl || missing+=(curl)
need xz || missing+=(xz-utils)   # unpacks the Go peer binaries (KSA_GO_PEER_DIR)
need tmux || missing+=(tmux)   # the plugin's terminal test drives kubectl in tmux
[ -x /usr/bin/chromium ] || missing+=(chromium)   # the WebSSO tests log in with headless Chromium
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]}"
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } >&2 \
    || fail_setup "cannot install ${missing[*]}"
fi
need kubectl || echo "warning: kubectl not found; the credential-plugin tests that drive kubectl will fail" >&2

if [ ! -x node_modules/.bin/tap ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "npm ci"
  npm ci --no-audit --no-fund >&2 || fail_setup "npm ci failed"
fi

step "build"
npm run --silent build >&2 || fail_setup "TypeScript build failed"

step "Keystone (real, on 127.0.0.1)"
bash test/keystone/keystone-dev.sh seed >/dev/null || fail_setup "cannot start or seed Keystone (see $KEYSTONE_DEV_DIR/*.log)"

step "federated Keystone (WebSSO, on 127.0.0.1:5001)"
# A second instance, so that the main one on :5000 keeps its normal mode; enable starts it when needed.
KEYSTONE_DEV_DIR=/tmp/keystone-fed KEYSTONE_DEV_PORT=5001 bash test/keystone/keystone-federation.sh status >/dev/null 2>&1 ||
  KEYSTONE_DEV_DIR=/tmp/keystone-fed KEYSTONE_DEV_PORT=5001 bash test/keystone/keystone-federation.sh enable >/dev/null ||
  fail_setup "cannot start the federated Keystone (see /tmp/keystone-fed/*.log)"

passed=0 failed=0
count() {  # count LOG: add the totals of tap's closing line "# { total: N, pass: P, fail: F ... }"
  local line total pass
  line=$(grep -E '^# \{ total: [0-9]+' "$1" | tail -n 1)
  if [ -z "$line" ]; then failed=$((failed + 1)); echo "no summary in $1" >&2; return; fi
  total=$(sed -E 's/.*total: ([0-9]+).*/\1/' <<<"$line")
  pass=$(grep -oE 'pass: [0-9]+' <<<"$line" | grep -oE '[0-9]+' || echo 0)
  local f; f=$(grep -oE 'fail: [0-9]+' <<<"$line" | grep -oE '[0-9]+' || echo 0)
  passed=$((passed + pass)); failed=$((failed + f))
  [ "$pass" -lt "$total" ] && [ "$f" = 0 ] && echo "($((total - pass)) skipped or todo in $1)" >&2
  return 0
}
run_tap() {  # run_tap NAME ARGS...: full TAP to a log; per-file results and failures on the console
  local name=$1; shift
  local log="$LOG_DIR/$name.tap"
  npx tap --reporter=tap "$@" >"$log" 2>&1
  local rc=$?
  grep -E '^(ok|not ok) ' "$log"
  if [ $rc -ne 0 ]; then
    echo "-- failures (full log: $log)"
    grep -n -B2 -A18 -E '^\s+not ok ' "$log" | head -n 300
  fi
  count "$log"
}

step "tests"
run_tap suite
step "tests that stop and restart Keystone"
run_tap disruptive test/disruptive/*.test.ts

echo
echo "logs: $LOG_DIR"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
