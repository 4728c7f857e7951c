import t from 'tap'
import { memoryLogger, startFakeKube, type FakeKube } from '../helpers/fake-kube.js'
import { createKubeClient, type KubeClient } from '../../src/kube/client.js'
import { Syncer, type SyncOutcome } from '../../src/sync/syncer.js'
import { applyRoleMappings } from '../../src/authn/identity.js'
import { defaultSyncConfig, parseSyncConfig, type SyncConfig } from '../../src/config/sync-config.js'
import { EXTRA_PROJECT_ID, EXTRA_PROJECT_NAME, EXTRA_ROLES, EXTRA_USER_DOMAIN_ID, type UserInfo } from '../../src/identity.js'

const PID = '379e99071fad45709896fb197a6e485c'
const UID = '8dea5721a86949c6b567b68ed9a04839'

function user (roles: string[], over: Partial<UserInfo> = {}, project: { id?: string, name?: string } = {}): UserInfo {
  return {
    username: 'demo',
    uid: UID,
    groups: [],
    extra: {
      [EXTRA_ROLES]: roles,
      [EXTRA_PROJECT_ID]: [project.id ?? PID],
      [EXTRA_PROJECT_NAME]: [project.name ?? 'demo'],
      [EXTRA_USER_DOMAIN_ID]: ['default']
    },
    ...over
  }
}

const BOTH = parseSyncConfig('data-types-to-sync: [projects, role_assignments]\nnamespace-format: "%n-%i"', 'test')
const NS = `demo-${PID}`

async function setup (t: any, cfg: SyncConfig = BOTH, opts: { rememberTtlMs?: number } = {}) {
  const fake = await startFakeKube()
  const client = createKubeClient({ kubeconfig: fake.kubeconfigPath })
  const { logger, records } = await memoryLogger()
  const outcomes: SyncOutcome[] = []
  let config = cfg
  const syncer = new Syncer({ client, getConfig: () => config, logger, onResult: o => outcomes.push(o), ...opts })
  t.teardown(async () => { await client.close(); await fake.close() })
  return { fake, client, syncer, outcomes, records, setConfig: (c: SyncConfig) => { config = c } }
}

const bindings = (fake: FakeKube, ns: string): string[] => fake.listObjects('rolebindings', ns).map(o => o.metadata.name).sort()

t.test('first login: namespace and one RoleBinding per role, Go shapes; the next identical review does not call the API', async t => {
  const { fake, syncer, outcomes } = await setup(t)
  await syncer.sync(user(['member', 'reader']))
  t.same(outcomes, ['ok'])
  t.ok(fake.getObject('namespaces', '', NS), 'namespace created')
  t.same(bindings(fake, NS), [`${UID}_member`, `${UID}_reader`])
  const rb = fake.getObject('rolebindings', NS, `${UID}_member`)!
  t.same(rb.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'member' })
  t.same(rb.subjects, [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'demo' }])
  t.same(fake.requests.map(r => `${r.verb} ${r.resource}`), [
    'get namespaces', 'create namespaces', 'list rolebindings', 'create rolebindings', 'create rolebindings'
  ])

  const n = fake.requests.length
  await syncer.sync(user(['reader', 'member', 'member']))
  await syncer.sync(user(['member', 'reader']))
  t.same(outcomes, ['ok', 'remembered', 'remembered'], 'same role set in another order is the same sync')
  t.equal(fake.requests.length, n, 'the Kubernetes API is not called again within the remembered window')
})

t.test('remembered only for the window: after rememberTtlMs the API is called again', async t => {
  const { fake, syncer, outcomes } = await setup(t, BOTH, { rememberTtlMs: 50 })
  await syncer.sync(user(['member']))
  await syncer.sync(user(['member']))
  t.same(outcomes, ['ok', 'remembered'])
  await new Promise(resolve => setTimeout(resolve, 120))
  const n = fake.requests.length
  await syncer.sync(user(['member']))
  t.same(outcomes, ['ok', 'remembered', 'ok'])
  t.same(fake.requests.slice(n).map(r => `${r.verb} ${r.resource}`), ['get namespaces', 'list rolebindings'], 'checked, nothing to change')
})

t.test('a role no longer held: its synced binding is deleted; bindings of others, of admins and of the Go binary (unlabelled) are kept', async t => {
  const { fake, syncer } = await setup(t)
  await syncer.sync(user(['member', 'reader']))
  fake.putObject('rolebindings', NS, { metadata: { name: 'admin-made' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' }, subjects: [] })
  fake.putObject('rolebindings', NS, { metadata: { name: 'otheruser_member' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'member' }, subjects: [] })
  fake.putObject('rolebindings', NS, { metadata: { name: `${UID}_k8s-admin` }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'k8s-admin' }, subjects: [] })
  await syncer.sync(user(['member']))
  t.same(bindings(fake, NS), [`${UID}_k8s-admin`, `${UID}_member`, 'admin-made', 'otheruser_member'])
  t.ok(fake.requests.some(r => r.verb === 'delete' && r.name === `${UID}_reader`))
  t.notOk(fake.requests.some(r => r.verb === 'delete' && r.name === `${UID}_k8s-admin`), 'a binding without our label (as the Go binary leaves them) is not ours to delete')
})

t.test('data types: projects only creates no bindings; role_assignments only creates no namespace; none -> skipped', async t => {
  const { fake, syncer, outcomes, setConfig } = await setup(t, parseSyncConfig('data-types-to-sync: [projects]', 't'))
  await syncer.sync(user(['member']))
  t.ok(fake.getObject('namespaces', '', PID), 'default format %i')
  t.same(bindings(fake, PID), [])
  setConfig(parseSyncConfig('data-types-to-sync: [role_assignments]', 't'))
  await syncer.sync(user(['member'], {}, { id: 'p2' }))
  t.equal(outcomes.at(-1), 'error', 'role bindings in a namespace that does not exist fail (404), as Go')
  t.notOk(fake.getObject('namespaces', '', 'p2'))
  await syncer.sync(user(['member']))
  t.same(bindings(fake, PID), [`${UID}_member`])
  setConfig(defaultSyncConfig())
  const n = fake.requests.length
  await syncer.sync(user(['member', 'reader']))
  t.equal(outcomes.at(-1), 'skipped')
  t.equal(fake.requests.length, n)
})

t.test('skipped: blacklisted project id or name, token without a project', async t => {
  const cfg = parseSyncConfig(`data-types-to-sync: [projects, role_assignments]\nprojects-blacklist: [${PID}]\nprojects-name-blacklist: [admin]`, 't')
  const { fake, syncer, outcomes } = await setup(t, cfg)
  await syncer.sync(user(['member']))
  await syncer.sync(user(['member'], {}, { id: 'other', name: 'admin' }))
  const u = user(['member'])
  delete u.extra[EXTRA_PROJECT_ID]
  await syncer.sync(u)
  t.same(outcomes, ['skipped', 'skipped', 'skipped'])
  t.equal(fake.requests.length, 0)
  await syncer.sync(user(['member'], {}, { id: 'fine', name: 'fine' }))
  t.same(outcomes.at(-1), 'ok', 'the same config syncs a project not listed')
})

t.test('namespace names are sanitised: Keystone project My_Project syncs (Go would get 422)', async t => {
  const { fake, syncer, outcomes } = await setup(t)
  await syncer.sync(user(['member'], {}, { id: 'abc123', name: 'My_Project' }))
  t.same(outcomes, ['ok'])
  t.ok(fake.getObject('namespaces', '', 'my-project-abc123'))
  t.same(bindings(fake, 'my-project-abc123'), [`${UID}_member`])
})

t.test('an API error never throws: logged with status, reported as error, not remembered, retried next time', async t => {
  const { fake, syncer, outcomes, records } = await setup(t)
  fake.failNext({ method: 'POST', pathPrefix: '/apis/rbac.authorization.k8s.io' }, 403)
  await syncer.sync(user(['member']))
  t.same(outcomes, ['error'])
  const rec = records.find(r => /sync failed/.test(r.msg))
  t.equal(rec?.status, 403)
  t.equal(rec?.reason, 'Forbidden')
  await syncer.sync(user(['member']))
  t.same(outcomes, ['error', 'ok'])
  t.same(bindings(fake, NS), [`${UID}_member`])

  await fake.close()
  await syncer.sync(user(['member', 'reader']))
  t.equal(outcomes.at(-1), 'error', 'apiserver gone: still no throw')
})

t.test('a namespace someone else created meanwhile (409) is fine; concurrent identical syncs share one run', async t => {
  const { fake, syncer, outcomes } = await setup(t)
  // Make the GET say 404 although the namespace then exists: the create meets 409.
  fake.putObject('namespaces', '', { metadata: { name: NS } })
  fake.failNext({ method: 'GET', pathPrefix: `/api/v1/namespaces/${NS}` }, 404)
  await syncer.sync(user(['member']))
  t.same(outcomes, ['ok'])
  t.ok(fake.requests.some(r => r.verb === 'create' && r.resource === 'namespaces'))

  const { fake: f2, syncer: s2, outcomes: o2 } = await setup(t)
  await Promise.all([s2.sync(user(['reader'])), s2.sync(user(['reader'])), s2.sync(user(['reader']))])
  t.same(o2, ['ok', 'ok', 'ok'])
  t.equal(f2.requests.filter(r => r.verb === 'list').length, 1, 'one run for three concurrent reviews')
})

t.test('role-mappings (authn applies them first, as Go): the binding names the mapped user', async t => {
  const cfg = parseSyncConfig(`data-types-to-sync: [role_assignments, projects]
role-mappings:
- keystone-role: member
  groups: [developers]
- keystone-role: k8s-admin
  username: cluster-admin-user
  groups: [admins]`, 't')
  const u = user(['member', 'k8s-admin'])
  const mapped = applyRoleMappings(u, cfg.roleMappings)
  t.equal(mapped.username, 'cluster-admin-user')
  t.same(mapped.groups, ['developers', 'admins'])
  t.equal(u.username, 'demo', 'input not mutated')
  t.equal(applyRoleMappings(user(['reader']), cfg.roleMappings).username, 'demo')
  const { fake, syncer } = await setup(t, cfg)
  await syncer.sync(mapped)
  t.same(fake.getObject('rolebindings', PID, `${UID}_member`)?.subjects[0].name, 'cluster-admin-user')
})

t.test('the client interface is enough to fake: a throwing client is still an error outcome', async t => {
  const { logger } = await memoryLogger()
  const boom = async (): Promise<never> => { throw new Error('boom') }
  const client = { server: 'x', getNamespace: boom, createNamespace: boom, listRoleBindings: boom, createRoleBinding: boom, deleteRoleBinding: boom, listConfigMaps: boom, watchConfigMaps: boom as any, listRoleBindingsEverywhere: boom, labelNamespace: boom, createEvent: boom, close: async () => {} } satisfies KubeClient
  const outcomes: SyncOutcome[] = []
  const s = new Syncer({ client, getConfig: () => BOTH, logger, onResult: o => outcomes.push(o) })
  await s.sync(user(['member']))
  t.same(outcomes, ['error'])
})

t.test('a hung apiserver does not hold the review past timeoutMs; the sync finishes in the background', async t => {
  const { logger, records } = await memoryLogger()
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  let calls = 0
  const hang = async (): Promise<null> => { calls++; await gate; return null }
  const ok = async (): Promise<'created'> => 'created'
  const client = { server: 'x', getNamespace: hang, createNamespace: ok, listRoleBindings: async () => [], createRoleBinding: ok, deleteRoleBinding: async () => 'deleted' as const, listConfigMaps: null as any, watchConfigMaps: null as any, listRoleBindingsEverywhere: null as any, labelNamespace: null as any, createEvent: null as any, close: async () => {} } satisfies KubeClient
  const outcomes: SyncOutcome[] = []
  const s = new Syncer({ client, getConfig: () => BOTH, logger, onResult: o => outcomes.push(o), timeoutMs: 50 })
  await s.sync(user(['member']))
  t.same(outcomes, ['error'], 'returned although the apiserver has not answered')
  t.ok(records.some(r => /did not finish within 50 ms/.test(r.err)))
  await s.sync(user(['member']))
  t.same(outcomes, ['error', 'error'], 'a second review joins the same hung run and is not held either')
  t.equal(calls, 1)
  release()
  await new Promise(resolve => setTimeout(resolve, 20))
  await s.sync(user(['member']))
  t.same(outcomes, ['error', 'error', 'remembered'], 'the background run completed and is remembered')
  t.equal(calls, 1)
})

t.test('different role sets of one user for one namespace run one after the other (no interleaved list/create/delete)', async t => {
  const { fake, syncer, outcomes } = await setup(t)
  await Promise.all([syncer.sync(user(['member', 'reader'])), syncer.sync(user(['member']))])
  t.same(outcomes, ['ok', 'ok'])
  t.same(bindings(fake, NS), [`${UID}_member`], 'the later review wins')
  const verbs = fake.requests.filter(r => r.resource === 'rolebindings').map(r => r.verb)
  t.same(verbs, ['list', 'create', 'create', 'list', 'delete'], 'second run starts after the first finished')
})
