// npm run bench: our webhook against a bare Fastify TLS route, in one run on one machine, so the
// ratios hold even on a noisy machine. Needs the real Keystone (scripts/bench.sh starts it).
import autocannon from 'autocannon'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { ROOT, benchDir, login, pinning, sar, seed, startProcess, tokenReview } from './common.mjs'

const DURATION = Number(process.env.BENCH_SECONDS ?? 4)
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

// Both servers run side by side and are measured in alternation, round after round: the machine's
// drift (other tenants, thermal, GC of the load generator) then hits every case alike, and each
// ratio compares two measurements taken a few seconds apart.
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8)
const bare = await startProcess([join(ROOT, 'test/bench/bare-server.mjs'), '18501', join(dir, 'cert.pem'), join(dir, 'key.pem')], 'https://127.0.0.1:18501/healthz')
const ours = await startProcess([join(ROOT, 'bin/k8s-keystone-auth'), '--listen', '127.0.0.1:18502', '--tls-cert-file', join(dir, 'cert.pem'),
  '--tls-private-key-file', join(dir, 'key.pem'), '--keystone-url', seed.auth_url, '--keystone-policy-file', join(dir, 'policy.json'), '--log-level', 'warn',
  '--token-cache-ttl', '10m'], 'https://127.0.0.1:18502/healthz')
const bareUrl = 'https://127.0.0.1:18501/webhook'
const url = 'https://127.0.0.1:18502/webhook'
const token = await login()
const first = await (await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(tokenReview(token)) })).json()
if (first.status?.authenticated !== true) throw new Error(`warm-up TokenReview failed: ${JSON.stringify(first)}`)

let n = 0
const cases = {
  bare: () => load(bareUrl, tokenReview('x'.repeat(180))),
  tokenReviewCached: () => load(url, tokenReview(token)),
  sarHit: () => load(url, sar('demo')),
  sarMiss: () => load(url, sar('demo'), req => ({ ...req, body: JSON.stringify(sar(`user-${n++}`)) }))
}
await load(bareUrl, tokenReview('warm-up'), undefined, WARM_UP)
await load(url, tokenReview(token), undefined, WARM_UP)
await load(url, sar('demo'), undefined, WARM_UP)

/** rounds[i][case] = result of that case in round i; the bare route opens each round and closes the last. */
const rounds = []
for (let i = 0; i < ROUNDS; i++) {
  const round = {}
  for (const [name, run] of Object.entries(cases)) round[name] = await run()
  rounds.push(round)
  process.stderr.write(`round ${i + 1}/${ROUNDS}: ${Object.entries(round).map(([k, r]) => `${k} ${Math.round(r.rps)}`).join(', ')}\n`)
}
const closingBare = await cases.bare()
const median = xs => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2 }
// Each case is compared with the bare route at the moment it ran: interpolated between the bare
// measurement that opened its round and the one that opened the next, which cancels a drift.
const names = Object.keys(cases)
const bareAt = (i, name) => {
  const before = rounds[i].bare.rps
  const after = (rounds[i + 1]?.bare ?? closingBare).rps
  return before + (after - before) * names.indexOf(name) / names.length
}
const results = {}
for (const name of names) {
  const rs = rounds.map(r => r[name])
  const ratios = name === 'bare' ? rounds.map(() => 1) : rounds.map((r, i) => r[name].rps / bareAt(i, name))
  results[name] = {
    rps: median(rs.map(r => r.rps)),
    p50: median(rs.map(r => r.p50)),
    p99: median(rs.map(r => r.p99)),
    errors: rs.reduce((a, r) => a + r.errors, 0),
    ratio: median(ratios),
    ratioMin: Math.min(...ratios),
    ratioMax: Math.max(...ratios)
  }
}

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

const row = (name, r) => `| ${name} | ${Math.round(r.rps)} | ${r.p50} | ${r.p99} | ${r.ratio.toFixed(2)} | ${r.ratioMin.toFixed(2)}–${r.ratioMax.toFixed(2)} | ${r.errors} |`
bare.kill()
console.log(`\nRun ${new Date().toISOString()} on ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}; autocannon ${CONNECTIONS} connections × ${DURATION} s per case, ${ROUNDS} rounds in alternation, HTTPS on 127.0.0.1${pinning ? ', servers on CPU 1 and autocannon on CPU 0' : ''}. Medians over the rounds; a ratio is taken within each round.\n`)
console.log('| case | req/s | p50 ms | p99 ms | ratio to bare route (median) | ratio range | errors |')
console.log('|---|---|---|---|---|---|---|')
console.log(row('bare Fastify TLS route (yardstick)', results.bare))
console.log(row('TokenReview, token cached', results.tokenReviewCached))
console.log(row('SubjectAccessReview, 1,000-entry policy, decision cache hit', results.sarHit))
console.log(row('SubjectAccessReview, 1,000-entry policy, decision cache miss', results.sarMiss))
console.log(`\nSingle flight: 100 concurrent TokenReviews of one fresh token → ${validations} Keystone validation(s); ${answers.filter(a => a.status?.authenticated === true).length}/100 authenticated.`)
