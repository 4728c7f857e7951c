import Fastify, { LogController, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Metrics } from '../operations/metrics.js'
import { statusBody } from './body.js'
import { SERVER_TIMEOUTS } from './app.js'

// --metrics-listen: a second HTTPS listener for Prometheus, reachable from the network while
// reviews stay on 127.0.0.1. It serves /metrics (counts, no user data: the same text as /metrics of
// the review listener) and /healthz, with the serving certificate, and nothing else: no review
// route, no /readyz (its details name Keystone's URL and errors), no client certificate asked.

/** Prometheus needs one or two; the bound keeps a flood from the network small. */
export const METRICS_MAX_CONNECTIONS = 64

export interface MetricsAppDeps {
  logger: Logger
  metrics: Metrics
  https: Record<string, unknown>
}

export function buildMetricsApp (deps: MetricsAppDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024,
    requestTimeout: SERVER_TIMEOUTS.requestMs,
    keepAliveTimeout: SERVER_TIMEOUTS.keepAliveMs,
    forceCloseConnections: 'idle',
    https: {
      ...deps.https,
      handshakeTimeout: SERVER_TIMEOUTS.handshakeMs,
      headersTimeout: SERVER_TIMEOUTS.headersMs,
      connectionsCheckingInterval: SERVER_TIMEOUTS.checkIntervalMs
    }
  } as Record<string, unknown>) as unknown as FastifyInstance
  app.server.headersTimeout = SERVER_TIMEOUTS.headersMs
  app.server.maxConnections = METRICS_MAX_CONNECTIONS
  app.get('/metrics', async (_req, reply) => {
    return await reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics())
  })
  app.get('/healthz', async (_req, reply) => await reply.type('text/plain').send('ok'))
  app.setNotFoundHandler(async (req, reply) => {
    return await reply.code(404).send(statusBody(404, 'NotFound', `the metrics listener serves only GET /metrics and /healthz (not ${req.method} ${req.url.split('?')[0]?.slice(0, 64) ?? ''}); reviews go to --listen`))
  })
  return app
}
