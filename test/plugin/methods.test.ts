// Every login method against the real Keystone, through the built binary: the token the plugin
// prints is checked with Keystone for the right user and project. Needs `npx tsc -p tsconfig.json`.
import t from 'tap'
import { readFileSync, writeFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { loadSeed, passwordToken } from '../helpers/keystone.js'
import { KeystoneClient } from '../../src/keystone/client.js'
import { plugin, pluginNewParent, revokeToken, sandbox, startCountingProxy, type CountingProxy } from './_support.js'

const seed = loadSeed()
const demo = seed.users.demo!
const appCred = seed.application_credentials['kubectl-demo']!
const client = new KeystoneClient({ url: seed.auth_url })
let proxy: CountingProxy
t.before(async () => { proxy = await startCountingProxy(seed.auth_url) })
t.teardown(async () => { await client.close(); await proxy?.close() })

async function tokenOf (env: NodeJS.ProcessEnv, args: string[] = []): Promise<{ user: string, project: string }> {
  const r = await plugin(args, env)
  if (r.code !== 0) throw new Error(r.stderr)
  const info = await client.validateToken(JSON.parse(r.stdout).status.token)
  if (info === null) throw new Error('Keystone does not know the token')
  return { user: info.user.name, project: info.scope.kind === 'project' ? info.scope.project.name : info.scope.kind }
}

t.test('password with project by id; user by id', async t => {
  const base = { ...sandbox().env, OS_AUTH_URL: seed.auth_url, OS_PASSWORD: demo.password }
  t.same(await tokenOf({ ...base, OS_USERNAME: 'demo', OS_DOMAIN_NAME: 'Default', OS_PROJECT_ID: seed.projects.alt!.id }), { user: 'demo', project: 'alt' })
  t.same(await tokenOf({ ...base, OS_USER_ID: demo.id, OS_PROJECT_ID: seed.projects.demo!.id }), { user: 'demo', project: 'demo' })
})

t.test('user and project in different domains (OS_USER_DOMAIN_NAME, OS_PROJECT_DOMAIN_NAME)', async t => {
  const env = { ...sandbox().env, OS_AUTH_URL: seed.auth_url, OS_USERNAME: 'alice', OS_USER_DOMAIN_NAME: 'acme', OS_PROJECT_NAME: 'ops', OS_PROJECT_DOMAIN_NAME: 'acme', OS_PASSWORD: seed.users.alice!.password }
  t.same(await tokenOf(env), { user: 'alice', project: 'ops' })
})

t.test('application credential by name, user and domain', async t => {
  const env = { ...sandbox().env, OS_AUTH_URL: seed.auth_url, OS_APPLICATION_CREDENTIAL_NAME: appCred.name, OS_USERNAME: 'demo', OS_USER_DOMAIN_NAME: 'Default', OS_APPLICATION_CREDENTIAL_SECRET: appCred.secret }
  t.same(await tokenOf(env), { user: 'demo', project: 'demo' })
  // --no-cache: a cached token is served whatever the secret (secrets are not part of the cache key).
  const wrong = await plugin(['--no-cache'], { ...env, OS_APPLICATION_CREDENTIAL_SECRET: 'wrong' })
  t.equal(wrong.code, 1)
  t.match(wrong.stderr, `rejected application credential ${appCred.name} of user demo in domain Default: wrong secret`)
})

t.test('a cache directory that cannot be made (a read-only root, as in the container image): a warning, and the login still works', async t => {
  const sb = sandbox()
  // a regular file where the cache's parent should be: mkdir fails whoever runs (root included)
  writeFileSync(join(sb.dir, 'not-a-dir'), '')
  const env = { ...sb.env, XDG_CACHE_HOME: join(sb.dir, 'not-a-dir', 'cache'), OS_AUTH_URL: seed.auth_url, OS_USERNAME: 'demo', OS_DOMAIN_NAME: 'Default', OS_PROJECT_NAME: 'demo', OS_PASSWORD: demo.password }
  const r = await plugin([], env)
  t.equal(r.code, 0, r.stderr)
  t.match(r.stderr, /warning: token cache in .*not-a-dir.* not usable \(.*ENOTDIR.*\); logging in without it/)
  const info = await client.validateToken(JSON.parse(r.stdout).status.token)
  t.equal(info?.user.name, 'demo', 'the token printed is one Keystone knows')
})

t.test('an existing token (OS_TOKEN) exchanged for a project-scoped one', async t => {
  const unscoped = await passwordToken(seed, 'demo', 'unscoped')
  const env = { ...sandbox().env, OS_AUTH_URL: seed.auth_url, OS_TOKEN: unscoped, OS_PROJECT_NAME: 'demo', OS_PROJECT_DOMAIN_NAME: 'Default' }
  t.same(await tokenOf(env), { user: 'demo', project: 'demo' })
  await revokeToken(seed.auth_url, unscoped)
  const r = await plugin(['--no-cache'], env)
  t.equal(r.code, 1)
  t.match(r.stderr, /rejected the token from env OS_TOKEN for project demo in domain Default/)
  t.notOk(r.stderr.includes(unscoped), 'the token is not printed')
})

t.test('a token last checked with Keystone longer ago than --revalidate-after is checked before use', async t => {
  const sb = sandbox()
  const env = { ...sb.env, OS_AUTH_URL: proxy.url, OS_USERNAME: 'demo', OS_DOMAIN_NAME: 'Default', OS_PROJECT_NAME: 'demo', OS_PASSWORD: demo.password }
  t.equal((await pluginNewParent([], env)).code, 0)
  // Each run has its own parent, as separate kubectl commands do (the same parent asking again
  // is kubectl's re-run after a 401, which is always checked).
  const dir = join(sb.cacheDir, 'k8s-keystone-auth')
  const file = join(dir, readdirSync(dir).find(n => n.endsWith('.json'))!)
  const check = proxy.validations()
  t.equal((await pluginNewParent([], env)).code, 0)
  t.equal(proxy.validations(), check, 'checked recently: no Keystone call')
  // Age the last check (instead of waiting), and revoke the token meanwhile.
  const entry = JSON.parse(readFileSync(file, 'utf8'))
  entry.lastValidatedAt = '2000-01-01T00:00:00.000Z'
  writeFileSync(file, JSON.stringify(entry))
  await revokeToken(seed.auth_url, entry.token)
  const logins = proxy.logins()
  const r = await pluginNewParent([], env)
  t.equal(r.code, 0, r.stderr)
  t.equal(proxy.validations(), check + 1, 'one check')
  t.equal(proxy.logins(), logins + 1, 'the revoked token was replaced by a new login')
  t.not(JSON.parse(r.stdout).status.token === entry.token, true, 'the revoked token is not served')
})

t.test('the same parent asking again (kubectl after a 401) makes the plugin check the token', async t => {
  const sb = sandbox()
  const env = { ...sb.env, OS_AUTH_URL: proxy.url, OS_USERNAME: 'demo', OS_DOMAIN_NAME: 'Default', OS_PROJECT_NAME: 'demo', OS_PASSWORD: demo.password }
  t.equal((await plugin([], env)).code, 0)
  const check = proxy.validations()
  const logins = proxy.logins()
  // plugin() runs the binary as a direct child of this process: same parent as the first run.
  t.equal((await plugin([], env)).code, 0)
  t.equal(proxy.validations(), check + 1, 'checked with Keystone')
  t.equal(proxy.logins(), logins, 'still valid: no new login')
  t.equal((await pluginNewParent([], env)).code, 0)
  t.equal(proxy.validations(), check + 1, 'another parent: no check')
})
