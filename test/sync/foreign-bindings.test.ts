// Security review, finding 4: "Sync deletes bindings it did not make". Clean-up used to delete
// every RoleBinding named `<user id>_*` in the synced namespace: a binding an admin wrote by hand
// under such a name, and, with user ids that contain `_` (LDAP and other identity backends pick
// their own ids), the synced bindings of another user whose id starts with `<user id>_`.
// Kept as regression tests against the fake Kubernetes API: only bindings carrying our
// managed-by label, and named exactly `<this user id>_<their roleRef>`, are ever deleted.
import t, { type Test } from 'tap'
import { memoryLogger, startFakeKube, type FakeKube } from '../helpers/fake-kube.js'
import { createKubeClient } from '../../src/kube/client.js'
import { Syncer, type SyncOutcome } from '../../src/sync/syncer.js'
import { parseSyncConfig } from '../../src/config/sync-config.js'
import { EXTRA_PROJECT_ID, EXTRA_PROJECT_NAME, EXTRA_ROLES, EXTRA_USER_DOMAIN_ID, type UserInfo } from '../../src/identity.js'

const PID = '379e99071fad45709896fb197a6e485c'
const NS = PID
const MANAGED = { 'app.kubernetes.io/managed-by': 'k8s-keystone-auth' }
const CFG = parseSyncConfig('data-types-to-sync: [projects, role_assignments]', 'test')

function user (uid: string, username: string, roles: string[]): UserInfo {
  return {
    username,
    uid,
    groups: [],
    extra: { [EXTRA_ROLES]: roles, [EXTRA_PROJECT_ID]: [PID], [EXTRA_PROJECT_NAME]: ['demo'], [EXTRA_USER_DOMAIN_ID]: ['default'] }
  }
}

async function setup (t: Test): Promise<{ fake: FakeKube, syncer: Syncer, outcomes: SyncOutcome[], records: Array<Record<string, any>> }> {
  const fake = await startFakeKube()
  const client = createKubeClient({ kubeconfig: fake.kubeconfigPath })
  const { logger, records } = await memoryLogger()
  const outcomes: SyncOutcome[] = []
  // Nothing remembered: every sync goes to the API, as after the remember window.
  const syncer = new Syncer({ client, getConfig: () => CFG, logger, onResult: o => outcomes.push(o), rememberTtlMs: 0 })
  t.teardown(async () => { await client.close(); await fake.close() })
  return { fake, syncer, outcomes, records }
}

const binding = (name: string, role: string, subject: string, labels?: Record<string, string>): Record<string, any> => ({
  metadata: { name, ...(labels !== undefined ? { labels } : {}) },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
  subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: subject }]
})
const names = (fake: FakeKube): string[] => fake.listObjects('rolebindings', NS).map(o => o.metadata.name as string).sort()
const deletes = (fake: FakeKube): string[] => fake.requests.filter(r => r.verb === 'delete').map(r => r.name ?? '').sort()

t.test('a hand-made binding named like ours, without our label, survives; a labelled one is cleaned up', async t => {
  const { fake, syncer, outcomes } = await setup(t)
  const uid = '8dea5721a86949c6b567b68ed9a04839'
  fake.putObject('namespaces', '', { metadata: { name: NS } })
  // An admin grants this user k8s-admin by hand, naming the binding as sync would.
  fake.putObject('rolebindings', NS, binding(`${uid}_k8s-admin`, 'k8s-admin', 'demo'))
  // One sync made earlier, for a role the user no longer holds.
  fake.putObject('rolebindings', NS, binding(`${uid}_reader`, 'reader', 'demo', MANAGED))
  await syncer.sync(user(uid, 'demo', ['member']))
  t.same(outcomes, ['ok'])
  t.same(names(fake), [`${uid}_k8s-admin`, `${uid}_member`], 'the hand-made binding is still there, the revoked synced one is gone')
  t.same(deletes(fake), [`${uid}_reader`], 'only the labelled binding was deleted')
  t.same(fake.getObject('rolebindings', NS, `${uid}_member`)?.metadata.labels, MANAGED, 'what sync creates carries the label')
})

t.test('ids with "_" (LDAP-style): one user\'s clean-up leaves another user\'s synced bindings alone', async t => {
  const { fake, syncer } = await setup(t)
  await syncer.sync(user('john_doe', 'john.doe', ['member', 'k8s-admin']))
  t.same(names(fake), ['john_doe_k8s-admin', 'john_doe_member'])
  // User `john` (an id that is a prefix of john_doe's, up to the `_`) logs in with one role.
  await syncer.sync(user('john', 'john', ['reader']))
  t.same(names(fake), ['john_doe_k8s-admin', 'john_doe_member', 'john_reader'], 'john_doe keeps both bindings')
  t.same(deletes(fake), [])
  // john_doe's own clean-up still works.
  await syncer.sync(user('john_doe', 'john.doe', ['member']))
  t.same(names(fake), ['john_doe_member', 'john_reader'])
  t.same(deletes(fake), ['john_doe_k8s-admin'])
})

t.test('an unlabelled binding with the very name sync wants is not changed, and the log says so', async t => {
  const { fake, syncer, outcomes, records } = await setup(t)
  const uid = '8dea5721a86949c6b567b68ed9a04839'
  fake.putObject('namespaces', '', { metadata: { name: NS } })
  fake.putObject('rolebindings', NS, binding(`${uid}_member`, 'member', 'someone-else'))
  await syncer.sync(user(uid, 'demo', ['member']))
  t.same(outcomes, ['ok'])
  const rb = fake.getObject('rolebindings', NS, `${uid}_member`)
  t.equal(rb?.subjects[0].name, 'someone-else', 'not rewritten')
  t.notOk(rb?.metadata.labels, 'not labelled by us')
  t.same(deletes(fake), [])
  t.ok(records.some(r => r.level === 40 && r.roleBinding === `${uid}_member` && /not made by k8s-keystone-auth/.test(r.msg)), 'a warning names the binding')
})
