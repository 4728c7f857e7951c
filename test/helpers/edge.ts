// The HTTP edge alone, for app.inject(): no TLS, no socket, no Keystone. The reviewers are the real
// ones; the authenticator and the policy engine are stand-ins whose calls are recorded.
import type { FastifyInstance } from 'fastify'
import type { AuthResult } from '../../src/authn/authenticator.js'
import type { AccessRequest, Decision } from '../../src/authz/types.js'
import type { UserInfo } from '../../src/identity.js'
import { createLogger } from '../../src/log.js'
import { buildApp, type AppDeps } from '../../src/server/http/app.js'
import { accessReviewer, tokenReviewer } from '../../src/server/http/reviews.js'
import { Metrics } from '../../src/server/operations/metrics.js'
import { Readiness } from '../../src/server/operations/readiness.js'

export interface Edge {
  app: FastifyInstance
  metrics: Metrics
  readiness: Readiness
  /** Tokens the authenticator was asked about. */
  tokens: string[]
  /** Requests the policy engine was asked about. */
  requests: AccessRequest[]
  /** Every log line, parsed. */
  logs: Array<Record<string, unknown>>
  /** The text of a metric's series with these labels, or 0. */
  metric: (name: string, labels?: Record<string, string>) => Promise<number>
}

export interface EdgeOptions {
  authenticate?: (token: string) => Promise<AuthResult>
  authorize?: (request: AccessRequest) => Decision
  afterAuthenticate?: (user: UserInfo) => Promise<void>
  logLevel?: 'info' | 'debug' | 'trace'
  app?: Partial<Pick<AppDeps, 'bodyLimit' | 'requireClientCert' | 'maxConnections'>>
}

export async function edge (opts: EdgeOptions = {}): Promise<Edge> {
  const tokens: string[] = []
  const requests: AccessRequest[] = []
  const logs: Array<Record<string, unknown>> = []
  const logger = createLogger({ level: opts.logLevel ?? 'info', destination: { write: (s: string) => { logs.push(JSON.parse(s) as Record<string, unknown>) } } })
  const metrics = new Metrics({ defaultMetrics: false })
  const readiness = new Readiness()
  const authenticate = opts.authenticate ?? (async () => ({ authenticated: false as const, reason: 'no such token', cached: false }))
  const authorize = opts.authorize ?? (() => ({ allowed: false, reason: 'no policy' }))
  const app = buildApp({
    logger,
    metrics,
    readiness,
    tokenReviewer: tokenReviewer({
      authenticator: { authenticate: async (token: string) => { tokens.push(token); return await authenticate(token) } },
      ...(opts.afterAuthenticate !== undefined ? { afterAuthenticate: opts.afterAuthenticate } : {})
    }),
    accessReviewer: accessReviewer({ authorize: (r: AccessRequest) => { requests.push(r); return authorize(r) } }),
    ...opts.app
  })
  await app.ready()
  const metric = async (name: string, labels: Record<string, string> = {}): Promise<number> => {
    const m = (await metrics.registry.getMetricsAsJSON()).find(x => x.name === name)
    const v = (m?.values as Array<{ labels: Record<string, unknown>, value: number }> | undefined)
      ?.filter(s => Object.entries(labels).every(([k, want]) => String(s.labels[k]) === want))
      .reduce((n, s) => n + s.value, 0)
    return v ?? 0
  }
  return { app, metrics, readiness, tokens, requests, logs, metric }
}

export const USER: UserInfo = {
  username: 'alice',
  uid: 'u-1',
  groups: ['g-1', 'demo'],
  extra: { 'alpha.kubernetes.io/identity/project/name': ['demo'], 'alpha.kubernetes.io/identity/roles': ['member'] }
}

export const tokenReviewBody = (token: string, apiVersion = 'authentication.k8s.io/v1'): object =>
  ({ apiVersion, kind: 'TokenReview', spec: { token } })

export const accessReviewBody = (apiVersion = 'authorization.k8s.io/v1'): object => ({
  apiVersion,
  kind: 'SubjectAccessReview',
  spec: {
    user: 'alice',
    groups: ['g-1'],
    extra: { 'alpha.kubernetes.io/identity/project/name': ['demo'] },
    resourceAttributes: { namespace: 'demo', verb: 'get', resource: 'pods', version: 'v1' }
  }
})
