// Security review, finding 8: Keystone's `links.next` was followed wherever it pointed, with the
// X-Auth-Token (the user's token, or the service token in service mode) attached. A Keystone, a
// front end or anyone on a plain-HTTP path to it could name another host, port or scheme and
// collect tokens there. Now only a next page on the Keystone in use (same scheme, host and port
// as the --keystone-url) is followed; any other is a KeystoneUnavailableError that names the
// foreign origin and never the token, so the review is a 500 (kube-apiserver retries) and
// nothing is sent. A front before the real test Keystone rewrites the group listing's
// links.next; a catcher on another local port records every X-Auth-Token it is sent.
import t, { type Test } from 'tap'
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KeystoneUnavailableError } from '../../src/errors.js'
import * as client from '../../src/keystone/client.js'
import { testCerts } from '../helpers/certs.js'
import { adminToken, keystoneApi, loadSeed, passwordToken } from '../helpers/keystone.js'
import { startWebhook, tokenReview } from '../helpers/webhook.js'

// Looked up, not imported by name: run against the code before the fix, the attacks below fail
// on what the catcher caught instead of the whole file failing to load.
const { KeystoneClient } = client
const nextPageUrl = (client as Partial<typeof client>).nextPageUrl ?? (() => { throw new Error('no nextPageUrl') })
const seed = loadSeed()
const upstream = new URL(seed.auth_url)

interface Caught { url: string, token: string | undefined }

async function listen (server: Server): Promise<number> {
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}

/** Records every request and the X-Auth-Token it carried; answers a valid group page. */
async function startCatcher (t: Test): Promise<{ origin: string, caught: Caught[] }> {
  const caught: Caught[] = []
  const server = createHttpServer((req, res) => {
    const token = req.headers['x-auth-token']
    caught.push({ url: req.url ?? '', token: Array.isArray(token) ? token[0] : token })
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ groups: [{ id: 'caught', name: 'caught-by-the-catcher', domain_id: 'default' }], links: { next: null } }))
  })
  const port = await listen(server)
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return { origin: `http://127.0.0.1:${port}`, caught }
}

/**
 * Forwards to the real Keystone; the first page of a user's groups gets `links.next` from
 * `next(frontOrigin, path)`. A second page asked of the front itself (?page=2) is answered here.
 */
async function startFront (t: Test, next: (origin: string, path: string) => string, tls = false): Promise<{ url: string, secondPages: number }> {
  const state = { url: '', secondPages: 0 }
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = req.url ?? '/'
    const groups = /^\/v3\/users\/[^/]+\/groups(\?|$)/.test(path)
    if (groups && path.includes('page=2')) {
      state.secondPages++
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ groups: [{ id: 'p2', name: 'page-two', domain_id: 'default' }], links: { next: null } }))
      return
    }
    const headers = { ...req.headers, host: upstream.host }
    const up = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path, headers, agent: false }, r => {
      if (!groups || r.statusCode !== 200) { res.writeHead(r.statusCode ?? 502, r.headers); r.pipe(res); return }
      const chunks: Buffer[] = []
      r.on('data', (c: Buffer) => chunks.push(c))
      r.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { links?: Record<string, unknown> }
        body.links = { ...body.links, next: next(new URL(state.url).origin, path) }
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify(body))
      })
    })
    up.on('error', err => { res.writeHead(502, { 'content-type': 'application/json' }); res.end(JSON.stringify({ error: { message: `front: ${err.message}` } })) })
    req.pipe(up)
  }
  const certs = testCerts()
  const server = tls
    ? createHttpsServer({ cert: readFileSync(certs.certFile), key: readFileSync(certs.keyFile) }, handler)
    : createHttpServer(handler)
  const port = await listen(server)
  t.teardown(() => { server.closeAllConnections(); server.close() })
  state.url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}/v3`
  return state
}

t.test('a links.next to another port: nothing is sent there, the review is a 500 naming the origin, not the token', async t => {
  const catcher = await startCatcher(t)
  const front = await startFront(t, (_origin, path) => `${catcher.origin}${path.split('?')[0] ?? ''}?page=2`)
  const wh = await startWebhook(['--keystone-url', front.url])
  t.teardown(wh.close)
  const token = await passwordToken(seed, 'demo', 'demo')
  const res = await wh.post('/webhook', tokenReview(token))
  t.same(catcher.caught, [], 'the catcher got no request, so no token')
  t.equal(res.status, 500, 'not authenticated, and not cached as a rejection: kube-apiserver retries')
  t.equal(res.body.status.authenticated, false)
  t.match(res.body.status.error, `links.next to ${catcher.origin}`)
  t.match(res.body.status.error, new URL(front.url).origin, 'names where Keystone is')
  t.notOk(res.text.includes(token), 'the answer carries no token')
  t.notOk(wh.logs.join('\n').includes(token), 'nor does the log')
})

t.test('service mode: the service token is not sent to a foreign links.next either', async t => {
  const admin = await adminToken(seed)
  const adminId = seed.users.admin?.id as string
  const created = await keystoneApi(seed, admin, 'POST', `/users/${adminId}/application_credentials`, { application_credential: { name: `ksa-test-paging-${process.pid}-${Date.now()}` } })
  t.equal(created.status, 201)
  const cred = created.body.application_credential
  t.teardown(async () => { await keystoneApi(seed, admin, 'DELETE', `/users/${adminId}/application_credentials/${cred.id}`) })
  const dir = mkdtempSync(join(tmpdir(), 'ksa-paging-'))
  writeFileSync(join(dir, 'secret'), `${cred.secret}\n`)
  const catcher = await startCatcher(t)
  // Another scheme-host-port spelling of the same machine: `localhost` is not `127.0.0.1`.
  const front = await startFront(t, (_origin, path) => `${catcher.origin.replace('127.0.0.1', 'localhost')}${path.split('?')[0] ?? ''}?page=2`)
  const wh = await startWebhook(['--keystone-url', front.url, '--service-credential-id', cred.id, '--service-credential-secret-file', join(dir, 'secret')])
  t.teardown(wh.close)
  const res = await wh.post('/webhook', tokenReview(await passwordToken(seed, 'demo', 'demo')))
  t.same(catcher.caught, [], 'no service token at the catcher')
  t.equal(res.status, 500)
  t.match(res.body.status.error, /links\.next to http:\/\/localhost:\d+, not to http:\/\/127\.0\.0\.1:\d+/)
})

t.test('https Keystone, a links.next to plain HTTP: refused before anything is sent', async t => {
  const catcher = await startCatcher(t)
  const front = await startFront(t, (_origin, path) => `${catcher.origin}${path.split('?')[0] ?? ''}?page=2`, true)
  const client = new KeystoneClient({ url: front.url, caFile: testCerts().caFile, timeoutMs: 5000 })
  t.teardown(async () => { await client.close() })
  const token = await passwordToken(seed, 'demo', 'demo')
  const err = await client.listUserGroups(seed.users.demo?.id as string, token).catch((e: unknown) => e)
  t.type(err, KeystoneUnavailableError)
  t.match((err as Error).message, `links.next to ${catcher.origin}, not to ${new URL(front.url).origin}`)
  t.notOk((err as Error).message.includes(token))
  t.same(catcher.caught, [])
})

t.test('a next page on the same Keystone is still followed', async t => {
  // Keystone's own links are absolute URLs on its public endpoint, here the front's origin.
  const front = await startFront(t, (origin, path) => `${origin}${path.split('?')[0] ?? ''}?page=2`)
  const wh = await startWebhook(['--keystone-url', front.url])
  t.teardown(wh.close)
  const res = await wh.post('/webhook', tokenReview(await passwordToken(seed, 'demo', 'demo')))
  t.equal(res.status, 200)
  t.equal(res.body.status.authenticated, true)
  t.ok(res.body.status.user.groups.includes('developers'), 'first page')
  t.ok(res.body.status.user.groups.includes('page-two'), 'second page, from the same origin')
  t.equal(front.secondPages, 1)
})

t.test('nextPageUrl: the same scheme, host and port as the Keystone URL, nothing else', async t => {
  const base = 'https://keystone.example:5000/v3'
  const ok: Array<[string, string]> = [
    ['https://keystone.example:5000/v3/users/u/groups?marker=a', 'https://keystone.example:5000/v3/users/u/groups?marker=a'],
    ['https://KEYSTONE.example:5000/v3/users/u/groups', 'https://keystone.example:5000/v3/users/u/groups'],
    ['/v3/users/u/groups?marker=b', 'https://keystone.example:5000/v3/users/u/groups?marker=b']
  ]
  for (const [link, want] of ok) t.equal(nextPageUrl(base, link, 'group listing'), want, link)
  t.equal(nextPageUrl('https://keystone.example/v3', 'https://keystone.example:443/v3/x', 'group listing'), 'https://keystone.example/v3/x', 'the default port written out is the same port')
  const refused = [
    'http://keystone.example:5000/v3/users/u/groups', // plain HTTP
    'https://keystone.example:5001/v3/users/u/groups', // another port
    'https://keystone.example/v3/users/u/groups', // 443, not 5000
    'https://evil.example:5000/v3/users/u/groups', // another host
    'https://keystone.example.evil.example:5000/v3', // a host that only starts alike
    '//evil.example:5000/v3/users/u/groups', // scheme-relative
    'https://user:pw@keystone.example:5000/v3/users/u/groups', // credentials in the link
    'javascript:alert(1)',
    'http://[::1' // not a URL
  ]
  for (const link of refused) {
    t.throws(() => nextPageUrl(base, link, 'group listing'), KeystoneUnavailableError, JSON.stringify(link))
  }
})
