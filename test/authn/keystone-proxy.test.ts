// The webhook reaches Keystone through HTTPS_PROXY/HTTP_PROXY unless NO_PROXY says otherwise, as the
// Go binary does. Keystone is named keystone.test, which only the test proxy resolves.
import t from 'tap'
import { testCerts } from '../helpers/certs.js'
import { startForwardProxy, startTlsFront } from '../helpers/forward-proxy.js'
import { loadSeed, passwordToken } from '../helpers/keystone.js'
import { startWebhook, tokenReview } from '../helpers/webhook.js'

const seed = loadSeed()
const viaName = `http://keystone.test:${new URL(seed.auth_url).port}/v3`

t.test('TokenReview through HTTP_PROXY', async t => {
  const proxy = await startForwardProxy({ auth: 'corp:PROXYSECRET' })
  t.teardown(proxy.close)
  const wh = await startWebhook(['--keystone-url', viaName], { env: { HTTP_PROXY: proxy.url.replace('http://', 'http://corp:PROXYSECRET@') } })
  t.teardown(wh.close)
  const res = await wh.post('/webhook', tokenReview(await passwordToken(seed, 'demo', 'demo')))
  t.equal(res.status, 200)
  t.equal(res.body.status.authenticated, true)
  t.equal(res.body.status.user.username, 'demo')
  t.ok(proxy.forwarded + proxy.tunnels >= 2, 'validation and groups went through the proxy')
  t.ok(wh.logs.some(l => l.includes('Keystone is reached through a proxy') && l.includes(proxy.url)), 'the start-up log names the proxy')
  t.notOk(wh.logs.some(l => l.includes('PROXYSECRET')), 'never its password')
})

t.test('NO_PROXY: Keystone is reached directly (and here, not at all)', async t => {
  const proxy = await startForwardProxy()
  t.teardown(proxy.close)
  const wh = await startWebhook(['--keystone-url', viaName], { env: { HTTP_PROXY: proxy.url, NO_PROXY: 'example.org,keystone.test' } })
  t.teardown(wh.close)
  const res = await wh.post('/webhook', tokenReview(await passwordToken(seed, 'demo', 'demo')))
  t.equal(res.status, 500, 'Keystone unreachable: a 500, which kube-apiserver retries')
  t.match(res.body.status.error, `Keystone at ${viaName} is unreachable`)
  t.notMatch(res.body.status.error, /through the proxy/)
  t.equal(proxy.forwarded + proxy.tunnels, 0)
})

t.test('a proxy that refuses: the error names it', async t => {
  const proxy = await startForwardProxy({ auth: 'corp:right' })
  t.teardown(proxy.close)
  const wh = await startWebhook(['--keystone-url', viaName], { env: { HTTP_PROXY: proxy.url.replace('http://', 'http://corp:wrong@') } })
  t.teardown(wh.close)
  const res = await wh.post('/webhook', tokenReview(await passwordToken(seed, 'demo', 'demo')))
  t.equal(res.status, 500)
  t.match(res.body.status.error, `Keystone at ${viaName} is unreachable through the proxy ${proxy.url}`)
  t.notMatch(res.body.status.error, /wrong/)
})

t.test('https:// Keystone through HTTPS_PROXY: a CONNECT tunnel, with --keystone-ca-file inside it', async t => {
  const certs = testCerts()
  const front = await startTlsFront(certs, seed.auth_url)
  t.teardown(front.close)
  const proxy = await startForwardProxy()
  t.teardown(proxy.close)
  const wh = await startWebhook(['--keystone-url', `https://keystone.test:${front.port}/v3`, '--keystone-ca-file', certs.caFile], { env: { HTTPS_PROXY: proxy.url } })
  t.teardown(wh.close)
  const res = await wh.post('/webhook', tokenReview(await passwordToken(seed, 'demo', 'demo')))
  t.equal(res.body.status.authenticated, true, JSON.stringify(res.body))
  t.ok(proxy.tunnels >= 1, 'through a CONNECT tunnel')
  t.equal(proxy.forwarded, 0, 'no request in the clear: the proxy never sees the token')
})

t.test('a proxy setting that is not an http:// URL stops the start, naming the variable and not the value', async t => {
  await t.rejects(startWebhook(['--keystone-url', viaName], { env: { HTTP_PROXY: 'socks5://corp:PROXYSECRET@127.0.0.1:1080' } }),
    { code: 'KSA_ERR_CONFIG', message: 'HTTP_PROXY/http_proxy: the proxy socks5://127.0.0.1:1080 is not an http:// proxy, the only kind supported' })
})
