// Security review, finding 9 (second half): no bound on connections, and Node's lenient timeouts
// (120 s for a TLS handshake, 60 s for headers, checked every 30 s), let a client hold sockets
// without end. Now --max-connections (default 1024) closes the excess on arrival, and a
// connection that never finishes its handshake or its request headers is closed after about
// 10 s. Loopback only, at most 16 extra sockets.
import t from 'tap'
import { connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { Agent, request } from 'undici'
import { testCerts } from '../helpers/certs.js'
import { startWebhook, tokenReview, type TestWebhook } from '../helpers/webhook.js'

/** GET over a fresh connection that trusts the test CA. */
async function get (url: string): Promise<{ status: number, text: string }> {
  const agent = new Agent({ connect: { ca: testCerts().ca } })
  try {
    const res = await request(url, { dispatcher: agent })
    return { status: res.statusCode, text: await res.body.text() }
  } finally {
    await agent.close()
  }
}

async function until (cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await cond()) return true
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  return await cond()
}

/** Resolves with how long the socket took to be closed by the other end, or -1 after `ms`. */
async function closedWithin (socket: Socket, ms: number): Promise<number> {
  const started = Date.now()
  return await new Promise(resolve => {
    const timer = setTimeout(() => resolve(-1), ms)
    socket.once('close', () => { clearTimeout(timer); resolve(Date.now() - started) })
  })
}

async function openSocket (port: number): Promise<Socket> {
  return await new Promise((resolve, reject) => {
    const s = netConnect(port, '127.0.0.1', () => resolve(s))
    s.on('error', reject)
  })
}

async function connections (wh: TestWebhook): Promise<number> {
  return await new Promise((resolve, reject) => wh.server.app.server.getConnections((err, n) => err !== null && err !== undefined ? reject(err) : resolve(n)))
}

t.test('--max-connections: the excess is closed on arrival, reviews work again once sockets free up', async t => {
  const LIMIT = 8
  const wh = await startWebhook(['--max-connections', String(LIMIT)])
  t.teardown(wh.close)
  const port = Number(new URL(wh.url).port)
  const held: Socket[] = []
  t.teardown(() => { for (const s of held) s.destroy() })
  for (let i = 0; i < LIMIT; i++) held.push(await openSocket(port))
  t.ok(await until(async () => await connections(wh) === LIMIT, 2000), `${LIMIT} connections open`)

  const excess: Socket[] = []
  for (let i = 0; i < LIMIT; i++) excess.push(netConnect(port, '127.0.0.1').on('error', () => {}))
  const closed = await Promise.all(excess.map(async s => await closedWithin(s, 3000)))
  t.ok(closed.every(ms => ms >= 0), `the ${LIMIT} connections over the limit are closed at once (${closed.join(', ')} ms)`)
  t.equal(excess.reduce((n, s) => n + s.bytesRead, 0), 0, 'unread and unanswered')
  t.equal(await wh.metric('k8s_keystone_auth_connections_refused_total'), LIMIT, 'counted')
  t.ok(wh.logs.some(l => l.includes('--max-connections connections are open')), 'and logged')
  await t.rejects(get(`${wh.url}/healthz`), 'a new HTTPS client is refused too while the slots are held')
  t.equal(await connections(wh), LIMIT, 'the held connections were not disturbed')

  for (const s of held) s.destroy()
  t.ok(await until(async () => await connections(wh) === 0, 2000), 'freed')
  t.equal((await get(`${wh.url}/healthz`)).status, 200, 'a new client is served again')
  const review = await wh.post('/webhook', tokenReview('not-a-keystone-token'))
  t.equal(review.status, 200, 'and a review is answered')
})

t.test('--max-connections: default 1024, KEYSTONE_MAX_CONNECTIONS, 0 = no bound, refused values', async t => {
  const def = await startWebhook()
  t.teardown(def.close)
  t.equal(def.server.app.server.maxConnections, 1024)
  const env = await startWebhook([], { env: { KEYSTONE_MAX_CONNECTIONS: '77' } })
  t.teardown(env.close)
  t.equal(env.server.app.server.maxConnections, 77)
  const none = await startWebhook(['--max-connections', '0'])
  t.teardown(none.close)
  t.notOk(Number(none.server.app.server.maxConnections) > 0, '0: no bound')
  await t.rejects(startWebhook(['--max-connections', '-1']), /--max-connections/)
})

t.test('timeouts: a connection that stalls in the TLS handshake or in its headers is closed after about 10 s', async t => {
  const wh = await startWebhook()
  t.teardown(wh.close)
  const server = wh.server.app.server
  t.same([server.headersTimeout, server.requestTimeout, server.keepAliveTimeout], [10_000, 30_000, 65_000], 'headers 10 s, request 30 s, keep-alive 65 s')
  const port = Number(new URL(wh.url).port)
  const raw = await openSocket(port) // TCP only: never says ClientHello
  const tls = tlsConnect({ port, host: '127.0.0.1', ca: testCerts().ca, servername: 'localhost' }) // TLS, then no request
  tls.on('error', () => {})
  let answer = ''
  tls.on('data', (chunk: Buffer) => { answer += chunk.toString('utf8') }) // read, so that 'close' follows the server's close
  t.teardown(() => { raw.destroy(); tls.destroy() })
  const [rawMs, tlsMs] = await Promise.all([closedWithin(raw, 16_000), closedWithin(tls, 16_000)])
  t.ok(rawMs >= 9000 && rawMs <= 13_000, `no handshake: closed after ${rawMs} ms (Node's default: 120 s)`)
  t.ok(tlsMs >= 9000 && tlsMs <= 14_000, `no request headers: closed after ${tlsMs} ms (Node's default: 60 s, checked every 30 s)`)
  t.match(answer, /^HTTP\/1\.1 408 /, 'with a 408')
})
