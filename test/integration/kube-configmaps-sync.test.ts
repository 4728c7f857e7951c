// The whole server against the fake kube-apiserver and the real Keystone: policy and sync config
// from watched ConfigMaps, namespaces and RoleBindings on first login.
import t from 'tap'
import { startFakeKube } from '../helpers/fake-kube.js'
import { loadSeed, passwordToken } from '../helpers/keystone.js'
import { startWebhook, tokenReview } from '../helpers/webhook.js'

const seed = loadSeed()
const until = async (cond: () => Promise<boolean> | boolean, ms = 1000): Promise<boolean> => {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await cond()) return true
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  return await cond()
}
const policyFor = (resource: string): string => JSON.stringify([{ users: { roles: ['member'], projects: ['demo'] }, resource_permissions: { [`*/${resource}`]: ['list'] } }])
const sar = (resource: string): object => ({
  apiVersion: 'authorization.k8s.io/v1beta1',
  kind: 'SubjectAccessReview',
  spec: {
    user: 'demo',
    group: ['developers'],
    extra: { 'alpha.kubernetes.io/identity/roles': ['member'], 'alpha.kubernetes.io/identity/project/name': ['demo'] },
    resourceAttributes: { namespace: 'demo', verb: 'list', resource, version: 'v1' }
  }
})

t.test('policy ConfigMap: readiness waits for the list, live updates within 1 s, broken edits refused, delete = no policy', async t => {
  const kube = await startFakeKube({ https: true })
  t.teardown(kube.close)
  kube.setConfigMap('kube-system', 'k8s-auth-policy', { policies: policyFor('pods') })
  // mtls: /readyz details (the refused edit) are shown to a client with a certificate only.
  const wh = await startWebhook(['--policy-configmap-name', 'k8s-auth-policy', '--kubeconfig', kube.kubeconfigPath], { mtls: true })
  t.teardown(wh.close)
  const allowed = async (resource: string): Promise<boolean> => (await wh.post('/webhook', sar(resource))).body.status.allowed
  t.ok(await until(async () => (await wh.get('/readyz')).body.checks['policy-configmap'].ok === true, 5000), 'ready after the first list')
  t.equal(await allowed('pods'), true)
  t.equal(await allowed('secrets'), false)

  kube.setConfigMap('kube-system', 'k8s-auth-policy', { policies: policyFor('secrets') })
  t.ok(await until(async () => await allowed('secrets'), 1000), 'an edit applies within 1 s')
  t.equal(await allowed('pods'), false)

  kube.setConfigMap('kube-system', 'k8s-auth-policy', { policies: '[{"users": {"roles": "member"}}' })
  t.ok(await until(async () => ((await wh.get('/readyz')).body.checks['policy-configmap'].detail ?? '').includes('refused edit'), 1000), 'readiness detail names the refused edit')
  t.equal(await allowed('secrets'), true, 'the last good policy stays in effect (Go would deny everyone)')
  t.ok(await wh.metric('k8s_keystone_auth_config_reloads_total', { config: 'policy', result: 'error' }) >= 1)

  kube.dropWatches()
  kube.setConfigMap('kube-system', 'k8s-auth-policy', { policies: policyFor('configmaps') })
  t.ok(await until(async () => await allowed('configmaps'), 5000), 'a dropped watch reconnects and sees the next edit')

  kube.deleteConfigMap('kube-system', 'k8s-auth-policy')
  t.ok(await until(async () => !(await allowed('configmaps')), 1000), 'deleted ConfigMap: no policy, every request denied (as Go)')
  t.ok(wh.logs.some(l => l.includes('"level":40')), 'logged as a warning')
})

t.test('the policy file takes precedence over the ConfigMap', async t => {
  const { mkdtempSync, writeFileSync } = await import('node:fs')
  const { join } = await import('node:path')
  const { tmpdir } = await import('node:os')
  const kube = await startFakeKube({ https: true })
  t.teardown(kube.close)
  kube.setConfigMap('kube-system', 'k8s-auth-policy', { policies: policyFor('secrets') })
  const file = join(mkdtempSync(join(tmpdir(), 'ksa-')), 'policy.json')
  writeFileSync(file, policyFor('pods'))
  const wh = await startWebhook(['--policy-configmap-name', 'k8s-auth-policy', '--keystone-policy-file', file, '--kubeconfig', kube.kubeconfigPath])
  t.teardown(wh.close)
  t.equal((await wh.post('/webhook', sar('pods'))).body.status.allowed, true)
  t.equal((await wh.post('/webhook', sar('secrets'))).body.status.allowed, false)
})

t.test('sync ConfigMap: first login creates the namespace and RoleBindings before the answer; remembered after', async t => {
  const kube = await startFakeKube({ https: true })
  t.teardown(kube.close)
  kube.setConfigMap('kube-system', 'keystone-sync', {
    syncConfig: 'data-types-to-sync: [projects, role_assignments]\nnamespace-format: "%n-%i"\nrole-mappings:\n  - keystone-role: member\n    groups: [keystone-members]\n'
  })
  const wh = await startWebhook(['--sync-configmap-name', 'keystone-sync', '--kubeconfig', kube.kubeconfigPath])
  t.teardown(wh.close)
  t.ok(await until(async () => (await wh.get('/readyz')).body.checks['sync-configmap']?.ok === true, 5000), 'ready after listing the sync ConfigMap')
  const demoProject = seed.projects.demo?.id as string
  const demoUser = seed.users.demo?.id as string
  const ns = `demo-${demoProject}`

  const res = await wh.post('/webhook', tokenReview(await passwordToken(seed, 'demo', 'demo')))
  t.equal(res.body.status.authenticated, true)
  t.same(res.body.status.user.groups, ['developers', demoProject, 'keystone-members'], 'role mapping from the ConfigMap applied')
  // Checked right after the answer: sync happened before it.
  t.ok(kube.getObject('namespaces', '', ns), `namespace ${ns} exists`)
  const bindings = kube.listObjects('rolebindings', ns).map(b => b.metadata.name).sort()
  t.same(bindings, [`${demoUser}_member`, `${demoUser}_reader`])
  const rb = kube.getObject('rolebindings', ns, `${demoUser}_member`) as any
  t.same(rb.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'member' })
  t.same(rb.subjects, [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'demo' }])

  const calls = kube.requests.filter(r => r.resource !== 'configmaps').length
  await wh.post('/webhook', tokenReview(await passwordToken(seed, 'demo', 'demo')))
  t.equal(kube.requests.filter(r => r.resource !== 'configmaps').length, calls, 'a second login within the remembered window makes no Kubernetes call')
  t.ok(await wh.metric('k8s_keystone_auth_sync_total', { outcome: 'remembered' }) >= 1)
})

t.test('a role-mapping edit applies at once, also to a token answered from the cache', async t => {
  const kube = await startFakeKube({ https: true })
  t.teardown(kube.close)
  const mapping = (group: string): string => `role-mappings:\n  - keystone-role: member\n    groups: [${group}]\n`
  kube.setConfigMap('kube-system', 'keystone-sync', { syncConfig: mapping('before-edit') })
  const wh = await startWebhook(['--sync-configmap-name', 'keystone-sync', '--kubeconfig', kube.kubeconfigPath])
  t.teardown(wh.close)
  t.ok(await until(async () => (await wh.get('/readyz')).body.checks['sync-configmap']?.ok === true, 5000))
  const token = await passwordToken(seed, 'demo', 'demo')
  const groups = async (): Promise<string[]> => (await wh.post('/webhook', tokenReview(token))).body.status.user.groups
  t.ok((await groups()).includes('before-edit'))
  t.ok((await groups()).includes('before-edit'), 'same answer from the cache')
  kube.setConfigMap('kube-system', 'keystone-sync', { syncConfig: mapping('after-edit') })
  t.ok(await until(async () => (await groups()).includes('after-edit'), 5000), 'the edited mapping is applied')
  t.notOk((await groups()).includes('before-edit'))
  t.equal(await wh.metric('k8s_keystone_auth_keystone_requests_total', { operation: 'validate' }), 1, 'one Keystone validation: every later answer came from the cache')
})

t.test('sync failure never fails the authentication', async t => {
  const kube = await startFakeKube({ https: true })
  kube.setConfigMap('kube-system', 'keystone-sync', { syncConfig: 'data-types-to-sync: [projects]\n' })
  const wh = await startWebhook(['--sync-configmap-name', 'keystone-sync', '--kubeconfig', kube.kubeconfigPath])
  t.teardown(wh.close)
  t.ok(await until(async () => (await wh.get('/readyz')).body.checks['sync-configmap']?.ok === true, 5000))
  kube.failNext({ pathPrefix: '/api/v1/namespaces' }, 500, 10)
  const res = await wh.post('/webhook', tokenReview(await passwordToken(seed, 'alice', 'ops')))
  t.equal(res.status, 200)
  t.equal(res.body.status.authenticated, true)
  t.ok(await wh.metric('k8s_keystone_auth_sync_total', { outcome: 'error' }) >= 1)
  await kube.close()
})
