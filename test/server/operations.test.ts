// Probes, metrics, client certificates, TLS versions, certificate reload, log redaction.
import t from 'tap'
import { connect } from 'node:tls'
import { copyFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { createLogger } from '../../src/log.js'
import { makeCerts, testCerts } from '../helpers/certs.js'
import { loadSeed, passwordToken } from '../helpers/keystone.js'
import { startWebhook, tokenReview } from '../helpers/webhook.js'

const seed = loadSeed()

t.test('healthz, readyz with detail, metrics in Prometheus format', async t => {
  const wh = await startWebhook()
  t.teardown(wh.close)
  t.equal((await wh.get('/healthz')).text, 'ok')
  const deadline = Date.now() + 5000
  let ready = await wh.get('/readyz')
  while (ready.status !== 200 && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 100))
    ready = await wh.get('/readyz')
  }
  t.equal(ready.status, 200)
  t.equal(ready.body.ready, true)
  t.equal(ready.body.checks.keystone.ok, true)
  await wh.post('/webhook', tokenReview(await passwordToken(seed, 'demo', 'demo'), 'v1beta1'))
  await wh.post('/webhook', tokenReview('nope'))
  const metrics = await wh.get('/metrics')
  t.match(metrics.text, /k8s_keystone_auth_reviews_total\{kind="TokenReview",version="v1beta1",outcome="authenticated"\} 1/)
  t.match(metrics.text, /k8s_keystone_auth_reviews_total\{kind="TokenReview",version="v1",outcome="unauthenticated"\} 1/)
  t.match(metrics.text, /k8s_keystone_auth_review_duration_seconds_bucket\{le="[^"]+",kind="TokenReview"\}/)
  t.match(metrics.text, /k8s_keystone_auth_keystone_requests_total\{operation="validate",status="200"\} 1/)
  t.match(metrics.text, /k8s_keystone_auth_token_cache_entries 2/)
  t.match(metrics.text, /k8s_keystone_auth_inflight_requests 0/)
})

t.test('readyz is 503 with a reason while Keystone is unreachable, and reviews get 500', async t => {
  // A port on which nothing listens: Keystone "down" without touching the shared Keystone.
  const wh = await startWebhook(['--keystone-url', 'http://127.0.0.1:9/v3', '--keystone-timeout', '2s'])
  t.teardown(wh.close)
  const ready = await wh.get('/readyz')
  t.equal(ready.status, 503)
  t.equal(ready.body.checks.keystone.ok, false)
  const res = await wh.post('/webhook', tokenReview('some-token'))
  t.equal(res.status, 500)
  t.match(res.body.status.error, /Keystone at http:\/\/127\.0\.0\.1:9\/v3 is unreachable: ECONNREFUSED/)
  t.equal(res.body.status.authenticated, false)
  // Not cached: the next review asks again.
  await wh.post('/webhook', tokenReview('some-token'))
  t.equal(await wh.metric('k8s_keystone_auth_token_cache_requests_total', { result: 'miss' }), 2)
})

t.test('client certificates: required on reviews, probes exempt', async t => {
  const certs = testCerts()
  const strict = await startWebhook(['--client-ca-file', certs.caFile])
  t.teardown(strict.close)
  const noCert = await strict.post('/webhook', tokenReview('x'))
  t.equal(noCert.status, 401)
  t.match(noCert.body.message, /client certificate signed by --client-ca-file is required/)
  t.equal((await strict.get('/healthz')).status, 200)
  t.equal((await strict.get('/readyz')).body.checks.keystone !== undefined, true)
  const withCert = await startWebhook(['--client-ca-file', certs.caFile], { clientCert: true })
  t.teardown(withCert.close)
  const ok = await withCert.post('/webhook', tokenReview('x'))
  t.equal(ok.status, 200)
  t.equal(ok.body.status.authenticated, false)
})

async function handshake (port: number, opts: { maxVersion?: 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3', minVersion?: 'TLSv1' | 'TLSv1.2' | 'TLSv1.3', ciphers?: string, ca: string }): Promise<string> {
  return await new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername: 'localhost', ...opts }, () => {
      const v = s.getProtocol() ?? ''
      s.end()
      resolve(v)
    })
    s.on('error', reject)
  })
}

t.test('TLS 1.2 and 1.3 only, no weak ciphers', async t => {
  const wh = await startWebhook()
  t.teardown(wh.close)
  const port = Number(new URL(wh.url).port)
  const ca = wh.certs.ca
  t.equal(await handshake(port, { ca, minVersion: 'TLSv1.3' }), 'TLSv1.3')
  t.equal(await handshake(port, { ca, maxVersion: 'TLSv1.2' }), 'TLSv1.2')
  await t.rejects(handshake(port, { ca, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }), 'TLS 1.1 refused')
  await t.rejects(handshake(port, { ca, maxVersion: 'TLSv1.2', ciphers: 'AES128-SHA:DES-CBC3-SHA' }), 'non-forward-secret CBC suites refused')
})

t.test('a replaced certificate is served without restart', async t => {
  const first = makeCerts()
  const second = makeCerts()
  const dir = mkdtempSync(join(tmpdir(), 'ksa-rotate-'))
  const certFile = join(dir, 'tls.crt')
  const keyFile = join(dir, 'tls.key')
  copyFileSync(first.certFile, certFile)
  copyFileSync(first.keyFile, keyFile)
  const wh = await startWebhook(['--tls-cert-file', certFile, '--tls-private-key-file', keyFile])
  t.teardown(wh.close)
  const port = Number(new URL(wh.url).port)
  t.equal(await handshake(port, { ca: first.ca }), 'TLSv1.3')
  await t.rejects(handshake(port, { ca: second.ca }), 'not yet trusted by the second CA')
  copyFileSync(second.keyFile, keyFile)
  copyFileSync(second.certFile, certFile)
  const deadline = Date.now() + 15_000
  let rotated = false
  while (!rotated && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 250))
    rotated = await handshake(port, { ca: second.ca }).then(() => true, () => false)
  }
  t.ok(rotated, 'the new certificate is served')
  t.match(wh.logs.join('\n'), /TLS certificate reloaded/)
})

t.test('logs never contain tokens, even at trace level', async t => {
  const wh = await startWebhook(['--log-level', 'trace'])
  t.teardown(wh.close)
  const token = await passwordToken(seed, 'demo', 'demo')
  await wh.post('/webhook', tokenReview(token))
  await wh.post('/webhook', tokenReview('garbage-token-abcdef'))
  await wh.post('/webhook', { apiVersion: 'bad', kind: 'TokenReview', spec: { token: 'bad-input-token-xyz' } })
  t.ok(wh.logs.length >= 3, 'the server logged')
  t.ok(wh.logs.some(l => l.includes('"outcome":"authenticated"') && l.includes('"user":"demo"')), 'one line per review with outcome and user')
  for (const secret of [token, 'garbage-token-abcdef', 'bad-input-token-xyz']) {
    t.notOk(wh.logs.some(l => l.includes(secret)), 'no token in any log line')
  }
  const metrics = await wh.get('/metrics')
  t.notOk(metrics.text.includes(token), 'no token in metrics')
})

t.test('pino redaction catches secrets logged by mistake', async t => {
  const lines: string[] = []
  const sink = new Writable({ write (c, _e, cb) { lines.push(String(c)); cb() } })
  const log = createLogger({ level: 'trace', destination: sink })
  log.info({ token: 't1', password: 'p1', secret: 's1', spec: { token: 't2' }, headers: { 'x-auth-token': 't3', 'x-subject-token': 't4', authorization: 'Bearer t5' }, auth: { password: 'p2' } }, 'oops')
  const out = lines.join('')
  for (const s of ['t1', 'p1', 's1', 't2', 't3', 't4', 't5', 'p2']) t.notOk(out.includes(`"${s}"`) || out.includes(`Bearer ${s}`), `${s} redacted`)
  t.match(out, /\[REDACTED\]/)
})
