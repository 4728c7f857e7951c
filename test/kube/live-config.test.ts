import t from 'tap'
import { memoryLogger, startFakeKube, waitFor } from '../helpers/fake-kube.js'
import { LiveConfig } from '../../src/kube/live-config.js'
import { ConfigMapWatcher } from '../../src/kube/configmap-watch.js'
import { createKubeClient } from '../../src/kube/client.js'
import { defaultSyncConfig, parseSyncConfig, type SyncConfig } from '../../src/config/sync-config.js'
import { ConfigError } from '../../src/errors.js'

t.test('unit: good update applied, broken update keeps the last good and says why, delete -> default with a warning', async t => {
  const { logger, records } = await memoryLogger()
  const rejected: unknown[] = []
  const applied: string[] = []
  const live = new LiveConfig<SyncConfig>({
    configMap: 'kube-system/keystone-sync-policy',
    key: 'syncConfig',
    parse: parseSyncConfig,
    empty: defaultSyncConfig,
    logger,
    onReject: e => rejected.push(e),
    onApply: (_v, src) => applied.push(src)
  })
  t.same(live.current, defaultSyncConfig())
  t.equal(live.source, 'initial')

  t.equal(live.update({ syncConfig: 'data-types-to-sync: [projects]\nnamespace-format: "%n-%i"' }), true)
  t.same(live.current.dataTypesToSync, ['projects'])
  t.equal(live.current.namespaceFormat, '%n-%i')
  t.equal(live.lastError, undefined)

  const good = live.current
  t.equal(live.update({ syncConfig: 'data-types-to-sync: [projectz]' }), false)
  t.equal(live.current, good, 'last good kept')
  t.match(live.lastError, /ConfigMap kube-system\/keystone-sync-policy key syncConfig: data-types-to-sync.0/)
  t.type(rejected[0], ConfigError)
  t.equal(live.rejectedCount, 1)
  t.ok(records.some(r => r.level === 50 && /keeping the last good/.test(r.msg)), 'logged as an error')

  t.equal(live.update({ syncConfig: 'namespace-format: "%n"' }), false, 'a format without %i is refused too')
  t.equal(live.current, good)

  t.equal(live.update(null), true)
  t.same(live.current, defaultSyncConfig())
  t.equal(live.source, 'deleted')
  t.equal(live.lastError, undefined)
  t.ok(records.some(r => r.level === 40 && /deleted or absent/.test(r.msg)), 'deletion is a warning')

  t.equal(live.update({ other: 'x' }), true, 'a ConfigMap without the key is like no ConfigMap')
  t.same(live.current, defaultSyncConfig())
  t.same(applied, ['configmap', 'deleted', 'deleted'])
})

t.test('JSON key (policies): a typo keeps the previous policy instead of emptying it', async t => {
  const { logger } = await memoryLogger()
  const parse = (text: string, source: string): unknown[] => {
    try {
      const v = JSON.parse(text)
      if (!Array.isArray(v)) throw new Error('not a list')
      return v
    } catch (err) { throw new ConfigError(`${source}: ${(err as Error).message}`) }
  }
  const live = new LiveConfig<unknown[]>({ configMap: 'kube-system/k8s-auth-policy', key: 'policies', parse, empty: () => [], logger })
  live.update({ policies: '[{"users":{"name":"x"}}]' })
  t.equal(live.current.length, 1)
  live.update({ policies: '[{"users":{"name":"x"}},' })
  t.equal(live.current.length, 1)
  t.match(live.lastError, /k8s-auth-policy key policies/)
})

t.test('live: ConfigMap -> watcher -> LiveConfig; an edit is in effect within 1 s, a broken edit is not, a delete restores defaults', async t => {
  const fake = await startFakeKube()
  const client = createKubeClient({ kubeconfig: fake.kubeconfigPath })
  const { logger } = await memoryLogger()
  const live = new LiveConfig<SyncConfig>({ configMap: 'kube-system/keystone-sync-policy', key: 'syncConfig', parse: parseSyncConfig, empty: defaultSyncConfig, logger })
  fake.setConfigMap('kube-system', 'keystone-sync-policy', { syncConfig: 'data-types-to-sync: [projects]' })
  const w = new ConfigMapWatcher(client, { namespace: 'kube-system', name: 'keystone-sync-policy', logger, onChange: live.update })
  t.teardown(async () => { w.close(); await client.close(); await fake.close() })
  await w.start()
  t.same(live.current.dataTypesToSync, ['projects'], 'in effect once start() resolves')

  fake.setConfigMap('kube-system', 'keystone-sync-policy', { syncConfig: 'data-types-to-sync: [projects, role_assignments]\nnamespace-format: "k-%i"' })
  t.ok(await waitFor(() => live.current.namespaceFormat === 'k-%i', 1000), 'edit in effect within 1 s')
  t.same(live.current.dataTypesToSync, ['projects', 'role_assignments'])

  fake.setConfigMap('kube-system', 'keystone-sync-policy', { syncConfig: 'data-types-to-sync: [projects, role_assignments\n' })
  t.ok(await waitFor(() => live.lastError !== undefined, 1000), 'broken edit noticed')
  t.equal(live.current.namespaceFormat, 'k-%i', 'last good config still in effect')

  fake.deleteConfigMap('kube-system', 'keystone-sync-policy')
  t.ok(await waitFor(() => live.source === 'deleted', 1000))
  t.same(live.current, defaultSyncConfig())
})
