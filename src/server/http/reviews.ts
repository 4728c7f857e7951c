import type { Authenticator } from '../../authn/authenticator.js'
import type { UserInfo } from '../../identity.js'
import type { AccessRequest, Decision } from '../../authz/types.js'
import { KeystoneUnavailableError, errorMessage } from '../../errors.js'
import { parseSubjectAccessReview, subjectAccessReviewAnswer } from './subject-access-review.js'
import { parseTokenReview, tokenReviewAnswer } from './token-review.js'

// Both reviews take the same road: wire body in, parsed into a small record (the schema), handed to
// the domain (the authenticator, the policy engine), its result turned into the answer. Each
// reviewer hands the routes one ReviewOutcome, so that answering, the log line and the metrics are
// written once for both.

export type ReviewKind = 'TokenReview' | 'SubjectAccessReview'

export type ReviewOutcome =
  /** `answer` is the review's answer as JSON text (kept per cached identity or decision). */
  | { status: 200, version: string, outcome: 'authenticated' | 'unauthenticated' | 'allowed' | 'denied', answer: string, user?: string, why?: string }
  /** The body is no review of this kind; `reason` words the 400. */
  | { status: 400, reason: string }
  /** The domain could not decide (Keystone unreachable): the answer is a TokenReview with status.error. */
  | { status: 500, version: string, outcome: 'error', answer: object, why: string }

export interface Reviewer {
  kind: ReviewKind
  review: (body: unknown) => ReviewOutcome | Promise<ReviewOutcome>
}

export interface TokenReviewerDeps {
  authenticator: Pick<Authenticator, 'authenticate'>
  /** Called after a successful authentication and before the answer (sync of namespaces etc.). */
  afterAuthenticate?: (user: UserInfo) => Promise<void>
}

export function tokenReviewer (deps: TokenReviewerDeps): Reviewer {
  const { authenticator, afterAuthenticate } = deps
  return {
    kind: 'TokenReview',
    async review (body) {
      const parsed = parseTokenReview(body)
      if (!parsed.ok) return { status: 400, reason: parsed.reason }
      const version = parsed.apiVersion.split('/')[1] as string
      try {
        const result = await authenticator.authenticate(parsed.token)
        if (!result.authenticated) {
          return { status: 200, version, outcome: 'unauthenticated', answer: tokenReviewAnswer(parsed.apiVersion, null), why: `${result.reason}${result.cached ? ' (cached)' : ''}` }
        }
        if (afterAuthenticate !== undefined) await afterAuthenticate(result.user)
        return { status: 200, version, outcome: 'authenticated', answer: tokenReviewAnswer(parsed.apiVersion, result.user), user: result.user.username }
      } catch (err) {
        // Keystone could not answer: a 500 makes kube-apiserver retry and cache nothing, where an
        // "authenticated: false" would lock the user out for the apiserver's cache TTL.
        const why = err instanceof KeystoneUnavailableError ? err.message : `internal error: ${errorMessage(err)}`
        return { status: 500, version, outcome: 'error', answer: { apiVersion: parsed.apiVersion, kind: 'TokenReview', status: { authenticated: false, error: why } }, why }
      }
    }
  }
}

export function accessReviewer (engine: { authorize: (request: AccessRequest) => Decision }): Reviewer {
  return {
    kind: 'SubjectAccessReview',
    review (body) {
      const parsed = parseSubjectAccessReview(body)
      if (!parsed.ok) return { status: 400, reason: parsed.reason }
      const decision = engine.authorize(parsed.request)
      const version = parsed.apiVersion.split('/')[1] as string
      return { status: 200, version, outcome: decision.allowed ? 'allowed' : 'denied', answer: subjectAccessReviewAnswer(parsed.apiVersion, decision) }
    }
  }
}
