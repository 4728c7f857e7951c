// Bad input gets a 4xx with a JSON reason, never a crash or a hang, and never reaches Keystone:
// the HTTP edge through app.inject(), with an authenticator that records every token it is asked.
import t from 'tap'
import { edge, tokenReviewBody as tokenReview, type Edge } from '../helpers/edge.js'

async function post (e: Edge, url: string, body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<{ status: number, body: any, text: string }> {
  const res = await e.app.inject({ method: 'POST', url, payload: typeof body === 'string' ? body : JSON.stringify(body), headers })
  let parsed: unknown
  try { parsed = res.json() } catch {}
  return { status: res.statusCode, body: parsed, text: res.body }
}

t.test('malformed reviews', async t => {
  const wh = await edge({ app: { bodyLimit: 4096 } })
  t.teardown(async () => await wh.app.close())
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
    const res = await post(wh, path, body, headers)
    t.equal(res.status, status, `${name}: status`)
    t.equal(res.body?.kind, 'Status', `${name}: JSON Status body`)
    t.match(res.body?.message, reason, `${name}: reason`)
  }
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution')
  t.same(wh.tokens, [], 'no bad input reached the authenticator')
  // The server is still fine.
  t.equal((await wh.app.inject({ url: '/healthz' })).statusCode, 200)
})

t.test('a wrong token never appears in an error answer', async t => {
  const wh = await edge()
  t.teardown(async () => await wh.app.close())
  const secret = 'very-secret-token-value-123'
  const res = await post(wh, '/webhook', { apiVersion: 'authentication.k8s.io/v3', kind: 'TokenReview', spec: { token: secret } })
  t.equal(res.status, 400)
  t.notOk(res.text.includes(secret))
})
