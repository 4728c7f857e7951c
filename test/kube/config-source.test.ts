import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { memoryLogger, startFakeKube, waitFor } from '../helpers/fake-kube.js'
import { createKubeClient } from '../../src/kube/client.js'
import { configSource } from '../../src/kube/config-source.js'
import { defaultSyncConfig, parseSyncConfig } from '../../src/config/sync-config.js'
import { ConfigError } from '../../src/errors.js'

t.test('file flag wins over the ConfigMap: the ConfigMap is never read', async t => {
  const fake = await startFakeKube()
  const client = createKubeClient({ kubeconfig: fake.kubeconfigPath })
  t.teardown(async () => { await client.close(); await fake.close() })
  const d = mkdtempSync(join(tmpdir(), 'ksa-src-'))
  t.teardown(() => rmSync(d, { recursive: true, force: true }))
  writeFileSync(join(d, 'sync.yaml'), 'data-types-to-sync: [projects]\nnamespace-format: "f-%i"')
  fake.setConfigMap('kube-system', 'keystone-sync-policy', { syncConfig: 'namespace-format: "cm-%i"' })
  const { logger } = await memoryLogger()
  const src = configSource({ what: 'sync config', file: join(d, 'sync.yaml'), configMap: { client, namespace: 'kube-system', name: 'keystone-sync-policy', key: 'syncConfig' }, parse: parseSyncConfig, empty: defaultSyncConfig, logger })
  await src.start()
  t.equal(src.origin, 'file')
  t.equal(src.ready, true)
  t.equal(src.current.namespaceFormat, 'f-%i')
  t.equal(fake.requests.length, 0)
  writeFileSync(join(d, 'bad.yaml'), 'namespace-format: "%n"')
  t.throws(() => configSource({ what: 'sync config', file: join(d, 'bad.yaml'), parse: parseSyncConfig, empty: defaultSyncConfig, logger }), ConfigError)
  t.throws(() => configSource({ what: 'sync config', file: join(d, 'missing.yaml'), parse: parseSyncConfig, empty: defaultSyncConfig, logger }), /sync config file .*missing.yaml/)
})

t.test('no file, no ConfigMap: the empty value, ready at once', async t => {
  const { logger } = await memoryLogger()
  const src = configSource({ what: 'sync config', parse: parseSyncConfig, empty: defaultSyncConfig, logger })
  t.equal(src.origin, 'none')
  t.same(src.current, defaultSyncConfig())
  t.equal(src.ready, true)
})

t.test('ConfigMap: not ready until listed, detail says why; a refused edit shows in detail while the last good stays', async t => {
  const fake = await startFakeKube()
  const client = createKubeClient({ kubeconfig: fake.kubeconfigPath })
  const { logger } = await memoryLogger()
  fake.setConfigMap('other-ns', 'keystone-sync-policy', { syncConfig: 'data-types-to-sync: [projects]' })
  fake.failNext({ pathPrefix: '/api/v1/namespaces/other-ns/configmaps' }, 403, 2)
  const rejected: unknown[] = []
  const src = configSource({ what: 'sync config', configMap: { client, namespace: 'other-ns', name: 'keystone-sync-policy', key: 'syncConfig' }, parse: parseSyncConfig, empty: defaultSyncConfig, logger, onReject: e => rejected.push(e) })
  t.teardown(async () => { src.close(); await client.close(); await fake.close() })
  const started = src.start()
  t.ok(await waitFor(() => src.detail !== undefined))
  t.equal(src.ready, false)
  t.match(src.detail, /other-ns\/keystone-sync-policy.*403/)
  await started
  t.equal(src.ready, true)
  t.equal(src.detail, undefined)
  t.same(src.current.dataTypesToSync, ['projects'])
  fake.setConfigMap('other-ns', 'keystone-sync-policy', { syncConfig: 'data-types-to-sync: [users]' })
  t.ok(await waitFor(() => src.detail !== undefined))
  t.match(src.detail, /refused edit, last good sync config in effect/)
  t.same(src.current.dataTypesToSync, ['projects'])
  t.equal(rejected.length, 1)
})
