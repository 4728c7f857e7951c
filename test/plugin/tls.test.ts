// Keystone over HTTPS (a TLS front with a test CA before the real Keystone):
// --cacert/OS_CACERT makes it work, and a missing or wrong CA says "TLS problem" plainly. (The
// plugin's login body is the server's by construction: keystone-lite re-exports authRequestBody.)
import t from 'tap'
import { loadSeed } from '../helpers/keystone.js'
import { testCerts } from '../helpers/certs.js'
import { startTlsFront } from '../helpers/forward-proxy.js'
import { plugin, sandbox } from './_support.js'

const seed = loadSeed()
const demo = seed.users.demo!

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
