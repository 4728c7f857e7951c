import { readFileSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { Authenticator } from '../../authn/authenticator.js'
import { RevocationPoller } from '../../authn/revocation-poller.js'
import { warnOnSharedUsernames } from '../../authn/domain-check.js'
import { defaultSyncConfig, parseSyncConfig, type SyncConfig } from '../../config/sync-config.js'
import type { ServerOptions } from '../../config/server-options.js'
import { parseListen } from '../../config/server-options.js'
import { ConfigError, errorMessage } from '../../errors.js'
import { KeystoneClient } from '../../keystone/client.js'
import { normalizeKeystoneUrl } from '../../keystone/auth-request.js'
import { proxyFor, shownProxy } from '../../keystone/proxy.js'
import { ServiceToken } from '../../keystone/service-token.js'
import { buildApp } from '../http/app.js'
import { Drain } from '../http/drain.js'
import { buildMetricsApp } from '../http/metrics-app.js'
import { accessReviewer, tokenReviewer } from '../http/reviews.js'
import { Metrics } from '../operations/metrics.js'
import { KeystoneHealth, Readiness } from '../operations/readiness.js'
import { httpsOptions, watchTlsFiles } from './tls.js'
import { useReusePort } from './listen.js'
import type { Server as TlsServer } from 'node:tls'
import { startPolicy } from './policy.js'
import type { UserInfo } from '../../identity.js'
import { createKubeClient, type HttpKubeClient } from '../../kube/client.js'
import { configSource } from '../../kube/config-source.js'
import { Reconciler } from '../../sync/reconcile.js'
import { Syncer } from '../../sync/syncer.js'

export interface RunningServer {
  app: FastifyInstance
  url: string
  /** The review listener's address as bound (the port when --listen asked for 0). */
  address: { host: string, port: number }
  /** With --metrics-listen. */
  metricsUrl?: string
  metrics: Metrics
  authenticator: Authenticator
  keystone: KeystoneClient
  close: () => Promise<void>
}

export interface ServeEnv {
  env: NodeJS.ProcessEnv
  logger: Logger
}

function readSecret (opts: ServerOptions, env: NodeJS.ProcessEnv): string | undefined {
  if (opts['service-credential-secret-file'] !== undefined) {
    try {
      return readFileSync(opts['service-credential-secret-file'], 'utf8').trim()
    } catch (err) {
      throw new ConfigError(`--service-credential-secret-file: ${errorMessage(err)}`)
    }
  }
  return opts['service-credential-secret'] ?? env.KEYSTONE_SERVICE_CREDENTIAL_SECRET
}

/** Builds every part from validated options and starts listening. */
export async function startServer (opts: ServerOptions, { env, logger }: ServeEnv): Promise<RunningServer> {
  const metrics = new Metrics()
  const readiness = new Readiness()
  // Not ready while the URL is no Keystone v3 API (the client, made below, checks that).
  const health = new KeystoneHealth(undefined, () => keystone.apiProblem)
  // HTTPS_PROXY/HTTP_PROXY/NO_PROXY for Keystone, as the Go binary (Go's ProxyFromEnvironment).
  const keystoneProxy = proxyFor(new URL(normalizeKeystoneUrl(opts['keystone-url'])), env)
  if (keystoneProxy !== undefined) logger.info({ proxy: shownProxy(keystoneProxy) }, 'Keystone is reached through a proxy (HTTPS_PROXY/HTTP_PROXY)')
  const keystone = new KeystoneClient({
    url: opts['keystone-url'],
    ...(keystoneProxy !== undefined ? { proxy: keystoneProxy } : {}),
    ...(opts['keystone-ca-file'] !== undefined ? { caFile: opts['keystone-ca-file'] } : {}),
    timeoutMs: opts['keystone-timeout'],
    userAgent: opts['user-agent'],
    accessRulesServiceType: opts['access-rules-service-type'],
    onCall: call => {
      metrics.keystoneRequests.inc({ operation: call.operation, status: String(call.status) })
      metrics.keystoneDuration.observe({ operation: call.operation }, call.durationMs / 1000)
      if (call.status !== 'error' && call.status < 500) health.recordAnswer()
      else health.recordError(`Keystone ${call.operation} ${call.status === 'error' ? 'got no answer' : `answered ${call.status}`}`)
    },
    // A wrong --keystone-url (a path that is no Keystone v3 API) would otherwise look like every
    // token being refused; it is logged when found (at start-up, or later) and when fixed.
    onApiProblem: problem => {
      if (problem !== undefined) logger.error({ keystone: opts['keystone-url'] }, `${problem}: check --keystone-url; until it is right, /readyz is not ready and new tokens get HTTP 500`)
      else logger.info({ keystone: opts['keystone-url'] }, 'Keystone v3 API found')
    }
  })

  let serviceToken: ServiceToken | undefined
  if (opts['service-credential-id'] !== undefined) {
    const secret = readSecret(opts, env)
    if (secret === undefined || secret === '') throw new ConfigError('--service-credential-id is set but its secret is empty')
    serviceToken = new ServiceToken(keystone, { method: 'application_credential', id: opts['service-credential-id'], secret })
  }

  const syncMetrics = {
    onApply: () => {
      metrics.configReloads.inc({ config: 'sync', result: 'ok' })
      metrics.configLastReloadOk.set({ config: 'sync' }, 1)
    },
    onReject: () => {
      metrics.configReloads.inc({ config: 'sync', result: 'error' })
      metrics.configLastReloadOk.set({ config: 'sync' }, 0)
    }
  }
  // The sync config file, when given, is read and parsed once, here: it wins over the ConfigMap
  // (as in Go), and whether it asks for sync decides whether Kubernetes is needed at all.
  const syncFile = opts['sync-config-file']
  const syncCm = opts['sync-configmap-name']
  const syncFromFile = syncFile !== undefined
    ? configSource<SyncConfig>({ what: 'sync config', file: syncFile, parse: parseSyncConfig, empty: defaultSyncConfig, logger, ...syncMetrics })
    : undefined
  if (syncFromFile !== undefined && syncCm !== undefined) {
    logger.info({ file: syncFile, configmap: `${opts['configmap-namespace']}/${syncCm}` }, 'sync config: the file takes precedence; the ConfigMap is not watched')
  }
  // Kubernetes is needed for ConfigMaps, and for sync when the sync config asks for it.
  const needKube = opts['policy-configmap-name'] !== undefined ||
    (syncFromFile !== undefined ? syncFromFile.current.dataTypesToSync.length > 0 : syncCm !== undefined)
  let kube: HttpKubeClient | undefined
  if (needKube) {
    kube = createKubeClient({
      ...(opts.kubeconfig !== undefined ? { kubeconfig: opts.kubeconfig } : {}),
      env,
      onCall: call => { metrics.kubeRequests.inc({ verb: call.verb, resource: call.resource, status: String(call.status) }) }
    })
    logger.info({ server: kube.server, source: kube.source }, 'Kubernetes API client ready')
  }

  const syncSource = syncFromFile ?? configSource<SyncConfig>({
    what: 'sync config',
    ...(syncCm !== undefined && kube !== undefined
      ? { configMap: { client: kube, namespace: opts['configmap-namespace'], name: syncCm, key: 'syncConfig' } }
      : {}),
    parse: parseSyncConfig,
    empty: defaultSyncConfig,
    logger,
    ...syncMetrics
  })
  if (syncSource.origin === 'configmap') {
    void syncSource.start()
    readiness.add('sync-configmap', () => syncSource.ready
      ? { ok: true, detail: syncSource.detail ?? 'sync ConfigMap listed' }
      : { ok: false, detail: syncSource.detail ?? 'sync ConfigMap not listed yet' })
  }

  const syncer = kube === undefined
    ? undefined
    : new Syncer({
      client: kube,
      getConfig: () => syncSource.current,
      logger,
      onResult: outcome => metrics.syncs.inc({ outcome })
    })

  let reconciler: Reconciler | undefined
  if (kube !== undefined && serviceToken !== undefined && opts['sync-reconcile-interval'] > 0) {
    reconciler = new Reconciler({
      client: kube,
      keystone,
      serviceToken,
      getConfig: () => syncSource.current,
      logger,
      intervalMs: opts['sync-reconcile-interval'],
      onRemoved: reason => metrics.reconcileRemovals.inc({ reason }),
      onOrphaned: () => metrics.namespacesOrphaned.inc(),
      onPass: result => metrics.reconcilePasses.inc({ result })
    })
  } else if (kube !== undefined && syncSource.current.dataTypesToSync.includes('role_assignments')) {
    logger.info('sync reconcile needs service mode (--service-credential-id): RoleBindings of roles removed in Keystone stay until the user logs in to that project again')
  }

  const authenticator = new Authenticator({
    keystone,
    ...(serviceToken !== undefined ? { serviceToken } : {}),
    logger,
    getRoleMappings: () => syncSource.current.roleMappings,
    allowedScopes: opts['allowed-token-scopes'],
    usernameFormat: opts['username-format'],
    usernamePrefix: opts['username-prefix'],
    groupsPrefix: opts['groups-prefix'],
    cacheTtlMs: opts['token-cache-ttl'],
    negativeCacheTtlMs: opts['token-cache-negative-ttl'],
    cacheMax: opts['token-cache-size'],
    negativeCacheMax: opts['token-cache-negative-size'],
    groupsCacheTtlMs: opts['groups-cache-ttl'],
    maxInflight: opts['keystone-max-inflight'],
    revalidateAfterMs: opts['token-revalidate-interval'],
    onRevalidate: result => { metrics.revalidations.inc({ result }) },
    accessRules: { serviceType: opts['access-rules-service-type'], enforce: opts['access-rules-enforce'] },
    onCache: event => { metrics.countTokenCache(event) },
    onBusy: () => { metrics.keystoneBusy.inc() }
  })
  metrics.keystoneValidations = () => authenticator.validations

  metrics.tokenCacheEntries = () => authenticator.cacheSize

  let revocations: RevocationPoller | undefined
  if (opts['revocation-poll-interval'] > 0 && serviceToken !== undefined) {
    revocations = new RevocationPoller({
      keystone,
      serviceToken,
      apply: events => authenticator.applyRevocations(events),
      intervalMs: opts['revocation-poll-interval'],
      lookBackMs: opts['token-cache-ttl'] + 60_000,
      logger,
      onPoll: result => metrics.revocationPolls.inc({ result }),
      onApplied: (events, evicted) => {
        metrics.revocationEvents.inc(events.length)
        metrics.revocationEvicted.inc(evicted)
        const now = Date.now()
        for (const e of events) metrics.revocationLag.observe(Math.max(0, now - e.revokedAtMs) / 1000)
      }
    })
    readiness.add('revocation', revocations.check)
  } else if (opts['revocation-poll-interval'] > 0) {
    logger.info('revocation events are read only in service mode (--service-credential-id): a revoked token may be answered from the cache for up to --token-cache-ttl')
  }
  const policy = startPolicy(opts, { logger, metrics, readiness, ...(kube !== undefined ? { kube } : {}) })
  readiness.add('keystone', health.check)

  const tlsFiles = {
    certFile: opts['tls-cert-file'],
    keyFile: opts['tls-private-key-file'],
    ...(opts['client-ca-file'] !== undefined ? { clientCaFile: opts['client-ca-file'] } : {})
  }
  const drain = new Drain()
  const app = buildApp({
    logger,
    drain,
    tokenReviewer: tokenReviewer({
      authenticator,
      // Sync finishes before the review is answered, so the user's first request finds its
      // namespace and RoleBindings; Syncer never throws and bounds its own time.
      ...(syncer !== undefined
        ? { afterAuthenticate: async (user: UserInfo) => { if (syncSource.current.dataTypesToSync.length > 0) await syncer.sync(user) } }
        : {})
    }),
    accessReviewer: accessReviewer(policy.engine),
    metrics,
    readiness,
    https: httpsOptions(tlsFiles),
    requireClientCert: opts['client-ca-file'] !== undefined,
    bodyLimit: opts['max-request-bytes'],
    maxConnections: opts['max-connections']
  })
  let lastDropLog = 0
  app.server.on('drop', () => {
    metrics.connectionsRefused.inc()
    // At most one line a minute: a flood must not become a flood of log lines too.
    if (Date.now() - lastDropLog >= 60_000) {
      lastDropLog = Date.now()
      logger.warn({ maxConnections: opts['max-connections'] }, 'connection refused: --max-connections connections are open (see k8s_keystone_auth_connections_refused_total)')
    }
  })
  const stopTlsWatch = watchTlsFiles(app.server as unknown as TlsServer, tlsFiles, logger)

  // --metrics-listen: /metrics and /healthz for Prometheus, with the serving certificate and no
  // client certificate (so its TLS material leaves the client CA out).
  const metricsFiles = { certFile: tlsFiles.certFile, keyFile: tlsFiles.keyFile }
  const metricsApp = opts['metrics-listen'] !== undefined
    ? buildMetricsApp({ logger, metrics, https: httpsOptions(metricsFiles) })
    : undefined
  const stopMetricsTlsWatch = metricsApp !== undefined ? watchTlsFiles(metricsApp.server as unknown as TlsServer, metricsFiles, logger) : () => {}

  /** Listens with SO_REUSEPORT where useReusePort allows, and says where. */
  const listen = async (server: FastifyInstance, address: string): Promise<{ host: string, port: number, url: string, reusePort: boolean }> => {
    const { host, port } = parseListen(address) as { host: string, port: number }
    const reusePort = useReusePort(opts['listen-reuse-port'], port)
    await server.listen({ host, port, ...(reusePort ? { reusePort: true } : {}) })
    const addr = server.server.address()
    const boundPort = typeof addr === 'object' && addr !== null ? addr.port : port
    const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host
    return { host, port: boundPort, url: `https://${shownHost}:${boundPort}`, reusePort }
  }
  const main = await listen(app, opts.listen)
  const { host, url } = main
  const boundPort = main.port
  let metricsUrl: string | undefined
  if (metricsApp !== undefined) {
    try {
      const m = await listen(metricsApp, opts['metrics-listen'] as string)
      metricsUrl = m.url
      logger.info({ metricsListen: `${m.host}:${m.port}`, reusePort: m.reusePort }, 'metrics listener: /metrics and /healthz only')
    } catch (err) {
      stopTlsWatch()
      stopMetricsTlsWatch()
      await app.close()
      throw new ConfigError(`--metrics-listen ${opts['metrics-listen'] as string}: ${errorMessage(err)}`)
    }
  }
  health.start(async () => { await keystone.probe() })
  revocations?.start()
  reconciler?.start()
  // Not awaited: a slow Keystone must not hold the start; it only ever logs.
  void warnOnSharedUsernames({ keystone, serviceToken, usernameFormat: opts['username-format'], logger })
  logger.info({ listen: `${host}:${boundPort}`, reusePort: main.reusePort, keystone: keystone.baseUrl, serviceMode: serviceToken !== undefined }, 'k8s-keystone-auth listening')

  let closing: Promise<void> | undefined
  const close = async (): Promise<void> => {
    closing ??= (async () => {
      readiness.markShuttingDown()
      health.stop()
      revocations?.stop()
      reconciler?.stop()
      // Scrapes are not reviews: the metrics listener just closes.
      const metricsClosed = metricsApp?.close()
      const graceMs = opts['shutdown-grace']
      logger.info({ graceMs }, 'draining: no new connections; open ones are answered with Connection: close')
      const drained = await drain.run(graceMs)
      if (drained.cut > 0) logger.warn({ connections: drained.cut, graceMs }, 'shutdown grace period over; closing the connections still open')
      else logger.info({ ms: drained.ms }, 'drained: every connection closed')
      stopTlsWatch()
      stopMetricsTlsWatch()
      policy.close()
      syncSource.close()
      await app.close()
      await metricsClosed
      await keystone.close()
      await kube?.close()
    })()
    await closing
  }
  return { app, url, address: { host, port: boundPort }, ...(metricsUrl !== undefined ? { metricsUrl } : {}), metrics, authenticator, keystone, close }
}
