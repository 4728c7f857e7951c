// Keystone over HTTPS (a TLS front with a test CA before the real Keystone):
// --cacert/OS_CACERT makes it work, a missing or wrong CA says "TLS problem" plainly, and the
// plugin's login body is the same JSON as the server's KeystoneClient sends.
import t from 'tap'
import { loadSeed } from '../helpers/keystone.js'
import { testCerts } from '../helpers/certs.js'
import { startTlsFront } from '../helpers/forward-proxy.js'
import { authRequestBody } from '../../src/keystone/client.js'
import { loginBody } from '../../src/plugin/keystone-lite.js'
import type { AuthMethod, ScopeRequest } from '../../src/keystone/types.js'
import { plugin, sandbox } from './_support.js'

const seed = loadSeed()
const demo = seed.users.demo!

t.test('login body: identical to KeystoneClient.authRequestBody for every method and scope', async t => {
  const auths: AuthMethod[] = [
    { method: 'password', user: { name: 'u', domain: { name: 'D' } }, password: 'p' },
    { method: 'password', user: { id: 'uid' }, password: 'p' },
    { method: 'application_credential', id: 'a', secret: 's' },
    { method: 'application_credential', name: 'n', user: { name: 'u', domain: { id: 'did' } }, secret: 's' },
    { method: 'token', token: 'tok' }
  ]
  const scopes: Array<ScopeRequest | undefined> = [undefined, { project: { id: 'p' } }, { project: { name: 'p', domain: { name: 'D' } } }, { domain: { id: 'd' } }, { system: true }, 'unscoped']
  for (const a of auths) for (const s of scopes) t.same(loginBody(a, s), authRequestBody(a, s))
})

t.test('Keystone behind TLS', async t => {
  const certs = testCerts()
  const front = await startTlsFront(certs, seed.auth_url)
  t.teardown(front.close)
  const url = `https://127.0.0.1:${front.port}/v3`
  const env = { ...sandbox().env, OS_AUTH_URL: url, OS_USERNAME: 'demo', OS_DOMAIN_NAME: 'Default', OS_PROJECT_NAME: 'demo', OS_PASSWORD: demo.password }

  const ok = await plugin(['--cacert', certs.caFile], env)
  t.equal(ok.code, 0, ok.stderr)
  t.ok(JSON.parse(ok.stdout).status.token.length > 20)

  const noCa = await plugin(['--no-cache'], env)
  t.not(noCa.code, 0)
  t.match(noCa.stderr, `TLS problem talking to Keystone at ${url}`)
  t.match(noCa.stderr, /check --cacert\/OS_CACERT/)

  // The cache key includes the TLS settings: the token cached with --cacert is not reused without it.
  const cachedWithoutCa = await plugin([], env)
  t.not(cachedWithoutCa.code, 0)
  t.match(cachedWithoutCa.stderr, /TLS problem/)

  const missingFile = await plugin(['--cacert', '/nonexistent/ca.pem', '--no-cache'], env)
  t.not(missingFile.code, 0)
  t.match(missingFile.stderr, /cannot read the CA \(--cacert\/OS_CACERT\) file \/nonexistent\/ca\.pem: ENOENT/)
})
