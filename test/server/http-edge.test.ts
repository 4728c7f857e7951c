// The HTTP edge through app.inject(): routes, both reviews' outcomes, answers, logs and metrics,
// with no TLS, socket or Keystone (test/helpers/edge.ts). The same edge over TLS against the real
// Keystone is in tokenreview.test.ts, access-review-http.test.ts and content-type.test.ts.
import t from 'tap'
import type { TokenInfo } from '../../src/keystone/types.js'
import { KeystoneUnavailableError } from '../../src/errors.js'
import { USER, accessReviewBody, edge, tokenReviewBody } from '../helpers/edge.js'

const INFO = {} as TokenInfo

t.test('TokenReview: an authenticated token gets the identity, in the version asked, and nothing of the request', async t => {
  const e = await edge({ authenticate: async () => ({ authenticated: true, user: USER, info: INFO, cached: false }) })
  t.teardown(async () => await e.app.close())
  for (const [path, version] of [['/webhook', 'authentication.k8s.io/v1'], ['/authenticate', 'authentication.k8s.io/v1beta1']] as const) {
    const res = await e.app.inject({ method: 'POST', url: path, payload: tokenReviewBody('tok-1', version) })
    t.equal(res.statusCode, 200, path)
    t.match(res.headers['content-type'], /^application\/json/)
    t.same(res.json(), { apiVersion: version, kind: 'TokenReview', status: { authenticated: true, user: USER } }, `${path}: identity`)
    t.notOk(res.body.includes('tok-1'), `${path}: the token is not echoed`)
  }
  t.same(e.tokens, ['tok-1', 'tok-1'], 'the authenticator saw the token')
  t.equal(await e.metric('k8s_keystone_auth_reviews_total', { kind: 'TokenReview', outcome: 'authenticated' }), 2)
  const line = e.logs.find(l => l.msg === 'review answered')
  t.match(line, { kind: 'TokenReview', outcome: 'authenticated', user: 'alice', statusCode: 200 }, 'one log line per review')
  t.notOk(JSON.stringify(e.logs).includes('tok-1'), 'the token is in no log line')
})

t.test('TokenReview: a rejected token is authenticated:false with no status.error (kube-apiserver caches it)', async t => {
  const e = await edge({ logLevel: 'debug' })
  t.teardown(async () => await e.app.close())
  const res = await e.app.inject({ method: 'POST', url: '/webhook', payload: tokenReviewBody('bad-token') })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', status: { authenticated: false } })
  t.match(e.logs.find(l => l.msg === 'review unauthenticated'), { kind: 'TokenReview', reason: 'no such token' }, 'the reason at debug level')
  t.equal(await e.metric('k8s_keystone_auth_reviews_total', { kind: 'TokenReview', outcome: 'unauthenticated' }), 1)
})

t.test('TokenReview: Keystone unreachable is HTTP 500 with the reason, so kube-apiserver retries and caches nothing', async t => {
  const e = await edge({ authenticate: async () => { throw new KeystoneUnavailableError('Keystone did not answer within 10000 ms') } })
  t.teardown(async () => await e.app.close())
  const res = await e.app.inject({ method: 'POST', url: '/webhook', payload: tokenReviewBody('tok-2', 'authentication.k8s.io/v1beta1') })
  t.equal(res.statusCode, 500)
  t.same(res.json(), { apiVersion: 'authentication.k8s.io/v1beta1', kind: 'TokenReview', status: { authenticated: false, error: 'Keystone did not answer within 10000 ms' } })
  t.equal(await e.metric('k8s_keystone_auth_reviews_total', { kind: 'TokenReview', outcome: 'error' }), 1)
  t.ok(e.logs.some(l => l.level === 40 && l.msg === 'cannot answer the review: Keystone unavailable'), 'logged as a warning')
})

t.test('TokenReview: an unexpected failure is a 500 that says "internal error", never a crash', async t => {
  const e = await edge({ authenticate: async () => { throw new TypeError('boom') } })
  t.teardown(async () => await e.app.close())
  const res = await e.app.inject({ method: 'POST', url: '/webhook', payload: tokenReviewBody('tok-3') })
  t.equal(res.statusCode, 500)
  t.match(res.json(), { status: { authenticated: false, error: 'internal error: boom' } })
  t.equal((await e.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'still serving')
})

t.test('TokenReview: sync runs after authentication and before the answer', async t => {
  const order: string[] = []
  const e = await edge({
    authenticate: async () => { order.push('authenticate'); return { authenticated: true, user: USER, info: INFO, cached: true } },
    afterAuthenticate: async user => { order.push(`sync ${user.username}`) }
  })
  t.teardown(async () => await e.app.close())
  const res = await e.app.inject({ method: 'POST', url: '/webhook', payload: tokenReviewBody('tok-4') })
  order.push('answered')
  t.equal(res.statusCode, 200)
  t.same(order, ['authenticate', 'sync alice', 'answered'])
})

t.test('SubjectAccessReview: the engine decides, the answer says it in the version asked', async t => {
  const e = await edge({ authorize: r => r.resource?.verb === 'get' ? { allowed: true, reason: 'allowed by entry 0' } : { allowed: false, reason: 'no policy entry matched' } })
  t.teardown(async () => await e.app.close())
  for (const [path, version] of [['/webhook', 'authorization.k8s.io/v1'], ['/authorize', 'authorization.k8s.io/v1beta1']] as const) {
    const res = await e.app.inject({ method: 'POST', url: path, payload: accessReviewBody(version) })
    t.equal(res.statusCode, 200)
    t.same(res.json(), { apiVersion: version, kind: 'SubjectAccessReview', status: { allowed: true, reason: 'allowed by entry 0' } }, path)
  }
  const body = accessReviewBody() as { spec: { resourceAttributes: { verb: string } } }
  body.spec.resourceAttributes.verb = 'delete'
  const denied = await e.app.inject({ method: 'POST', url: '/webhook', payload: body })
  t.same(denied.json(), { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', status: { allowed: false, reason: 'no policy entry matched' } }, 'a "no" is no opinion: no status.denied')
  t.match(e.requests[0], { user: 'alice', groups: ['g-1'], resource: { namespace: 'demo', verb: 'get', resource: 'pods' } }, 'the engine got the parsed request')
  t.equal(await e.metric('k8s_keystone_auth_reviews_total', { kind: 'SubjectAccessReview', outcome: 'allowed' }), 2)
  t.equal(await e.metric('k8s_keystone_auth_reviews_total', { kind: 'SubjectAccessReview', outcome: 'denied' }), 1)
})

t.test('SubjectAccessReview: an access-rules "no" is status.denied, so no later authorizer allows it', async t => {
  const e = await edge({ authorize: () => ({ allowed: false, denied: true, reason: 'not allowed by the access rules' }) })
  t.teardown(async () => await e.app.close())
  const res = await e.app.inject({ method: 'POST', url: '/authorize', payload: accessReviewBody() })
  t.same(res.json().status, { allowed: false, denied: true, reason: 'not allowed by the access rules' })
})

t.test('each route takes its own kind only', async t => {
  const e = await edge()
  t.teardown(async () => await e.app.close())
  const wrong = [
    ['/authenticate', accessReviewBody(), /\/authenticate takes only kind TokenReview/],
    ['/authorize', tokenReviewBody('tok-5'), /\/authorize takes only kind SubjectAccessReview/],
    ['/webhook', { kind: 'Pod' }, /kind must be TokenReview or SubjectAccessReview, got "Pod"/]
  ] as const
  for (const [url, payload, reason] of wrong) {
    const res = await e.app.inject({ method: 'POST', url, payload })
    t.equal(res.statusCode, 400, url)
    t.match(res.json(), { kind: 'Status', code: 400, reason: 'BadRequest', message: reason })
  }
  t.same(e.tokens, [], 'a TokenReview sent to /authorize never reaches the authenticator')
  t.same(e.requests, [])
  t.equal(await e.metric('k8s_keystone_auth_reviews_total', { outcome: 'bad_request' }), 3)
})

t.test('Content-Type is not looked at, as in Go: curl -d sends a form type', async t => {
  const e = await edge()
  t.teardown(async () => await e.app.close())
  for (const ct of ['application/x-www-form-urlencoded', 'text/plain', 'json', undefined]) {
    const res = await e.app.inject({ method: 'POST', url: '/webhook', payload: JSON.stringify(tokenReviewBody('tok-6')), headers: ct === undefined ? {} : { 'content-type': ct } })
    t.equal(res.statusCode, 200, `Content-Type ${ct ?? '(none)'}`)
    t.equal(res.json().kind, 'TokenReview')
  }
})

t.test('unknown routes and methods are a 404 Status that names the review routes', async t => {
  const e = await edge()
  t.teardown(async () => await e.app.close())
  const res = await e.app.inject({ method: 'GET', url: '/webhook' })
  t.equal(res.statusCode, 404)
  t.match(res.json(), { kind: 'Status', reason: 'NotFound', message: /no route for GET \/webhook; reviews go to POST \/webhook, \/authenticate or \/authorize/ })
  const long = await e.app.inject({ method: 'POST', url: `/${'x'.repeat(200)}` })
  t.match(long.json().message, /a path of 201 characters/, 'a long path is not quoted')
})

t.test('probes: /healthz and /livez always; /readyz follows the checks and hides details from the untrusted', async t => {
  const e = await edge()
  t.teardown(async () => await e.app.close())
  let keystoneOk = true
  e.readiness.add('keystone', () => ({ ok: keystoneOk, detail: keystoneOk ? 'answered 1 s ago' : 'Keystone at https://keystone.internal:5000 got no answer' }))
  t.equal((await e.app.inject({ url: '/healthz' })).body, 'ok')
  t.equal((await e.app.inject({ url: '/livez' })).body, 'ok')
  const ready = await e.app.inject({ url: '/readyz' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { ready: true, checks: { keystone: { ok: true } } })
  keystoneOk = false
  const notReady = await e.app.inject({ url: '/readyz' })
  t.equal(notReady.statusCode, 503)
  t.same(notReady.json(), { ready: false, checks: { keystone: { ok: false } } }, 'no URL or error for a caller without a client certificate')
  e.readiness.markShuttingDown()
  t.equal((await e.app.inject({ url: '/readyz' })).statusCode, 503)
})

t.test('/readyz details at debug level', async t => {
  const e = await edge({ logLevel: 'debug' })
  t.teardown(async () => await e.app.close())
  e.readiness.add('policy', () => ({ ok: true, detail: '3 entries from /etc/policy.json' }))
  t.same((await e.app.inject({ url: '/readyz' })).json(), { ready: true, checks: { policy: { ok: true, detail: '3 entries from /etc/policy.json' } } })
})

t.test('with a client CA, reviews need a verified client certificate; probes and metrics do not', async t => {
  const e = await edge({ app: { requireClientCert: true } })
  t.teardown(async () => await e.app.close())
  const res = await e.app.inject({ method: 'POST', url: '/webhook', payload: tokenReviewBody('tok-7') })
  t.equal(res.statusCode, 401)
  t.match(res.json(), { kind: 'Status', reason: 'Unauthorized', message: /a client certificate signed by --client-ca-file is required/ })
  t.same(e.tokens, [], 'refused before the authenticator')
  for (const url of ['/healthz', '/livez', '/readyz', '/metrics']) t.equal((await e.app.inject({ url })).statusCode, 200, url)
})

t.test('/metrics is Prometheus text with the review counters', async t => {
  const e = await edge()
  t.teardown(async () => await e.app.close())
  await e.app.inject({ method: 'POST', url: '/webhook', payload: tokenReviewBody('tok-8') })
  const res = await e.app.inject({ url: '/metrics' })
  t.match(res.headers['content-type'], /^text\/plain/)
  t.match(res.body, /k8s_keystone_auth_reviews_total\{kind="TokenReview",version="v1",outcome="unauthenticated"\} 1/)
  t.match(res.body, /k8s_keystone_auth_inflight_requests 0/, 'in-flight back to 0 after the review')
})
