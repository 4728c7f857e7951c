// The webhook's --keystone-url: the forms gophercloud accepts (/v2.0, no version) reach /v3, and a
// URL whose path is no Keystone v3 API is found at start-up (GET of the v3 root: not Keystone's
// version document), logged, and makes /readyz fail with the reason, instead of a ready webhook
// refusing every token (which kube-apiserver would cache). Reviews then answer 500 (retried, not
// cached). It is checked again, so that fixing the target makes the pod ready. A Keystone that is
// merely down keeps the freshness rule it had. Against the real Keystone.
import t from 'tap'
import { createServer, request as httpRequest, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { loadSeed, passwordToken } from '../helpers/keystone.js'
import { startWebhook, tokenReview, type TestWebhook } from '../helpers/webhook.js'

const seed = loadSeed()
const root = new URL(seed.auth_url).origin

async function until (fn: () => Promise<boolean>, ms: number, every = 200): Promise<boolean> {
  const end = Date.now() + ms
  for (;;) {
    if (await fn()) return true
    if (Date.now() > end) return false
    await new Promise(resolve => setTimeout(resolve, every))
  }
}

/** A front for Keystone: `wrong` answers every path with a web server's HTML 404, `pass` forwards. */
async function startFront (): Promise<{ url: string, mode: 'wrong' | 'pass' | 'down', close: () => Promise<void> }> {
  const t = new URL(seed.auth_url)
  const front = { url: '', mode: 'wrong' as 'wrong' | 'pass' | 'down', close: async () => {} }
  const server: Server = createServer((req, res) => {
    if (front.mode === 'down') { req.socket.destroy(); return }
    if (front.mode === 'wrong') {
      req.resume()
      res.writeHead(404, { 'content-type': 'text/html' })
      res.end('<html><body><h1>404 Not Found</h1></body></html>')
      return
    }
    const up = httpRequest({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: { ...req.headers, host: t.host }, agent: false }, upRes => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers)
      upRes.pipe(res)
    })
    up.on('error', () => { res.writeHead(502); res.end() })
    req.pipe(up)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()))
  front.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v3`
  front.close = async () => {
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => resolve()))
  }
  return front
}

async function readyz (wh: TestWebhook): Promise<{ status: number, detail: unknown }> {
  const r = await wh.get('/readyz')
  return { status: r.status, detail: r.body?.checks?.keystone?.detail }
}

t.test('a path that is no Keystone v3 API: logged at start, /readyz fails with the reason, reviews 500', async t => {
  const wrong = `${root}/identity/v3`
  const reason = `no Keystone v3 API at ${wrong} (HTTP 404)`
  const wh = await startWebhook(['--keystone-url', wrong], { mtls: true })
  t.teardown(wh.close)
  t.ok(await until(async () => wh.logs.some(l => l.includes(reason)), 10_000), 'logged at start-up')
  const line = JSON.parse(wh.logs.find(l => l.includes(reason)) as string)
  t.equal(line.level, 50, 'at error level')
  t.match(line.msg, 'check --keystone-url')
  const r = await readyz(wh)
  t.equal(r.status, 503, 'not ready')
  t.equal(r.detail, reason, '/readyz says why')
  const token = await passwordToken(seed, 'demo', 'demo')
  for (const attempt of [1, 2]) {
    const res = await wh.post('/webhook', tokenReview(token))
    t.equal(res.status, 500, `review ${attempt}: HTTP 500, which kube-apiserver does not cache`)
    t.equal(res.body?.status?.authenticated, false)
    t.match(res.body?.status?.error, reason, `review ${attempt}: status.error says why`)
  }
  const stillNot = await readyz(wh)
  t.same(stillNot, r, 'the 404s of reviews do not make it ready')
})

t.test('the URL\'s target fixed later: checked again, ready, tokens authenticate', async t => {
  const front = await startFront()
  t.teardown(front.close)
  const wh = await startWebhook(['--keystone-url', front.url], { mtls: true })
  t.teardown(wh.close)
  const reason = `no Keystone v3 API at ${front.url} (HTTP 404)`
  t.ok(await until(async () => (await readyz(wh)).detail === reason, 10_000), 'not ready, with the reason')
  const token = await passwordToken(seed, 'demo', 'demo')
  t.equal((await wh.post('/webhook', tokenReview(token))).status, 500, 'a review while it is wrong: 500')
  front.mode = 'pass'
  const since = Date.now()
  t.ok(await until(async () => (await readyz(wh)).status === 200, 20_000), 'ready once Keystone answers there')
  t.comment(`ready ${Date.now() - since} ms after the fix`)
  t.ok(wh.logs.some(l => l.includes('Keystone v3 API found')), 'the fix is logged')
  const res = await wh.post('/webhook', tokenReview(token))
  t.same([res.status, res.body?.status?.authenticated, res.body?.status?.user?.username], [200, true, 'demo'], 'the token that got 500 authenticates now')
})

t.test('a Keystone that is down is not called a wrong URL', async t => {
  const front = await startFront()
  front.mode = 'down'
  t.teardown(front.close)
  const wh = await startWebhook(['--keystone-url', front.url], { mtls: true })
  t.teardown(wh.close)
  const token = await passwordToken(seed, 'demo', 'demo')
  const res = await wh.post('/webhook', tokenReview(token))
  t.equal(res.status, 500)
  t.match(res.body?.status?.error, /is unreachable/)
  const r = await readyz(wh)
  t.equal(r.status, 503, 'not ready: no answer from Keystone yet, as before')
  t.notMatch(String(r.detail), /no Keystone v3 API/)
  t.notOk(wh.logs.some(l => l.includes('no Keystone v3 API')), 'nothing logged about the URL')
})

t.test('--keystone-url ending in /v2.0, or with no version, reaches /v3 (as gophercloud)', async t => {
  for (const url of [`${root}/v2.0`, root, `${root}/`]) {
    const wh = await startWebhook(['--keystone-url', url])
    t.teardown(wh.close)
    const res = await wh.post('/webhook', tokenReview(await passwordToken(seed, 'demo', 'demo')))
    t.same([res.status, res.body?.status?.authenticated], [200, true], `${url}: authenticated`)
    t.ok(await until(async () => (await readyz(wh)).status === 200, 10_000), `${url}: ready`)
  }
})
