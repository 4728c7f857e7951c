// The hand-written parser of well-formed SubjectAccessReviews (the hot path) against the zod
// schema (the specification): whatever the fast path accepts, the schema accepts with the same
// record; whatever it is unsure of, it leaves to the schema. And it does take the real bodies.
import fc from 'fast-check'
import { deepStrictEqual } from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import {
  parseSubjectAccessReview, parseSubjectAccessReviewBySchema, parseWellFormedSubjectAccessReview, SAR_LIMITS
} from '../../src/server/http/subject-access-review.js'

const fixturesDir = join(import.meta.dirname, '../fixtures/kube-apiserver-1.32')
const MAX = SAR_LIMITS.maxString

t.test('the captured kube-apiserver bodies take the fast path, with the schema\'s result', async t => {
  const files = readdirSync(fixturesDir).filter(f => f.startsWith('sar-'))
  t.ok(files.length >= 10, 'fixtures present')
  for (const file of files) {
    const body = (JSON.parse(readFileSync(join(fixturesDir, file), 'utf8')) as { body: unknown }).body
    const fast = parseWellFormedSubjectAccessReview(body)
    t.not(fast, undefined, `${file}: fast path`)
    t.same(fast, parseSubjectAccessReviewBySchema(body), `${file}: same record as the schema`)
  }
})

t.test('bodies the schema refuses are left to it, so the reasons stay the schema\'s', async t => {
  const base = { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: { user: 'a', resourceAttributes: { verb: 'get', resource: 'pods' } } }
  const refused: unknown[] = [
    null, [], 'x', { ...base, kind: 'TokenReview' }, { ...base, apiVersion: 'v1' }, { ...base, spec: [] },
    { ...base, spec: { ...base.spec, user: 1 } },
    { ...base, spec: { ...base.spec, user: 'u'.repeat(MAX + 1) } },
    { ...base, spec: { ...base.spec, groups: 'g' } },
    { ...base, spec: { ...base.spec, group: [null] } },
    { ...base, spec: { ...base.spec, groups: Array.from({ length: SAR_LIMITS.maxGroups + 1 }, () => 'g') } },
    { ...base, spec: { ...base.spec, extra: { k: 'v' } } },
    { ...base, spec: { ...base.spec, nonResourceAttributes: { path: 5 } } },
    { ...base, spec: { user: 'a' } },
    { ...base, spec: { user: 'a', resourceAttributes: { verb: ['get'] } } }
  ]
  for (const body of refused) {
    t.equal(parseWellFormedSubjectAccessReview(body), undefined, JSON.stringify(body).slice(0, 80))
    const r = parseSubjectAccessReview(body)
    t.equal(r.ok, false)
    t.same(r, parseSubjectAccessReviewBySchema(body), 'same reason as the schema')
  }
})

// Values that sit on every boundary the schema draws: types, null, lengths around the limit.
// Each body has about fifteen fields, so wrong values are rare per field, or no body would be valid.
const str = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom('', 'demo', 'get', 'pods', '/healthz', 'authorization.k8s.io/v1', 'SubjectAccessReview', '__proto__') },
  { weight: 10, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 1, arbitrary: fc.constantFrom(MAX - 1, MAX, MAX + 1).map(n => 'a'.repeat(n)) }
)
const scalar = fc.oneof(str, fc.constant(null), fc.integer(), fc.boolean(), fc.constant([]), fc.constant({}))
const field = fc.oneof({ weight: 30, arbitrary: str }, { weight: 1, arbitrary: scalar }, { weight: 3, arbitrary: fc.constant(undefined) })
const list = fc.oneof(
  { weight: 20, arbitrary: fc.array(str, { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.constantFrom(SAR_LIMITS.maxGroups, SAR_LIMITS.maxGroups + 1).map(n => Array.from({ length: n }, (_, i) => `g${i}`)) },
  { weight: 1, arbitrary: scalar },
  { weight: 4, arbitrary: fc.constant(undefined) }
)
const attrs = (keys: string[]): fc.Arbitrary<unknown> => fc.oneof(
  { weight: 20, arbitrary: fc.record(Object.fromEntries(keys.map(k => [k, field])), { requiredKeys: [] }) },
  { weight: 1, arbitrary: scalar },
  { weight: 1, arbitrary: fc.constant(undefined) }
)
const extra = fc.oneof(
  { weight: 20, arbitrary: fc.dictionary(fc.oneof(str, fc.constantFrom('constructor', 'toString')), fc.oneof({ weight: 10, arbitrary: fc.array(str, { maxLength: 3 }) }, { weight: 1, arbitrary: scalar }), { maxKeys: 4 }) },
  { weight: 1, arbitrary: scalar },
  { weight: 1, arbitrary: fc.constant(undefined) }
)
const body = fc.record({
  apiVersion: fc.oneof({ weight: 10, arbitrary: fc.constantFrom('authorization.k8s.io/v1', 'authorization.k8s.io/v1beta1') }, { weight: 1, arbitrary: scalar }),
  kind: fc.oneof({ weight: 10, arbitrary: fc.constant('SubjectAccessReview') }, { weight: 1, arbitrary: scalar }),
  spec: fc.oneof(
    { weight: 20, arbitrary: fc.record({ user: field, uid: field, groups: list, group: list, extra, resourceAttributes: attrs(['namespace', 'verb', 'group', 'version', 'resource', 'subresource', 'name', 'fieldSelector']), nonResourceAttributes: attrs(['path', 'verb']) }, { requiredKeys: [] }) },
    { weight: 1, arbitrary: scalar }
  )
}, { requiredKeys: [] })

t.test('property: the fast path never disagrees with the schema', async t => {
  let fastTaken = 0
  let total = 0
  fc.assert(fc.property(body, b => {
    // As from JSON.parse: no undefined members, plain objects.
    const wire = JSON.parse(JSON.stringify(b)) as unknown
    const slow = parseSubjectAccessReviewBySchema(wire)
    const fast = parseWellFormedSubjectAccessReview(wire)
    total++
    if (fast === undefined) return
    fastTaken++
    if (!slow.ok) throw new Error(`fast path accepted what the schema refuses (${slow.reason})`)
    // Strict: same members, same prototypes (extra is a null-prototype object on both sides).
    deepStrictEqual(fast, slow)
  }), { numRuns: 3000 })
  t.pass('3000 bodies: every fast-path result equals the schema\'s')
  // Both sides were exercised: the generator is not stuck on one of them.
  t.ok(fastTaken > total / 10, `fast path taken for ${fastTaken} of ${total} bodies`)
  t.ok(fastTaken < total, 'some bodies were left to the schema')
})
