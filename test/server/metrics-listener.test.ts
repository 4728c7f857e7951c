// --metrics-listen: a second HTTPS listener, with the serving certificate and no client
// certificate, serving /metrics (the same counts as the review listener's) and /healthz, and no
// review route and no /readyz, even when the review listener requires kube-apiserver's client
// certificate. It closes with the server.
import t from 'tap'
import { Agent, request } from 'undici'
import { startWebhook, tokenReview } from '../helpers/webhook.js'

t.test('the metrics listener serves /metrics and /healthz only, without a client certificate', async t => {
  const wh = await startWebhook(['--keystone-url', 'http://127.0.0.1:9/v3', '--metrics-listen', '127.0.0.1:0'], { mtls: true })
  t.teardown(async () => { await wh.close() })
  const url = wh.server.metricsUrl as string
  t.match(url, /^https:\/\/127\.0\.0\.1:\d+$/, 'it listens')
  t.not(new URL(url).port, new URL(wh.url).port, 'on its own port')
  t.ok(wh.logs.some(l => l.includes('metrics listener: /metrics and /healthz only')), 'the start says so')
  // Prometheus: verifies the serving certificate, presents none.
  const scraper = new Agent({ connect: { ca: wh.certs.ca } })
  t.teardown(async () => { await scraper.close() })
  const get = async (method: 'GET' | 'POST', path: string, body?: string): Promise<{ status: number, text: string }> => {
    const res = await request(url + path, { method, dispatcher: scraper, ...(body !== undefined ? { body, headers: { 'content-type': 'application/json' } } : {}) })
    return { status: res.statusCode, text: await res.body.text() }
  }
  const sar = { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: { user: 'x', resourceAttributes: { verb: 'get', resource: 'pods' } } }
  t.equal((await wh.post('/webhook', sar)).status, 200, 'a review on --listen (with the client certificate)')
  const m = await get('GET', '/metrics')
  t.equal(m.status, 200, '/metrics without a client certificate')
  t.match(m.text, /k8s_keystone_auth_reviews_total\{[^}]*kind="SubjectAccessReview"[^}]*\} 1/, 'the review listener\'s counts')
  t.equal((await get('GET', '/healthz')).status, 200, '/healthz')
  for (const path of ['/webhook', '/authenticate', '/authorize']) {
    const r = await get('POST', path, JSON.stringify(tokenReview('some-token')))
    t.equal(r.status, 404, `POST ${path}: no review route here`)
    t.match(r.text, /reviews go to --listen/)
  }
  t.equal((await get('GET', '/readyz')).status, 404, 'no /readyz (its details are for the review listener\'s clients)')
  t.equal((await wh.post('/webhook', sar)).status, 200, 'reviews still answered on --listen')
})

t.test('--metrics-listen on an address that cannot be bound stops the start with the flag named', async t => {
  await t.rejects(startWebhook(['--keystone-url', 'http://127.0.0.1:9/v3', '--metrics-listen', '192.0.2.1:8444']), /--metrics-listen 192\.0\.2\.1:8444: .*EADDRNOTAVAIL/)
})
