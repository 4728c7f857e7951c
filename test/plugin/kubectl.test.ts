// The plugin through the real kubectl and the real Keystone: kubectl runs bin/client-keystone-auth
// from an exec kubeconfig against a small HTTPS API server that checks the bearer token with
// Keystone. A counting proxy in front of Keystone proves which runs logged in.
// Needs `npx tsc -p tsconfig.json` first (the binary runs dist/).
import t from 'tap'
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { loadSeed } from '../helpers/keystone.js'
import { startFakeApiServer } from '../helpers/fake-apiserver.js'
import {
  keystoneAuthenticator, kubectl, plugin, revokeToken, sandbox, spawnRun, tokenStatus, usePluginStack, writeKubeconfig
} from './_support.js'

const seed = loadSeed()
const demo = seed.users.demo!
const alice = seed.users.alice!
const appCred = seed.application_credentials['kubectl-demo']!

const stack = usePluginStack(t, seed.auth_url)

const V1 = 'client.authentication.k8s.io/v1' as const
const V1BETA1 = 'client.authentication.k8s.io/v1beta1' as const

function demoEnv (): Record<string, string> {
  return { OS_AUTH_URL: stack.proxy.url, OS_USERNAME: 'demo', OS_DOMAIN_NAME: 'Default', OS_PROJECT_NAME: 'demo', OS_PASSWORD: demo.password }
}

/** Tokens are compared by hash, so that a failing assertion does not print a token. */
function h (token: string | undefined): string {
  return token === undefined ? 'none' : createHash('sha256').update(token).digest('hex').slice(0, 16)
}

function cacheFiles (cacheDir: string): string[] {
  const dir = join(cacheDir, 'k8s-keystone-auth')
  return existsSync(dir) ? readdirSync(dir).filter(n => n.endsWith('.json')).map(n => join(dir, n)) : []
}

function whoami (stdout: string): { username: string, uid: string, groups: string[] } {
  return (JSON.parse(stdout) as { status: { userInfo: { username: string, uid: string, groups: string[] } } }).status.userInfo
}

t.test('v1 exec config: whoami shows the Keystone user; the second run is served from the cache', async t => {
  const sb = sandbox()
  writeKubeconfig(sb.kubeconfig, stack.api, { apiVersion: V1, env: demoEnv() })
  const before = stack.proxy.logins()
  const r1 = await kubectl(['auth', 'whoami', '-o', 'json'], sb.env)
  t.equal(r1.code, 0, r1.stderr)
  const u = whoami(r1.stdout)
  t.equal(u.username, 'demo')
  t.equal(u.uid, demo.id)
  t.ok(u.groups.includes(seed.projects.demo!.id), 'the project id is a group')
  t.equal(stack.proxy.logins() - before, 1, 'first run logs in once')

  const seen = stack.api.seenTokens.length
  const r2 = await kubectl(['get', '--raw', '/version'], sb.env)
  t.equal(r2.code, 0, r2.stderr)
  t.equal(JSON.parse(r2.stdout).gitVersion, 'v1.32.0-fake')
  t.equal(stack.proxy.logins() - before, 1, 'second run makes no new Keystone login')
  t.equal(h(stack.api.seenTokens[seen]), h(stack.api.seenTokens[seen - 1]), 'the same token was presented again')

  // Cache files: directory 0700, token file 0600, and the token is in no other file.
  const files = cacheFiles(sb.cacheDir)
  t.equal(files.length, 1)
  t.equal(statSync(join(sb.cacheDir, 'k8s-keystone-auth')).mode & 0o777, 0o700)
  t.equal(statSync(files[0]!).mode & 0o777, 0o600)
  const entry = JSON.parse(readFileSync(files[0]!, 'utf8'))
  t.equal(h(entry.token), h(stack.api.seenTokens[seen]), 'the cached token is the one kubectl presented')
  t.notOk(readFileSync(files[0]!, 'utf8').includes(demo.password), 'the password is not cached')
})

t.test('v1beta1 exec config works, and the plugin answers in the apiVersion kubectl asks for', async t => {
  const sb = sandbox()
  writeKubeconfig(sb.kubeconfig, stack.api, { apiVersion: V1BETA1, env: demoEnv() })
  const r = await kubectl(['auth', 'whoami', '-o', 'json'], sb.env)
  t.equal(r.code, 0, r.stderr)
  t.equal(whoami(r.stdout).username, 'demo')

  for (const [info, want] of [[undefined, V1BETA1], [V1, V1], [V1BETA1, V1BETA1]] as const) {
    const env = { ...sb.env, ...demoEnv() }
    if (info !== undefined) env.KUBERNETES_EXEC_INFO = JSON.stringify({ apiVersion: info, kind: 'ExecCredential', spec: { interactive: false } })
    const p = await plugin([], env)
    t.equal(p.code, 0, p.stderr)
    const cred = JSON.parse(p.stdout)
    t.equal(cred.apiVersion, want, `KUBERNETES_EXEC_INFO ${info ?? 'absent'}`)
    t.equal(cred.kind, 'ExecCredential')
    t.match(cred.status.expirationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
    t.ok(Date.parse(cred.status.expirationTimestamp) > Date.now())
  }
  const bad = await plugin([], { ...sb.env, ...demoEnv(), KUBERNETES_EXEC_INFO: JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1alpha1', kind: 'ExecCredential' }) })
  t.not(bad.code, 0)
  t.match(bad.stderr, /v1alpha1/)
})

t.test('application credential (id and secret) through kubectl', async t => {
  const sb = sandbox()
  writeKubeconfig(sb.kubeconfig, stack.api, {
    apiVersion: V1,
    env: { OS_AUTH_URL: stack.proxy.url, OS_APPLICATION_CREDENTIAL_ID: appCred.id, OS_APPLICATION_CREDENTIAL_SECRET: appCred.secret }
  })
  const r = await kubectl(['auth', 'whoami', '-o', 'json'], sb.env)
  t.equal(r.code, 0, r.stderr)
  const u = whoami(r.stdout)
  t.equal(u.username, 'demo')
  t.ok(u.groups.includes(appCred.project_id))
  t.notOk(r.stderr.includes(appCred.secret))
})

t.test('clouds.yaml and secure.yaml in ~/.config/openstack, chosen by OS_CLOUD', async t => {
  const sb = sandbox()
  const dir = join(sb.home, '.config', 'openstack')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'clouds.yaml'), [
    'clouds:',
    '  acme:',
    '    auth:',
    `      auth_url: ${stack.proxy.url}`,
    '      username: alice',
    '      user_domain_name: acme',
    '      project_name: ops',
    '      project_domain_name: acme',
    '  other:',
    '    auth:',
    '      auth_url: http://127.0.0.1:1/v3',
    ''
  ].join('\n'))
  writeFileSync(join(dir, 'secure.yaml'), `clouds:\n  acme:\n    auth:\n      password: ${alice.password}\n`, { mode: 0o600 })
  writeKubeconfig(sb.kubeconfig, stack.api, { apiVersion: V1, env: { OS_CLOUD: 'acme' } })
  const r = await kubectl(['auth', 'whoami', '-o', 'json'], sb.env)
  t.equal(r.code, 0, r.stderr)
  const u = whoami(r.stdout)
  t.equal(u.username, 'alice')
  t.ok(u.groups.includes(seed.projects.ops!.id))

  // Env wins over clouds.yaml: a wrong OS_PASSWORD in the exec env is used (and rejected).
  const sb2 = sandbox()
  // Same HOME (so the same clouds.yaml), own kubeconfig and cache.
  const env2 = { ...sb2.env, HOME: sb.home }
  writeKubeconfig(sb2.kubeconfig, stack.api, { apiVersion: V1, env: { OS_CLOUD: 'acme', OS_PASSWORD: 'not-alices-password' } })
  const r2 = await kubectl(['get', '--raw', '/version'], env2)
  t.not(r2.code, 0)
  t.match(r2.stderr, /rejected the password of user alice in domain acme/)
})

t.test('a wrong password: a clear message from Keystone\'s 401, non-zero exit, nothing cached', async t => {
  const sb = sandbox()
  writeKubeconfig(sb.kubeconfig, stack.api, { apiVersion: V1, env: { ...demoEnv(), OS_PASSWORD: 'wrong-password' } })
  const r = await kubectl(['get', '--raw', '/version'], sb.env)
  t.not(r.code, 0)
  t.match(r.stderr, `Keystone at ${stack.proxy.url} rejected the password of user demo in domain Default`)
  t.notOk(r.stderr.includes('wrong-password'), 'the password is not echoed')
  t.same(cacheFiles(sb.cacheDir), [])
})

t.test('unreachable Keystone is said plainly', async t => {
  const sb = sandbox()
  writeKubeconfig(sb.kubeconfig, stack.api, { apiVersion: V1, env: { ...demoEnv(), OS_AUTH_URL: 'http://127.0.0.1:1/v3' } })
  const r = await kubectl(['get', '--raw', '/version'], sb.env)
  t.not(r.code, 0)
  t.match(r.stderr, /cannot reach Keystone at http:\/\/127\.0\.0\.1:1\/v3: ECONNREFUSED/)
})

t.test('non-interactive with the password missing: fails at once, naming what is missing', async t => {
  for (const [apiVersion, mode] of [[V1, 'Never'], [V1, 'IfAvailable'], [V1BETA1, undefined]] as const) {
    const sb = sandbox()
    const env = demoEnv()
    delete (env as Record<string, string | undefined>).OS_PASSWORD
    writeKubeconfig(sb.kubeconfig, stack.api, { apiVersion, env, ...(mode !== undefined ? { interactiveMode: mode } : {}) })
    const before = stack.proxy.logins()
    const r = await kubectl(['get', '--raw', '/version'], sb.env)
    t.equal(r.killed, false, 'no hang')
    t.not(r.code, 0)
    t.match(r.stderr, /missing password \(--password or OS_PASSWORD\)/, `${apiVersion} ${mode ?? ''}`)
    t.match(r.stderr, /not prompting/)
    t.equal(stack.proxy.logins(), before, 'no login attempted')
  }
  // Several settings missing are all named.
  const sb = sandbox()
  writeKubeconfig(sb.kubeconfig, stack.api, { apiVersion: V1, env: { OS_AUTH_URL: stack.proxy.url } })
  const r = await kubectl(['get', '--raw', '/version'], sb.env)
  t.not(r.code, 0)
  t.match(r.stderr, /missing user domain .*user name .*project .*password/)
})

t.test('parallel kubectl runs with an empty cache make one login', async t => {
  const sb = sandbox()
  writeKubeconfig(sb.kubeconfig, stack.api, { apiVersion: V1, env: demoEnv() })
  const before = stack.proxy.logins()
  const runs = await Promise.all(Array.from({ length: 5 }, async () => await spawnRun('kubectl', ['get', '--raw', '/version'], sb.env)))
  for (const r of runs) t.equal(r.code, 0, r.stderr)
  t.equal(stack.proxy.logins() - before, 1, 'one login for five runs')
  t.equal(cacheFiles(sb.cacheDir).length, 1)
})

t.test('--no-cache logs in every time and writes nothing', async t => {
  const sb = sandbox()
  writeKubeconfig(sb.kubeconfig, stack.api, { apiVersion: V1, env: demoEnv(), args: ['--no-cache'] })
  const before = stack.proxy.logins()
  for (let i = 0; i < 2; i++) {
    const r = await kubectl(['get', '--raw', '/version'], sb.env)
    t.equal(r.code, 0, r.stderr)
  }
  t.equal(stack.proxy.logins() - before, 2)
  t.same(cacheFiles(sb.cacheDir), [])
})

const cachedToken = (file: string): string => (JSON.parse(readFileSync(file, 'utf8')) as { token: string }).token

t.test('logout forgets the cached token and revokes it in Keystone; the next run logs in again', async t => {
  const sb = sandbox()
  writeKubeconfig(sb.kubeconfig, stack.api, { apiVersion: V1, env: demoEnv() })
  const before = stack.proxy.logins()
  t.equal((await kubectl(['get', '--raw', '/version'], sb.env)).code, 0)
  t.equal(cacheFiles(sb.cacheDir).length, 1)
  const first = cachedToken(cacheFiles(sb.cacheDir)[0] as string)
  t.equal(await tokenStatus(seed.auth_url, first), 200)
  const env = { ...sb.env, ...demoEnv() }
  delete env.OS_PASSWORD
  const out = await plugin(['logout'], env)
  t.equal(out.code, 0, out.stderr)
  t.match(out.stderr, /the token of demo \(project demo\): revoked in Keystone/)
  t.notOk(out.stderr.includes(first), 'the token is not printed')
  t.same(cacheFiles(sb.cacheDir), [])
  t.equal(await tokenStatus(seed.auth_url, first), 401, 'Keystone no longer honours the token')
  t.equal((await kubectl(['get', '--raw', '/version'], sb.env)).code, 0)
  t.equal(stack.proxy.logins() - before, 2)
  const second = cachedToken(cacheFiles(sb.cacheDir)[0] as string)
  const all = await plugin(['logout', '--all'], sb.env)
  t.equal(all.code, 0, all.stderr)
  t.match(all.stderr, /revoked in Keystone[\s\S]*removed 1 cached token/)
  t.same(cacheFiles(sb.cacheDir), [])
  t.equal(await tokenStatus(seed.auth_url, second), 401)
})

t.test('logout when Keystone cannot be reached: the token is forgotten, and the user told it is still valid', async t => {
  const sb = sandbox()
  const dir = join(sb.cacheDir, 'k8s-keystone-auth')
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const expiresAt = new Date(Date.now() + 3600_000).toISOString()
  const now = new Date().toISOString()
  writeFileSync(join(dir, `${'a'.repeat(64)}.json`), JSON.stringify({
    version: 1,
    token: 'gAAAAA-unreachable-SECRET',
    expiresAt,
    issuedAt: now,
    lastValidatedAt: now,
    authUrl: 'http://127.0.0.1:9/v3',
    userId: 'u1',
    userName: 'demo',
    servedTo: []
  }), { mode: 0o600 })
  const r = await plugin(['logout', '--all', '--timeout', '2s'], sb.env)
  t.equal(r.code, 0, r.stderr)
  t.match(r.stderr, new RegExp(`the token of demo was forgotten but could not be revoked \\(Keystone at http://127\\.0\\.0\\.1:9/v3 is unreachable: [^)]*\\); it stays valid until ${expiresAt.replace(/\./g, '\\.')}`))
  t.notOk(r.stderr.includes('SECRET'))
  t.same(cacheFiles(sb.cacheDir), [])
})

t.test('a cached token revoked in Keystone does not lock the user out', async t => {
  // The webhook (like kube-apiserver's own webhook cache) may keep accepting a revoked token for
  // its cache TTL; what matters is the moment the API server starts to reject it. This API server
  // asks Keystone on every request, so it rejects the token as soon as it is revoked.
  const direct = keystoneAuthenticator(seed.auth_url)
  const api = await startFakeApiServer({ authenticate: direct.authenticate })
  t.teardown(async () => { await api.close(); await direct.close() })

  t.test('kubectl\'s re-run after the 401 is detected, and the next command works', async t => {
    const sb = sandbox()
    // --revalidate-after=1h: the periodic check must not hide the re-run detection tested here.
    writeKubeconfig(sb.kubeconfig, api, { apiVersion: V1, env: demoEnv(), args: ['--revalidate-after=1h'] })
    const before = stack.proxy.logins()
    t.equal((await kubectl(['get', '--raw', '/version'], sb.env)).code, 0)
    const old = JSON.parse(readFileSync(cacheFiles(sb.cacheDir)[0]!, 'utf8')).token as string
    t.equal(await revokeToken(seed.auth_url, old), 204)

    const seen = api.seenTokens.length
    const valBefore = stack.proxy.validations()
    // This command may fail: its first request carries the revoked token (checked with Keystone
    // less than --revalidate-after ago), gets 401, and kubectl runs the plugin again.
    const r2 = await kubectl(['get', '--raw', '/version'], sb.env)
    t.comment(`the command that met the revoked token exited ${String(r2.code)}`)
    t.equal(h(api.seenTokens[seen]), h(old), 'the cached token was presented first')
    t.ok(stack.proxy.validations() > valBefore, 'the re-run after the 401 checked the token with Keystone')
    const r = await kubectl(['auth', 'whoami', '-o', 'json'], sb.env)
    t.equal(r.code, 0, r.stderr)
    t.equal(whoami(r.stdout).username, 'demo')
    const fresh = JSON.parse(readFileSync(cacheFiles(sb.cacheDir)[0]!, 'utf8')).token as string
    t.not(h(fresh), h(old), 'a new token replaced the revoked one')
    t.equal(h(api.seenTokens.at(-1)), h(fresh))
    t.equal(stack.proxy.logins() - before, 2, 'exactly one new login')
  })

  t.test('with --revalidate-after=0s the revoked token is never served', async t => {
    const sb = sandbox()
    writeKubeconfig(sb.kubeconfig, api, { apiVersion: V1, env: demoEnv(), args: ['--revalidate-after=0s'] })
    t.equal((await kubectl(['get', '--raw', '/version'], sb.env)).code, 0)
    const old = JSON.parse(readFileSync(cacheFiles(sb.cacheDir)[0]!, 'utf8')).token as string
    t.equal(await revokeToken(seed.auth_url, old), 204)
    const seen = api.seenTokens.length
    const r = await kubectl(['get', '--raw', '/version'], sb.env)
    t.equal(r.code, 0, r.stderr)
    t.notOk(api.seenTokens.slice(seen).includes(old), 'the revoked token was not presented')
  })
})

t.test('usage errors: one line, exit 2; keyring storage says it is not available', async t => {
  const sb = sandbox()
  const keyring = await plugin(['--token-cache=keyring'], { ...sb.env, ...demoEnv() })
  t.equal(keyring.code, 2)
  t.match(keyring.stderr, /^client-keystone-auth: --token-cache=keyring is not available: .*\n$/)
  const unknown = await plugin(['--no-such-flag'], sb.env)
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, /unknown flag: --no-such-flag/)
  const version = await plugin(['--version'], sb.env)
  t.equal(version.code, 0)
  t.match(version.stdout, /^\d+\.\d+\.\d+/)
})
