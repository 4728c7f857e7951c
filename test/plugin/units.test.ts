// Unit tests of the plugin's parts that need neither Keystone nor kubectl: settings precedence,
// what is missing, the cache key, the cache files and lock, ExecCredential, kubeconfig merging.
import t from 'tap'
import { mkdtempSync, statSync, writeFileSync, mkdirSync, chmodSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { parseFlags } from '../../src/config/flags.js'
import { CREDENTIAL_FLAGS, COMMON_FLAGS } from '../../src/plugin/flags.js'
import { cacheKey, loginRequest, methodOf, missingSettings, resolveSettings } from '../../src/plugin/settings.js'
import { loadCloud } from '../../src/plugin/clouds.js'
import { TokenCache, checkCacheDir, defaultCacheDir, type CacheEntry } from '../../src/plugin/cache.js'
import { execCredential, readExecInfo, rfc3339 } from '../../src/plugin/exec-credential.js'
import { mergeKubeconfig, parseExpiry, type KubeconfigPlan } from '../../src/plugin/kubeconfig.js'
import { getToken, MissingSettingsError } from '../../src/plugin/get-token.js'

const SPECS = [...CREDENTIAL_FLAGS, ...COMMON_FLAGS]
const settings = (argv: string[], env: NodeJS.ProcessEnv = {}, cloud?: Parameters<typeof resolveSettings>[1]) =>
  resolveSettings(parseFlags(SPECS, argv, env), cloud)

t.test('precedence: flag, then env, then clouds.yaml', async t => {
  const cloud = { source: 'x', auth_url: 'http://cloud/v3', username: 'cloud-user', password: 'cloud-pw', project_name: 'cloud-proj', user_domain_name: 'CloudDom' }
  const s1 = settings(['--user-name', 'flag-user'], { OS_USERNAME: 'env-user', OS_PROJECT_NAME: 'env-proj' }, cloud)
  t.equal(s1.userName?.value, 'flag-user')
  t.equal(s1.userName?.source, '--user-name')
  t.equal(s1.projectName?.value, 'env-proj')
  t.equal(s1.projectName?.source, 'env OS_PROJECT_NAME')
  t.equal(s1.authUrl?.value, 'http://cloud/v3')
  t.equal(s1.password?.value, 'cloud-pw')
  t.same(s1.userDomain?.sel, { name: 'CloudDom' })
  // --domain-name is the Go plugin's one domain for user and project; a specific setting at the
  // same level wins, and a higher level wins over a lower one.
  const s2 = settings(['--domain-name', 'FlagDom'], { OS_USER_DOMAIN_NAME: 'EnvUserDom', OS_PROJECT_DOMAIN_ID: 'envpdid' })
  t.same(s2.userDomain?.sel, { name: 'FlagDom' })
  t.same(s2.projectDomain?.sel, { name: 'FlagDom' })
  const s3 = settings([], { OS_DOMAIN_NAME: 'Gen', OS_USER_DOMAIN_NAME: 'U', OS_PROJECT_DOMAIN_ID: 'pid' })
  t.same(s3.userDomain?.sel, { name: 'U' })
  t.same(s3.projectDomain?.sel, { id: 'pid' })
  const s4 = settings([], { OS_TENANT_NAME: 'legacy' })
  t.equal(s4.projectName?.value, 'legacy')
})

t.test('method and login request, as the Go plugin builds them', async t => {
  const pw = settings([], { OS_AUTH_URL: 'http://k/v3', OS_USERNAME: 'demo', OS_DOMAIN_NAME: 'Default', OS_PROJECT_NAME: 'demo', OS_PASSWORD: 'p' })
  t.equal(methodOf(pw), 'password')
  t.same(missingSettings(pw), [])
  t.same(loginRequest(pw), {
    auth: { method: 'password', user: { name: 'demo', domain: { name: 'Default' } }, password: 'p' },
    scope: { project: { name: 'demo', domain: { name: 'Default' } } }
  })
  const byId = settings([], { OS_AUTH_URL: 'http://k', OS_USER_ID: 'u1', OS_PROJECT_ID: 'p1', OS_PASSWORD: 'p' })
  t.same(missingSettings(byId), [])
  t.same(loginRequest(byId).scope, { project: { id: 'p1' } })
  const ac = settings([], { OS_AUTH_URL: 'http://k', OS_APPLICATION_CREDENTIAL_ID: 'a1', OS_APPLICATION_CREDENTIAL_SECRET: 's', OS_PASSWORD: 'ignored' })
  t.equal(methodOf(ac), 'application_credential')
  t.same(loginRequest(ac), { auth: { method: 'application_credential', id: 'a1', secret: 's' } })
  const acName = settings([], { OS_AUTH_URL: 'http://k', OS_APPLICATION_CREDENTIAL_NAME: 'n' })
  t.same(missingSettings(acName).map(m => m.field), ['userDomain', 'userName', 'appCredSecret'])
  const tok = settings([], { OS_AUTH_URL: 'http://k', OS_TOKEN: 'tkn', OS_PROJECT_ID: 'p1' })
  t.equal(methodOf(tok), 'token')
  t.same(loginRequest(tok), { auth: { method: 'token', token: 'tkn' }, scope: { project: { id: 'p1' } } })
  const none = settings([], {})
  t.same(missingSettings(none).map(m => m.field), ['authUrl', 'userDomain', 'userName', 'projectName', 'password'])
  t.match(missingSettings(none).find(m => m.field === 'password')?.hint, /--password or OS_PASSWORD/)
})

t.test('cache key: same settings same key; any identity part changes it; secrets do not', async t => {
  const base = { OS_AUTH_URL: 'http://k:5000/v3', OS_USERNAME: 'demo', OS_DOMAIN_NAME: 'Default', OS_PROJECT_NAME: 'demo', OS_PASSWORD: 'p' }
  const k = cacheKey(settings([], base))
  t.match(k, /^[0-9a-f]{64}$/)
  t.equal(cacheKey(settings([], { ...base, OS_AUTH_URL: 'http://k:5000/' })), k, 'URL normalized (/v3 added)')
  t.equal(cacheKey(settings([], { ...base, OS_PASSWORD: 'other' })), k, 'the password is not part of the key')
  const variants: Array<Record<string, string>> = [
    { OS_AUTH_URL: 'http://k2:5000/v3' }, { OS_USERNAME: 'bob' }, { OS_DOMAIN_NAME: 'acme' }, { OS_PROJECT_NAME: 'alt' },
    { OS_PROJECT_DOMAIN_NAME: 'acme' }, { OS_CACERT: '/etc/ca.pem' }, { OS_CERT: '/c.pem' }, { OS_KEY: '/k.pem' }
  ]
  const keys = new Set([k])
  for (const v of variants) keys.add(cacheKey(settings([], { ...base, ...v })))
  t.equal(keys.size, variants.length + 1, 'each change gives a new key')
  const ac1 = cacheKey(settings([], { OS_AUTH_URL: 'http://k', OS_APPLICATION_CREDENTIAL_ID: 'a1', OS_APPLICATION_CREDENTIAL_SECRET: 's1' }))
  t.equal(cacheKey(settings([], { OS_AUTH_URL: 'http://k', OS_APPLICATION_CREDENTIAL_ID: 'a1', OS_APPLICATION_CREDENTIAL_SECRET: 's2' })), ac1)
  t.not(cacheKey(settings([], { OS_AUTH_URL: 'http://k', OS_APPLICATION_CREDENTIAL_ID: 'a2', OS_APPLICATION_CREDENTIAL_SECRET: 's1' })), ac1)
  const t1 = cacheKey(settings([], { OS_AUTH_URL: 'http://k', OS_TOKEN: 'x', OS_PROJECT_ID: 'p' }))
  t.not(cacheKey(settings([], { OS_AUTH_URL: 'http://k', OS_TOKEN: 'y', OS_PROJECT_ID: 'p' })), t1, 'a different OS_TOKEN is a different login')
})

t.test('clouds.yaml: ./ first, the secure.yaml of the same directory merged over it, a missing cloud named', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'ksa-clouds-'))
  const home = join(dir, 'home')
  mkdirSync(join(home, '.config', 'openstack'), { recursive: true })
  writeFileSync(join(home, '.config', 'openstack', 'clouds.yaml'), 'clouds:\n  c1:\n    auth:\n      auth_url: http://home/v3\n      username: u\n    cacert: /ca.pem\n')
  writeFileSync(join(home, '.config', 'openstack', 'secure.yaml'), 'clouds:\n  c1:\n    auth:\n      password: pw\n')
  const cwd = process.cwd()
  try {
    process.chdir(dir)
    const c = await loadCloud('c1', { HOME: home })
    t.equal(c.auth_url, 'http://home/v3')
    t.equal(c.password, 'pw')
    t.equal(c.cacert, '/ca.pem')
    t.same(c.files, [join(home, '.config', 'openstack', 'clouds.yaml'), join(home, '.config', 'openstack', 'secure.yaml')])
    t.same(c.warnings, [])
    writeFileSync(join(dir, 'clouds.yaml'), 'clouds:\n  c1:\n    auth:\n      auth_url: http://cwd/v3\n')
    const cwdCloud = await loadCloud('c1', { HOME: home })
    t.equal(cwdCloud.auth_url, 'http://cwd/v3', './clouds.yaml comes first')
    t.equal(cwdCloud.password, undefined, 'but the password of ~/.config/openstack/secure.yaml is not sent where it says')
    t.same(cwdCloud.files, [join(dir, 'clouds.yaml')])
    t.match(cwdCloud.warnings, [/not using .*home\/.config\/openstack\/secure.yaml for cloud c1/])
    writeFileSync(join(dir, 'secure.yml'), 'clouds:\n  c1:\n    auth:\n      password: here\n')
    t.equal((await loadCloud('c1', { HOME: home })).password, 'here', 'a secure.yml next to it is')
    t.equal((await loadCloud('c1', { HOME: home, OS_CLIENT_CONFIG_FILE: join(home, '.config', 'openstack', 'clouds.yaml') })).password, 'pw', 'OS_CLIENT_CONFIG_FILE: its own directory\'s secure.yaml')
    await t.rejects(loadCloud('nope', { HOME: home }), { code: 'KSA_ERR_CONFIG', message: /OS_CLOUD=nope/ })
  } finally {
    process.chdir(cwd)
  }
})

t.test('ExecCredential: version from KUBERNETES_EXEC_INFO, RFC 3339 expiry', async t => {
  t.same(readExecInfo({}), { apiVersion: 'client.authentication.k8s.io/v1beta1', interactive: undefined })
  t.same(readExecInfo({ KUBERNETES_EXEC_INFO: '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":true}}' }),
    { apiVersion: 'client.authentication.k8s.io/v1', interactive: true })
  t.throws(() => readExecInfo({ KUBERNETES_EXEC_INFO: '{"apiVersion":"client.authentication.k8s.io/v1alpha1"}' }), { code: 'KSA_ERR_USAGE' })
  t.throws(() => readExecInfo({ KUBERNETES_EXEC_INFO: 'nope' }), { code: 'KSA_ERR_USAGE' })
  t.equal(rfc3339(new Date('2030-01-02T03:04:05.678Z')), '2030-01-02T03:04:05Z')
  const out = JSON.parse(execCredential('client.authentication.k8s.io/v1', 'tok', new Date('2030-01-02T03:04:05Z')))
  t.same(out, { apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 'tok', expirationTimestamp: '2030-01-02T03:04:05Z' } })
})

function entry (over: Partial<CacheEntry> = {}): CacheEntry {
  const now = new Date().toISOString()
  return {
    version: 1,
    token: 'cached-token',
    expiresAt: new Date(Date.now() + 3600_000).toISOString(),
    issuedAt: now,
    lastValidatedAt: now,
    authUrl: 'http://127.0.0.1:1/v3',
    userId: 'u',
    userName: 'demo',
    servedTo: [],
    ...over
  }
}

t.test('cache files: directory 0700 (an existing one open to others refused), files 0600, removeAll', async t => {
  const base = mkdtempSync(join(tmpdir(), 'ksa-cache-'))
  t.equal(defaultCacheDir({ XDG_CACHE_HOME: base }), join(base, 'k8s-keystone-auth'))
  t.equal(defaultCacheDir({ HOME: '/h' }), '/h/.cache/k8s-keystone-auth')
  const dir = join(base, 'k8s-keystone-auth')
  mkdirSync(dir, { mode: 0o755 })
  chmodSync(dir, 0o755)
  const c = new TokenCache(dir)
  const key = 'a'.repeat(64)
  t.throws(() => c.write(key, entry()), { code: 'KSA_ERR_CACHE_UNSAFE', message: `refusing the token cache directory ${dir}: its mode is 755` })
  t.throws(() => c.read(key), { code: 'KSA_ERR_CACHE_UNSAFE' })
  t.throws(() => c.tryLock(key), { code: 'KSA_ERR_CACHE_UNSAFE' })
  t.throws(() => c.keys(), { code: 'KSA_ERR_CACHE_UNSAFE' })
  t.equal(statSync(dir).mode & 0o777, 0o755, 'not repaired behind the user\'s back')
  chmodSync(dir, 0o700)
  c.write(key, entry())
  t.equal(statSync(dir).mode & 0o777, 0o700)
  t.equal(statSync(c.path(key)).mode & 0o777, 0o600)
  t.equal(c.read(key)?.token, 'cached-token')
  writeFileSync(c.path('b'.repeat(64)), 'not json')
  t.equal(c.read('b'.repeat(64)), undefined, 'a corrupt file is a miss')
  t.equal(c.removeAll(), 2)
  t.same(readdirSync(dir), [])
})

t.test('cache directory checks: owner, group/other bits, a directory at all (as ssh checks private files)', async t => {
  const dir = '/x/k8s-keystone-auth'
  const st = (uid: number, mode: number, isDir = true): { uid: number, mode: number, isDirectory: () => boolean } => ({ uid, mode: 0o40000 | mode, isDirectory: () => isDir })
  t.doesNotThrow(() => checkCacheDir(dir, st(1000, 0o700), 1000))
  t.doesNotThrow(() => checkCacheDir(dir, st(1000, 0o500), 1000), 'read-only for the owner is fine')
  t.throws(() => checkCacheDir(dir, st(1001, 0o700), 1000), { code: 'KSA_ERR_CACHE_UNSAFE', message: /it belongs to uid 1001, not to you \(uid 1000\).*chown 1000 \/x\/k8s-keystone-auth/ })
  for (const mode of [0o710, 0o750, 0o770, 0o701, 0o705, 0o707, 0o777]) {
    t.throws(() => checkCacheDir(dir, st(1000, mode), 1000), { message: new RegExp(`its mode is ${mode.toString(8)}, open to other users.*chmod 700 /x/k8s-keystone-auth`) }, mode.toString(8))
  }
  t.throws(() => checkCacheDir(dir, st(1000, 0o720), 1000), { message: /others could plant their own tokens there/ })
  t.throws(() => checkCacheDir(dir, st(1000, 0o700, false), 1000), { message: /it is not a directory/ })
  t.doesNotThrow(() => checkCacheDir(dir, st(1001, 0o777), undefined), 'no uid (Windows): not checked')
})

t.test('lock: one holder at a time; a dead holder\'s lock is broken', async t => {
  const c = new TokenCache(join(mkdtempSync(join(tmpdir(), 'ksa-lock-')), 'k'))
  const key = 'c'.repeat(64)
  const release = c.tryLock(key)
  t.type(release, 'function')
  t.equal(c.tryLock(key), undefined, 'held by a live process (us)')
  release?.()
  const again = c.tryLock(key)
  t.type(again, 'function', 'free after release')
  again?.()
  // A lock file left by a process that no longer exists.
  const dead = spawnSync('true').pid ?? 999999
  writeFileSync(join(c.dir, `${key}.lock`), String(dead))
  const broken = c.tryLock(key)
  t.type(broken, 'function', 'stale lock broken')
  broken?.()
})

t.test('getToken from the cache: margin, no Keystone needed, missing settings named', async t => {
  const dir = join(mkdtempSync(join(tmpdir(), 'ksa-gt-')), 'k')
  const cache = new TokenCache(dir)
  const env = { OS_AUTH_URL: 'http://127.0.0.1:1/v3', OS_USERNAME: 'demo', OS_DOMAIN_NAME: 'Default', OS_PROJECT_NAME: 'demo' }
  const s = settings([], env)
  cache.write(cacheKey(s), entry())
  const opts = { cache, marginMs: 5 * 60_000, revalidateAfterMs: 3600_000, timeoutMs: 2000, interactive: false, ppid: 424242 }
  // No password and an unreachable Keystone: only the cache can answer.
  const r = await getToken({ ...opts, settings: settings([], env) })
  t.equal(r.source, 'cache')
  t.equal(r.token, 'cached-token')
  t.same(cache.read(cacheKey(s))?.servedTo.map(x => x.ppid), [424242], 'the receiver is recorded')
  // Within the margin of expiry the entry is not used: the password is needed again.
  cache.write(cacheKey(s), entry({ expiresAt: new Date(Date.now() + 60_000).toISOString() }))
  await t.rejects(getToken({ ...opts, settings: settings([], env) }), MissingSettingsError)
  await t.rejects(getToken({ ...opts, settings: settings([], env) }), { message: /missing password \(--password or OS_PASSWORD\); not prompting/ })
  // An entry for another URL with the same key is not trusted.
  cache.write(cacheKey(s), entry({ authUrl: 'http://elsewhere/v3' }))
  await t.rejects(getToken({ ...opts, settings: settings([], env) }), MissingSettingsError)
})

t.test('kubeconfig: merge keeps other entries and replaces same-named ones; expiry parsing', async t => {
  const plan: KubeconfigPlan = {
    clusterName: 'c',
    userName: 'u@c',
    contextName: 'u@c',
    cluster: { server: 'https://s' },
    exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'client-keystone-auth', args: [], env: [], interactiveMode: 'Never' },
    secretEnv: []
  }
  const existing = {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'old',
    clusters: [{ name: 'old', cluster: { server: 'https://o' } }, { name: 'c', cluster: { server: 'https://stale' } }],
    users: [{ name: 'old', user: { token: 'x' } }],
    contexts: [{ name: 'old', context: { cluster: 'old', user: 'old' } }]
  }
  const m = mergeKubeconfig(existing, plan, false) as any
  t.same(m.clusters.map((c: any) => c.name), ['old', 'c'])
  t.equal(m.clusters[1].cluster.server, 'https://s')
  t.equal(m['current-context'], 'old', 'kept with --set-current-context=false')
  t.equal((mergeKubeconfig(existing, plan, true) as any)['current-context'], 'u@c')
  const now = Date.parse('2030-01-01T00:00:00Z')
  t.equal(parseExpiry('24h', now), '2030-01-02T00:00:00.000Z')
  t.equal(parseExpiry('2031-05-01T00:00:00Z', now), '2031-05-01T00:00:00.000Z')
  t.throws(() => parseExpiry('soon', now), { code: 'KSA_ERR_USAGE' })
})
