// HTTPS_PROXY / HTTP_PROXY / NO_PROXY, as the Go plugin follows them: the rules (Go's httpproxy
// cases), then the real binary and the real kubectl through a forward proxy to the real Keystone.
// Keystone is reached by the name keystone.test, which only the proxy resolves: an answer proves
// the proxy carried it, and a bypass fails to resolve.
import t from 'tap'
import { loadSeed } from '../helpers/keystone.js'
import { testCerts } from '../helpers/certs.js'
import { startForwardProxy as startProxy, startTlsFront } from '../helpers/forward-proxy.js'
import { proxyFor } from '../../src/keystone/proxy.js'
import { kubectl, plugin, sandbox, usePluginStack, writeKubeconfig } from './_support.js'

const seed = loadSeed()
const demo = seed.users.demo!
const keystone = new URL(seed.auth_url)
const stack = usePluginStack(t, seed.auth_url)

t.test('proxyFor: Go\'s ProxyFromEnvironment rules', async t => {
  const env = { HTTPS_PROXY: 'http://secure-proxy:3128', HTTP_PROXY: 'plain-proxy:8080' }
  const cases: Array<[string, Record<string, string>, string | undefined]> = [
    ['https://keystone.example.com:5000/v3', env, 'http://secure-proxy:3128/'],
    ['http://keystone.example.com:5000/v3', env, 'http://plain-proxy:8080/'],
    ['https://keystone.example.com/v3', { https_proxy: 'http://lower:1' }, 'http://lower:1/'],
    ['https://keystone.example.com/v3', { HTTPS_PROXY: '', https_proxy: 'http://lower:1' }, 'http://lower:1/'],
    ['https://keystone.example.com/v3', { HTTP_PROXY: 'http://plain:1' }, undefined],
    ['https://localhost:5000/v3', env, undefined],
    ['https://127.0.0.1:5000/v3', env, undefined],
    ['https://127.9.9.9:5000/v3', env, undefined],
    ['https://[::1]:5000/v3', env, undefined],
    ['https://keystone.example.com/v3', { ...env, NO_PROXY: '*' }, undefined],
    ['https://keystone.example.com/v3', { ...env, NO_PROXY: 'example.com' }, undefined],
    ['https://example.com/v3', { ...env, NO_PROXY: 'example.com' }, undefined],
    ['https://keystone.example.com/v3', { ...env, no_proxy: '.example.com' }, undefined],
    ['https://example.com/v3', { ...env, NO_PROXY: '.example.com' }, 'http://secure-proxy:3128/'],
    ['https://keystone.example.com/v3', { ...env, NO_PROXY: '*.example.com' }, undefined],
    ['https://notexample.com/v3', { ...env, NO_PROXY: 'example.com' }, 'http://secure-proxy:3128/'],
    ['https://keystone.example.com:5000/v3', { ...env, NO_PROXY: 'keystone.example.com:5000' }, undefined],
    ['https://keystone.example.com:5001/v3', { ...env, NO_PROXY: 'keystone.example.com:5000' }, 'http://secure-proxy:3128/'],
    ['https://keystone.example.com/v3', { ...env, NO_PROXY: 'keystone.example.com:443' }, undefined],
    ['https://10.1.2.3:5000/v3', { ...env, NO_PROXY: '10.0.0.0/8' }, undefined],
    ['https://11.1.2.3:5000/v3', { ...env, NO_PROXY: '10.0.0.0/8' }, 'http://secure-proxy:3128/'],
    ['https://10.1.2.3:5000/v3', { ...env, NO_PROXY: ' other.org , 10.1.2.3 ' }, undefined],
    ['https://KEYSTONE.Example.COM/v3', { ...env, NO_PROXY: 'keystone.example.com' }, undefined]
  ]
  for (const [url, e, want] of cases) t.equal(proxyFor(new URL(url), e)?.href, want, `${url} with ${JSON.stringify(e)}`)
  // Go refuses these too; a silent direct connection would hide the mistake. Values are not quoted.
  t.throws(() => proxyFor(new URL('https://k.example.com/v3'), { HTTPS_PROXY: 'socks5://u:SECRET@proxy:1080' }),
    { code: 'KSA_ERR_CONFIG', message: 'HTTPS_PROXY/https_proxy: the proxy socks5://proxy:1080 is not an http:// proxy, the only kind supported' })
  t.throws(() => proxyFor(new URL('http://k.example.com/v3'), { http_proxy: 'http://u:SECRET@[bad' }),
    { code: 'KSA_ERR_CONFIG', message: 'HTTP_PROXY/http_proxy is not a valid proxy URL' })
  t.equal(proxyFor(new URL('https://localhost/v3'), { HTTPS_PROXY: 'socks5://proxy:1080' }), undefined, 'judged only when it would be used')
})

const demoCreds = { OS_USERNAME: 'demo', OS_DOMAIN_NAME: 'Default', OS_PROJECT_NAME: 'demo', OS_PASSWORD: demo.password }

t.test('http:// Keystone through HTTP_PROXY; NO_PROXY bypasses it', async t => {
  const proxy = await startProxy()
  t.teardown(proxy.close)
  const authUrl = `http://keystone.test:${keystone.port}/v3`
  const env = { ...sandbox().env, ...demoCreds, OS_AUTH_URL: authUrl, HTTP_PROXY: proxy.url }
  const ok = await plugin(['--no-cache'], env)
  t.equal(ok.code, 0, ok.stderr)
  t.ok(JSON.parse(ok.stdout).status.token.length > 20, 'a token came back')
  t.ok(proxy.forwarded >= 1, 'through the proxy')

  const before = proxy.forwarded
  const bypass = await plugin(['--no-cache'], { ...env, NO_PROXY: 'keystone.test' })
  t.not(bypass.code, 0)
  t.match(bypass.stderr, `cannot reach Keystone at ${authUrl}: ENOTFOUND`)
  t.notMatch(bypass.stderr, /through the proxy/)
  t.equal(proxy.forwarded, before, 'NO_PROXY: not through the proxy')
})

t.test('https:// Keystone through HTTPS_PROXY: a CONNECT tunnel with proxy credentials, and kubectl on top', async t => {
  const certs = testCerts()
  // Keystone over TLS (certificate for keystone.test), in front of the real one.
  const front = await startTlsFront(certs, seed.auth_url)
  t.teardown(front.close)
  const proxy = await startProxy({ auth: 'corp:PROXYSECRET' })
  t.teardown(proxy.close)
  const authUrl = `https://keystone.test:${front.port}/v3`
  const withCreds = proxy.url.replace('http://', 'http://corp:PROXYSECRET@')
  const sb = sandbox()
  const env = { ...sb.env, ...demoCreds, OS_AUTH_URL: authUrl, OS_CACERT: certs.caFile, HTTPS_PROXY: withCreds }

  const ok = await plugin(['--no-cache'], env)
  t.equal(ok.code, 0, ok.stderr)
  t.ok(proxy.tunnels >= 1, 'through a CONNECT tunnel')
  t.equal(proxy.forwarded, 0, 'no plain request: the proxy never sees the token')

  const refused = await plugin(['--no-cache'], { ...env, HTTPS_PROXY: proxy.url })
  t.not(refused.code, 0)
  t.match(refused.stderr, `cannot reach Keystone at ${authUrl} through the proxy ${proxy.url}: EPROXY: the proxy answered HTTP 407 to CONNECT keystone.test:`)
  const socks = await plugin(['--no-cache'], { ...env, HTTPS_PROXY: 'socks5://corp:PROXYSECRET@127.0.0.1:1080' })
  t.equal(socks.code, 1)
  t.match(socks.stderr, 'client-keystone-auth: HTTPS_PROXY/https_proxy: the proxy socks5://127.0.0.1:1080 is not an http:// proxy')
  t.notMatch(socks.stderr, /PROXYSECRET/)
  const shown = await plugin(['--no-cache'], { ...env, HTTPS_PROXY: withCreds.replace('PROXYSECRET', 'WRONGSECRET') })
  t.not(shown.code, 0)
  t.notMatch(shown.stderr, /WRONGSECRET|corp:/, 'proxy credentials are never printed')

  // kubectl inherits the same environment: it talks to its API server on 127.0.0.1 directly (loopback
  // is never proxied), and the plugin it runs reaches Keystone through the proxy.
  const tunnels = proxy.tunnels
  writeKubeconfig(sb.kubeconfig, stack.api, { apiVersion: 'client.authentication.k8s.io/v1', env: {} })
  const r = await kubectl(['get', '--raw', '/version'], env)
  t.equal(r.code, 0, r.stderr)
  t.ok(proxy.tunnels > tunnels, 'the plugin run by kubectl went through the proxy')
})
