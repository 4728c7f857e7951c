// Security review, finding 2: "Keystone names become Kubernetes identities unfiltered". Whoever
// may create users or groups in some Keystone domain (a domain manager, an LDAP admin, a
// federation mapping) chose Kubernetes identities: a user named system:kube-controller-manager
// was that component, a group named system:masters was cluster-admin, a group named after another
// project's id posed as that project's group (the project id is appended to the groups, as Go's
// AuthenticateToken does). Kept as attacks against the real Keystone: the users and groups are
// made in domain acme through the admin API, as a domain manager would, and removed afterwards.
import t, { type Test } from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MockAgent } from 'undici'
import pino from 'pino'
import { adminToken, keystoneApi, loadSeed, passwordToken, type Seed } from '../helpers/keystone.js'
import { startWebhook, tokenReview, type TestWebhook } from '../helpers/webhook.js'
import { waitFor } from '../helpers/fake-kube.js'
import { Authenticator } from '../../src/authn/authenticator.js'
import { KeystoneClient } from '../../src/keystone/client.js'
import { ServiceToken } from '../../src/keystone/service-token.js'
import { keystoneFetch } from '../helpers/keystone-fetch.js'

const seed = loadSeed()
const acme = seed.domains.acme!.id
const ops = seed.projects.ops!
const otherProject = seed.projects.admin!.id
const member = seed.roles.member!.id
const tag = `${process.pid}-${Date.now()}`

interface Made { id: string, password: string }

/** As a domain manager of acme: a user with a password and the member role on project ops, in the given groups. */
async function makeUser (t: Test, name: string, groups: string[] = []): Promise<Made> {
  const admin = await adminToken(seed)
  await removeByName(seed, admin, 'users', name)
  const password = `pw-${tag}`
  const u = await keystoneApi(seed, admin, 'POST', '/users', { user: { name, domain_id: acme, password } })
  t.equal(u.status, 201, `Keystone accepts the user name ${name}`)
  const id = u.body.user.id as string
  t.teardown(async () => { await keystoneApi(seed, await adminToken(seed), 'DELETE', `/users/${id}`) })
  t.equal((await keystoneApi(seed, admin, 'PUT', `/projects/${ops.id}/users/${id}/roles/${member}`)).status, 204)
  for (const g of groups) {
    await removeByName(seed, admin, 'groups', g)
    const made = await keystoneApi(seed, admin, 'POST', '/groups', { group: { name: g, domain_id: acme } })
    t.equal(made.status, 201, `Keystone accepts the group name ${g}`)
    const gid = made.body.group.id as string
    t.teardown(async () => { await keystoneApi(seed, await adminToken(seed), 'DELETE', `/groups/${gid}`) })
    t.equal((await keystoneApi(seed, admin, 'PUT', `/groups/${gid}/users/${id}`)).status, 204)
  }
  return { id, password }
}

/** A leftover of an interrupted run would make the create a 409. */
async function removeByName (s: Seed, admin: string, kind: 'users' | 'groups', name: string): Promise<void> {
  const found = await keystoneApi(s, admin, 'GET', `/${kind}?domain_id=${acme}&name=${encodeURIComponent(name)}`)
  for (const o of found.body?.[kind] ?? []) await keystoneApi(s, admin, 'DELETE', `/${kind}/${o.id as string}`)
}

async function opsToken (u: Made): Promise<string> {
  const res = await keystoneFetch(`${seed.auth_url}/auth/tokens?nocatalog`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { id: u.id, password: u.password } } }, scope: { project: { id: ops.id } } } })
  })
  if (res.status !== 201) throw new Error(`login failed: ${res.status}`)
  return res.headers.get('x-subject-token') as string
}

async function review (wh: TestWebhook, token: string): Promise<any> {
  const res = await wh.post('/webhook', tokenReview(token))
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${res.text}`)
  return res.body.status
}

t.test('a Keystone user named system:kube-controller-manager is refused; the log says why, without the token', async t => {
  const u = await makeUser(t, 'system:kube-controller-manager')
  const wh = await startWebhook()
  t.teardown(wh.close)
  const token = await opsToken(u)
  const status = await review(wh, token)
  t.same(status, { authenticated: false }, 'not authenticated, not system:kube-controller-manager')
  const logs = wh.logs.join('\n')
  t.match(logs, /system:kube-controller-manager/, 'the log names the user')
  t.match(logs, /system:/)
  t.notOk(logs.includes(token), 'the token is never logged')
  const warn = wh.logs.map(l => JSON.parse(l)).find(r => r.level === 40 && r.userId === u.id)
  t.ok(warn, 'a warning with the user id')
})

t.test('a Keystone group named system:masters: the review is refused', async t => {
  const u = await makeUser(t, `ksa-sec-masters-${tag}`, ['system:masters'])
  const wh = await startWebhook()
  t.teardown(wh.close)
  const status = await review(wh, await opsToken(u))
  t.same(status, { authenticated: false }, 'never in system:masters')
  t.ok(wh.logs.some(l => /system:masters/.test(l) && JSON.parse(l).level === 40), 'a warning names the group')
})

t.test('a Keystone group named like another project\'s id is dropped; our own project id group stays', async t => {
  // The form is case-insensitive: Keystone accepts upper-case hex ids in scopes and paths.
  const altUpper = seed.projects.alt!.id.toUpperCase()
  const u = await makeUser(t, `ksa-sec-hex-${tag}`, [otherProject, altUpper, `ksa-sec-team-${tag}`])
  const wh = await startWebhook()
  t.teardown(wh.close)
  const status = await review(wh, await opsToken(u))
  t.equal(status.authenticated, true, 'the user is not locked out')
  t.same(status.user.groups, [`ksa-sec-team-${tag}`, ops.id], 'only the real group, then the project id the token is scoped to')
  t.notOk(status.user.groups.includes(otherProject), 'never in the other project\'s group')
  t.notOk(status.user.groups.includes(altUpper))
  t.ok(wh.logs.some(l => l.includes(otherProject) && JSON.parse(l).level === 40), 'a warning names the dropped group')
})

t.test('--username-prefix and --groups-prefix (and their env vars) prefix Keystone names; not the project id, not role-mapping output', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'ksa-names-'))
  const file = join(dir, 'sync.yaml')
  writeFileSync(file, [
    'role-mappings:',
    '  - keystone-role: k8s-admin',
    '    username: cluster-admin-via-keystone',
    '    groups: ["system:masters"]'
  ].join('\n'))
  const wh = await startWebhook(['--username-prefix', 'keystone:', '--sync-config-file', file], { env: { KEYSTONE_GROUPS_PREFIX: 'keystone:' } })
  t.teardown(wh.close)
  const demo = (await review(wh, await passwordToken(seed, 'demo', 'demo'))).user
  t.equal(demo.username, 'keystone:demo')
  t.same(demo.groups, ['keystone:developers', seed.projects.demo?.id], 'the project id group is not prefixed')
  // Role mappings are operator-written: they may grant system: groups on purpose, unprefixed.
  const alice = (await review(wh, await passwordToken(seed, 'alice', 'ops'))).user
  t.equal(alice.username, 'cluster-admin-via-keystone')
  t.same(alice.groups, ['keystone:ops-team', ops.id, 'system:masters'])

  const dn = await startWebhook(['--username-format', 'domain/name'], { env: { KEYSTONE_USERNAME_PREFIX: 'os:' } })
  t.teardown(dn.close)
  t.equal((await review(dn, await passwordToken(seed, 'alice', 'ops'))).user.username, 'os:acme/alice')
})

t.test('a role mapping may still add system:masters to a Keystone user without a prefix', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'ksa-names-'))
  const file = join(dir, 'sync.yaml')
  writeFileSync(file, 'role-mappings:\n  - keystone-role: k8s-admin\n    groups: ["system:masters"]\n')
  const wh = await startWebhook(['--sync-config-file', file])
  t.teardown(wh.close)
  const alice = await review(wh, await passwordToken(seed, 'alice', 'ops'))
  t.equal(alice.authenticated, true)
  t.same(alice.user.groups, ['ops-team', ops.id, 'system:masters'])
})

t.test('federated group names are Keystone names too: system: refused, project-id form dropped, prefix applied', async t => {
  const BASE = 'http://keystone.test:5000'
  const fedToken = (groups: Array<{ id: string }>): object => ({
    token: {
      methods: ['openid', 'token'],
      expires_at: new Date(Date.now() + 3600_000).toISOString(),
      user: { id: 'f'.repeat(64), name: 'carol@idp', domain: { id: 'd1', name: 'idp' }, 'OS-FEDERATION': { groups, identity_provider: { id: 'idp' }, protocol: { id: 'openid' } } },
      project: { id: ops.id, name: 'ops', domain: { id: acme, name: 'acme' } },
      roles: [{ id: 'r1', name: 'member' }]
    }
  })
  const setup = (groups: Array<{ id: string, name: string }>, opts: Record<string, string> = {}): Authenticator => {
    const mock = new MockAgent()
    mock.disableNetConnect()
    const pool = mock.get(BASE)
    pool.intercept({ path: '/v3/auth/tokens?nocatalog', method: 'POST' }).reply(201, fedToken([]), { headers: { 'x-subject-token': 'service-token', 'content-type': 'application/json' } }).persist()
    pool.intercept({ path: '/v3/auth/tokens?nocatalog', method: 'GET' }).reply(200, fedToken(groups.map(g => ({ id: g.id })))).persist()
    for (const g of groups) pool.intercept({ path: `/v3/groups/${g.id}`, method: 'GET' }).reply(200, { group: g }).persist()
    const keystone = new KeystoneClient({ url: BASE, dispatcher: mock })
    const service = new ServiceToken(keystone, { method: 'application_credential', id: 'svc', secret: 's' })
    t.teardown(async () => { await mock.close() })
    return new Authenticator({ keystone, serviceToken: service, logger: pino({ level: 'silent' }), ...opts })
  }
  const masters = await setup([{ id: 'g1', name: 'fed-users' }, { id: 'g2', name: 'system:masters' }]).authenticate('user-token')
  t.equal(masters.authenticated, false, 'a mapping into a group named system:masters is refused')
  const hex = await setup([{ id: 'g1', name: 'fed-users' }, { id: 'g3', name: otherProject }]).authenticate('user-token')
  t.ok(hex.authenticated)
  if (hex.authenticated) t.same(hex.user.groups, ['fed-users', ops.id])
  // A group whose name could not be read is answered by its id: Keystone generated that, so it stays.
  const ownId = 'a'.repeat(32)
  const byId = await setup([{ id: ownId, name: ownId }]).authenticate('user-token')
  if (byId.authenticated) t.same(byId.user.groups, [ownId, ops.id])
  else t.fail('refused')
  const prefixed = await setup([{ id: 'g1', name: 'fed-users' }], { usernamePrefix: 'oidc:', groupsPrefix: 'oidc:' }).authenticate('user-token')
  if (prefixed.authenticated) {
    t.equal(prefixed.user.username, 'oidc:carol@idp')
    t.same(prefixed.user.groups, ['oidc:fed-users', ops.id])
  } else t.fail('refused')
})

t.test('start-up warning: --username-format name with more than one Keystone domain (service mode lists them)', async t => {
  const admin = await adminToken(seed)
  const adminId = seed.users.admin!.id
  const created = await keystoneApi(seed, admin, 'POST', `/users/${adminId}/application_credentials`, { application_credential: { name: `ksa-test-domains-${tag}` } })
  t.equal(created.status, 201)
  const cred = created.body.application_credential
  t.teardown(async () => { await keystoneApi(seed, await adminToken(seed), 'DELETE', `/users/${adminId}/application_credentials/${cred.id as string}`) })
  const dir = mkdtempSync(join(tmpdir(), 'ksa-svc-'))
  writeFileSync(join(dir, 'secret'), `${cred.secret as string}\n`)
  const service = ['--service-credential-id', cred.id, '--service-credential-secret-file', join(dir, 'secret')]
  const clash = (wh: TestWebhook): boolean => wh.logs.some(l => { const r = JSON.parse(l); return r.level === 40 && /domain/.test(r.msg) && /username-format/.test(r.msg) })

  const named = await startWebhook(service)
  t.teardown(named.close)
  t.ok(await waitFor(() => clash(named), 5000), 'warned: Default and acme can both have a user "alice"')
  const rec = named.logs.map(l => JSON.parse(l)).find(r => r.level === 40 && /domain/.test(r.msg))
  t.ok(rec?.domains?.includes('Default') && rec?.domains?.includes('acme'), 'the warning names the domains')

  const qualified = await startWebhook([...service, '--username-format', 'domain/name'])
  t.teardown(qualified.close)
  const plain = await startWebhook()
  t.teardown(plain.close)
  // Both answer a review (so any start-up check has had its time) without the warning.
  await review(qualified, await passwordToken(seed, 'demo', 'demo'))
  await review(plain, await passwordToken(seed, 'demo', 'demo'))
  await new Promise(resolve => setTimeout(resolve, 300))
  t.notOk(clash(qualified), 'no warning with domain/name')
  t.notOk(clash(plain), 'no warning without service mode (domains cannot be listed)')
})

t.test('domain check: one enabled domain, a 403 or no service mode say nothing at warn level', async t => {
  const { warnOnSharedUsernames } = await import('../../src/authn/domain-check.js')
  const { memoryLogger } = await import('../helpers/fake-kube.js')
  const BASE = 'http://keystone.test:5000'
  const run = async (domains: { status: number, body: unknown }, service = true): Promise<Array<Record<string, any>>> => {
    const mock = new MockAgent()
    mock.disableNetConnect()
    const pool = mock.get(BASE)
    pool.intercept({ path: '/v3/auth/tokens?nocatalog', method: 'POST' }).reply(201, { token: { methods: ['application_credential'], expires_at: new Date(Date.now() + 3600_000).toISOString(), user: { id: 'svc', name: 'svc', domain: { id: 'default', name: 'Default' } }, project: { id: 'p', name: 'p', domain: { id: 'default', name: 'Default' } }, roles: [] } }, { headers: { 'x-subject-token': 'service-token', 'content-type': 'application/json' } })
    pool.intercept({ path: '/v3/domains', method: 'GET' }).reply(domains.status, JSON.stringify(domains.body), { headers: { 'content-type': 'application/json' } })
    const keystone = new KeystoneClient({ url: BASE, dispatcher: mock })
    const { logger, records } = await memoryLogger()
    const serviceToken = service ? new ServiceToken(keystone, { method: 'application_credential', id: 'svc', secret: 's' }) : undefined
    await warnOnSharedUsernames({ keystone, serviceToken, usernameFormat: 'name', logger })
    await mock.close()
    return records
  }
  const warned = (records: Array<Record<string, any>>): boolean => records.some(r => r.level === 40)
  t.notOk(warned(await run({ status: 200, body: { domains: [{ id: 'default', name: 'Default', enabled: true }] } })), 'one domain')
  t.notOk(warned(await run({ status: 200, body: { domains: [{ id: 'default', name: 'Default', enabled: true }, { id: 'x', name: 'old', enabled: false }] } })), 'a disabled domain does not count')
  const forbidden = await run({ status: 403, body: { error: { code: 403 } } })
  t.notOk(warned(forbidden), 'may not list domains')
  t.ok(forbidden.some(r => r.level === 20 && /cannot list Keystone domains/.test(r.msg)), 'debug says why')
  t.notOk(warned(await run({ status: 200, body: {} }, false)), 'no service mode')
  const two = await run({ status: 200, body: { domains: [{ id: 'default', name: 'Default', enabled: true }, { id: 'a', name: 'acme', enabled: true }] } })
  t.ok(two.some(r => r.level === 40 && r.domains.length === 2))
})
