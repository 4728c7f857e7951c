// Bad input gets a 4xx with a JSON reason, never a crash or a hang, and never reaches Keystone.
import t from 'tap'
import { startWebhook, tokenReview } from '../helpers/webhook.js'

// Port 9 (discard) on loopback: nothing listens there, and nothing here should try.
const UNREACHED = 'http://127.0.0.1:9/v3'

t.test('malformed reviews', async t => {
  // A Keystone URL nobody listens on: bad input must be answered before any Keystone call.
  const wh = await startWebhook(['--max-request-bytes', '4096', '--keystone-url', UNREACHED])
  t.teardown(wh.close)
  const cases: Array<[string, string, unknown, Record<string, string> | undefined, number, RegExp]> = [
    ['invalid JSON', '/webhook', '{"kind": "TokenReview",', undefined, 400, /body is not valid JSON/],
    ['empty body', '/webhook', '', undefined, 400, /empty|JSON/i],
    ['JSON array', '/webhook', [], undefined, 400, /kind must be TokenReview or SubjectAccessReview/],
    ['JSON null', '/webhook', 'null', undefined, 400, /kind must be/],
    ['wrong kind', '/webhook', { apiVersion: 'authentication.k8s.io/v1', kind: 'Pod', spec: { token: 'x' } }, undefined, 400, /kind must be TokenReview or SubjectAccessReview, got "Pod"/],
    ['wrong apiVersion', '/webhook', { apiVersion: 'authentication.k8s.io/v2', kind: 'TokenReview', spec: { token: 'x' } }, undefined, 400, /apiVersion must be one of authentication.k8s.io\/v1, authentication.k8s.io\/v1beta1/],
    ['missing spec', '/webhook', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview' }, undefined, 400, /spec/],
    ['missing spec.token', '/webhook', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: {} }, undefined, 400, /spec\.token: must be a string/],
    ['token of the wrong type', '/webhook', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: 42 } }, undefined, 400, /spec\.token: must be a string/],
    ['empty token', '/webhook', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: '' } }, undefined, 400, /spec\.token: must not be empty/],
    ['oversized body', '/webhook', tokenReview('x'.repeat(8000)), undefined, 413, /larger than 4096 bytes/],
    // Content-Type is not looked at (as Go): a form or text body is read as JSON, and is not JSON.
    ['form body', '/webhook', 'token=x', { 'content-type': 'application/x-www-form-urlencoded' }, 400, /body is not valid JSON/],
    ['text/plain', '/webhook', 'hello', { 'content-type': 'text/plain' }, 400, /body is not valid JSON/],
    ['oversized form body', '/webhook', JSON.stringify(tokenReview('x'.repeat(8000))), { 'content-type': 'application/x-www-form-urlencoded' }, 413, /larger than 4096 bytes/],
    ['__proto__ key', '/webhook', '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"x"},"__proto__":{"polluted":true}}', undefined, 400, /forbidden key "__proto__"/],
    ['constructor key', '/webhook', '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"x","constructor":{"prototype":{}}}}', undefined, 400, /forbidden key "constructor"/],
    ['escaped __proto__ key', '/webhook', '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"x"},"\\u005f_proto__":{"polluted":true}}', undefined, 400, /forbidden key "__proto__"/],
    ['unknown route', '/nope', tokenReview('x'), undefined, 404, /no route for POST \/nope/]
  ]
  for (const [name, path, body, headers, status, reason] of cases) {
    const res = await wh.post(path, body, headers)
    t.equal(res.status, status, `${name}: status`)
    t.equal(res.body?.kind, 'Status', `${name}: JSON Status body`)
    t.match(res.body?.message, reason, `${name}: reason`)
  }
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution')
  t.equal(await wh.metric('k8s_keystone_auth_keystone_requests_total', { operation: 'validate' }), 0, 'no bad input reached Keystone')
  // The server is still fine.
  t.equal((await wh.get('/healthz')).status, 200)
})

t.test('a wrong token never appears in an error answer', async t => {
  const wh = await startWebhook(['--keystone-url', UNREACHED])
  t.teardown(wh.close)
  const secret = 'very-secret-token-value-123'
  const res = await wh.post('/webhook', { apiVersion: 'authentication.k8s.io/v3', kind: 'TokenReview', spec: { token: secret } })
  t.equal(res.status, 400)
  t.notOk(res.text.includes(secret))
})
