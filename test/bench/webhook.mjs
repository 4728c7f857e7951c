// npm run bench: our webhook against a bare Fastify TLS route, in one run on one machine, so the
// ratios hold even on a noisy machine. Needs the real Keystone (scripts/bench.sh starts it).
import autocannon from 'autocannon'
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir, cpus } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const DURATION = Number(process.env.BENCH_SECONDS ?? 10)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32)
const seed = JSON.parse(readFileSync(join(process.env.KEYSTONE_DEV_DIR ?? '/tmp/keystone-dev', 'seed.json'), 'utf8'))
const dir = mkdtempSync(join(tmpdir(), 'ksa-bench-'))
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
  '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' })
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0' // self-signed, loopback only, bench only

// A generated 1,000-entry v2 policy: 999 entries for other projects, the last one for demo.
const policy = []
for (let i = 0; i < 999; i++) policy.push({ users: { roles: ['member'], projects: [`project-${i}`] }, resource_permissions: { [`ns-${i}/pods`]: ['get', 'list'], [`ns-${i}/!['secrets']`]: ['get'] } })
policy.push({ users: { roles: ['member'], projects: ['demo'] }, resource_permissions: { '*/pods': ['get', 'list', 'watch'] } })
writeFileSync(join(dir, 'policy.json'), JSON.stringify(policy))

function start (cmd, args, healthUrl) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  child.stderr.on('data', d => { err += String(d) })
  return new Promise((resolve, reject) => {
    child.on('exit', code => reject(new Error(`${cmd} exited ${code}: ${err}`)))
    const poll = async () => {
      try {
        if ((await fetch(healthUrl)).ok) return resolve(child)
      } catch {}
      setTimeout(poll, 100)
    }
    void poll()
  })
}

async function load (url, body, setupRequest) {
  const opts = { url, method: 'POST', connections: CONNECTIONS, pipelining: 1, duration: DURATION, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
  if (setupRequest) opts.requests = [{ setupRequest }]
  const r = await autocannon(opts)
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.non2xx, total: r.requests.total }
}

async function login () {
  const res = await fetch(`${seed.auth_url}/auth/tokens?nocatalog`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { id: seed.users.demo.id, password: seed.users.demo.password } } }, scope: { project: { id: seed.projects.demo.id } } } }) })
  return res.headers.get('x-subject-token')
}

const tokenReview = token => ({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } })
const sar = user => ({
  apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview',
  spec: { user, groups: ['developers'], extra: { 'alpha.kubernetes.io/identity/roles': ['member'], 'alpha.kubernetes.io/identity/project/name': ['demo'] }, resourceAttributes: { namespace: 'demo', verb: 'list', resource: 'pods', version: 'v1' } }
})

const results = {}
const bare = await start(process.execPath, [join(ROOT, 'test/bench/bare-server.mjs'), '18501', join(dir, 'cert.pem'), join(dir, 'key.pem')], 'https://127.0.0.1:18501/healthz')
await load('https://127.0.0.1:18501/webhook', tokenReview('warm-up'))
results.bare = await load('https://127.0.0.1:18501/webhook', tokenReview('x'.repeat(180)))
bare.kill()

const ours = await start(process.execPath, [join(ROOT, 'bin/k8s-keystone-auth'), '--listen', '127.0.0.1:18502', '--tls-cert-file', join(dir, 'cert.pem'),
  '--tls-private-key-file', join(dir, 'key.pem'), '--keystone-url', seed.auth_url, '--keystone-policy-file', join(dir, 'policy.json'), '--log-level', 'warn',
  '--token-cache-ttl', '10m'], 'https://127.0.0.1:18502/healthz')
const url = 'https://127.0.0.1:18502/webhook'
const token = await login()
const first = await (await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(tokenReview(token)) })).json()
if (first.status?.authenticated !== true) throw new Error(`warm-up TokenReview failed: ${JSON.stringify(first)}`)
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
