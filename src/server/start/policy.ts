import type { Logger } from 'pino'
import { PolicyEngine } from '../../authz/engine.js'
import { PolicyFileWatcher } from '../../authz/policy-file.js'
import { loadPolicy } from '../../authz/policy.js'
import type { ServerOptions } from '../../config/server-options.js'
import type { KubeClient } from '../../kube/client.js'
import { configSource, type ConfigSource } from '../../kube/config-source.js'
import type { Metrics } from '../operations/metrics.js'
import type { Readiness } from '../operations/readiness.js'

export interface Policy {
  engine: PolicyEngine
  close: () => void
}

/**
 * The policy engine the SubjectAccessReviews are decided by, fed from --keystone-policy-file
 * (watched) or, without it, from the policy ConfigMap; with neither, every request is denied.
 */
export function startPolicy (opts: ServerOptions, deps: { logger: Logger, metrics: Metrics, readiness: Readiness, kube?: KubeClient }): Policy {
  const { metrics, logger } = deps
  const engine = new PolicyEngine({
    cacheMax: opts['authz-cache-size'],
    subresourceCompat: opts['authorization-subresource-compat'],
    looseNamespaces: opts['authorization-loose-namespaces'] || opts['authorization-strict-namespaces'] === false,
    onReload: result => {
      metrics.configReloads.inc({ config: 'policy', result })
      metrics.configLastReloadOk.set({ config: 'policy' }, result === 'ok' ? 1 : 0)
    }
  })
  if (opts['authorization-loose-namespaces'] || opts['authorization-strict-namespaces'] === false) {
    logger.warn('--authorization-loose-namespaces: v2 keys with a namespace other than "*" also match cluster-scoped and all-namespaces requests; this grants more than the Go binary does (e.g. "!kube-system/*" allows ClusterRoleBindings)')
  }
  let watcher: PolicyFileWatcher | undefined
  let fromConfigMap: ConfigSource<{ text: string, source: string } | null> | undefined
  const file = opts['keystone-policy-file']
  const cmName = opts['policy-configmap-name']
  if (file !== undefined) {
    // Throws ConfigError naming entry and field: a broken file at start-up stops the server.
    // The file takes precedence over the ConfigMap, as in Go, and is itself watched.
    watcher = new PolicyFileWatcher({ path: file, engine, logger })
    if (cmName !== undefined) logger.info({ configmap: cmName }, 'policy: --keystone-policy-file takes precedence; the policy ConfigMap is not watched')
  } else if (cmName !== undefined && deps.kube !== undefined) {
    const namespace = opts['configmap-namespace']
    fromConfigMap = configSource({
      what: 'policy',
      configMap: { client: deps.kube, namespace, name: cmName, key: 'policies' },
      // Validate here, so that LiveConfig refuses a broken edit and keeps the last good policy.
      parse: (text, source) => { loadPolicy(text, source); return { text, source } },
      empty: () => null,
      logger,
      onApply: value => {
        if (value === null) {
          // A deleted ConfigMap (or one without `policies`) means no policy, as in Go.
          engine.clear(`ConfigMap ${namespace}/${cmName} (absent)`)
          metrics.configReloads.inc({ config: 'policy', result: 'ok' })
          metrics.configLastReloadOk.set({ config: 'policy' }, 1)
        } else {
          engine.load(value.text, value.source)
        }
      },
      onReject: err => engine.reportError((err as Error).message, `ConfigMap ${namespace}/${cmName}`)
    })
    void fromConfigMap.start()
    deps.readiness.add('policy-configmap', () => fromConfigMap?.ready === true
      ? { ok: true, detail: fromConfigMap.detail ?? `ConfigMap ${namespace}/${cmName} listed` }
      : { ok: false, detail: fromConfigMap?.detail ?? `ConfigMap ${namespace}/${cmName} not listed yet` })
  } else {
    logger.warn('no --keystone-policy-file or --policy-configmap-name: every SubjectAccessReview is answered allowed=false (use RBAC for authorization)')
  }

  metrics.decisionCacheStats = () => engine.cacheStats
  deps.readiness.add('policy', () => {
    const s = engine.status
    // A broken update keeps the last good policy: still ready, but the detail says why.
    const detail = s.loaded
      ? `${s.entries} entries from ${s.source ?? '?'}${s.lastError !== undefined ? `; last update rejected: ${s.lastError}` : ''}`
      : `no policy (${s.lastError ?? 'every request is denied'})`
    return { ok: true, detail }
  })

  return {
    engine,
    close () {
      watcher?.close()
      fromConfigMap?.close()
    }
  }
}
