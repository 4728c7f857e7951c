// Attack kept as a regression test (security review, finding 3): whoever can reach the webhook
// floods it with made-up tokens.
// - Before: one shared token cache (10,000 entries) held valid and rejected tokens alike, so
//   10,000 distinct junk tokens evicted every cached user identity (each user's next review went to
//   Keystone again), and nothing bounded the validations sent to Keystone at once: N junk tokens
//   sent together were N Keystone requests at once.
// - Now: rejected tokens live in their own small LRU (--token-cache-negative-size), and
//   --keystone-max-inflight bounds the validations talking to Keystone; as many more wait, and the
//   rest are answered HTTP 500 with the reason at once.
// Everything is asserted with counts (requests seen by the Keystone in front of which a proxy sits),
// never with timings. The bound is set through KEYSTONE_MAX_INFLIGHT so that the code before the
// change (which ignores the unknown variable) runs the same test and fails it.
import t from 'tap'
import { createServer, request as httpRequest, Agent, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { loadSeed, passwordToken } from '../helpers/keystone.js'
import { startWebhook, tokenReview, type TestWebhook } from '../helpers/webhook.js'
import { startFaultProxy } from '../helpers/fault-proxy.js'
import { until } from './fault-keystone.js'

const seed = loadSeed()
const JUNK = 10_000

/** A made-up token of the shape of a Fernet token: printable, so it does go to Keystone. */
const junk = (i: number, tag = 'a'): string => `gAAAAAB-junk-${tag}-${String(i).padStart(6, '0')}-${'x'.repeat(120)}`

async function review (wh: TestWebhook, token: string): Promise<{ status: number, authenticated: unknown, error: unknown }> {
  const r = await wh.post('/webhook', tokenReview(token))
  return { status: r.status, authenticated: r.body?.status?.authenticated, error: r.body?.status?.error }
}

/** Runs `fn` over 0..n-1, `width` at a time. */
async function pool<T> (n: number, width: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n)
  let next = 0
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) {
      const i = next++
      out[i] = await fn(i)
    }
  }))
  return out
}

t.test(`${JUNK} distinct junk tokens do not evict a cached identity: it is answered with no Keystone call`, async t => {
  const proxy = await startFaultProxy(seed.auth_url)
  const wh = await startWebhook(['--keystone-url', proxy.url])
  t.teardown(async () => { await wh.close(); await proxy.close() })
  const good = await passwordToken(seed, 'demo', 'demo')

  const first = await review(wh, good)
  t.same([first.status, first.authenticated], [200, true], 'the user\'s token is valid')
  const afterLogin = { ...proxy.counts }
  t.ok(afterLogin.passed >= 1, 'it was validated with Keystone')
  t.same([(await review(wh, good)).authenticated, proxy.counts.passed], [true, afterLogin.passed], 'and is now answered from the cache')

  // The flood: the proxy answers every Keystone request 404 (token not found) itself, so the real
  // Keystone is spared, and any Keystone request for the good token would be a 404 as well.
  proxy.set({ mode: 'status', code: 404 })
  const answers = await pool(JUNK, 16, async i => await review(wh, junk(i)))
  t.equal(answers.filter(a => a.status === 200 && a.authenticated === false).length, JUNK, `all ${JUNK} junk tokens answered 200 authenticated: false`)
  t.equal(proxy.counts.status, JUNK, 'each junk token was one Keystone request')

  const again = await review(wh, good)
  t.same([again.status, again.authenticated], [200, true], 'after the flood the user is still authenticated')
  t.equal(proxy.counts.status, JUNK, 'with no Keystone request: the identity was still cached')
  t.equal(proxy.counts.passed, afterLogin.passed, 'no request reached the real Keystone either')

  // The rejected-token cache is small and does its job for recent rejections.
  t.equal((await review(wh, junk(JUNK - 1))).authenticated, false)
  t.equal(proxy.counts.status, JUNK, 'a recently rejected token is answered from the rejected-token cache')
  t.equal((await review(wh, junk(0))).authenticated, false)
  t.equal(proxy.counts.status, JUNK + 1, 'an old one was pushed out of that small cache (default 1000) and asked again')
  t.equal(await wh.metric('k8s_keystone_auth_token_cache_entries'), 1 + 1000, 'one identity plus at most 1000 rejections')
})

/**
 * A Keystone front that holds every token validation (GET .../auth/tokens) until released, and
 * counts how many it holds at once; everything else (the readiness probe) goes straight through.
 */
async function startGatedKeystone (upstream: string): Promise<{ url: string, readonly held: number, readonly peak: number, readonly seen: number, release: () => void, close: () => Promise<void> }> {
  const up = new URL(upstream)
  // A fresh connection per request: the dev Keystone (uWSGI) closes its connections after each answer.
  const agent = new Agent({ keepAlive: false })
  const sockets = new Set<Socket>()
  let open = true
  let held = 0
  let peak = 0
  let seen = 0
  const waiting: Array<() => void> = []
  const forward = (req: IncomingMessage, res: ServerResponse): void => {
    const out = httpRequest({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: { ...req.headers, host: up.host }, agent }, upRes => {
      // Hop-by-hop headers stay with their hop: Keystone's `Connection: close` would close the
      // webhook's pooled connection under a request already on its way (then retried).
      const { connection: _c, 'keep-alive': _k, ...headers } = upRes.headers
      res.writeHead(upRes.statusCode ?? 502, headers)
      upRes.pipe(res)
    })
    out.on('error', () => res.destroy())
    req.pipe(out)
  }
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || !/\/auth\/tokens(\?|$)/.test(req.url ?? '')) { forward(req, res); return }
    seen++
    held++
    peak = Math.max(peak, held)
    const go = (): void => { held--; forward(req, res) }
    if (open) go()
    else waiting.push(go)
  })
  server.on('connection', s => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  open = false
  const port = (server.address() as { port: number }).port
  return {
    url: `http://127.0.0.1:${port}${up.pathname}`,
    get held () { return held },
    get peak () { return peak },
    get seen () { return seen },
    release: () => { open = true; for (const go of waiting.splice(0)) go() },
    close: async () => {
      for (const s of sockets) s.destroy()
      agent.destroy()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}

t.test('--keystone-max-inflight: Keystone never sees more validations at once than the bound; the excess is a 500 with the reason', async t => {
  const BOUND = 4
  const SENT = 20
  const front = await startGatedKeystone(seed.auth_url)
  const wh = await startWebhook(['--keystone-url', front.url], { env: { KEYSTONE_MAX_INFLIGHT: String(BOUND) } })
  t.teardown(async () => { front.release(); await wh.close(); await front.close() })

  // SENT distinct junk tokens at once, while Keystone answers none of them.
  const answered: Array<{ i: number, status: number, authenticated: unknown, error: unknown }> = []
  const all = Array.from({ length: SENT }, async (_, i) => {
    const a = { i, ...await review(wh, junk(i, 'burst')) }
    answered.push(a)
    return a
  })
  // BOUND are at Keystone, BOUND wait their turn, and the rest are answered at once; without a
  // bound all SENT reach Keystone. Wait for either (a state, not a duration).
  const settled = await until(async () => front.held > BOUND || front.held + answered.length >= SENT - BOUND, 30_000, 20)
  t.ok(settled, `state reached: ${front.held} held by Keystone, ${answered.length} answered`)
  t.equal(front.peak, BOUND, `Keystone held at most ${BOUND} validations at once (peak ${front.peak})`)
  t.equal(answered.length, SENT - 2 * BOUND, `${SENT - 2 * BOUND} reviews answered while Keystone was busy`)
  for (const a of answered) {
    t.equal(a.status, 500, 'HTTP 500: kube-apiserver retries and caches nothing')
    t.equal(a.authenticated, false)
    t.match(a.error, /--keystone-max-inflight/, 'status.error says why')
  }
  t.equal(await wh.metric('k8s_keystone_auth_keystone_validations_refused_total'), SENT - 2 * BOUND, 'counted in a metric')
  t.equal(await wh.metric('k8s_keystone_auth_keystone_validations', { state: 'running' }), BOUND)
  t.equal(await wh.metric('k8s_keystone_auth_keystone_validations', { state: 'waiting' }), BOUND)

  // Keystone answers: the running ones finish and hand their slots to the waiting ones.
  front.release()
  const results = await Promise.all(all)
  t.equal(results.filter(a => a.status === 200 && a.authenticated === false).length, 2 * BOUND, 'the ones that got a turn were answered (rejected by Keystone)')
  t.equal(front.seen, 2 * BOUND, 'Keystone saw only those')
  t.equal(front.peak, BOUND, 'still never more than the bound at once')
  t.equal(await wh.metric('k8s_keystone_auth_keystone_validations', { state: 'running' }), 0, 'every slot was given back')

  // A refused token was not cached: asked again with Keystone free, it is validated.
  const refused = answered[0]?.i as number
  const retry = await review(wh, junk(refused, 'burst'))
  t.same([retry.status, retry.authenticated], [200, false], 'a refused token is answered when asked again')
  t.equal(front.seen, 2 * BOUND + 1, 'by Keystone: the refusal was not cached')
})
