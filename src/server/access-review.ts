import type { Logger } from 'pino'
import type { ServerOptions } from '../config/server-options.js'
import type { AccessReviewResult } from './app.js'
import type { Metrics } from './metrics.js'
import type { Readiness } from './readiness.js'

export interface AccessReviewer {
  review: (body: unknown) => AccessReviewResult
  close: () => void
}

const SAR_VERSIONS = new Set(['authorization.k8s.io/v1', 'authorization.k8s.io/v1beta1'])

// Until the policy engine is wired in: every well-formed review is answered 200, allowed: false.
export async function createAccessReviewer (_opts: ServerOptions, _deps: { logger: Logger, metrics: Metrics, readiness: Readiness }): Promise<AccessReviewer> {
  return {
    review (body: unknown): AccessReviewResult {
      const b = body as { apiVersion?: unknown, spec?: unknown }
      if (typeof b.apiVersion !== 'string' || !SAR_VERSIONS.has(b.apiVersion)) return { ok: false, reason: 'invalid SubjectAccessReview: apiVersion must be authorization.k8s.io/v1 or v1beta1' }
      if (typeof b.spec !== 'object' || b.spec === null) return { ok: false, reason: 'invalid SubjectAccessReview: spec must be an object' }
      const reason = 'no policy configured'
      return { ok: true, apiVersion: b.apiVersion, allowed: false, reason, response: { apiVersion: b.apiVersion, kind: 'SubjectAccessReview', status: { allowed: false, reason } } }
    },
    close () {}
  }
}
