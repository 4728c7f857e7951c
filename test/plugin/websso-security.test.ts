// Security review, finding 6: "WebSSO accepts a token posted by any local process. The Origin
// check stops web pages but not another local user." A local process can post to the loopback
// callback with any Origin header. Against the real federated Keystone (:5001,
// test/keystone/keystone-federation.sh) and the built plugin (`npm run build` first): the test
// plays both the browser (posting the person's own federated token, as Keystone's page would) and
// the attacker (posting another federated user's valid token with a forged Origin).
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ensureFederatedKeystone, federatedToken, type FederatedKeystone } from '../helpers/keystone-fed.js'
import { adminToken } from '../helpers/keystone.js'
import { PLUGIN, sandbox, type Sandbox } from './_support.js'

let k: FederatedKeystone
t.before(async () => { k = await ensureFederatedKeystone() })

interface Login {
  /** POSTs a token to the callback as a local process can: any headers, Keystone's Origin forged. */
  post: (token: string) => Promise<{ status: number, body: string }>
  stderr: () => string
  exited: Promise<number | null>
  kill: () => void
}

/** Starts `client-keystone-auth login [args]` (WebSSO, no browser) and waits for its callback URL. */
async function startLogin (sb: Sandbox, args: string[] = []): Promise<Login> {
  const env = {
    ...sb.env,
    OS_AUTH_URL: k.authUrl,
    OS_AUTH_TYPE: 'v3websso',
    OS_IDENTITY_PROVIDER: 'testidp',
    OS_PROTOCOL: 'openid',
    CLIENT_KEYSTONE_AUTH_BROWSER: 'none',
    CLIENT_KEYSTONE_AUTH_WEBSSO_TIMEOUT: '60s',
    // No browser goes through Keystone here, so any ports do: not websso.test.ts's 8250-8259, which may run at the same time.
    CLIENT_KEYSTONE_AUTH_WEBSSO_PORTS: '18250-18269'
  }
  const child = spawn('env', ['-u', 'NODE_OPTIONS', PLUGIN, 'login', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  const exited = new Promise<number | null>(resolve => child.on('close', code => resolve(code)))
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', d => {
      stderr += String(d)
      const m = /open this URL:\n {2}(http\S+)\n/.exec(stderr)
      if (m !== null) resolve(m[1] as string)
    })
    child.on('close', () => reject(new Error(`the plugin ended before printing the URL: ${stderr}`)))
  })
  const callback = new URL(url).searchParams.get('origin') as string
  const origin = new URL(k.authUrl).origin
  return {
    post: async (token: string) => {
      const res = await fetch(callback, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin }, body: new URLSearchParams({ token }).toString() })
      return { status: res.status, body: await res.text() }
    },
    stderr: () => stderr,
    exited,
    kill: () => child.kill('SIGTERM')
  }
}

function cachedUsers (sb: Sandbox): string[] {
  const dir = join(sb.cacheDir, 'k8s-keystone-auth')
  return existsSync(dir)
    ? readdirSync(dir).filter(n => /^[0-9a-f]{64}\.json$/.test(n)).map(n => (JSON.parse(readFileSync(join(dir, n), 'utf8')) as { userName: string }).userName).sort()
    : []
}

t.test('finding 6: a token of another user posted to the callback by a local process (forged Origin) is refused', async t => {
  const sb = sandbox()
  const alice = `fed-alice-${process.pid}`
  const mallory = `fed-mallory-${process.pid}`
  const aliceToken = await federatedToken(k, alice, ['federated-users'])
  const malloryToken = await federatedToken(k, mallory, ['federated-users'])

  // Alice logs in (her browser posts her token).
  const first = await startLogin(sb)
  t.equal((await first.post(aliceToken)).status, 200)
  t.equal(await first.exited, 0, first.stderr())
  t.match(first.stderr(), `logged in to Keystone as user ${alice} (id `)
  t.match(first.stderr(), 'of identity provider testidp, protocol openid')

  // Her token has expired, the browser opens again: another local user races it with a valid
  // federated token of their own, with the Origin Keystone's page would have.
  const second = await startLogin(sb)
  const planted = await second.post(malloryToken)
  t.equal(planted.status, 403, 'the planted token is refused')
  t.match(planted.body, `it is a token of user ${mallory}`)
  t.match(second.stderr(), new RegExp(`refused a WebSSO callback: it is a token of user ${mallory} \\(id [0-9a-f]+\\) of identity provider testidp, but this login \\(Keystone ${k.authUrl}, identity provider testidp, protocol openid\\) last logged in as user ${alice} \\(id [0-9a-f]+\\) of identity provider testidp on .*; another local process may have posted it\\. If you meant to log in as another user, stop this run and use \`client-keystone-auth login --switch\`; still waiting`))
  // A token that is not federated (a password login's) is refused too, whoever it is.
  const local = await second.post(await adminToken(k.seed))
  t.equal(local.status, 403)
  t.match(local.body, /is not a federated \(WebSSO\) token/)
  t.equal((await second.post('gAAAAA-not-a-token')).status, 403, 'an invalid token')
  // The wait went on: Alice's browser still completes her login.
  t.equal((await second.post(aliceToken)).status, 200)
  t.equal(await second.exited, 0, second.stderr())
  t.same(cachedUsers(sb), [alice, alice], 'only Alice\'s tokens are cached')

  // Alice really wants to log in as another user: login --switch.
  const sw = await startLogin(sb, ['--switch'])
  t.equal((await sw.post(malloryToken)).status, 200)
  t.equal(await sw.exited, 0, sw.stderr())
  t.match(sw.stderr(), `logged in to Keystone as user ${mallory} (id `)
  t.match(sw.stderr(), `(switched from user ${alice} (id `)
  t.same(cachedUsers(sb), [mallory, mallory])

  // From then on the other user is the expected one.
  const back = await startLogin(sb)
  t.equal((await back.post(aliceToken)).status, 403)
  back.kill()
  await back.exited
})
