// Bounded memory: N distinct tokens (default 1,000,000), each of a distinct user, through the
// Authenticator (dist/, as the server uses it) with a fake Keystone (a loopback HTTP server: every
// token valid, no groups), so that only our code is measured. The token cache must stay within
// --token-cache-size and RSS under MEMORY_RSS_LIMIT_MB; exits 1 otherwise.
//
//   npm run build && node --expose-gc test/bench/memory.mjs
//   MEMORY_TOKENS=1000000 MEMORY_CACHE_SIZE=10000 MEMORY_RSS_LIMIT_MB=320 node --expose-gc test/bench/memory.mjs
import { createServer } from 'node:http'
import { pino } from 'pino'
import { cpus } from 'node:os'
import { Authenticator } from '../../dist/authn/authenticator.js'
import { KeystoneClient } from '../../dist/keystone/client.js'

const TOKENS = Number(process.env.MEMORY_TOKENS ?? 1_000_000)
const CACHE_SIZE = Number(process.env.MEMORY_CACHE_SIZE ?? 10_000)
const RSS_LIMIT_MB = Number(process.env.MEMORY_RSS_LIMIT_MB ?? 320)
const CONCURRENCY = Number(process.env.MEMORY_CONCURRENCY ?? 256)
const gc = globalThis.gc ?? (() => {})
const mb = n => Math.round(n / 2 ** 20 * 10) / 10

// The fake Keystone is a plain HTTP server on loopback (undici's MockAgent keeps ~350 bytes per
// request it intercepts, which would be measured as ours).
const expires = new Date(Date.now() + 3_600_000).toISOString()
const fake = createServer((req, res) => {
  res.setHeader('content-type', 'application/json')
  if (req.url.startsWith('/v3/auth/tokens')) {
    const uid = 'u' + String(req.headers['x-subject-token']).slice(-12)
    res.end(JSON.stringify({ token: { methods: ['password'], expires_at: expires, user: { id: uid, name: uid, domain: { id: 'default', name: 'Default' } }, project: { id: 'p1', name: 'demo', domain: { id: 'default', name: 'Default' } }, roles: [{ id: 'r1', name: 'member' }] } }))
  } else if (req.url.startsWith('/v3/users/')) {
    res.end('{"groups":[],"links":{"next":null}}')
  } else {
    res.statusCode = 404
    res.end('{}')
  }
})
fake.keepAliveTimeout = 60_000
await new Promise(resolve => fake.listen(0, '127.0.0.1', resolve))

const keystone = new KeystoneClient({ url: `http://127.0.0.1:${fake.address().port}/v3` })
const auth = new Authenticator({
  keystone, logger: pino({ level: 'silent' }), cacheMax: CACHE_SIZE, cacheTtlMs: 3_600_000, negativeCacheTtlMs: 3_600_000, groupsCacheTtlMs: 3_600_000
})

const token = i => 'gAAAAAB' + i.toString(36).padStart(12, '0') + 'x'.repeat(160) + i.toString(36).padStart(12, '0')
const samples = []
let peakRss = 0
let maxCache = 0
const sample = (done) => {
  const m = process.memoryUsage()
  peakRss = Math.max(peakRss, m.rss)
  maxCache = Math.max(maxCache, auth.cacheSize)
  gc() // heap after a full GC: what is really retained (a leak grows here; garbage does not)
  samples.push({ done, rssMB: mb(m.rss), heapMB: mb(process.memoryUsage().heapUsed), cache: auth.cacheSize })
}

gc()
const start = process.memoryUsage()
sample(0)
const t0 = performance.now()
let next = 0
let failures = 0
const step = Math.max(1, Math.floor(TOKENS / 10))
async function lane () {
  while (next < TOKENS) {
    const i = next++
    const r = await auth.authenticate(token(i))
    if (r.authenticated !== true) failures++
    if (i % step === step - 1) sample(i + 1)
    if (i % 1000 === 0) maxCache = Math.max(maxCache, auth.cacheSize)
  }
}
await Promise.all(Array.from({ length: CONCURRENCY }, lane))
const seconds = (performance.now() - t0) / 1000
gc()
const end = process.memoryUsage()
sample(TOKENS)
await keystone.close()
fake.close()

const ok = failures === 0 && maxCache <= CACHE_SIZE && peakRss / 2 ** 20 <= RSS_LIMIT_MB
console.log(`\nRun ${new Date().toISOString()} on ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}; ${globalThis.gc ? 'with' : 'WITHOUT'} --expose-gc.`)
console.log(`${TOKENS.toLocaleString('en')} distinct tokens (distinct users) through the Authenticator, fake Keystone (loopback HTTP), ${CONCURRENCY} in flight, --token-cache-size ${CACHE_SIZE}: ${Math.round(TOKENS / seconds).toLocaleString('en')} tokens/s, ${failures} failures.\n`)
console.log('| tokens done | RSS MiB | heapUsed after GC, MiB | token cache entries |')
console.log('|---|---|---|---|')
for (const s of samples) console.log(`| ${s.done.toLocaleString('en')} | ${s.rssMB} | ${s.heapMB} | ${s.cache} |`)
console.log(`\nRSS start ${mb(start.rss)} MiB, peak ${mb(peakRss)} MiB, end ${mb(end.rss)} MiB (limit ${RSS_LIMIT_MB} MiB); heapUsed start ${mb(start.heapUsed)} MiB, end ${mb(end.heapUsed)} MiB after GC; token cache max ${maxCache} (bound ${CACHE_SIZE}).`)
console.log(ok ? 'PASS' : 'FAIL')
process.exitCode = ok ? 0 : 1
