// deploy/rbac.yaml grants exactly what the server uses: every request that the ConfigMap
// watchers and the syncer make to the fake apiserver is allowed by its rules (a small RBAC
// evaluator below), including `bind` on each ClusterRole a created RoleBinding references, and
// nothing in it goes unused.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { parseAllDocuments } from 'yaml'
import { memoryLogger, startFakeKube, waitFor, type FakeKubeRequest } from '../helpers/fake-kube.js'
import { createKubeClient } from '../../src/kube/client.js'
import { ConfigMapWatcher } from '../../src/kube/configmap-watch.js'
import { Syncer } from '../../src/sync/syncer.js'
import { Reconciler } from '../../src/sync/reconcile.js'
import { parseSyncConfig } from '../../src/config/sync-config.js'
import { EXTRA_PROJECT_ID, EXTRA_PROJECT_NAME, EXTRA_ROLES, EXTRA_USER_DOMAIN_ID } from '../../src/identity.js'

interface Rule { apiGroups: string[], resources: string[], verbs: string[], resourceNames?: string[] }
interface Grant { namespace?: string, rules: Rule[] }

const docs = parseAllDocuments(readFileSync(new URL('../../deploy/rbac.yaml', import.meta.url), 'utf8')).map(d => d.toJS() as any)
const sa = docs.find(d => d.kind === 'ServiceAccount')
const boundTo = (kind: string, name: string): any[] => docs.filter(d => (d.kind === 'RoleBinding' || d.kind === 'ClusterRoleBinding') &&
  d.roleRef.kind === kind && d.roleRef.name === name &&
  d.subjects.some((s: any) => s.kind === 'ServiceAccount' && s.name === sa.metadata.name && s.namespace === sa.metadata.namespace))
const grants: Grant[] = [
  ...docs.filter(d => d.kind === 'Role' && boundTo('Role', d.metadata.name).length > 0).map(d => ({ namespace: d.metadata.namespace, rules: d.rules })),
  ...docs.filter(d => d.kind === 'ClusterRole' && boundTo('ClusterRole', d.metadata.name).length > 0).map(d => ({ rules: d.rules }))
]
const used = new Set<string>()

function allowed (group: string, resource: string, verb: string, namespace: string | undefined, name: string | undefined): boolean {
  for (const [gi, g] of grants.entries()) {
    if (g.namespace !== undefined && g.namespace !== namespace) continue
    for (const [ri, r] of g.rules.entries()) {
      if (!r.apiGroups.includes(group) || !r.resources.includes(resource) || !r.verbs.includes(verb)) continue
      if (r.resourceNames !== undefined && (name === undefined || !r.resourceNames.includes(name))) continue
      used.add(`${gi}/${ri}/${verb}`)
      return true
    }
  }
  return false
}

function check (req: FakeKubeRequest): boolean {
  const group = req.resource === 'rolebindings' ? 'rbac.authorization.k8s.io' : ''
  // list/watch with fieldSelector=metadata.name=X are authorized with name X.
  const sel = new URLSearchParams(req.query).get('fieldSelector')
  const name = req.name ?? (sel?.startsWith('metadata.name=') === true ? sel.slice('metadata.name='.length) : undefined)
  const ok = allowed(group, req.resource, req.verb, req.namespace, req.verb === 'create' ? undefined : name)
  if (ok && req.verb === 'create' && req.resource === 'rolebindings') {
    return allowed('rbac.authorization.k8s.io', 'clusterroles', 'bind', undefined, req.body?.roleRef?.name)
  }
  return ok
}

t.test('every request of the watchers and the syncer is allowed by deploy/rbac.yaml, and every rule is used', async t => {
  t.ok(sa, 'a ServiceAccount')
  t.notOk(docs.some(d => d.roleRef?.name === 'cluster-admin'), 'no cluster-admin')
  const fake = await startFakeKube()
  const client = createKubeClient({ kubeconfig: fake.kubeconfigPath })
  const { logger } = await memoryLogger()
  const watchers = ['k8s-auth-policy', 'keystone-sync-policy'].map(name => new ConfigMapWatcher(client, { namespace: 'kube-system', name, logger, onChange: () => {} }))
  t.teardown(async () => { for (const w of watchers) w.close(); await client.close(); await fake.close() })
  await Promise.all(watchers.map(async w => await w.start()))
  t.ok(await waitFor(() => fake.openWatches === 2))

  const cfg = parseSyncConfig(readFileSync(new URL('../../config/sync-config.yaml', import.meta.url), 'utf8'), 'config/sync-config.yaml')
  const syncer = new Syncer({ client, getConfig: () => cfg, logger })
  const user = (roles: string[]) => ({ username: 'demo', uid: 'u1', groups: [], extra: { [EXTRA_ROLES]: roles, [EXTRA_PROJECT_ID]: ['p1'], [EXTRA_PROJECT_NAME]: ['demo'], [EXTRA_USER_DOMAIN_ID]: ['default'] } })
  await syncer.sync(user(['member', 'reader', 'k8s-viewer', 'k8s-admin']))
  await syncer.sync(user(['member']))
  t.ok(fake.requests.some(r => r.verb === 'delete'), 'the run covered delete')

  t.equal(fake.listObjects('rolebindings', 'demo-p1').length, 1)
  // The reconcile, with a Keystone in which the project is gone: cluster-wide list, delete,
  // the namespace labelled orphaned, and an Event for each.
  const gone = new Reconciler({
    client,
    keystone: { getProject: async () => null, userRolesOnProject: async () => [] },
    serviceToken: { get: async () => 'svc' },
    getConfig: () => cfg,
    logger,
    intervalMs: 0
  })
  t.match(await gone.reconcile(), { removed: 1 })
  t.ok(fake.requests.some(r => r.verb === 'patch' && r.resource === 'namespaces'), 'the run covered the orphaned label')
  t.ok(fake.requests.some(r => r.verb === 'create' && r.resource === 'events'), 'and an Event')
  for (const req of fake.requests) {
    t.ok(check(req), `${req.verb} ${req.resource} ${req.namespace ?? ''} ${req.name ?? req.body?.metadata?.name ?? ''}`)
  }
  // A Keystone role not listed under bind would be refused by kube-apiserver's escalation check.
  t.notOk(check({ method: 'POST', path: '', query: '', verb: 'create', resource: 'rolebindings', namespace: 'x', body: { roleRef: { name: 'admin' } } }))
  const ruleVerbs = grants.flatMap((g, gi) => g.rules.flatMap((r, ri) => r.verbs.map(v => `${gi}/${ri}/${v}`)))
  t.same(ruleVerbs.filter(v => !used.has(v)), [], 'no granted verb goes unused')

  t.notOk(allowed('', 'configmaps', 'list', 'default', 'k8s-auth-policy'), 'ConfigMaps outside kube-system are not readable')
  t.notOk(allowed('', 'configmaps', 'list', 'kube-system', undefined), 'an unfiltered ConfigMap list is not allowed')
  t.notOk(allowed('rbac.authorization.k8s.io', 'clusterroles', 'bind', undefined, 'cluster-admin'), 'cannot bind cluster-admin')
  t.notOk(allowed('', 'secrets', 'get', 'kube-system', 'x'))
})
