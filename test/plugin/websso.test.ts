// WebSSO (federated browser login) as a person uses it: the real kubectl runs our plugin, the
// plugin opens "the browser" (test/helpers/websso-browser.mjs: headless Chromium driven by
// playwright-core) on the real federated Keystone (:5001, test/keystone/keystone-federation.sh),
// the browser fills the test IdP's login form, and Keystone's page POSTs the token to the plugin's
// loopback callback. The fake API server checks tokens through our webhook in service mode, so
// `kubectl auth whoami` shows the federated groups by name.
// kubectl gets a terminal from `script` (util-linux) where a run is interactive, as at a desk;
// runs without it are non-interactive, as an IDE's background polling is.
// Needs `npx tsc -p tsconfig.json` first (the binary runs dist/), and Debian's chromium.
import t from 'tap'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startFakeApiServer, type FakeApiServer } from '../helpers/fake-apiserver.js'
import { startWebhook, type TestWebhook } from '../helpers/webhook.js'
import { BROWSER_DRIVER, ensureFederatedKeystone, federatedToken, type FederatedKeystone } from '../helpers/keystone-fed.js'
import { adminToken, keystoneApi } from '../helpers/keystone.js'
import { PLUGIN, kubectl, plugin, run, sandbox, spawnRun, startCountingProxy, webhookAuthenticator, writeKubeconfig, type CountingProxy, type RunResult, type Sandbox } from './_support.js'
import { PassThrough } from 'node:stream'
import { getToken } from '../../src/plugin/get-token.js'
import { TokenCache } from '../../src/plugin/cache.js'
import { Prompter } from '../../src/plugin/prompt.js'
import { resolveSettings } from '../../src/plugin/settings.js'
import { parseFlags } from '../../src/config/flags.js'
import { CREDENTIAL_FLAGS } from '../../src/plugin/flags.js'

const V1 = 'client.authentication.k8s.io/v1' as const
const CHROMIUM = '/usr/bin/chromium'

let k: FederatedKeystone
let wh: TestWebhook
let api: FakeApiServer
let proxy: CountingProxy

t.before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (scripts/test.sh does)`)
  k = await ensureFederatedKeystone()
  // The webhook in service mode, with an application credential of the federated Keystone's admin.
  const admin = await adminToken(k.seed)
  const adminId = k.seed.users.admin?.id as string
  const created = await keystoneApi(k.seed, admin, 'POST', `/users/${adminId}/application_credentials`, { application_credential: { name: `ksa-websso-kubectl-${process.pid}-${Date.now()}` } })
  if (created.status !== 201) throw new Error(`cannot create the service credential: ${created.status}`)
  const cred = created.body.application_credential as { id: string, secret: string }
  t.teardown(async () => { await keystoneApi(k.seed, admin, 'DELETE', `/users/${adminId}/application_credentials/${cred.id}`) })
  const dir = mkdtempSync(join(tmpdir(), 'ksa-websso-'))
  writeFileSync(join(dir, 'secret'), `${cred.secret}\n`, { mode: 0o600 })
  wh = await startWebhook(['--keystone-url', k.authUrl, '--service-credential-id', cred.id, '--service-credential-secret-file', join(dir, 'secret')])
  api = await startFakeApiServer({ authenticate: webhookAuthenticator(wh) })
  // Counts Keystone calls; the browser goes through it too (the websso URL follows OS_AUTH_URL).
  proxy = await startCountingProxy(k.authUrl)
})
t.teardown(async () => {
  await api?.close()
  await wh?.close()
  await proxy?.close()
})

function h (token: string | undefined): string {
  return token === undefined ? 'none' : createHash('sha256').update(token).digest('hex').slice(0, 16)
}

interface Browser { log: string, launches: () => number, done: () => number, errors: () => string[] }

function browserLog (sb: Sandbox): Browser {
  const log = join(sb.dir, 'browser.log')
  const lines = (): string[] => existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []
  return {
    log,
    launches: () => lines().filter(l => l.startsWith('launch ')).length,
    done: () => lines().filter(l => l.startsWith('done ')).length,
    errors: () => lines().filter(l => l.startsWith('error '))
  }
}

/** The exec env of a federated user whose browser is the test driver. */
function fedEnv (b: Browser, user: string, groups: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    OS_AUTH_URL: proxy.url,
    OS_AUTH_TYPE: 'v3websso',
    OS_IDENTITY_PROVIDER: 'testidp',
    OS_PROTOCOL: 'openid',
    CLIENT_KEYSTONE_AUTH_BROWSER: BROWSER_DRIVER,
    KSA_TEST_BROWSER_LOG: b.log,
    KSA_TEST_IDP_USER: user,
    KSA_TEST_IDP_GROUPS: groups,
    ...extra
  }
}

/** kubectl with a terminal (interactive, as at a desk): `script` gives it a pty. Output is stdout and stderr mixed. */
async function kubectlTty (args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  const cmd = ['env', '-u', 'NODE_OPTIONS', 'kubectl', ...args].map(a => `'${a.replace(/'/g, "'\\''")}'`).join(' ')
  return await run('script', ['-qefc', cmd, '/dev/null'], env, 120_000)
}

function jsonIn (out: string): any {
  const a = out.indexOf('{')
  const b = out.lastIndexOf('}')
  if (a < 0 || b < a) throw new Error(`no JSON in the output: ${out.slice(0, 500)}`)
  return JSON.parse(out.slice(a, b + 1))
}

function cacheEntries (sb: Sandbox): Array<{ userName: string, projectName?: string, token: string }> {
  const dir = join(sb.cacheDir, 'k8s-keystone-auth')
  return existsSync(dir) ? readdirSync(dir).filter(n => n.endsWith('.json')).map(n => JSON.parse(readFileSync(join(dir, n), 'utf8'))) : []
}

t.test('kubectl auth whoami: WebSSO login in the browser; the federated user and its groups by name; the next run from the cache', async t => {
  const sb = sandbox()
  const b = browserLog(sb)
  const user = `fed-alice-${process.pid}`
  writeKubeconfig(sb.kubeconfig, api, { apiVersion: V1, interactiveMode: 'IfAvailable', env: fedEnv(b, user, 'federated-users;federated-admins') })
  const r1 = await kubectlTty(['auth', 'whoami', '-o', 'json'], sb.env)
  t.equal(r1.code, 0, r1.stdout)
  t.same(b.errors(), [])
  t.equal(b.launches(), 1, 'one browser')
  t.equal(b.done(), 1, 'the browser reached the callback\'s "you can close this tab" page')
  t.match(r1.stdout, /open this URL:\s+http:\/\/127\.0\.0\.1:\d+\/v3\/auth\/OS-FEDERATION\/identity_providers\/testidp\/protocols\/openid\/websso\?origin=http%3A%2F%2F127\.0\.0\.1%3A825\d%2Fcallback/, 'the URL is printed for headless use')
  const u = jsonIn(r1.stdout).status.userInfo
  t.equal(u.username, user)
  t.match(u.uid, /^[0-9a-f]{64}$/)
  t.same([...u.groups].sort(), ['federated-admins', 'federated-users', k.seed.projects.demo?.id].sort())
  t.same(u.extra['alpha.kubernetes.io/identity/user/domain/name'], ['testidp'])
  t.same(u.extra['alpha.kubernetes.io/identity/project/name'], ['demo'])

  // The next run, without a terminal: served from the cache, no browser and no Keystone call.
  const calls = proxy.requests.length
  const seen = api.seenTokens.length
  const r2 = await kubectl(['get', '--raw', '/version'], sb.env)
  t.equal(r2.code, 0, r2.stderr)
  t.equal(r2.stderr, '')
  t.equal(b.launches(), 1, 'no new browser')
  t.equal(proxy.requests.length, calls, 'no Keystone call')
  t.equal(h(api.seenTokens[seen]), h(api.seenTokens[seen - 1]), 'the same token')
  const entries = cacheEntries(sb)
  t.equal(entries.length, 2, 'the scoped token and the unscoped federated token')
  t.ok(entries.every(e => e.userName === user))
})

t.test('three parallel kubectl runs open one browser; the others wait on the lock and use its token', async t => {
  const sb = sandbox()
  const b = browserLog(sb)
  writeKubeconfig(sb.kubeconfig, api, { apiVersion: V1, interactiveMode: 'IfAvailable', env: fedEnv(b, `fed-par-${process.pid}`, 'federated-users') })
  const seen = api.seenTokens.length
  const rs = await Promise.all([0, 1, 2].map(async () => await kubectlTty(['auth', 'whoami', '-o', 'json'], sb.env)))
  for (const r of rs) t.equal(r.code, 0, r.stdout)
  t.same(b.errors(), [])
  t.equal(b.launches(), 1, 'one browser for three runs')
  t.equal(rs.filter(r => r.stdout.includes('open this URL')).length, 1, 'one run printed the login URL')
  const tokens = new Set(api.seenTokens.slice(seen).map(h))
  t.equal(tokens.size, 1, 'all three presented the same token')
  for (const r of rs) t.equal(jsonIn(r.stdout).status.userInfo.username, `fed-par-${process.pid}`)
})

t.test('non-interactive run without a cached token fails at once, pointing to client-keystone-auth login', async t => {
  const sb = sandbox()
  const b = browserLog(sb)
  writeKubeconfig(sb.kubeconfig, api, { apiVersion: V1, interactiveMode: 'IfAvailable', env: fedEnv(b, 'nobody', 'federated-users') })
  const r = await kubectl(['get', '--raw', '/version'], sb.env)
  t.not(r.code, 0)
  t.match(r.stderr, /no usable cached Keystone token for this WebSSO login.*run `client-keystone-auth login`/)
  t.equal(b.launches(), 0, 'no browser')
  t.notMatch(r.stderr, /open this URL/, 'no login was started')
  const direct = await plugin([], { ...sb.env, ...fedEnv(b, 'nobody', 'federated-users') })
  t.equal(direct.code, 1)
  t.match(direct.stderr, /^client-keystone-auth: no usable cached Keystone token .*client-keystone-auth login/)
  t.equal(direct.stdout, '')
})

async function ensureAltGroup (): Promise<void> {
  // A group of the IdP's domain with a role on project alt: its members have two projects.
  const admin = await adminToken(k.seed)
  const domainId = k.fed.identity_provider.domain_id
  const list = await keystoneApi(k.seed, admin, 'GET', `/groups?name=federated-alt&domain_id=${domainId}`)
  let id = list.body.groups[0]?.id as string | undefined
  if (id === undefined) {
    const c = await keystoneApi(k.seed, admin, 'POST', '/groups', { group: { name: 'federated-alt', domain_id: domainId } })
    if (c.status !== 201) throw new Error(`cannot create group federated-alt: ${c.status}`)
    id = c.body.group.id as string
  }
  const put = await keystoneApi(k.seed, admin, 'PUT', `/projects/${k.seed.projects.alt?.id ?? ''}/groups/${id}/roles/${k.seed.roles.member?.id ?? ''}`)
  if (put.status !== 204) throw new Error(`cannot grant member on alt: ${put.status}`)
}

t.test('client-keystone-auth login ahead of time; kubectl without a terminal then works, and switching project needs no browser', async t => {
  await ensureAltGroup()
  const sb = sandbox()
  const b = browserLog(sb)
  const user = `fed-switch-${process.pid}`
  const env = fedEnv(b, user, 'federated-users federated-alt', { OS_PROJECT_NAME: 'demo' })
  const login = await plugin(['login'], { ...sb.env, ...env })
  t.equal(login.code, 0, login.stderr)
  t.match(login.stderr, /logged in; the new token is valid until/)
  t.equal(login.stdout, '', 'login prints no token')
  t.equal(b.launches(), 1)

  writeKubeconfig(sb.kubeconfig, api, { apiVersion: V1, interactiveMode: 'IfAvailable', env })
  const r1 = await kubectl(['auth', 'whoami', '-o', 'json'], sb.env)
  t.equal(r1.code, 0, r1.stderr)
  t.same(JSON.parse(r1.stdout).status.userInfo.extra['alpha.kubernetes.io/identity/project/name'], ['demo'])

  writeKubeconfig(sb.kubeconfig, api, { apiVersion: V1, interactiveMode: 'IfAvailable', env: { ...env, OS_PROJECT_NAME: 'alt' } })
  const logins = proxy.logins()
  const r2 = await kubectl(['auth', 'whoami', '-o', 'json'], sb.env)
  t.equal(r2.code, 0, r2.stderr)
  const u = JSON.parse(r2.stdout).status.userInfo
  t.same(u.extra['alpha.kubernetes.io/identity/project/name'], ['alt'])
  t.ok(u.groups.includes('federated-alt'))
  t.equal(b.launches(), 1, 'no new browser: the cached unscoped token was scoped to alt')
  t.equal(proxy.logins() - logins, 1, 'one token-method login for the new project')

  // Without a project, two projects and no terminal: a clear error naming them.
  const none = await plugin([], { ...sb.env, ...env, OS_PROJECT_NAME: '' })
  t.equal(none.code, 1)
  t.match(none.stderr, /2 projects \(alt, demo\): choose one with --project-name\/OS_PROJECT_NAME/)
  t.equal(b.launches(), 1)

  // logout forgets this project's token and the unscoped one: the next non-interactive run needs a login again.
  const out = await plugin(['logout'], { ...sb.env, ...env, OS_PROJECT_NAME: 'alt' })
  t.equal(out.code, 0, out.stderr)
  const after = await kubectl(['get', '--raw', '/version'], sb.env)
  t.not(after.code, 0)
  t.match(after.stderr, /client-keystone-auth login/)
})

t.test('a callback with a wrong Origin is refused, and the real browser login still completes', async t => {
  const sb = sandbox()
  const b = browserLog(sb)
  const user = `fed-origin-${process.pid}`
  const env = { ...sb.env, ...fedEnv(b, user, 'federated-users'), CLIENT_KEYSTONE_AUTH_BROWSER: 'none', NODE_OPTIONS: '' }
  // A token of another federated user, as an attacker's page would try to plant it.
  const planted = await federatedToken(k, `mallory-${process.pid}`, ['federated-admins'])
  const child = spawn('env', ['-u', 'NODE_OPTIONS', PLUGIN, 'login'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
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
  t.match(callback, /^http:\/\/127\.0\.0\.1:825\d\/callback$/)
  const post = async (headers: Record<string, string>): Promise<number> => (await fetch(callback, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams({ token: planted }).toString()
  })).status
  t.equal(await post({ origin: 'http://evil.example' }), 403, 'another origin')
  t.equal(await post({ origin: 'http://127.0.0.1:5001' }), 403, 'Keystone itself, but not the Keystone this login uses (the proxy)')
  t.equal(await post({}), 403, 'no Origin')
  t.equal((await fetch(callback)).status, 405, 'GET')

  // Now the person logs in in the browser.
  const driver = await run('node', [BROWSER_DRIVER, url], { PATH: process.env.PATH, HOME: sb.home, KSA_TEST_BROWSER_LOG: b.log, KSA_TEST_IDP_USER: user, KSA_TEST_IDP_GROUPS: 'federated-users' }, 120_000)
  t.equal(driver.code, 0, b.errors().join('\n'))
  t.equal(await exited, 0, stderr)
  t.match(stderr, /refused a WebSSO callback from origin "http:\/\/evil\.example"/)
  const entries = cacheEntries(sb)
  t.equal(entries.length, 2)
  t.ok(entries.every(e => e.userName === user), 'the browser\'s user, not the planted token\'s')
  t.ok(entries.every(e => e.token !== planted))
})

t.test('runs without a terminal (an IDE polling) wait for the browser login in progress instead of failing', async t => {
  const sb = sandbox()
  const b = browserLog(sb)
  const user = `fed-ide-${process.pid}`
  writeKubeconfig(sb.kubeconfig, api, { apiVersion: V1, interactiveMode: 'IfAvailable', env: fedEnv(b, user, 'federated-users') })
  const desk = kubectlTty(['auth', 'whoami', '-o', 'json'], sb.env)
  // The browser has started, so the desk run holds the browser lock: start two background runs.
  for (let i = 0; i < 600 && b.launches() === 0; i++) await new Promise(resolve => setTimeout(resolve, 50))
  t.equal(b.launches(), 1, 'the desk run opened the browser')
  const ide = await Promise.all([0, 1].map(async () => await spawnRun('kubectl', ['auth', 'whoami', '-o', 'json'], sb.env)))
  const d = await desk
  t.equal(d.code, 0, d.stdout)
  for (const r of ide) {
    t.equal(r.code, 0, r.stderr)
    t.equal(JSON.parse(r.stdout).status.userInfo.username, user)
  }
  t.equal(b.launches(), 1, 'still one browser')
})

t.test('two projects and a terminal: the plugin asks which one (in-process, the answer on a stream)', async t => {
  await ensureAltGroup()
  const sb = sandbox()
  const b = browserLog(sb)
  const user = `fed-ask-${process.pid}`
  const env = fedEnv(b, user, 'federated-users;federated-alt')
  // The driver runs without tap's loaders, with the IdP answers in its environment.
  const browser = ['env', '-u', 'NODE_OPTIONS', `KSA_TEST_BROWSER_LOG=${b.log}`, `KSA_TEST_IDP_USER=${user}`, `KSA_TEST_IDP_GROUPS=${env.KSA_TEST_IDP_GROUPS}`, BROWSER_DRIVER]
  const settings = resolveSettings(parseFlags(CREDENTIAL_FLAGS, [], { OS_AUTH_URL: k.authUrl, OS_AUTH_TYPE: 'v3websso', OS_PROTOCOL: 'openid' }))
  const input = new PassThrough()
  const output = new PassThrough()
  let shown = ''
  output.on('data', d => { shown += String(d) })
  input.end('alt\n')
  const prompter = new Prompter(input as unknown as NodeJS.ReadStream, output)
  const logs: string[] = []
  const res = await getToken({
    settings,
    cache: new TokenCache(join(sb.cacheDir, 'k8s-keystone-auth')),
    marginMs: 300_000,
    revalidateAfterMs: 60_000,
    timeoutMs: 30_000,
    interactive: true,
    prompter: () => prompter,
    ppid: process.pid,
    websso: { ports: [8250, 8251, 8252, 8253, 8254, 8255, 8256, 8257, 8258, 8259], timeoutMs: 120_000, browser, log: l => logs.push(l) }
  })
  t.equal(res.source, 'login')
  t.same(b.errors(), [])
  t.match(shown, /Please enter the project \(number or name\)/)
  const wh2 = await wh.post('/webhook', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: res.token } })
  t.same(wh2.body.status.user.extra['alpha.kubernetes.io/identity/project/name'], ['alt'])
  t.equal(wh2.body.status.user.username, user)
})

t.test('a kubeconfig written by `client-keystone-auth kubeconfig` in WebSSO mode works through kubectl', async t => {
  const sb = sandbox()
  const b = browserLog(sb)
  const user = `fed-gen-${process.pid}`
  const gen = await plugin(['kubeconfig', '--server', api.url, '--certificate-authority', api.caFile, '--cluster-name', 'fedcloud', '--exec-command', PLUGIN], {
    ...sb.env, OS_AUTH_URL: proxy.url, OS_AUTH_TYPE: 'v3websso', OS_IDENTITY_PROVIDER: 'testidp', OS_PROTOCOL: 'openid', OS_PROJECT_NAME: 'demo'
  })
  t.equal(gen.code, 0, gen.stderr)
  const kc = readFileSync(sb.kubeconfig, 'utf8')
  t.match(kc, /OS_AUTH_TYPE[\s\S]*v3websso/)
  t.notMatch(kc, /PASSWORD|SECRET|TOKEN/i, 'no secret in the kubeconfig')
  // The browser driver's settings reach the plugin through kubectl's environment.
  const env = { ...sb.env, CLIENT_KEYSTONE_AUTH_BROWSER: BROWSER_DRIVER, KSA_TEST_BROWSER_LOG: b.log, KSA_TEST_IDP_USER: user, KSA_TEST_IDP_GROUPS: 'federated-users' }
  const r = await kubectlTty(['auth', 'whoami', '-o', 'json'], env)
  t.equal(r.code, 0, r.stdout)
  t.equal(b.launches(), 1)
  const u = jsonIn(r.stdout).status.userInfo
  t.equal(u.username, user)
  t.ok(u.groups.includes('federated-users'))
})
