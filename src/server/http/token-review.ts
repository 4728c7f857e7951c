import { z } from 'zod'
import type { UserInfo } from '../../identity.js'
import { answerTexts, invalidReview } from './review-wire.js'

// TokenReview as kube-apiserver sends it (authentication.k8s.io v1 and v1beta1 share a shape).

export const TOKEN_REVIEW_VERSIONS = ['authentication.k8s.io/v1', 'authentication.k8s.io/v1beta1'] as const
export const MAX_TOKEN_BYTES = 16 * 1024

const TokenReviewRequest = z.object({
  apiVersion: z.enum(TOKEN_REVIEW_VERSIONS, { error: `apiVersion must be one of ${TOKEN_REVIEW_VERSIONS.join(', ')}` }),
  kind: z.literal('TokenReview', { error: 'kind must be TokenReview' }),
  spec: z.object({
    token: z.string({ error: 'must be a string' })
      .min(1, 'must not be empty')
      .max(MAX_TOKEN_BYTES, `is longer than ${MAX_TOKEN_BYTES} characters`),
    audiences: z.array(z.string()).max(100).optional()
  }, { error: 'must be an object with a token' })
})

export type TokenReviewVersion = typeof TOKEN_REVIEW_VERSIONS[number]

export type ParsedTokenReview =
  | { ok: true, apiVersion: TokenReviewVersion, token: string }
  | { ok: false, reason: string }

export function parseTokenReview (body: unknown): ParsedTokenReview {
  return parseWellFormedTokenReview(body) ?? parseTokenReviewBySchema(body)
}

const VERSIONS: ReadonlySet<unknown> = new Set(TOKEN_REVIEW_VERSIONS)

/**
 * The hot path, as for SubjectAccessReviews: accepts exactly what the schema accepts, with the
 * same result, and leaves everything else to the schema, which words the 400
 * (test/server/token-review-parse.test.ts holds the two to agreement).
 */
export function parseWellFormedTokenReview (body: unknown): ParsedTokenReview | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined
  const b = body as Record<string, unknown>
  if (!VERSIONS.has(b.apiVersion) || b.kind !== 'TokenReview') return undefined
  const spec = b.spec
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) return undefined
  const { token, audiences } = spec as Record<string, unknown>
  if (typeof token !== 'string' || token.length < 1 || token.length > MAX_TOKEN_BYTES) return undefined
  if (audiences !== undefined) {
    if (!Array.isArray(audiences) || audiences.length > 100) return undefined
    for (const a of audiences) if (typeof a !== 'string') return undefined
  }
  return { ok: true, apiVersion: b.apiVersion as TokenReviewVersion, token }
}

export function parseTokenReviewBySchema (body: unknown): ParsedTokenReview {
  const r = TokenReviewRequest.safeParse(body)
  if (!r.success) return { ok: false, reason: invalidReview('TokenReview', r.error) }
  return { ok: true, apiVersion: r.data.apiVersion, token: r.data.spec.token }
}

/**
 * The answer. Unlike the Go binary it never echoes the request (which holds the token): only
 * apiVersion, kind and status. A rejected token carries no status.error, so that kube-apiserver
 * caches the "no" instead of asking again on every request.
 */
export function tokenReviewResponse (apiVersion: TokenReviewVersion, user: UserInfo | null): object {
  const status = user === null
    ? { authenticated: false }
    : { authenticated: true, user: { username: user.username, uid: user.uid, groups: user.groups, extra: user.extra } }
  return { apiVersion, kind: 'TokenReview', status }
}

// The authenticator hands out one UserInfo object per cached token (until the role mappings
// change), so its answer text is kept beside it (see answerTexts).
const userAnswer = answerTexts<UserInfo, TokenReviewVersion>((apiVersion, user) => JSON.stringify(tokenReviewResponse(apiVersion, user)))
const REJECTED = Object.fromEntries(TOKEN_REVIEW_VERSIONS.map(v => [v, JSON.stringify(tokenReviewResponse(v, null))])) as Record<TokenReviewVersion, string>

/** tokenReviewResponse() as JSON text. */
export function tokenReviewAnswer (apiVersion: TokenReviewVersion, user: UserInfo | null): string {
  return user === null ? REJECTED[apiVersion] : userAnswer(apiVersion, user)
}
