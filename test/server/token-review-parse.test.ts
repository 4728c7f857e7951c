// The hand-written TokenReview parser (hot path) against the zod schema (the specification), and
// the answer text against the answer object.
import fc from 'fast-check'
import { deepStrictEqual } from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import t from 'tap'
import {
  MAX_TOKEN_BYTES, parseTokenReview, parseTokenReviewBySchema, parseWellFormedTokenReview, tokenReviewAnswer, tokenReviewResponse
} from '../../src/server/http/token-review.js'

const fixture = (name: string): unknown => (JSON.parse(readFileSync(new URL(`../fixtures/kube-apiserver-1.32/${name}`, import.meta.url), 'utf8')) as { body: unknown }).body

t.test('the captured kube-apiserver TokenReviews take the fast path, with the schema\'s result', async t => {
  for (const file of ['tokenreview-v1.json', 'tokenreview-v1beta1.json']) {
    const body = fixture(file)
    const fast = parseWellFormedTokenReview(body)
    t.not(fast, undefined, file)
    t.same(fast, parseTokenReviewBySchema(body), file)
  }
})

t.test('refused bodies keep the schema\'s reason', async t => {
  const base = { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: 't' } }
  for (const body of [null, 'x', [], { ...base, kind: 'SubjectAccessReview' }, { ...base, spec: { token: '' } }, { ...base, spec: { token: 'k'.repeat(MAX_TOKEN_BYTES + 1) } }, { ...base, spec: { token: 't', audiences: [1] } }, { ...base, spec: [] }]) {
    t.equal(parseWellFormedTokenReview(body), undefined)
    t.same(parseTokenReview(body), parseTokenReviewBySchema(body))
  }
})

t.test('property: the fast path never disagrees with the schema', async t => {
  const scalar = fc.oneof(fc.constant(null), fc.integer(), fc.boolean(), fc.constant([]), fc.constant({}), fc.string({ maxLength: 3 }))
  const token = fc.oneof(
    { weight: 10, arbitrary: fc.string({ minLength: 0, maxLength: 12 }) },
    { weight: 1, arbitrary: fc.constantFrom(MAX_TOKEN_BYTES - 1, MAX_TOKEN_BYTES, MAX_TOKEN_BYTES + 1).map(n => 'k'.repeat(n)) },
    { weight: 1, arbitrary: scalar }
  )
  const audiences = fc.oneof(
    { weight: 5, arbitrary: fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 }) },
    { weight: 1, arbitrary: fc.constantFrom(100, 101).map(n => Array.from({ length: n }, () => 'a')) },
    { weight: 1, arbitrary: fc.array(scalar, { maxLength: 2 }) },
    { weight: 1, arbitrary: scalar }
  )
  const body = fc.record({
    apiVersion: fc.oneof({ weight: 8, arbitrary: fc.constantFrom('authentication.k8s.io/v1', 'authentication.k8s.io/v1beta1') }, { weight: 1, arbitrary: scalar }),
    kind: fc.oneof({ weight: 8, arbitrary: fc.constant('TokenReview') }, { weight: 1, arbitrary: scalar }),
    spec: fc.oneof({ weight: 8, arbitrary: fc.record({ token, audiences }, { requiredKeys: ['token'] }) }, { weight: 1, arbitrary: scalar })
  }, { requiredKeys: [] })
  let fastTaken = 0
  fc.assert(fc.property(body, b => {
    const wire = JSON.parse(JSON.stringify(b)) as unknown
    const fast = parseWellFormedTokenReview(wire)
    if (fast === undefined) return
    fastTaken++
    deepStrictEqual(fast, parseTokenReviewBySchema(wire))
  }), { numRuns: 3000 })
  t.ok(fastTaken > 300 && fastTaken < 3000, `fast path taken for ${fastTaken} of 3000 bodies, the rest left to the schema`)
})

t.test('the answer text is the answer object as JSON, per version, for a user and for a rejection', async t => {
  const user = { username: 'demo', uid: 'u1', groups: ['g'], extra: { 'alpha.kubernetes.io/identity/roles': ['member'] } }
  for (const v of ['authentication.k8s.io/v1beta1', 'authentication.k8s.io/v1', 'authentication.k8s.io/v1beta1'] as const) {
    t.equal(tokenReviewAnswer(v, user), JSON.stringify(tokenReviewResponse(v, user)), `${v} user`)
    t.equal(tokenReviewAnswer(v, null), JSON.stringify(tokenReviewResponse(v, null)), `${v} rejected`)
  }
})
