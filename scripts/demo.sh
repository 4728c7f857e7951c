#!/usr/bin/env bash
# One-command demo on loopback: a real Keystone (Debian's python3-keystone under uWSGI, SQLite),
# seeded with users and projects; the webhook on https://127.0.0.1:8443 with a generated
# self-signed certificate and the example policy; then a TokenReview and a SubjectAccessReview
# answered for the seeded user "demo", as kube-apiserver would send them.
# Interactive: keeps the webhook running until Ctrl-C. Otherwise (CI, pipes): stops after showing.
set -euo pipefail
cd "$(dirname "$0")/.."
export KEYSTONE_DEV_DIR=${KEYSTONE_DEV_DIR:-/tmp/keystone-dev}
STATE=${DEMO_DIR:-/tmp/k8s-keystone-auth-demo}
PORT=${DEMO_PORT:-8443}
mkdir -p "$STATE"

say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

if [ ! -x node_modules/.bin/tsc ]; then say "installing npm packages"; npm ci --no-audit --no-fund >&2; fi
say "building"
npm run --silent build >&2

say "starting and seeding Keystone on 127.0.0.1:5000 (first run installs Debian packages: about a minute)"
bash test/keystone/keystone-dev.sh seed >/dev/null
OS_AUTH_URL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["auth_url"])' "$KEYSTONE_DEV_DIR/seed.json")

if [ ! -s "$STATE/tls.crt" ]; then
  say "generating a self-signed certificate for 127.0.0.1"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -keyout "$STATE/tls.key" -out "$STATE/tls.crt" -subj /CN=k8s-keystone-auth-demo \
    -addext 'subjectAltName=IP:127.0.0.1,DNS:localhost' 2>/dev/null
fi

say "starting the webhook on https://127.0.0.1:$PORT"
./bin/k8s-keystone-auth --listen "127.0.0.1:$PORT" \
  --tls-cert-file "$STATE/tls.crt" --tls-private-key-file "$STATE/tls.key" \
  --keystone-url "$OS_AUTH_URL" --keystone-policy-file config/policy.json >"$STATE/webhook.log" 2>&1 &
WEBHOOK=$!
trap 'kill $WEBHOOK 2>/dev/null; wait $WEBHOOK 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -sf --cacert "$STATE/tls.crt" "https://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  kill -0 $WEBHOOK 2>/dev/null || { cat "$STATE/webhook.log" >&2; exit 1; }
  sleep 0.1
done

say "user demo logs in to Keystone (password demo-pass, project demo)"
TOKEN=$(curl -sS -D - -o /dev/null -H 'Content-Type: application/json' "$OS_AUTH_URL/auth/tokens" \
  -d '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"demo","domain":{"name":"Default"},"password":"demo-pass"}}},"scope":{"project":{"name":"demo","domain":{"name":"Default"}}}}}' \
  | awk 'tolower($1)=="x-subject-token:" {print $2}' | tr -d '\r')
[ -n "$TOKEN" ] || { echo "Keystone login failed" >&2; exit 1; }

post() { curl -sS --cacert "$STATE/tls.crt" -H 'Content-Type: application/json' "https://127.0.0.1:$PORT/webhook" -d "$1" | python3 -m json.tool; }

say "kube-apiserver asks: who holds this token? (TokenReview)"
post "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\",\"spec\":{\"token\":\"$TOKEN\"}}"

PROJECT_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["projects"]["demo"]["id"])' "$KEYSTONE_DEV_DIR/seed.json")
say "kube-apiserver asks: may demo list pods in namespace default? (SubjectAccessReview, config/policy.json)"
post "{\"apiVersion\":\"authorization.k8s.io/v1\",\"kind\":\"SubjectAccessReview\",\"spec\":{\"user\":\"demo\",\"groups\":[\"developers\",\"$PROJECT_ID\"],\"extra\":{\"alpha.kubernetes.io/identity/project/name\":[\"demo\"],\"alpha.kubernetes.io/identity/project/id\":[\"$PROJECT_ID\"],\"alpha.kubernetes.io/identity/roles\":[\"member\",\"reader\"]},\"resourceAttributes\":{\"namespace\":\"default\",\"verb\":\"list\",\"resource\":\"pods\",\"version\":\"v1\"}}}"

say "a bad token is answered 200 / authenticated: false, so kube-apiserver caches the no"
post '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"not-a-token"}}'

if [ -t 0 ] && [ -t 1 ]; then
  say "the webhook keeps running on https://127.0.0.1:$PORT (log: $STATE/webhook.log); Ctrl-C stops it"
  echo "try:  curl --cacert $STATE/tls.crt https://127.0.0.1:$PORT/metrics" >&2
  wait $WEBHOOK
else
  say "done (not a terminal: stopping the webhook). Keystone keeps running; stop it with: bash test/keystone/keystone-dev.sh stop"
fi
