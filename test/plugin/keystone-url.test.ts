// OS_AUTH_URL as Go users write it: ending in /v2.0, with no version, with a trailing slash, or a
// longer /v3 path. gophercloud (openstack.NewClient + NewIdentityV3, utils.BaseEndpoint) cuts the
// path at its version and talks to /v3; so does ours. And a URL whose path is no Keystone v3 API
// is said to be one, not reported as a wrong password. Through the built binary against the real
// Keystone; needs `npm run build`.
import t from 'tap'
import { loadSeed } from '../helpers/keystone.js'
import { goPeerBinary, goPeerUnavailable } from '../helpers/go-peer.js'
import { normalizeKeystoneUrl } from '../../src/keystone/auth-request.js'
import { plugin, run, sandbox, startCountingProxy, type CountingProxy } from './_support.js'

const seed = loadSeed()
const demo = seed.users.demo!
const appCred = seed.application_credentials['kubectl-demo']!
const root = new URL(seed.auth_url).origin // http://127.0.0.1:5000
const login = { OS_USERNAME: 'demo', OS_DOMAIN_NAME: 'Default', OS_PROJECT_NAME: 'demo', OS_PASSWORD: demo.password }
let proxy: CountingProxy
t.before(async () => { proxy = await startCountingProxy(seed.auth_url) })
t.teardown(async () => { await proxy?.close() })

t.test('the URL forms, as gophercloud turns them into a v3 endpoint', async t => {
  const cases: Array<[string, string]> = [
    ['http://k:5000', 'http://k:5000/v3'],
    ['http://k:5000/', 'http://k:5000/v3'],
    ['http://k:5000/v2.0', 'http://k:5000/v3'],
    ['http://k:5000/v2.0/', 'http://k:5000/v3'],
    ['http://k:5000/v3', 'http://k:5000/v3'],
    ['http://k:5000/v3/', 'http://k:5000/v3'],
    ['http://k:5000/v3.14', 'http://k:5000/v3'],
    ['http://k:5000/v3/auth/tokens', 'http://k:5000/v3'],
    ['https://k/identity', 'https://k/identity/v3'],
    ['https://k/identity/', 'https://k/identity/v3'],
    ['https://k/identity/v2.0', 'https://k/identity/v3'],
    ['https://k/identity/v3?x=1#y', 'https://k/identity/v3']
  ]
  for (const [given, want] of cases) t.equal(normalizeKeystoneUrl(given), want, given)
})

t.test('logins with OS_AUTH_URL ending in /v2.0, with no version, with a slash: all reach /v3', async t => {
  const port = new URL(proxy.url).port
  for (const url of [`http://127.0.0.1:${port}/v2.0`, `http://127.0.0.1:${port}/v2.0/`, `http://127.0.0.1:${port}`, `http://127.0.0.1:${port}/`, `http://127.0.0.1:${port}/v3/`]) {
    const seen = proxy.requests.length
    const r = await plugin(['--no-cache'], { ...sandbox().env, OS_AUTH_URL: url, ...login })
    t.equal(r.code, 0, `${url}: ${r.stderr}`)
    t.ok(JSON.parse(r.stdout).status.token, `${url}: a token`)
    t.same(proxy.requests.slice(seen), ['POST /v3/auth/tokens'], `${url}: one login, at /v3/auth/tokens`)
  }
})

t.test('the Go plugin logs in with the same URL forms', { skip: goPeerUnavailable('client-keystone-auth') ?? false }, async t => {
  const go = goPeerBinary('client-keystone-auth')
  for (const url of [`${root}/v2.0`, root, `${root}/`]) {
    const r = await run(go, [], { PATH: process.env.PATH, HOME: sandbox().home, OS_AUTH_URL: url, ...login })
    t.equal(r.code, 0, `Go, ${url}: ${r.stderr}`)
  }
})

t.test('a URL whose path is no Keystone v3 API: said so, with the URL tried and the status', async t => {
  const wrong = `${root}/identity/v3`
  const r = await plugin(['--no-cache'], { ...sandbox().env, OS_AUTH_URL: wrong, ...login })
  t.equal(r.code, 1)
  t.match(r.stderr, `client-keystone-auth: no Keystone v3 API at ${wrong} (HTTP 404)`)
  t.notMatch(r.stderr, /rejected|password/, 'not reported as a wrong password')
  // The same for an application credential (whose own "not found" is a 404 from Keystone too).
  const ac = await plugin(['--no-cache'], { ...sandbox().env, OS_AUTH_URL: `${root}/keystone`, OS_APPLICATION_CREDENTIAL_ID: appCred.id, OS_APPLICATION_CREDENTIAL_SECRET: appCred.secret })
  t.equal(ac.code, 1)
  t.match(ac.stderr, `no Keystone v3 API at ${root}/keystone/v3 (HTTP 404)`)
})

t.test('Keystone\'s own 404 (an unknown application credential) is still the credential\'s fault', async t => {
  const r = await plugin(['--no-cache'], { ...sandbox().env, OS_AUTH_URL: seed.auth_url, OS_APPLICATION_CREDENTIAL_ID: 'no-such-credential', OS_APPLICATION_CREDENTIAL_SECRET: 'x' })
  t.equal(r.code, 1)
  t.match(r.stderr, 'rejected application credential no-such-credential: wrong secret, or the credential expired or was deleted')
})
