// The sync reconcile against the real Keystone and the fake apiserver: RoleBindings that sync
// made are removed when Keystone takes the role away (or disables or deletes the project), with
// an Event each; what sync did not make is never touched; a deleted project's namespace is
// labelled, not deleted; and nothing is removed on a Keystone error.
import t from 'tap'
import pino from 'pino'
import { adminToken, keystoneApi, loadSeed, type Seed } from '../helpers/keystone.js'
import { keystoneFetch } from '../helpers/keystone-fetch.js'
import { memoryLogger, startFakeKube, type FakeKube } from '../helpers/fake-kube.js'
import { KeystoneClient } from '../../src/keystone/client.js'
import { ServiceToken } from '../../src/keystone/service-token.js'
import { identityFrom } from '../../src/authn/identity.js'
import { createKubeClient, type KubeClient } from '../../src/kube/client.js'
import { Syncer, PROJECT_ANNOTATION } from '../../src/sync/syncer.js'
import { ORPHANED_LABEL, Reconciler, type ReconcileRemoval } from '../../src/sync/reconcile.js'
import { parseSyncConfig } from '../../src/config/sync-config.js'
import { namespaceName } from '../../src/sync/namespace-name.js'
import { KeystoneUnavailableError } from '../../src/errors.js'

const seed: Seed = loadSeed()
const cfg = parseSyncConfig('data-types-to-sync: [projects, role_assignments]\nnamespace-format: "%n-%i"', 'test')
const INTERVAL_MS = 500

interface World { admin: string, fake: FakeKube, client: KubeClient, keystone: KeystoneClient, service: ServiceToken }

async function world (t: Tap): Promise<World> {
  const admin = await adminToken(seed)
  const keystone = new KeystoneClient({ url: seed.auth_url })
  const fake = await startFakeKube()
  const client = createKubeClient({ kubeconfig: fake.kubeconfigPath })
  // The reconcile reads projects and role assignments: an admin application credential here.
  const adminId = seed.users.admin?.id as string
  const cred = (await keystoneApi(seed, admin, 'POST', `/users/${adminId}/application_credentials`, { application_credential: { name: `ksa-rc-${process.pid}-${Date.now()}` } })).body.application_credential
  const service = new ServiceToken(keystone, { method: 'application_credential', id: cred.id, secret: cred.secret })
  t.teardown(async () => {
    await keystoneApi(seed, admin, 'DELETE', `/users/${adminId}/application_credentials/${cred.id as string}`)
    await keystone.close(); await client.close(); await fake.close()
  })
  return { admin, fake, client, keystone, service }
}
type Tap = Pick<typeof t, 'teardown' | 'equal'>

/** A new user with `roles` on a new project; its identity after a login, as the TokenReview builds it. */
async function member (t: Tap, w: World, tag: string, roles: string[]): Promise<{ userId: string, projectId: string, namespace: string, sync: () => Promise<void> }> {
  const name = `rc-${tag}-${Date.now() % 1_000_000}`
  const project = (await keystoneApi(seed, w.admin, 'POST', '/projects', { project: { name, domain_id: 'default' } })).body.project
  const user = (await keystoneApi(seed, w.admin, 'POST', '/users', { user: { name, domain_id: 'default', password: `${name}-pw` } })).body.user
  for (const r of roles) t.equal((await keystoneApi(seed, w.admin, 'PUT', `/projects/${project.id as string}/users/${user.id as string}/roles/${seed.roles[r]?.id ?? ''}`)).status, 204)
  t.teardown(async () => {
    await keystoneApi(seed, w.admin, 'DELETE', `/users/${user.id as string}`)
    await keystoneApi(seed, w.admin, 'PATCH', `/projects/${project.id as string}`, { project: { enabled: false } })
    await keystoneApi(seed, w.admin, 'DELETE', `/projects/${project.id as string}`)
  })
  const sync = async (): Promise<void> => {
    const res = await keystoneFetch(`${seed.auth_url}/auth/tokens?nocatalog`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { id: user.id, password: `${name}-pw` } } }, scope: { project: { id: project.id } } } }) })
    const info = await w.keystone.validateToken(res.headers.get('x-subject-token') as string)
    if (info === null) throw new Error('Keystone refused a fresh token')
    const { logger } = await memoryLogger()
    await new Syncer({ client: w.client, getConfig: () => cfg, logger }).sync(identityFrom(info, [], 'name'))
  }
  return { userId: user.id, projectId: project.id, namespace: namespaceName(cfg.namespaceFormat, project.id, name, 'default'), sync }
}

function reconciler (w: World, removed: ReconcileRemoval[], keystone: ConstructorParameters<typeof Reconciler>[0]['keystone'] = w.keystone): Reconciler {
  return new Reconciler({ client: w.client, keystone, serviceToken: w.service, getConfig: () => cfg, logger: pino({ level: 'silent' }), intervalMs: INTERVAL_MS, onRemoved: why => removed.push(why) })
}

const names = (w: World, ns: string): string[] => w.fake.listObjects('rolebindings', ns).map(o => o.metadata.name as string).sort()

async function until (what: () => boolean, limitMs: number): Promise<number> {
  const started = performance.now()
  while (!what()) {
    if (performance.now() - started > limitMs) return Infinity
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  return (performance.now() - started) / 1000
}

t.test('a role removed in Keystone: its synced RoleBinding goes within the interval; the others and a hand-made one stay', async t => {
  const w = await world(t)
  const u = await member(t, w, 'role', ['member', 'k8s-viewer'])
  await u.sync()
  const synced = names(w, u.namespace)
  t.ok(synced.includes(`${u.userId}_k8s-viewer`) && synced.includes(`${u.userId}_member`), `synced: ${synced.join(', ')}`)
  t.equal(w.fake.getObject('rolebindings', u.namespace, `${u.userId}_k8s-viewer`)?.metadata.annotations?.[PROJECT_ANNOTATION], u.projectId, 'sync records the project')
  // Next to them: a binding an admin made by hand, under a name like sync's but without its label.
  w.fake.putObject('rolebindings', u.namespace, { kind: 'RoleBinding', metadata: { name: `${u.userId}_edit`, namespace: u.namespace }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' }, subjects: [{ kind: 'User', name: 'someone' }] })

  const removed: ReconcileRemoval[] = []
  const r = reconciler(w, removed)
  r.start()
  t.teardown(() => r.stop())
  t.equal((await keystoneApi(seed, w.admin, 'DELETE', `/projects/${u.projectId}/users/${u.userId}/roles/${seed.roles['k8s-viewer']?.id ?? ''}`)).status, 204)
  const s = await until(() => !names(w, u.namespace).includes(`${u.userId}_k8s-viewer`), INTERVAL_MS + 5000)
  t.comment(`role removed: RoleBinding gone after ${s.toFixed(1)} s (reconcile every ${INTERVAL_MS} ms)`)
  t.ok(s <= (INTERVAL_MS + 5000) / 1000, 'removed within the interval + 5 s')
  t.same(removed, ['role_removed'])
  const left = names(w, u.namespace)
  t.ok(left.includes(`${u.userId}_member`), 'the role the user still holds keeps its binding')
  t.ok(left.includes(`${u.userId}_edit`), 'the hand-made binding is untouched')
  t.same(left, synced.filter(n => n !== `${u.userId}_k8s-viewer`).concat(`${u.userId}_edit`).sort(), 'nothing else removed (implied roles included)')
  // The Event follows the deletion.
  t.ok(await until(() => w.fake.listObjects('events', u.namespace).length > 0, 5000) < Infinity, 'an Event is written')
  const events = w.fake.listObjects('events', u.namespace)
  t.equal(events.length, 1, 'one Event')
  t.match(events[0], { reason: 'KeystoneRoleRevoked', involvedObject: { kind: 'RoleBinding', name: `${u.userId}_k8s-viewer` }, message: /no longer holds the Keystone role k8s-viewer/ })
})

t.test('a project disabled: its bindings go; deleted: its namespace is labelled orphaned, never deleted', async t => {
  const w = await world(t)
  const off = await member(t, w, 'off', ['member'])
  const gone = await member(t, w, 'gone', ['member'])
  await off.sync()
  await gone.sync()
  t.equal((await keystoneApi(seed, w.admin, 'PATCH', `/projects/${off.projectId}`, { project: { enabled: false } })).status, 200)
  t.equal((await keystoneApi(seed, w.admin, 'PATCH', `/projects/${gone.projectId}`, { project: { enabled: false } })).status, 200)
  t.equal((await keystoneApi(seed, w.admin, 'DELETE', `/projects/${gone.projectId}`)).status, 204)
  const removed: ReconcileRemoval[] = []
  const result = await reconciler(w, removed).reconcile()
  t.ok(result !== undefined && result.removed >= 2, `one pass removed ${result?.removed ?? 0}`)
  t.same(names(w, off.namespace), [], 'disabled project: bindings removed')
  t.same(names(w, gone.namespace), [], 'deleted project: bindings removed')
  t.ok(removed.includes('project_disabled') && removed.includes('project_deleted'), removed.join(', '))
  t.ok(w.fake.getObject('namespaces', '', gone.namespace), 'the namespace of the deleted project is still there')
  t.equal(w.fake.getObject('namespaces', '', gone.namespace)?.metadata.labels?.[ORPHANED_LABEL], 'true', 'and labelled orphaned')
  t.equal(w.fake.getObject('namespaces', '', off.namespace)?.metadata.labels?.[ORPHANED_LABEL], undefined, 'a disabled project\'s namespace is not orphaned')
  // An Event about a Namespace (cluster-scoped) lives in `default`: kube-apiserver refuses it elsewhere.
  t.ok(w.fake.listObjects('events', 'default').some(e => e.reason === 'KeystoneProjectDeleted' && e.involvedObject.name === gone.namespace))
})

t.test('Keystone unreachable: nothing is removed', async t => {
  const w = await world(t)
  const u = await member(t, w, 'down', ['member'])
  await u.sync()
  const before = names(w, u.namespace)
  const removed: ReconcileRemoval[] = []
  const down = { getProject: async () => { throw new KeystoneUnavailableError('connection refused') }, userRolesOnProject: async () => { throw new KeystoneUnavailableError('connection refused') } }
  t.equal(await reconciler(w, removed, down).reconcile(), undefined, 'the pass reports failure')
  t.same(names(w, u.namespace), before)
  t.same(removed, [])
})
