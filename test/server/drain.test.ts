// The graceful stop (src/server/http/drain.ts), connection by connection, on raw TLS sockets so
// that what the server does to each one is seen: on close() the listener stops accepting at once;
// a request already arriving and a request sent on a kept-alive connection during the drain are
// answered 200 (never 503), with `Connection: close`, and the server closes those connections after
// the answer; an idle connection is closed by the server; close() resolves when none is left. A
// connection still open when --shutdown-grace ends is cut and the log says so.
import t from 'tap'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { connect as netConnect } from 'node:net'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startWebhook } from '../helpers/webhook.js'
import { until } from '../reliability/fault-keystone.js'

const dir = mkdtempSync(join(tmpdir(), 'ksa-drain-'))
const policyFile = join(dir, 'policy.json')
writeFileSync(policyFile, JSON.stringify([{ users: { roles: ['member'], projects: ['demo'] }, resource_permissions: { 'default/pods': ['get'] } }]))
const SAR = JSON.stringify({ apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: { user: 'demo', extra: { 'alpha.kubernetes.io/identity/roles': ['member'], 'alpha.kubernetes.io/identity/project/name': ['demo'] }, resourceAttributes: { namespace: 'default', verb: 'get', resource: 'pods' } } })
const head = `POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(SAR)}\r\n\r\n`

interface Conn { socket: TLSSocket, ended: Promise<void>, response: () => Promise<{ status: number, headers: Record<string, string>, body: string }> }

async function open (port: number, ca: string): Promise<Conn> {
  const socket = tlsConnect({ host: '127.0.0.1', port, ca })
  await new Promise<void>((resolve, reject) => { socket.once('secureConnect', resolve); socket.once('error', reject) })
  let buf = ''
  let waiting: (() => void) | undefined
  socket.setEncoding('utf8')
  socket.on('data', (d: string) => { buf += d; waiting?.() })
  socket.on('error', () => {})
  const ended = new Promise<void>(resolve => socket.once('close', () => { resolve(); waiting?.() }))
  const response = async (): Promise<{ status: number, headers: Record<string, string>, body: string }> => {
    for (;;) {
      const end = buf.indexOf('\r\n\r\n')
      if (end >= 0) {
        const [statusLine, ...lines] = buf.slice(0, end).split('\r\n')
        const headers = Object.fromEntries(lines.map(l => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]))
        const length = Number(headers['content-length'] ?? 0)
        if (buf.length >= end + 4 + length) {
          const body = buf.slice(end + 4, end + 4 + length)
          buf = buf.slice(end + 4 + length)
          return { status: Number(statusLine?.split(' ')[1]), headers, body }
        }
      }
      if (socket.destroyed) throw new Error(`connection closed before a whole answer: ${JSON.stringify(buf)}`)
      await new Promise<void>(resolve => { waiting = resolve })
    }
  }
  return { socket, ended, response }
}

const refused = async (port: number): Promise<string> => await new Promise(resolve => {
  const s = netConnect(port, '127.0.0.1')
  s.on('connect', () => { s.destroy(); resolve('connected') })
  s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message))
})

t.test('drain: answers what is on open connections with Connection: close, closes idle ones, accepts nothing new', async t => {
  const wh = await startWebhook(['--keystone-url', 'http://127.0.0.1:9/v3', '--keystone-policy-file', policyFile, '--listen-reuse-port=false'])
  t.teardown(async () => { await wh.server.close() })
  const port = wh.server.address.port
  const keptAlive = await open(port, wh.certs.ca)
  keptAlive.socket.write(head + SAR)
  const first = await keptAlive.response()
  t.equal(first.status, 200)
  t.not(first.headers.connection, 'close', 'before the drain: keep-alive')
  const halfSent = await open(port, wh.certs.ca)
  halfSent.socket.write(head + SAR.slice(0, 20))
  // Idle after one answer (Node 20 leaves a connection that never carried a request until the grace ends).
  const idle = await open(port, wh.certs.ca)
  idle.socket.write(head + SAR)
  t.equal((await idle.response()).status, 200)
  await until(async () => wh.logs.length > 0, 5000)

  const closed = wh.server.close()
  t.ok(await until(async () => wh.logs.some(l => l.includes('"draining')), 10_000), 'the drain began')
  t.equal(await refused(port), 'ECONNREFUSED', 'no new connection is accepted (here without SO_REUSEPORT: refused)')

  halfSent.socket.write(SAR.slice(20))
  const late = await halfSent.response()
  t.equal(late.status, 200, 'a request that was arriving is answered, not 503')
  t.equal(JSON.parse(late.body).status.allowed, true)
  t.equal(late.headers.connection, 'close', 'with Connection: close')
  await halfSent.ended
  t.pass('and the server closed that connection after the answer')

  keptAlive.socket.write(head + SAR)
  const again = await keptAlive.response()
  t.equal(again.status, 200, 'a new request on a kept-alive connection is answered, not 503')
  t.equal(again.headers.connection, 'close', 'with Connection: close')
  await keptAlive.ended

  await idle.ended
  t.pass('the idle connection was closed by the server')
  await closed
  t.ok(wh.logs.some(l => l.includes('drained: every connection closed')), 'close() resolved with every connection closed, none cut')
})

t.test('drain: a connection still open when --shutdown-grace ends is cut, and the log says so', async t => {
  const wh = await startWebhook(['--keystone-url', 'http://127.0.0.1:9/v3', '--keystone-policy-file', policyFile, '--shutdown-grace', '1s'])
  const stuck = await open(wh.server.address.port, wh.certs.ca)
  // Headers never finished: not idle, not answered, within the 10 s headers timeout.
  stuck.socket.write('POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n')
  await wh.server.close()
  await stuck.ended
  const line = wh.logs.find(l => l.includes('shutdown grace period over'))
  t.ok(line, 'logged')
  t.equal(JSON.parse(line ?? '{}').connections, 1, 'one connection cut')
})
