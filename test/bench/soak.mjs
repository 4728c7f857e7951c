// Soak: mixed TokenReview + SubjectAccessReview load against our webhook (bin/, dist/) backed by
// the real Keystone. First the maximum is measured (SOAK_MAX_SECONDS at full speed), then the load
// runs SOAK_MINUTES at SOAK_RATIO of it. Reports errors (transport errors, non-2xx, timeouts, and
// wrong answers seen by a checker that reviews a known token and request every second), RSS of
// the server (all its processes) at the start and the end, and p50/p99. Exits 1 on any error.
//
//   npm run build && node test/bench/soak.mjs                    # 10 minutes at 70 %
//   SOAK_MINUTES=1 node test/bench/soak.mjs                      # short check
//   SOAK_WORKERS=2 node test/bench/soak.mjs                      # the server with --workers 2
//   node test/bench/soak.mjs workers                             # max req/s, 1 worker vs N, one run
//
// Mix: 50 % TokenReview over a pool of SOAK_TOKENS real tokens (cache TTL 1 m, so each token goes
// back to Keystone every minute), 50 % SubjectAccessReview over 1,000 users against a 1,000-entry
// policy (decision cache hits and misses).
import autocannon from 'autocannon'
import { readFileSync, readdirSync } from 'node:fs'
import { cpus, availableParallelism } from 'node:os'
import { join } from 'node:path'
import { ROOT, benchDir, login, sar as sarBody, seed, startProcess, tokenReview as tokenReviewBody } from './common.mjs'

const MODE = process.argv[2] ?? 'soak'
const MINUTES = Number(process.env.SOAK_MINUTES ?? 10)
const RATIO = Number(process.env.SOAK_RATIO ?? 0.7)
const MAX_SECONDS = Number(process.env.SOAK_MAX_SECONDS ?? 15)
const CONNECTIONS = Number(process.env.SOAK_CONNECTIONS ?? 32)
const WORKERS = Number(process.env.SOAK_WORKERS ?? 1)
const N_TOKENS = Number(process.env.SOAK_TOKENS ?? 20)
const PORT = Number(process.env.SOAK_PORT ?? 18551)
const dir = benchDir('ksa-soak-')

const tokenReview = token => JSON.stringify(tokenReviewBody(token))
const sar = (user, verb) => JSON.stringify(sarBody(user, verb))

function startServer (workers, port) {
  return startProcess([join(ROOT, 'bin/k8s-keystone-auth'), '--listen', `127.0.0.1:${port}`, '--tls-cert-file', join(dir, 'cert.pem'),
    '--tls-private-key-file', join(dir, 'key.pem'), '--keystone-url', seed.auth_url, '--keystone-policy-file', join(dir, 'policy.json'),
    '--log-level', 'warn', '--workers', String(workers)], `https://127.0.0.1:${port}/healthz`)
}

async function stopServer (child) {
  child.removeAllListeners('exit')
  const done = new Promise(resolve => child.once('exit', code => resolve(code)))
  child.kill('SIGTERM')
  return await done
}

/** RSS of the server: the process and its children (the workers), in MiB. */
function rssMiB (pid) {
  const kb = p => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0)
  let total = kb(pid)
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    let kids = ''
    try { kids = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8') } catch {}
    for (const c of kids.split(/\s+/).filter(Boolean)) { try { total += kb(c) } catch {} }
  }
  return Math.round(total / 1024 * 10) / 10
}

function mixedRequests (tokens) {
  let i = 0
  return [{
    method: 'POST',
    path: '/webhook',
    headers: { 'content-type': 'application/json' },
    setupRequest: req => {
      const n = i++
      const body = n % 2 === 0 ? tokenReview(tokens[(n >> 1) % tokens.length]) : sar(`user-${(n >> 1) % 1000}`)
      return { ...req, body }
    }
  }]
}

async function load (port, tokens, extra) {
  const r = await autocannon({ url: `https://127.0.0.1:${port}`, connections: CONNECTIONS, pipelining: 1, timeout: 10, requests: mixedRequests(tokens), ...extra })
  return { rps: r.requests.average, total: r.requests.total, p50: r.latency.p50, p99: r.latency.p99, p999: r.latency.p99_9, max: r.latency.max, errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx }
}

const tokens = []
for (let i = 0; i < N_TOKENS; i++) tokens.push(await login())
const machine = `${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}`

if (MODE === 'workers') {
  // Max req/s with 1 worker and with N (default: every core), one after the other in one run.
  const n = Number(process.env.SOAK_WORKERS_N ?? availableParallelism())
  const rows = []
  for (const w of [1, n]) {
    const s = await startServer(w, PORT)
    await load(PORT, tokens, { duration: 3 }) // warm-up: caches, JIT
    const r = await load(PORT, tokens, { duration: MAX_SECONDS })
    r.rss = rssMiB(s.pid)
    await stopServer(s)
    rows.push([w, r])
  }
  const base = rows[0][1].rps
  console.log(`\nRun ${new Date().toISOString()} on ${machine}; autocannon ${CONNECTIONS} connections × ${MAX_SECONDS} s, mixed TokenReview/SubjectAccessReview, HTTPS on 127.0.0.1 (autocannon shares the machine).\n`)
  console.log('| workers | req/s | ratio to 1 worker | p50 ms | p99 ms | errors | RSS MiB (all processes) |')
  console.log('|---|---|---|---|---|---|---|')
  for (const [w, r] of rows) console.log(`| ${w} | ${Math.round(r.rps)} | ${(r.rps / base).toFixed(2)} | ${r.p50} | ${r.p99} | ${r.errors + r.non2xx + r.timeouts} | ${r.rss} |`)
  process.exit(rows.some(([, r]) => r.errors + r.non2xx + r.timeouts > 0) ? 1 : 0)
}

const server = await startServer(WORKERS, PORT)
await load(PORT, tokens, { duration: 3 })
const max = await load(PORT, tokens, { duration: MAX_SECONDS })
const rate = Math.max(1, Math.floor(max.rps * RATIO))

// Checker: every second, a known token must authenticate and a known request must be allowed
// (and a wrong verb denied). A wrong answer counts as an error.
const checkerToken = tokens[0]
let checks = 0
let wrong = 0
const wrongSamples = []
const checker = setInterval(async () => {
  try {
    const [a, b, c] = await Promise.all([
      fetch(`https://127.0.0.1:${PORT}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: tokenReview(checkerToken) }).then(r => r.json()),
      fetch(`https://127.0.0.1:${PORT}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: sar('checker') }).then(r => r.json()),
      fetch(`https://127.0.0.1:${PORT}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: sar('checker', 'delete') }).then(r => r.json())
    ])
    checks++
    if (a.status?.authenticated !== true || b.status?.allowed !== true || c.status?.allowed !== false) {
      wrong++
      if (wrongSamples.length < 5) wrongSamples.push(JSON.stringify([a, b, c]).slice(0, 300))
    }
  } catch (err) {
    checks++
    wrong++
    if (wrongSamples.length < 5) wrongSamples.push(String(err))
  }
}, 1000)

const rssSamples = [{ s: 0, rss: rssMiB(server.pid) }]
const t0 = Date.now()
const sampler = setInterval(() => { rssSamples.push({ s: Math.round((Date.now() - t0) / 1000), rss: rssMiB(server.pid) }) }, 10_000)
const soak = await load(PORT, tokens, { duration: Math.round(MINUTES * 60), overallRate: rate })
clearInterval(sampler)
clearInterval(checker)
rssSamples.push({ s: Math.round((Date.now() - t0) / 1000), rss: rssMiB(server.pid) })
const metrics = await (await fetch(`https://127.0.0.1:${PORT}/metrics`)).text()
const sum = (name, match = '') => metrics.split('\n').filter(l => l.startsWith(name) && l.includes(match)).reduce((a, l) => a + Number(l.split(' ').pop()), 0)
const exitCode = await stopServer(server)
const reasons = [...new Set(server.logTail(50_000).split('\n').map(l => { try { return JSON.parse(l).reason } catch { return undefined } }).filter(Boolean))]

const errors = soak.errors + soak.non2xx + soak.timeouts + wrong
const rssStart = rssSamples[0].rss
const rssEnd = rssSamples[rssSamples.length - 1].rss
const rssMax = Math.max(...rssSamples.map(s => s.rss))
console.log(`\nRun ${new Date().toISOString()} on ${machine}; server --workers ${WORKERS}; autocannon ${CONNECTIONS} connections; HTTPS on 127.0.0.1; real Keystone ${seed.auth_url}.`)
console.log(`Mix: 50 % TokenReview (${N_TOKENS} real tokens, cache TTL 1 m), 50 % SubjectAccessReview (1,000 users, 1,000-entry policy).\n`)
console.log('| phase | duration | req/s | requests | p50 ms | p99 ms | p99.9 ms | max ms | errors |')
console.log('|---|---|---|---|---|---|---|---|---|')
console.log(`| maximum (full speed) | ${MAX_SECONDS} s | ${Math.round(max.rps)} | ${max.total} | ${max.p50} | ${max.p99} | ${max.p999} | ${max.max} | ${max.errors + max.non2xx + max.timeouts} |`)
console.log(`| soak at ${Math.round(RATIO * 100)} % (${rate} req/s asked) | ${MINUTES} min | ${Math.round(soak.rps)} | ${soak.total} | ${soak.p50} | ${soak.p99} | ${soak.p999} | ${soak.max} | ${errors} |`)
console.log(`\nSoak errors: ${soak.errors} transport, ${soak.non2xx} non-2xx, ${soak.timeouts} timeouts, ${wrong} wrong answers in ${checks} checks.${wrongSamples.length > 0 ? ' Samples: ' + wrongSamples.join(' | ') : ''}`)
console.log(`Server RSS (MiB, all processes): start ${rssStart}, end ${rssEnd}, max ${rssMax}; end/start ${(rssEnd / rssStart).toFixed(2)}. Samples every 10 s: ${rssSamples.map(s => `${s.s}s:${s.rss}`).join(' ')}`)
console.log(`Keystone validations during the run: ${sum('k8s_keystone_auth_keystone_requests_total{operation="validate"')} (${sum('k8s_keystone_auth_keystone_requests_total', 'status="error"')} without an answer); server exit code after SIGTERM: ${exitCode}.`)
if (reasons.length > 0) console.log(`Server warnings (reasons): ${reasons.slice(0, 5).join(' | ')}`)
process.exit(errors > 0 || exitCode !== 0 ? 1 : 0)
