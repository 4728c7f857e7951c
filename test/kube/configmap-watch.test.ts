import t from 'tap'
import { memoryLogger, startFakeKube, waitFor } from '../helpers/fake-kube.js'
import { createKubeClient } from '../../src/kube/client.js'
import { ConfigMapWatcher } from '../../src/kube/configmap-watch.js'

async function setup (t: any, opts: { present?: boolean } = {}) {
  const fake = await startFakeKube({ bookmarkIntervalMs: 100 })
  if (opts.present !== false) fake.setConfigMap('kube-system', 'k8s-auth-policy', { policies: 'v1' })
  const client = createKubeClient({ kubeconfig: fake.kubeconfigPath })
  const { logger, records } = await memoryLogger()
  const seen: Array<Record<string, string> | null> = []
  const w = new ConfigMapWatcher(client, { namespace: 'kube-system', name: 'k8s-auth-policy', logger, onChange: d => seen.push(d), backoffInitialMs: 20, backoffMaxMs: 200 })
  t.teardown(async () => { w.close(); await client.close(); await fake.close() })
  return { fake, client, w, seen, records }
}

const last = (seen: Array<Record<string, string> | null>): string | null | undefined => {
  const v = seen.at(-1)
  return v === undefined ? undefined : v === null ? null : (v.policies ?? '')
}

t.test('start() resolves after the first list with the data delivered; then lists, watches with bookmarks and a name field selector', async t => {
  const { fake, w, seen } = await setup(t)
  t.equal(w.synced, false)
  await w.start()
  t.equal(w.synced, true)
  t.same(seen, [{ policies: 'v1' }])
  t.ok(await waitFor(() => fake.requests.some(r => r.verb === 'watch')))
  const list = fake.requests.find(r => r.verb === 'list')!
  const watch = new URLSearchParams(fake.requests.find(r => r.verb === 'watch')!.query)
  t.equal(new URLSearchParams(list.query).get('fieldSelector'), 'metadata.name=k8s-auth-policy')
  t.equal(watch.get('fieldSelector'), 'metadata.name=k8s-auth-policy')
  t.equal(watch.get('allowWatchBookmarks'), 'true')
  t.match(watch.get('resourceVersion'), /^\d+$/)
})

t.test('an absent ConfigMap is delivered as null; its creation, update and deletion each within 1 s', async t => {
  const { fake, w, seen } = await setup(t, { present: false })
  await w.start()
  t.same(seen, [null])
  fake.setConfigMap('kube-system', 'k8s-auth-policy', { policies: 'a' })
  t.ok(await waitFor(() => last(seen) === 'a'), 'created')
  fake.setConfigMap('kube-system', 'k8s-auth-policy', { policies: 'b' })
  t.ok(await waitFor(() => last(seen) === 'b'), 'updated')
  fake.setConfigMap('kube-system', 'unrelated', { policies: 'zzz' })
  fake.deleteConfigMap('kube-system', 'k8s-auth-policy')
  t.ok(await waitFor(() => last(seen) === null), 'deleted')
  t.notOk(seen.some(s => s?.policies === 'zzz'), 'other ConfigMaps are not delivered')
})

t.test('a dropped watch reconnects from the last resourceVersion; changes made while it was down arrive', async t => {
  const { fake, w, seen } = await setup(t)
  await w.start()
  t.ok(await waitFor(() => fake.openWatches === 1))
  // Let a bookmark move the watcher's resourceVersion first.
  fake.setConfigMap('kube-system', 'other', { x: '1' })
  const bookmarksBefore = fake.requests.filter(r => r.verb === 'watch').length
  fake.dropWatches()
  fake.setConfigMap('kube-system', 'k8s-auth-policy', { policies: 'while-down' })
  t.ok(await waitFor(() => last(seen) === 'while-down'), 'change made while disconnected is seen after reconnect')
  t.ok(await waitFor(() => fake.openWatches === 1), 'watching again')
  t.equal(fake.requests.filter(r => r.verb === 'list').length, 1, 'no relist needed after a plain drop')
  t.ok(fake.requests.filter(r => r.verb === 'watch').length > bookmarksBefore)
  fake.setConfigMap('kube-system', 'k8s-auth-policy', { policies: 'after' })
  t.ok(await waitFor(() => last(seen) === 'after'))
  t.equal(seen.filter(s => s?.policies === 'while-down').length, 1, 'each change delivered once')
})

t.test('410 Expired on re-watch: lists again and delivers the current data', async t => {
  const { fake, w, seen, records } = await setup(t)
  await w.start()
  t.ok(await waitFor(() => fake.openWatches === 1))
  // Stop the watcher from learning new resourceVersions, then compact history.
  fake.dropWatches()
  fake.expireResourceVersions()
  fake.setConfigMap('kube-system', 'k8s-auth-policy', { policies: 'after-compaction' })
  t.ok(await waitFor(() => last(seen) === 'after-compaction'))
  t.ok(await waitFor(() => fake.requests.filter(r => r.verb === 'list').length === 2), 'a second list after 410')
  t.ok(records.some(r => /410/.test(r.msg)), 'the 410 is logged')
  t.ok(await waitFor(() => fake.openWatches === 1), 'watching again from the new list')
})

t.test('a failing apiserver: start() waits, lastError says why, first success makes it synced', async t => {
  const { fake, w, seen } = await setup(t)
  fake.failNext({ method: 'GET', pathPrefix: '/api/v1/namespaces/kube-system/configmaps' }, 500, 3)
  let resolved = false
  const started = w.start().then(() => { resolved = true })
  t.ok(await waitFor(() => w.lastError !== undefined), 'error recorded')
  t.match(w.lastError, /injected failure 500/)
  t.equal(resolved, false)
  await started
  t.equal(w.synced, true)
  t.equal(w.lastError, undefined)
  t.same(seen, [{ policies: 'v1' }])
  t.equal(fake.requests.filter(r => r.verb === 'list').length, 4)
})

t.test('close() ends the watch and start() of a closed watcher resolves', async t => {
  const { fake, w } = await setup(t)
  await w.start()
  t.ok(await waitFor(() => fake.openWatches === 1))
  w.close()
  t.ok(await waitFor(() => fake.openWatches === 0))
  await w.start()
  const n = fake.requests.length
  await new Promise(resolve => setTimeout(resolve, 150))
  t.equal(fake.requests.length, n, 'no requests after close')
})
