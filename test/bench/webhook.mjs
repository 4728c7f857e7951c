// npm run bench: our webhook against a bare Fastify TLS route, in one run on one machine, so the
// ratios hold even on a noisy machine. Needs the real Keystone (scripts/bench.sh starts it).
import autocannon from 'autocannon'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { ROOT, benchDir, login, sar, seed, startProcess, tokenReview } from './common.mjs'

const DURATION = Number(process.env.BENCH_SECONDS ?? 10)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32)
const dir = benchDir('ksa-bench-', { negated: true })
// Both servers get the same warm-up (JIT, TLS sessions, caches) before they are measured.
const WARM_UP = Math.min(DURATION, 3)

async function load (url, body, setupRequest, duration = DURATION) {
  const opts = { url, method: 'POST', connections: CONNECTIONS, pipelining: 1, duration, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
  if (setupRequest) opts.requests = [{ setupRequest }]
  const r = await autocannon(opts)
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.non2xx, total: r.requests.total }
}

const results = {}
const bare = await startProcess([join(ROOT, 'test/bench/bare-server.mjs'), '18501', join(dir, 'cert.pem'), join(dir, 'key.pem')], 'https://127.0.0.1:18501/healthz')
await load('https://127.0.0.1:18501/webhook', tokenReview('warm-up'), undefined, WARM_UP)
results.bare = await load('https://127.0.0.1:18501/webhook', tokenReview('x'.repeat(180)))
bare.kill()

const ours = await startProcess([join(ROOT, 'bin/k8s-keystone-auth'), '--listen', '127.0.0.1:18502', '--tls-cert-file', join(dir, 'cert.pem'),
  '--tls-private-key-file', join(dir, 'key.pem'), '--keystone-url', seed.auth_url, '--keystone-policy-file', join(dir, 'policy.json'), '--log-level', 'warn',
  '--token-cache-ttl', '10m'], 'https://127.0.0.1:18502/healthz')
const url = 'https://127.0.0.1:18502/webhook'
const token = await login()
const first = await (await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(tokenReview(token)) })).json()
if (first.status?.authenticated !== true) throw new Error(`warm-up TokenReview failed: ${JSON.stringify(first)}`)
await load(url, tokenReview(token), undefined, WARM_UP)
results.tokenReviewCached = await load(url, tokenReview(token))
results.sarHit = await load(url, sar('demo'))
let n = 0
results.sarMiss = await load(url, sar('demo'), req => ({ ...req, body: JSON.stringify(sar(`user-${n++}`)) }))

// Single flight: 100 concurrent reviews of one fresh token, counted on /metrics.
const metricCount = async () => {
  const text = await (await fetch('https://127.0.0.1:18502/metrics')).text()
  return text.split('\n').filter(l => l.startsWith('k8s_keystone_auth_keystone_requests_total{operation="validate"')).reduce((a, l) => a + Number(l.split(' ').pop()), 0)
}
const fresh = await login()
const before = await metricCount()
const answers = await Promise.all(Array.from({ length: 100 }, async () => (await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(tokenReview(fresh)) })).json()))
const validations = (await metricCount()) - before
ours.kill()

const row = (name, r) => `| ${name} | ${Math.round(r.rps)} | ${r.p50} | ${r.p99} | ${(r.rps / results.bare.rps).toFixed(2)} | ${r.errors} |`
console.log(`\nRun ${new Date().toISOString()} on ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}; autocannon ${CONNECTIONS} connections × ${DURATION} s each, HTTPS on 127.0.0.1.\n`)
console.log('| case | req/s | p50 ms | p99 ms | ratio to bare route | errors |')
console.log('|---|---|---|---|---|---|')
console.log(row('bare Fastify TLS route (yardstick)', results.bare))
console.log(row('TokenReview, token cached', results.tokenReviewCached))
console.log(row('SubjectAccessReview, 1,000-entry policy, decision cache hit', results.sarHit))
console.log(row('SubjectAccessReview, 1,000-entry policy, decision cache miss', results.sarMiss))
console.log(`\nSingle flight: 100 concurrent TokenReviews of one fresh token → ${validations} Keystone validation(s); ${answers.filter(a => a.status?.authenticated === true).length}/100 authenticated.`)
