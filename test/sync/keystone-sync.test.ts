// End to end with the real Keystone: a password login scoped to a project, the token validated by
// our Keystone client, the identity built as the TokenReview does, synced into the fake apiserver.
// Set-up grants bob two roles on project `alt` through the admin API; teardown removes them again
// (bob has no project roles in the seed).
import t from 'tap'
import { adminToken, keystoneApi, loadSeed, passwordToken } from '../helpers/keystone.js'
import { memoryLogger, startFakeKube } from '../helpers/fake-kube.js'
import { KeystoneClient } from '../../src/keystone/client.js'
import { identityFrom } from '../../src/authn/identity.js'
import { createKubeClient } from '../../src/kube/client.js'
import { Syncer, type SyncOutcome } from '../../src/sync/syncer.js'
import { parseSyncConfig } from '../../src/config/sync-config.js'
import type { UserInfo } from '../../src/identity.js'

const seed = loadSeed()
const bob = seed.users.bob!
const alt = seed.projects.alt!
const member = seed.roles.member!
const viewer = seed.roles['k8s-viewer']!

t.test('Keystone role removed -> its RoleBinding is deleted at the next login; same roles again -> no Kubernetes API call', async t => {
  const admin = await adminToken(seed)
  const grant = async (roleId: string, method: 'PUT' | 'DELETE'): Promise<number> =>
    (await keystoneApi(seed, admin, method, `/projects/${alt.id}/users/${bob.id}/roles/${roleId}`)).status
  t.teardown(async () => {
    const a = await adminToken(seed)
    for (const r of [viewer.id, member.id]) await keystoneApi(seed, a, 'DELETE', `/projects/${alt.id}/users/${bob.id}/roles/${r}`)
  })
  t.equal(await grant(member.id, 'PUT'), 204)
  t.equal(await grant(viewer.id, 'PUT'), 204)

  const keystone = new KeystoneClient({ url: seed.auth_url })
  const fake = await startFakeKube()
  const client = createKubeClient({ kubeconfig: fake.kubeconfigPath })
  t.teardown(async () => { await keystone.close(); await client.close(); await fake.close() })
  const { logger } = await memoryLogger()
  const outcomes: SyncOutcome[] = []
  const cfg = parseSyncConfig('data-types-to-sync: [projects, role_assignments]\nnamespace-format: "%n-%i"', 'test')
  const syncer = new Syncer({ client, getConfig: () => cfg, logger, onResult: o => outcomes.push(o) })

  const login = async (): Promise<UserInfo> => {
    const token = await passwordToken(seed, 'bob', 'alt')
    const info = await keystone.validateToken(token)
    if (info === null) throw new Error('Keystone refused a fresh token')
    return identityFrom(info, [], 'name')
  }
  const ns = `alt-${alt.id}`
  const bindingRoles = (): string[] => fake.listObjects('rolebindings', ns).map(o => o.metadata.name as string).sort()

  const first = await login()
  t.ok(first.extra['alpha.kubernetes.io/identity/roles']?.includes('k8s-viewer'), 'Keystone gives bob k8s-viewer')
  await syncer.sync(first)
  t.same(outcomes, ['ok'])
  t.ok(fake.getObject('namespaces', '', ns))
  const expected = [...new Set(first.extra['alpha.kubernetes.io/identity/roles'])].map(r => `${bob.id}_${r}`).sort()
  t.same(bindingRoles(), expected, 'one binding per Keystone role (implied roles included)')
  t.ok(bindingRoles().includes(`${bob.id}_k8s-viewer`))
  t.equal(fake.getObject('rolebindings', ns, `${bob.id}_k8s-viewer`)?.subjects[0].name, 'bob')

  const n = fake.requests.length
  await syncer.sync(await login())
  t.same(outcomes, ['ok', 'remembered'], 'a new token with the same roles is remembered')
  t.equal(fake.requests.length, n, 'no Kubernetes API call')

  t.equal(await grant(viewer.id, 'DELETE'), 204)
  const after = await login()
  t.notOk(after.extra['alpha.kubernetes.io/identity/roles']?.includes('k8s-viewer'), 'Keystone no longer gives k8s-viewer')
  await syncer.sync(after)
  t.same(outcomes, ['ok', 'remembered', 'ok'])
  t.notOk(bindingRoles().includes(`${bob.id}_k8s-viewer`), 'binding deleted')
  t.ok(bindingRoles().includes(`${bob.id}_member`), 'other bindings kept')
  t.ok(fake.requests.slice(n).some(r => r.verb === 'delete' && r.name === `${bob.id}_k8s-viewer`))
})
