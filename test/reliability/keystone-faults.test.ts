// Keystone faults through a fault-injecting proxy (test/helpers/fault-proxy.ts) between our
// webhook and a second, real Keystone (port 5002; the main one on :5000 is never touched).
// For each fault: the answer for a cached identity, a cached rejection and a new token, /healthz,
// /readyz where it changes, and recovery once the fault ends. Recovery times are printed as
// comments and written to $KSA_RELIABILITY_OUT/faults.json (figures, not pass/fail).
import t, { type Test } from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { passwordToken, type Seed } from '../helpers/keystone.js'
import { startWebhook, tokenReview, type TestWebhook } from '../helpers/webhook.js'
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js'
import { ensureFaultKeystone, faultKeystone, until } from './fault-keystone.js'

t.setTimeout(15 * 60_000)

const TIMEOUT_MS = 1000
const seed: Seed = ensureFaultKeystone()
const figures: Record<string, unknown> = {}
const outDir = process.env.KSA_RELIABILITY_OUT ?? join(tmpdir(), 'ksa-reliability')

let proxy: FaultProxy
let wh: TestWebhook
let cachedToken: string
const badToken = 'gAAAAA-not-a-keystone-token-' + 'x'.repeat(40)

const sar = {
  apiVersion: 'authorization.k8s.io/v1',
  kind: 'SubjectAccessReview',
  spec: { user: 'demo', groups: [], extra: { 'alpha.kubernetes.io/identity/roles': ['member'], 'alpha.kubernetes.io/identity/project/name': ['demo'] }, resourceAttributes: { namespace: 'default', verb: 'get', resource: 'pods' } }
}

async function review (token: string): Promise<{ status: number, authenticated: unknown, error: unknown }> {
  const r = await wh.post('/webhook', tokenReview(token))
  return { status: r.status, authenticated: r.body?.status?.authenticated, error: r.body?.status?.error }
}

/** The state every fault is compared with: a cached identity, a cached "no", answers for SARs. */
async function checkCachedAnswers (t: Test, during: string): Promise<void> {
  const c = await review(cachedToken)
  t.same([c.status, c.authenticated], [200, true], `${during}: a cached identity is still answered authenticated`)
  const b = await review(badToken)
  t.same([b.status, b.authenticated], [200, false], `${during}: a cached rejection is still answered false`)
  const s = await wh.post('/webhook', sar)
  t.same([s.status, s.body?.status?.allowed], [200, true], `${during}: SubjectAccessReviews do not need Keystone`)
  t.equal((await wh.get('/healthz')).status, 200, `${during}: /healthz 200`)
}

/** A new token during the fault: HTTP 500 with the reason, and not cached (the next try asks again). */
async function checkNewTokenFails (t: Test, during: string, reason: RegExp, reached: () => number, newToken?: string): Promise<void> {
  const token = newToken ?? await passwordToken(seed, 'demo', 'demo')
  const before = reached()
  const r1 = await review(token)
  t.equal(r1.status, 500, `${during}: a new token is an HTTP 500 (kube-apiserver retries, caches nothing)`)
  t.equal(r1.authenticated, false)
  t.match(r1.error, reason, `${during}: status.error says why`)
  t.ok(reached() > before, `${during}: the review went to the (faulty) Keystone`)
  const mid = reached()
  const r2 = await review(token)
  t.equal(r2.status, 500, `${during}: asked again, still 500`)
  t.ok(reached() > mid, `${during}: the failure was not cached: the second review went to Keystone again`)
}

/** After the fault: a new token authenticates again; returns ms from the end of the fault. */
/** `token` is new to the webhook, issued before the fault ends (so its issue is not timed). */
async function recovery (t: Test, during: string, token: string, since: number): Promise<number> {
  let ms = -1
  const ok = await until(async () => {
    const r = await review(token)
    if (r.status === 200 && r.authenticated === true) { ms = Date.now() - since; return true }
    return false
  }, 60_000, 100)
  t.ok(ok, `${during}: a new token authenticates again after the fault ends`)
  return ms
}

async function readyz (): Promise<{ status: number, detail: unknown }> {
  const r = await wh.get('/readyz')
  return { status: r.status, detail: r.body?.checks?.keystone?.detail }
}

t.before(async () => {
  proxy = await startFaultProxy(seed.auth_url)
  const policy = join(tmpdir(), `ksa-faults-policy-${process.pid}.json`)
  writeFileSync(policy, JSON.stringify([{ users: { roles: ['member'], projects: ['demo'] }, resource_permissions: { 'default/pods': ['get'] } }]))
  wh = await startWebhook([
    '--keystone-url', proxy.url,
    '--keystone-timeout', `${TIMEOUT_MS}ms`,
    '--token-cache-ttl', '10m',
    '--token-cache-negative-ttl', '10m',
    '--keystone-policy-file', policy
  ], { mtls: true }) // /readyz names the cause to a client with a certificate only
  cachedToken = await passwordToken(seed, 'demo', 'demo')
  t.same(await review(cachedToken), { status: 200, authenticated: true, error: undefined }, 'healthy: the identity is cached')
  t.same((await review(badToken)).authenticated, false, 'healthy: the bad token is cached as rejected')
  t.ok(await until(async () => (await readyz()).status === 200, 30_000), 'healthy: ready')
})

t.teardown(async () => {
  try { faultKeystone('start') } catch {}
  await wh?.close()
  await proxy?.close()
  mkdirSync(outDir, { recursive: true })
  writeFileSync(join(outDir, 'faults.json'), JSON.stringify({ keystoneTimeoutMs: TIMEOUT_MS, ...figures }, null, 2) + '\n')
})

t.afterEach(async () => { proxy.set({ mode: 'pass' }) })

t.test('latency below --keystone-timeout: normal answers', async t => {
  proxy.set({ mode: 'latency', ms: TIMEOUT_MS / 5 })
  const token = await passwordToken(seed, 'demo', 'demo')
  const before = proxy.counts.delayed
  t.same(await review(token), { status: 200, authenticated: true, error: undefined }, 'a new token authenticates through the slow Keystone')
  t.ok(proxy.counts.delayed > before, 'its Keystone calls were delayed')
  await checkCachedAnswers(t, 'slow Keystone')
})

t.test('latency beyond --keystone-timeout: 500 for new tokens, cached ones answered, recovery', async t => {
  proxy.set({ mode: 'latency', ms: TIMEOUT_MS * 5 })
  await checkNewTokenFails(t, 'too slow', /no answer within 1000 ms/, () => proxy.counts.delayed)
  await checkCachedAnswers(t, 'too slow')
  const fresh = await passwordToken(seed, 'demo', 'demo')
  proxy.set({ mode: 'pass' })
  figures.latencyBeyondTimeout = { recoveryMs: await recovery(t, 'too slow', fresh, Date.now()) }
})

for (const code of [500, 502, 503]) {
  t.test(`Keystone answers ${code}: 500, not cached; cached identities answered`, async t => {
    proxy.set({ mode: 'status', code })
    await checkNewTokenFails(t, `HTTP ${code}`, new RegExp(`Keystone answered HTTP ${code}`), () => proxy.counts.status)
    await checkCachedAnswers(t, `HTTP ${code}`)
    if (code === 503) {
      // Readiness: 503 once Keystone has not answered usefully for the freshness window (30 s).
      const since = Date.now()
      t.ok(await until(async () => (await readyz()).status === 503, 60_000, 500), '/readyz turns 503 while Keystone answers only 5xx')
      figures.status503ReadyzFalseAfterMs = Date.now() - since
      t.match((await readyz()).detail, /answered 503/, '/readyz names the cause')
      await checkCachedAnswers(t, 'HTTP 503, not ready')
    }
    const fresh = await passwordToken(seed, 'demo', 'demo')
    proxy.set({ mode: 'pass' })
    const since = Date.now()
    figures[`status${code}`] = { recoveryMs: await recovery(t, `HTTP ${code}`, fresh, since) }
    if (code === 503) {
      t.ok(await until(async () => (await readyz()).status === 200, 60_000, 200), '/readyz 200 again')
      ;(figures.status503 as Record<string, number>).readyAgainMs = Date.now() - since
    }
  })
}

t.test('connection resets: 500, not cached; cached identities answered', async t => {
  proxy.set({ mode: 'reset' })
  await checkNewTokenFails(t, 'reset', /Keystone at .* is unreachable/, () => proxy.counts.reset)
  await checkCachedAnswers(t, 'reset')
  const fresh = await passwordToken(seed, 'demo', 'demo')
  proxy.set({ mode: 'pass' })
  figures.reset = { recoveryMs: await recovery(t, 'reset', fresh, Date.now()) }
})

t.test('blackhole: 500 after the timeout, the server stays responsive, /readyz 503, recovery', async t => {
  proxy.set({ mode: 'blackhole' })
  // Many reviews of new tokens stuck on Keystone at once...
  const tokens = await Promise.all(Array.from({ length: 20 }, async () => await passwordToken(seed, 'demo', 'demo')))
  let settled = 0
  const stuck = tokens.map(async tok => { const r = await review(tok); settled++; return r })
  t.ok(await until(async () => proxy.held > 0, 10_000, 20), 'reviews are held by the blackhole')
  // ...do not stop the others: these are answered while those are still waiting.
  await checkCachedAnswers(t, 'blackhole')
  t.equal(settled, 0, 'cached answers, SARs and /healthz came back while every new-token review was still held')
  t.ok(proxy.held > 0, 'and the blackhole still held reviews then')
  const results = await Promise.all(stuck)
  t.same(results.map(r => r.status), results.map(() => 500), 'every held review ends in 500 (Keystone timeout), none hangs')
  t.ok(results.every(r => /no answer within 1000 ms/.test(String(r.error))), 'status.error: no answer within the timeout')
  await checkNewTokenFails(t, 'blackhole', /no answer within 1000 ms/, () => proxy.counts.blackholed)
  const since = Date.now()
  t.ok(await until(async () => (await readyz()).status === 503, 60_000, 500), '/readyz turns 503')
  figures.blackholeReadyzFalseAfterMs = Date.now() - since
  await checkCachedAnswers(t, 'blackhole, not ready')
  const fresh = await passwordToken(seed, 'demo', 'demo')
  proxy.set({ mode: 'pass' })
  const end = Date.now()
  figures.blackhole = { recoveryMs: await recovery(t, 'blackhole', fresh, end) }
  t.ok(await until(async () => (await readyz()).status === 200, 60_000, 200), '/readyz 200 again')
  ;(figures.blackhole as Record<string, number>).readyAgainMs = Date.now() - end
})

t.test('Keystone killed and restarted: 500, cached identities answered, /readyz 503, recovery', async t => {
  const newToken = await passwordToken(seed, 'demo', 'demo') // issued while Keystone is up, never reviewed
  faultKeystone('stop')
  await checkNewTokenFails(t, 'Keystone killed', /Keystone at .* is unreachable/, () => proxy.counts.upstreamError, newToken)
  await checkCachedAnswers(t, 'Keystone killed')
  const since = Date.now()
  t.ok(await until(async () => (await readyz()).status === 503, 60_000, 500), '/readyz turns 503')
  figures.killedReadyzFalseAfterMs = Date.now() - since
  const startAt = Date.now()
  faultKeystone('start') // returns once Keystone answers GET /v3
  const up = Date.now()
  figures.killed = { keystoneStartMs: up - startAt, recoveryMs: await recovery(t, 'Keystone restarted', newToken, up) }
  t.ok(await until(async () => (await readyz()).status === 200, 60_000, 200), '/readyz 200 again')
  ;(figures.killed as Record<string, number>).readyAgainMs = Date.now() - up
})

t.test('nothing crashed: every 500 was a Keystone-unavailable answer, no internal errors', async t => {
  const internal = wh.logs.filter(l => /"request failed"|internal error/.test(l))
  t.same(internal, [], 'no "request failed" / internal error log lines')
  t.ok(await wh.metric('k8s_keystone_auth_reviews_total', { kind: 'TokenReview', outcome: 'error' }) > 0, 'errors are counted as outcome="error"')
  t.equal((await wh.get('/healthz')).status, 200)
  t.comment(`figures: ${JSON.stringify(figures)}`)
})
