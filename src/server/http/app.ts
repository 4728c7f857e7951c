import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { TLSSocket } from 'node:tls'
import type { Logger } from 'pino'
import type { Metrics } from '../operations/metrics.js'
import type { Readiness } from '../operations/readiness.js'
import { parseJsonBody, shown, statusBody } from './body.js'
import type { ReviewKind, Reviewer } from './reviews.js'
import type { Drain } from './drain.js'

// The HTTP edge: routes, body reading, limits and the answers of both reviews. It knows the wire
// formats (through the reviewers) and nothing of Keystone or the policy: those come in as deps.

export interface AppDeps {
  logger: Logger
  tokenReviewer: Reviewer
  accessReviewer: Reviewer
  metrics: Metrics
  readiness: Readiness
  https?: Record<string, unknown> | null
  /** With a client CA: reject review requests without a verified client certificate. */
  requireClientCert?: boolean
  bodyLimit?: number
  /** Open connections at most (TCP, TLS handshake or not); beyond, new ones are closed at once. 0: no bound. */
  maxConnections?: number
  /** The graceful stop of this app's server: while it drains, every answer says `Connection: close`. */
  drain?: Drain
}

/**
 * How long a connection may take at each stage before the server closes it, so that clients
 * which open connections and then dawdle (slowloris) cannot hold the --max-connections slots:
 * the TLS handshake (Node's default is 120 s), the request headers and the whole request (not
 * the answer, which waits on Keystone: Node counts only until the body is in), and an idle
 * keep-alive connection between requests (65 s, as before: kube-apiserver keeps its connections
 * for reuse). The server looks for expired headers and requests every `checkIntervalMs` (Node's
 * default is 30 s, which would let a stalled client stay up to 40 s).
 */
export const SERVER_TIMEOUTS = {
  handshakeMs: 10_000,
  headersMs: 10_000,
  requestMs: 30_000,
  keepAliveMs: 65_000,
  checkIntervalMs: 2_000
} as const

/** What Fastify sends for serialised objects; answers sent as ready JSON text say it themselves. */
const JSON_TYPE = 'application/json; charset=utf-8'

const EXEMPT_FROM_CLIENT_CERT = new Set(['/healthz', '/readyz', '/livez', '/metrics'])

interface ReviewLog {
  kind: ReviewKind | 'unknown'
  version?: string
  outcome: string
  user?: string
}

declare module 'fastify' {
  interface FastifyRequest {
    review?: ReviewLog
  }
}

export function buildApp (deps: AppDeps): FastifyInstance {
  const { metrics, logger } = deps
  const opts: Record<string, unknown> = {
    loggerInstance: logger,
    // Our own one line per review (onResponse below) replaces Fastify's two per request.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.bodyLimit ?? 256 * 1024,
    // requestTimeout bounds slow requests through the server's periodic check; a per-socket
    // connectionTimeout would re-arm a timer on every read and write of every socket.
    requestTimeout: SERVER_TIMEOUTS.requestMs,
    keepAliveTimeout: SERVER_TIMEOUTS.keepAliveMs,
    forceCloseConnections: 'idle',
    // Requests still arriving on open connections while the server stops are answered, not
    // refused: the drain (drain.ts) is what tells clients to move on (Connection: close).
    return503OnClosing: false,
    genReqId: (() => { let n = 0; return () => (++n).toString(36) })(),
    // No per-request child logger: pino's child() re-applies the redaction setup each time
    // (about 5% of a cached review's CPU); our log lines carry reqId explicitly.
    childLoggerFactory: (parent: Logger) => parent
  }
  if (deps.https !== undefined && deps.https !== null) {
    // Given to https.createServer: the handshake timeout can only be set there.
    opts.https = {
      ...deps.https,
      handshakeTimeout: SERVER_TIMEOUTS.handshakeMs,
      headersTimeout: SERVER_TIMEOUTS.headersMs,
      connectionsCheckingInterval: SERVER_TIMEOUTS.checkIntervalMs
    }
  }
  const app = Fastify(opts) as unknown as FastifyInstance
  app.server.headersTimeout = SERVER_TIMEOUTS.headersMs
  // Counted by Node at accept, before TLS; a connection over the bound is closed unread ('drop').
  if (deps.maxConnections !== undefined && deps.maxConnections > 0) app.server.maxConnections = deps.maxConnections
  if (deps.drain !== undefined) {
    const drain = deps.drain
    drain.track(app.server)
    // Also for answers to requests that arrived before the drain began.
    app.addHook('onSend', (_req, reply, payload, done) => {
      if (drain.draining) void reply.header('connection', 'close')
      done(null, payload)
    })
  }
  // A review body is read as JSON whatever its Content-Type says, as the Go binary reads it (it never
  // looks at the header): Go's documentation tests the service with `curl -d '<json>'`, which sends
  // application/x-www-form-urlencoded. '*' also takes a body sent without Content-Type. A body that
  // is not JSON is a 400 with the reason; bodyLimit still applies.
  app.removeContentTypeParser(['text/plain', 'application/json'])
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, text, done) => {
    try {
      done(null, parseJsonBody(text as string))
    } catch (err) {
      done(Object.assign(err as Error, { statusCode: 400 }), undefined)
    }
  })

  if (deps.requireClientCert === true) {
    app.addHook('onRequest', async (req, reply) => {
      if (EXEMPT_FROM_CLIENT_CERT.has(req.url.split('?')[0] as string)) return
      const socket = req.raw.socket as TLSSocket
      if (socket.authorized !== true) {
        const why = socket.authorizationError !== undefined && socket.authorizationError !== null ? String(socket.authorizationError) : 'no client certificate'
        return await reply.code(401).send(statusBody(401, 'Unauthorized', `a client certificate signed by --client-ca-file is required (${why})`))
      }
    })
  }

  const logsInfo = logger.isLevelEnabled('info')
  app.addHook('onResponse', (req, reply, done) => {
    const r = req.review
    if (r !== undefined && (logsInfo || reply.statusCode >= 500)) {
      const ms = Math.round(reply.elapsedTime * 100) / 100
      const fields = { reqId: req.id, route: req.url.split('?')[0], kind: r.kind, version: r.version, outcome: r.outcome, user: r.user, statusCode: reply.statusCode, ms }
      if (reply.statusCode >= 500) logger.warn(fields, 'review failed')
      else logger.info(fields, 'review answered')
    }
    done()
  })

  app.setErrorHandler(async (err: Error & { statusCode?: number, code?: string }, req, reply) => {
    const code = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
    if (code >= 500) logger.error({ reqId: req.id, err: { message: err.message, code: err.code } }, 'request failed')
    req.review ??= { kind: 'unknown', outcome: `http_${code}` }
    const reason = code === 413 ? 'RequestEntityTooLarge' : code === 415 ? 'UnsupportedMediaType' : code >= 500 ? 'InternalError' : 'BadRequest'
    const message = code === 413
      ? `request body larger than ${deps.bodyLimit ?? 256 * 1024} bytes`
      : code >= 500 ? 'internal error' : err.message
    return await reply.code(code).send(statusBody(code, reason, message))
  })

  app.setNotFoundHandler(async (req, reply) => {
    const path = req.url.split('?')[0] as string
    return await reply.code(404).send(statusBody(404, 'NotFound', `no route for ${req.method} ${path.length <= 64 ? path : `(a path of ${path.length} characters)`}; reviews go to POST /webhook, /authenticate or /authorize`))
  })

  const badRequest = async (req: FastifyRequest, reply: FastifyReply, kind: ReviewLog['kind'], message: string): Promise<FastifyReply> => {
    req.review = { kind, outcome: 'bad_request' }
    metrics.countReview(kind, 'unknown', 'bad_request')
    return await reply.code(400).send(statusBody(400, 'BadRequest', message))
  }

  // One road for both reviews: the reviewer's outcome becomes the answer, the log line and the metrics.
  const review = async (reviewer: Reviewer, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const started = performance.now()
    metrics.inflightReviews++
    try {
      const o = await reviewer.review(req.body)
      if (o.status === 400) return await badRequest(req, reply, reviewer.kind, o.reason)
      req.review = { kind: reviewer.kind, version: o.version, outcome: o.outcome }
      metrics.countReview(reviewer.kind, o.version, o.outcome)
      if (o.status === 500) {
        logger.warn({ reqId: req.id, kind: reviewer.kind, reason: o.why }, 'cannot answer the review: Keystone unavailable')
        return await reply.code(500).send(o.answer)
      }
      if (o.user !== undefined) req.review.user = o.user
      if (o.why !== undefined) logger.debug({ reqId: req.id, kind: reviewer.kind, reason: o.why }, `review ${o.outcome}`)
      return await reply.type(JSON_TYPE).send(o.answer)
    } finally {
      metrics.inflightReviews--
      metrics.observeReview(reviewer.kind, (performance.now() - started) / 1000)
    }
  }

  const kindOf = (body: unknown): unknown => typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as { kind?: unknown }).kind : undefined

  // A Content-Type that is not a media type at all (`json`, `a b`) would be a 415 before any parser
  // runs. The review routes drop every Content-Type but application/json (the '*' parser reads the
  // body either way), so such a body is read as JSON too; kube-apiserver's application/json costs
  // one prefix test.
  const anyContentType = {
    onRequest: (req: FastifyRequest, _reply: FastifyReply, done: () => void): void => {
      const ct = req.headers['content-type']
      if (ct !== undefined && !ct.startsWith('application/json')) delete req.headers['content-type']
      done()
    }
  }

  app.post('/webhook', anyContentType, async (req, reply) => {
    const kind = kindOf(req.body)
    if (kind === 'TokenReview') return await review(deps.tokenReviewer, req, reply)
    if (kind === 'SubjectAccessReview') return await review(deps.accessReviewer, req, reply)
    return await badRequest(req, reply, 'unknown', `kind must be TokenReview or SubjectAccessReview, got ${shown(kind)}`)
  })
  app.post('/authenticate', anyContentType, async (req, reply) => {
    if (kindOf(req.body) !== 'TokenReview') return await badRequest(req, reply, 'TokenReview', '/authenticate takes only kind TokenReview')
    return await review(deps.tokenReviewer, req, reply)
  })
  app.post('/authorize', anyContentType, async (req, reply) => {
    if (kindOf(req.body) !== 'SubjectAccessReview') return await badRequest(req, reply, 'SubjectAccessReview', '/authorize takes only kind SubjectAccessReview')
    return await review(deps.accessReviewer, req, reply)
  })

  app.get('/healthz', async (_req, reply) => await reply.type('text/plain').send('ok'))
  app.get('/livez', async (_req, reply) => await reply.type('text/plain').send('ok'))
  // /readyz answers anyone (kubelet probes have no client certificate and read only the status
  // code), but its details name Keystone's URL and errors, the policy's source and the reason an
  // update was refused: they are shown only to a client with a certificate signed by
  // --client-ca-file, or to anyone when the log level is debug or trace. Others get the ready
  // bit and each check's name and ok.
  const debugDetails = logger.isLevelEnabled('debug')
  app.get('/readyz', async (req, reply) => {
    const r = deps.readiness.report()
    const trusted = debugDetails || (deps.requireClientCert === true && (req.raw.socket as TLSSocket).authorized === true)
    if (trusted) return await reply.code(r.ready ? 200 : 503).send(r)
    const checks: Record<string, { ok: boolean }> = {}
    for (const [name, c] of Object.entries(r.checks)) checks[name] = { ok: c.ok }
    return await reply.code(r.ready ? 200 : 503).send({ ready: r.ready, checks })
  })
  app.get('/metrics', async (_req, reply) => {
    return await reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
  })

  return app
}
