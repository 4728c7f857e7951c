// The webhook reaches Keystone through HTTPS_PROXY/HTTP_PROXY unless NO_PROXY says otherwise, as the
// Go binary does. Keystone is named keystone.test, which only the test proxy resolves.
import t, { type Test } from 'tap'
import { testCerts } from '../helpers/certs.js'
import { startForwardProxy, startTlsFront, type ForwardProxy } from '../helpers/forward-proxy.js'
import { loadSeed, passwordToken } from '../helpers/keystone.js'
import { startWebhook, tokenReview, type TestWebhook } from '../helpers/webhook.js'

const seed = loadSeed()
const viaName = `http://keystone.test:${new URL(seed.auth_url).port}/v3`

/**
 * A test proxy (with Basic credentials `auth` when given), a webhook started with the proxy
 * variables `env(proxy)` and --keystone-url `keystoneUrl`, and its answer to a TokenReview of demo.
 */
async function reviewThrough (t: Test, opts: { auth?: string, keystoneUrl?: string, flags?: string[], env: (proxy: ForwardProxy) => Record<string, string> }):
Promise<{ proxy: ForwardProxy, wh: TestWebhook, res: { status: number, body: any } }> {
  const proxy = await startForwardProxy(opts.auth !== undefined ? { auth: opts.auth } : {})
  t.teardown(proxy.close)
  const wh = await startWebhook(['--keystone-url', opts.keystoneUrl ?? viaName, ...(opts.flags ?? [])], { env: opts.env(proxy) })
  t.teardown(wh.close)
  const res = await wh.post('/webhook', tokenReview(await passwordToken(seed, 'demo', 'demo')))
  return { proxy, wh, res }
}
const withUser = (proxy: ForwardProxy, userinfo: string): string => proxy.url.replace('http://', `http://${userinfo}@`)

t.test('TokenReview through HTTP_PROXY', async t => {
  const { proxy, wh, res } = await reviewThrough(t, { auth: 'corp:PROXYSECRET', env: p => ({ HTTP_PROXY: withUser(p, 'corp:PROXYSECRET') }) })
  t.equal(res.status, 200)
  t.equal(res.body.status.authenticated, true)
  t.equal(res.body.status.user.username, 'demo')
  t.ok(proxy.forwarded + proxy.tunnels >= 2, 'validation and groups went through the proxy')
  t.ok(wh.logs.some(l => l.includes('Keystone is reached through a proxy') && l.includes(proxy.url)), 'the start-up log names the proxy')
  t.notOk(wh.logs.some(l => l.includes('PROXYSECRET')), 'never its password')
})

t.test('NO_PROXY: Keystone is reached directly (and here, not at all)', async t => {
  const { proxy, res } = await reviewThrough(t, { env: p => ({ HTTP_PROXY: p.url, NO_PROXY: 'example.org,keystone.test' }) })
  t.equal(res.status, 500, 'Keystone unreachable: a 500, which kube-apiserver retries')
  t.match(res.body.status.error, `Keystone at ${viaName} is unreachable`)
  t.notMatch(res.body.status.error, /through the proxy/)
  t.equal(proxy.forwarded + proxy.tunnels, 0)
})

t.test('a proxy that refuses: the error names it', async t => {
  const { proxy, res } = await reviewThrough(t, { auth: 'corp:right', env: p => ({ HTTP_PROXY: withUser(p, 'corp:wrong') }) })
  t.equal(res.status, 500)
  t.match(res.body.status.error, `Keystone at ${viaName} is unreachable through the proxy ${proxy.url}`)
  t.notMatch(res.body.status.error, /wrong/)
})

t.test('https:// Keystone through HTTPS_PROXY: a CONNECT tunnel, with --keystone-ca-file inside it', async t => {
  const certs = testCerts()
  const front = await startTlsFront(certs, seed.auth_url)
  t.teardown(front.close)
  const { proxy, res } = await reviewThrough(t, { keystoneUrl: `https://keystone.test:${front.port}/v3`, flags: ['--keystone-ca-file', certs.caFile], env: p => ({ HTTPS_PROXY: p.url }) })
  t.equal(res.body.status.authenticated, true, JSON.stringify(res.body))
  t.ok(proxy.tunnels >= 1, 'through a CONNECT tunnel')
  t.equal(proxy.forwarded, 0, 'no request in the clear: the proxy never sees the token')
})

t.test('a proxy setting that is not an http:// URL stops the start, naming the variable and not the value', async t => {
  await t.rejects(startWebhook(['--keystone-url', viaName], { env: { HTTP_PROXY: 'socks5://corp:PROXYSECRET@127.0.0.1:1080' } }),
    { code: 'KSA_ERR_CONFIG', message: 'HTTP_PROXY/http_proxy: the proxy socks5://127.0.0.1:1080 is not an http:// proxy, the only kind supported' })
})
