import t from 'tap'
import { startFakeKube } from '../helpers/fake-kube.js'
import { createKubeClient, HttpKubeClient, type KubeCall } from '../../src/kube/client.js'
import { KubeApiError, KubeUnavailableError } from '../../src/kube/api-error.js'
import { kubeconfigConnection } from '../../src/kube/connection.js'
import { staticBearer } from '../../src/kube/credentials.js'

t.test('namespaces: get 404 -> null, create 201, create again 409 -> exists, invalid name 422', async t => {
  const fake = await startFakeKube()
  t.teardown(() => fake.close())
  const calls: KubeCall[] = []
  const c = createKubeClient({ kubeconfig: fake.kubeconfigPath, env: {}, onCall: x => calls.push(x) })
  t.teardown(() => c.close())
  t.ok(fake.url.startsWith('https://'), 'the fake speaks TLS with a generated CA that the kubeconfig carries')

  t.equal(await c.getNamespace('demo'), null)
  t.equal(await c.createNamespace('demo', { a: 'b' }), 'created')
  t.same(await c.getNamespace('demo'), { name: 'demo' })
  t.equal(fake.getObject('namespaces', '', 'demo')?.metadata.labels.a, 'b')
  t.equal(await c.createNamespace('demo'), 'exists')
  const err = await c.createNamespace('My_Project').catch(e => e)
  t.type(err, KubeApiError)
  t.equal(err.status, 422)
  t.equal(err.reason, 'Invalid')
  t.match(err.message, /RFC 1123 label/)
  t.same(calls.map(x => `${x.verb} ${x.resource} ${x.status}`), [
    'get namespaces 404', 'create namespaces 201', 'get namespaces 200', 'create namespaces 409', 'create namespaces 422'
  ])
})

t.test('rolebindings: list, create (Go-style name with _ is valid), 409, delete, delete again -> absent, 404 namespace', async t => {
  const fake = await startFakeKube()
  t.teardown(() => fake.close())
  const c = createKubeClient({ kubeconfig: fake.kubeconfigPath })
  t.teardown(() => c.close())
  await c.createNamespace('p1')
  t.same(await c.listRoleBindings('p1'), [])
  const rb = { name: 'u1_member', roleRef: { kind: 'ClusterRole' as const, name: 'member' }, subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'demo' }] }
  t.equal(await c.createRoleBinding('p1', rb), 'created')
  t.equal(await c.createRoleBinding('p1', rb), 'exists')
  t.same(await c.listRoleBindings('p1'), [{ namespace: 'p1', name: 'u1_member', labels: {}, annotations: {}, roleRef: { kind: 'ClusterRole', name: 'member' }, subjects: rb.subjects }])
  t.equal(await c.deleteRoleBinding('p1', 'u1_member'), 'deleted')
  t.equal(await c.deleteRoleBinding('p1', 'u1_member'), 'absent')
  const err = await c.createRoleBinding('nope', rb).catch(e => e)
  t.equal(err.status, 404)
  t.equal(err.reason, 'NotFound')
  const bad = await c.createRoleBinding('p1', { ...rb, name: 'a/b' }).catch(e => e)
  t.equal(bad.status, 422, 'a / in an RBAC name is refused, as by kube-apiserver')
})

t.test('a wrong token gives KubeApiError 401 after one fresh credential attempt', async t => {
  const fake = await startFakeKube()
  t.teardown(() => fake.close())
  const conn = kubeconfigConnection(fake.kubeconfigPath)
  let invalidated = 0
  conn.credentials = { ...staticBearer('wrong'), invalidate: () => { invalidated++ } }
  const c = new HttpKubeClient(conn)
  t.teardown(() => c.close())
  const err = await c.getNamespace('default').catch(e => e)
  t.type(err, KubeApiError)
  t.equal(err.status, 401)
  t.equal(invalidated, 1)
  t.equal(fake.requests.filter(r => r.path === '/api/v1/namespaces/default').length, 2)
})

t.test('an unreachable server is KubeUnavailableError', async t => {
  const fake = await startFakeKube()
  const c = createKubeClient({ kubeconfig: fake.kubeconfigPath, timeoutMs: 2000 })
  t.teardown(() => c.close())
  await fake.close()
  const err = await c.getNamespace('default').catch(e => e)
  t.type(err, KubeUnavailableError)
  t.equal(err.code, 'KSA_ERR_KUBE_UNAVAILABLE')
})

t.test('TLS: a server certificate not signed by the kubeconfig CA is refused', async t => {
  const a = await startFakeKube()
  const b = await startFakeKube()
  t.teardown(async () => { await a.close(); await b.close() })
  const conn = kubeconfigConnection(a.kubeconfigPath)
  conn.server = b.url
  conn.credentials = staticBearer(b.token)
  const c = new HttpKubeClient(conn)
  t.teardown(() => c.close())
  const err = await c.getNamespace('default').catch(e => e)
  t.type(err, KubeUnavailableError)
  t.equal(b.requests.length, 0)
})

t.test('configmaps: list with field selector, watch from the list resourceVersion with bookmarks, ERROR 410 throws', async t => {
  const fake = await startFakeKube({ bookmarkIntervalMs: 50 })
  t.teardown(() => fake.close())
  const c = createKubeClient({ kubeconfig: fake.kubeconfigPath })
  t.teardown(() => c.close())
  fake.setConfigMap('kube-system', 'k8s-auth-policy', { policies: '[]' })
  fake.setConfigMap('kube-system', 'other', { x: '1' })
  const list = await c.listConfigMaps('kube-system', { fieldSelector: 'metadata.name=k8s-auth-policy' })
  t.same(list.items.map(i => [i.name, i.data]), [['k8s-auth-policy', { policies: '[]' }]])
  t.match(list.resourceVersion, /^\d+$/)
  const q = fake.requests.at(-1)!.query
  t.match(q, /fieldSelector=metadata.name%3Dk8s-auth-policy/)

  const ac = new AbortController()
  const seen: string[] = []
  const watching = (async () => {
    for await (const ev of c.watchConfigMaps('kube-system', { resourceVersion: list.resourceVersion, fieldSelector: 'metadata.name=k8s-auth-policy', signal: ac.signal })) {
      seen.push(ev.type === 'BOOKMARK' ? 'BOOKMARK' : `${ev.type} ${ev.object.data.policies ?? '-'}`)
      if (ev.type === 'BOOKMARK' && seen.some(s => s.startsWith('DELETED'))) ac.abort()
    }
  })()
  fake.setConfigMap('kube-system', 'other', { x: '2' })
  fake.setConfigMap('kube-system', 'k8s-auth-policy', { policies: '[1]' })
  fake.deleteConfigMap('kube-system', 'k8s-auth-policy')
  await watching
  const wq = new URLSearchParams(fake.requests.find(r => r.verb === 'watch')?.query ?? '')
  t.same(seen.filter(s => s !== 'BOOKMARK'), ['MODIFIED [1]', 'DELETED [1]'])
  t.ok(seen.includes('BOOKMARK'))
  t.equal(wq.get('allowWatchBookmarks'), 'true')
  t.equal(wq.get('watch'), '1')

  fake.expireResourceVersions()
  const it = c.watchConfigMaps('kube-system', { resourceVersion: list.resourceVersion })
  const err = await (async () => { for await (const event of it) void event })().catch(e => e)
  t.type(err, KubeApiError)
  t.equal(err.status, 410)
  t.equal(err.reason, 'Expired')
})
