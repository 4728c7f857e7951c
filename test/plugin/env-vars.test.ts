// The OpenStack variables that Go users' kubeconfigs and openrc files set, beyond the Go plugin's
// own flags: OS_DOMAIN_ID, OS_DEFAULT_DOMAIN(_ID/_NAME), OS_AUTH_TOKEN, OS_SYSTEM_SCOPE,
// OS_TRUST_ID, and a domain scope without a project. Each through the built binary against the
// real Keystone, the token it prints read back from Keystone (user, scope, trust); one through
// the real kubectl. Precedence is gophercloud clientconfig's (AuthOptions/v3auth and
// setDomainIfNeeded in gophercloud/utils openstack/clientconfig/requests.go), which the Go plugin
// uses when kubectl runs it. Needs `npm run build`.
import t from 'tap'
import { adminToken, keystoneApi, loadSeed, passwordToken } from '../helpers/keystone.js'
import { goPeerBinary, goPeerUnavailable } from '../helpers/go-peer.js'
import { kubectl, plugin, run, sandbox, usePluginStack, writeKubeconfig } from './_support.js'
import { keystoneFetch } from '../helpers/keystone-fetch.js'

const seed = loadSeed()
const acme = seed.domains.acme!
const alice = seed.users.alice!
const bob = seed.users.bob!
const demo = seed.users.demo!
const AUTH = seed.auth_url
let trustId = ''

const stack = usePluginStack(t, AUTH)

t.before(async () => {
  // Keystone objects these scopes need: alice may scope to her domain, bob to the system, and
  // bob is the trustee of demo's trust on project demo.
  const admin = await adminToken(seed)
  const reader = seed.roles.reader!.id
  const put1 = await keystoneApi(seed, admin, 'PUT', `/domains/${acme.id}/users/${alice.id}/roles/${reader}`)
  const put2 = await keystoneApi(seed, admin, 'PUT', `/system/users/${bob.id}/roles/${reader}`)
  if (put1.status !== 204 || put2.status !== 204) throw new Error(`role assignments: ${put1.status} ${put2.status}`)
  const demoToken = await passwordToken(seed, 'demo', 'demo')
  const trust = await keystoneApi(seed, demoToken, 'POST', '/OS-TRUST/trusts', {
    trust: { trustor_user_id: demo.id, trustee_user_id: bob.id, project_id: seed.projects.demo!.id, impersonation: false, roles: [{ name: 'member' }] }
  })
  if (trust.status !== 201) throw new Error(`trust: ${trust.status} ${JSON.stringify(trust.body)}`)
  trustId = trust.body.trust.id
})

t.teardown(async () => {
  if (trustId !== '') await keystoneApi(seed, await adminToken(seed), 'DELETE', `/OS-TRUST/trusts/${trustId}`).catch(() => {})
})

interface Seen { user: string, userDomain: string, scope: string, trust?: string }

/** What Keystone says of a token: its user, user domain and scope (`project ops`, `domain acme`, `system`). */
async function inspect (token: string): Promise<Seen> {
  const res = await keystoneFetch(`${AUTH}/auth/tokens?nocatalog`, { headers: { 'x-auth-token': token, 'x-subject-token': token } })
  if (res.status !== 200) throw new Error(`Keystone answered ${res.status} to the token check`)
  const tk = (await res.json() as { token: any }).token
  const scope = tk.project !== undefined ? `project ${tk.project.name as string}` : tk.domain !== undefined ? `domain ${tk.domain.name as string}` : tk.system !== undefined ? 'system' : 'unscoped'
  const out: Seen = { user: tk.user.name, userDomain: tk.user.domain.name, scope }
  if (tk['OS-TRUST:trust'] !== undefined) out.trust = tk['OS-TRUST:trust'].id
  return out
}

/** Runs our plugin (no cache) with only these variables, and reads its token back from Keystone. */
async function ours (env: Record<string, string>): Promise<Seen> {
  const r = await plugin(['--no-cache'], { ...sandbox().env, OS_AUTH_URL: AUTH, ...env })
  if (r.code !== 0) throw new Error(`exit ${String(r.code)}: ${r.stderr}`)
  return await inspect(JSON.parse(r.stdout).status.token)
}

const aliceEnv = { OS_USERNAME: 'alice', OS_PASSWORD: alice.password }
const bobEnv = { OS_USERNAME: 'bob', OS_PASSWORD: bob.password, OS_USER_DOMAIN_NAME: 'Default' }

t.test('OS_DOMAIN_ID: the domain of the user and the project; without a project, the token\'s domain', async t => {
  t.same(await ours({ ...aliceEnv, OS_DOMAIN_ID: acme.id, OS_PROJECT_NAME: 'ops' }), { user: 'alice', userDomain: 'acme', scope: 'project ops' })
  t.same(await ours({ ...aliceEnv, OS_DOMAIN_ID: acme.id, OS_USER_DOMAIN_NAME: 'acme' }), { user: 'alice', userDomain: 'acme', scope: 'domain acme' })
  t.same(await ours({ ...aliceEnv, OS_DOMAIN_ID: acme.id }), { user: 'alice', userDomain: 'acme', scope: 'domain acme' },
    'the user\'s domain defaults to it too (Go: "You must provide exactly one of DomainID or DomainName")')
  t.same(await ours({ ...aliceEnv, OS_DOMAIN_ID: acme.id, OS_DOMAIN_NAME: 'Default', OS_PROJECT_NAME: 'ops' }), { user: 'alice', userDomain: 'acme', scope: 'project ops' },
    'the id wins over OS_DOMAIN_NAME (Go refuses both)')
})

t.test('OS_DOMAIN_NAME without a project: a domain-scoped token', async t => {
  t.same(await ours({ ...aliceEnv, OS_DOMAIN_NAME: 'acme', OS_USER_DOMAIN_NAME: 'acme' }), { user: 'alice', userDomain: 'acme', scope: 'domain acme' })
  t.same(await ours({ ...aliceEnv, OS_DOMAIN_NAME: 'acme' }), { user: 'alice', userDomain: 'acme', scope: 'domain acme' })
  t.same(await ours({ ...aliceEnv, OS_DOMAIN_NAME: 'acme', OS_PROJECT_NAME: 'ops' }), { user: 'alice', userDomain: 'acme', scope: 'project ops' },
    'with a project it is the project\'s (and user\'s) domain, as before')
  const r = await plugin(['--no-cache'], { ...sandbox().env, OS_AUTH_URL: AUTH, OS_USERNAME: 'demo', OS_PASSWORD: demo.password, OS_DOMAIN_NAME: 'Default' })
  t.equal(r.code, 1, 'demo has no role on domain Default')
  t.match(r.stderr, 'rejected the password of user demo in domain Default (or that user has no role on domain Default)')
})

t.test('OS_DEFAULT_DOMAIN, OS_DEFAULT_DOMAIN_ID, OS_DEFAULT_DOMAIN_NAME: the domain when no other names it', async t => {
  const want = { user: 'alice', userDomain: 'acme', scope: 'project ops' }
  t.same(await ours({ ...aliceEnv, OS_PROJECT_NAME: 'ops', OS_DEFAULT_DOMAIN: acme.id }), want, 'OS_DEFAULT_DOMAIN (an id, as in gophercloud)')
  t.same(await ours({ ...aliceEnv, OS_PROJECT_NAME: 'ops', OS_DEFAULT_DOMAIN_ID: acme.id }), want, 'OS_DEFAULT_DOMAIN_ID (keystoneauth; Go ignores it)')
  t.same(await ours({ ...aliceEnv, OS_PROJECT_NAME: 'ops', OS_DEFAULT_DOMAIN_NAME: 'acme' }), want, 'OS_DEFAULT_DOMAIN_NAME (keystoneauth; Go ignores it)')
  t.same(await ours({ ...aliceEnv, OS_PROJECT_NAME: 'ops', OS_DEFAULT_DOMAIN_ID: acme.id, OS_DEFAULT_DOMAIN: 'default' }), want, 'OS_DEFAULT_DOMAIN_ID before OS_DEFAULT_DOMAIN')
  // Every other domain setting wins over the default one.
  t.same(await ours({ ...aliceEnv, OS_PROJECT_NAME: 'ops', OS_DEFAULT_DOMAIN: 'default', OS_DOMAIN_NAME: 'acme' }), want, 'OS_DOMAIN_NAME wins')
  t.same(await ours({ ...aliceEnv, OS_PROJECT_NAME: 'ops', OS_DEFAULT_DOMAIN: 'default', OS_USER_DOMAIN_NAME: 'acme', OS_PROJECT_DOMAIN_ID: acme.id }), want, 'OS_USER_DOMAIN_NAME and OS_PROJECT_DOMAIN_ID win')
  t.same(await ours({ ...aliceEnv, OS_PROJECT_NAME: 'ops', OS_DEFAULT_DOMAIN_NAME: 'Default', OS_DOMAIN_ID: acme.id }), want, 'OS_DOMAIN_ID wins')
})

t.test('OS_AUTH_TOKEN: an existing token, exchanged; it wins over OS_TOKEN', async t => {
  const aliceUnscoped = await passwordToken(seed, 'alice', 'unscoped')
  const demoUnscoped = await passwordToken(seed, 'demo', 'unscoped')
  t.same(await ours({ OS_AUTH_TOKEN: aliceUnscoped, OS_PROJECT_NAME: 'ops', OS_PROJECT_DOMAIN_NAME: 'acme' }), { user: 'alice', userDomain: 'acme', scope: 'project ops' })
  t.same(await ours({ OS_AUTH_TOKEN: aliceUnscoped, OS_TOKEN: demoUnscoped, OS_PROJECT_NAME: 'ops', OS_DOMAIN_NAME: 'acme' }), { user: 'alice', userDomain: 'acme', scope: 'project ops' })
  t.same(await ours({ OS_AUTH_TOKEN: aliceUnscoped, OS_DOMAIN_NAME: 'acme' }), { user: 'alice', userDomain: 'acme', scope: 'domain acme' }, 'a token for a domain scope')
  const r = await plugin(['--no-cache'], { ...sandbox().env, OS_AUTH_URL: AUTH, OS_AUTH_TOKEN: 'gAAAAAB-not-a-token', OS_PROJECT_ID: seed.projects.ops!.id })
  t.equal(r.code, 1)
  t.match(r.stderr, `rejected the token from env OS_AUTH_TOKEN for project id ${seed.projects.ops!.id}`)
})

t.test('OS_SYSTEM_SCOPE: a system-scoped token when no project is set; over a domain, under a project', async t => {
  t.same(await ours({ ...bobEnv, OS_SYSTEM_SCOPE: 'all' }), { user: 'bob', userDomain: 'Default', scope: 'system' })
  t.same(await ours({ ...bobEnv, OS_SYSTEM_SCOPE: 'yes' }), { user: 'bob', userDomain: 'Default', scope: 'system' }, 'any non-empty value, as in gophercloud')
  t.same(await ours({ ...bobEnv, OS_SYSTEM_SCOPE: 'all', OS_DOMAIN_NAME: 'acme' }), { user: 'bob', userDomain: 'Default', scope: 'system' }, 'the system wins over a domain')
  t.same(await ours({ OS_USERNAME: 'demo', OS_PASSWORD: demo.password, OS_DOMAIN_NAME: 'Default', OS_PROJECT_NAME: 'demo', OS_SYSTEM_SCOPE: 'all' }), { user: 'demo', userDomain: 'Default', scope: 'project demo' },
    'a project wins over the system (an openrc\'s OS_PROJECT_NAME stays in charge)')
})

t.test('OS_TRUST_ID: a trust-scoped token for the trustee', async t => {
  t.same(await ours({ ...bobEnv, OS_TRUST_ID: trustId }), { user: 'bob', userDomain: 'Default', scope: 'project demo', trust: trustId })
  t.same(await ours({ ...bobEnv, OS_TRUST_ID: trustId, OS_PROJECT_NAME: 'alt', OS_SYSTEM_SCOPE: 'all' }), { user: 'bob', userDomain: 'Default', scope: 'project demo', trust: trustId },
    'the trust wins over a project and the system')
  const r = await plugin(['--no-cache'], { ...sandbox().env, OS_AUTH_URL: AUTH, ...bobEnv, OS_TRUST_ID: 'no-such-trust' })
  t.equal(r.code, 1)
  t.match(r.stderr, 'rejected the password of user bob in domain Default (or that user has no role on trust no-such-trust)')
})

t.test('each scope is its own cache entry', async t => {
  const sb = sandbox()
  const env = { ...sb.env, OS_AUTH_URL: AUTH, ...bobEnv }
  const token = async (extra: Record<string, string>): Promise<Seen> => {
    const r = await plugin([], { ...env, ...extra })
    if (r.code !== 0) throw new Error(r.stderr)
    return await inspect(JSON.parse(r.stdout).status.token)
  }
  t.same((await token({ OS_SYSTEM_SCOPE: 'all' })).scope, 'system')
  t.same((await token({ OS_TRUST_ID: trustId })).trust, trustId, 'not the cached system token')
  t.same((await token({ OS_SYSTEM_SCOPE: 'all' })).scope, 'system')
})

t.test('kubectl: OS_DEFAULT_DOMAIN and OS_AUTH_TOKEN from the exec stanza', async t => {
  const sb = sandbox()
  writeKubeconfig(sb.kubeconfig, stack.api, {
    apiVersion: 'client.authentication.k8s.io/v1',
    env: { OS_AUTH_URL: stack.proxy.url, OS_USERNAME: 'alice', OS_PASSWORD: alice.password, OS_PROJECT_NAME: 'ops', OS_DEFAULT_DOMAIN: acme.id }
  })
  const r = await kubectl(['auth', 'whoami', '-o', 'json'], sb.env)
  t.equal(r.code, 0, r.stderr)
  const who = JSON.parse(r.stdout).status.userInfo
  t.equal(who.username, 'alice')
  t.ok(who.groups.includes(seed.projects.ops!.id), 'project ops')

  const sb2 = sandbox()
  writeKubeconfig(sb2.kubeconfig, stack.api, {
    apiVersion: 'client.authentication.k8s.io/v1',
    env: { OS_AUTH_URL: stack.proxy.url, OS_AUTH_TOKEN: await passwordToken(seed, 'demo', 'unscoped'), OS_PROJECT_NAME: 'demo', OS_PROJECT_DOMAIN_ID: 'default' }
  })
  const r2 = await kubectl(['auth', 'whoami', '-o', 'json'], sb2.env)
  t.equal(r2.code, 0, r2.stderr)
  t.equal(JSON.parse(r2.stdout).status.userInfo.username, 'demo')
})

t.test('the Go plugin gives the same tokens where it reads the variable', { skip: goPeerUnavailable('client-keystone-auth') ?? false }, async t => {
  const go = goPeerBinary('client-keystone-auth')
  const aliceUnscoped = await passwordToken(seed, 'alice', 'unscoped')
  const cases: Array<Record<string, string>> = [
    { ...aliceEnv, OS_DOMAIN_ID: acme.id, OS_PROJECT_NAME: 'ops' },
    { ...aliceEnv, OS_DOMAIN_ID: acme.id, OS_USER_DOMAIN_NAME: 'acme' },
    { ...aliceEnv, OS_DOMAIN_NAME: 'acme', OS_USER_DOMAIN_NAME: 'acme' },
    { ...aliceEnv, OS_PROJECT_NAME: 'ops', OS_DEFAULT_DOMAIN: acme.id },
    { ...aliceEnv, OS_PROJECT_NAME: 'ops', OS_DEFAULT_DOMAIN: 'default', OS_USER_DOMAIN_NAME: 'acme', OS_PROJECT_DOMAIN_ID: acme.id },
    { OS_AUTH_TOKEN: aliceUnscoped, OS_PROJECT_NAME: 'ops', OS_PROJECT_DOMAIN_NAME: 'acme' },
    { OS_AUTH_TOKEN: aliceUnscoped, OS_DOMAIN_NAME: 'acme' },
    { ...bobEnv, OS_SYSTEM_SCOPE: 'all' },
    { ...bobEnv, OS_SYSTEM_SCOPE: 'all', OS_DOMAIN_NAME: 'acme' },
    { OS_USERNAME: 'demo', OS_PASSWORD: demo.password, OS_USER_DOMAIN_NAME: 'Default', OS_PROJECT_NAME: 'demo', OS_PROJECT_DOMAIN_NAME: 'Default', OS_SYSTEM_SCOPE: 'all' }
  ]
  for (const env of cases) {
    const r = await run(go, [], { PATH: process.env.PATH, HOME: sandbox().home, OS_AUTH_URL: AUTH, ...env })
    t.equal(r.code, 0, r.stderr)
    const theirs = await inspect(JSON.parse(r.stdout).status.token)
    t.same(await ours(env), theirs, Object.keys(env).filter(k => k !== 'OS_PASSWORD').join(' '))
  }
})
