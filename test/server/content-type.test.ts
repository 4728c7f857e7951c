// Review bodies are read as JSON whatever their Content-Type, as the Go binary reads them (its
// Handler json-decodes r.Body and never looks at the header: pkg/identity/keystone/keystone.go,
// v1.32.1). Go's documentation tests the service with `curl -k -XPOST ... -d '<json>'`, which
// sends application/x-www-form-urlencoded.
import t from 'tap'
import { request as httpsRequest } from 'node:https'
import { startWebhook, tokenReview, type TestWebhook } from '../helpers/webhook.js'
import { loadSeed, passwordToken } from '../helpers/keystone.js'

interface Answer { status: number, body: any }

/** A raw POST: exactly the headers given (none added but Host and, unless chunked, Content-Length). */
async function post (wh: TestWebhook, path: string, body: string, headers: Record<string, string>, chunked = false): Promise<Answer> {
  const url = new URL(wh.url + path)
  return await new Promise((resolve, reject) => {
    const req = httpsRequest({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: 'POST',
      ca: wh.certs.ca,
      headers: chunked ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) }
    }, res => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', d => { text += String(d) })
      res.on('end', () => {
        let parsed: unknown
        try { parsed = JSON.parse(text) } catch { parsed = text }
        resolve({ status: res.statusCode ?? 0, body: parsed })
      })
    })
    req.on('error', reject)
    if (chunked) { req.write(body.slice(0, 10)); req.write(body.slice(10)) } else req.write(body)
    req.end()
  })
}

const SAR = JSON.stringify({
  apiVersion: 'authorization.k8s.io/v1',
  kind: 'SubjectAccessReview',
  spec: { user: 'demo', groups: ['g'], resourceAttributes: { namespace: 'default', verb: 'get', resource: 'pods' } }
})

t.test('TokenReview and SubjectAccessReview are answered whatever the Content-Type', async t => {
  const wh = await startWebhook(['--max-request-bytes', '4096'])
  t.teardown(wh.close)
  const good = await passwordToken(loadSeed(), 'demo', 'demo')
  const types: Array<[string, Record<string, string>]> = [
    ['curl -d (application/x-www-form-urlencoded)', { 'content-type': 'application/x-www-form-urlencoded' }],
    ['text/plain', { 'content-type': 'text/plain; charset=utf-8' }],
    ['no Content-Type', {}],
    ['not a media type at all', { 'content-type': 'json' }],
    ['application/json with charset', { 'content-type': 'application/json; charset=utf-8' }]
  ]
  for (const [name, headers] of types) {
    const ok = await post(wh, '/webhook', JSON.stringify(tokenReview(good)), headers)
    t.equal(ok.status, 200, `${name}: /webhook answers`)
    t.equal(ok.body?.status?.authenticated, true, `${name}: a real token is authenticated`)
    t.equal(ok.body?.status?.user?.username, 'demo', name)

    const bad = await post(wh, '/authenticate', JSON.stringify(tokenReview('not-a-token')), headers)
    t.equal(bad.status, 200, `${name}: /authenticate answers`)
    t.same(bad.body?.status, { authenticated: false }, `${name}: a bad token is not authenticated`)

    const sar = await post(wh, '/authorize', SAR, headers)
    t.equal(sar.status, 200, `${name}: /authorize answers`)
    t.equal(sar.body?.kind, 'SubjectAccessReview', name)
    t.equal(sar.body?.status?.allowed, false, `${name}: no policy, not allowed`)

    const notJson = await post(wh, '/webhook', 'token=abc', headers)
    t.equal(notJson.status, 400, `${name}: a body that is not JSON is a 400`)
    t.equal(notJson.body?.kind, 'Status', name)
    t.match(notJson.body?.message, /body is not valid JSON/, `${name}: with the reason`)

    const big = await post(wh, '/webhook', JSON.stringify(tokenReview('x'.repeat(8000))), headers)
    t.equal(big.status, 413, `${name}: the body size limit still applies`)
  }

  const chunked = await post(wh, '/webhook', JSON.stringify(tokenReview('not-a-token')), {}, true)
  t.equal(chunked.status, 200, 'a chunked body without Content-Type is read too')
  t.same(chunked.body?.status, { authenticated: false })
  const bigChunked = await post(wh, '/webhook', JSON.stringify(tokenReview('x'.repeat(8000))), { 'content-type': 'text/plain' }, true)
  t.equal(bigChunked.status, 413, 'the limit applies to chunked bodies too')
})
