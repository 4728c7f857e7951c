import { z } from 'zod'
import type { AccessRequest, Decision } from '../../authz/types.js'
import { answerTexts, invalidReview } from './review-wire.js'

// SubjectAccessReview as kube-apiserver sends it to an authorization webhook. v1 carries the
// user's groups in `spec.groups`, v1beta1 in `spec.group`; everything else is the same. We accept
// both (the Go binary answers 400 to v1) and answer in the version asked. Every optional field may
// be missing or null; sizes are bounded so a hostile body cannot make us allocate without limit.

export const SAR_VERSIONS = ['authorization.k8s.io/v1', 'authorization.k8s.io/v1beta1'] as const
export type SubjectAccessReviewVersion = typeof SAR_VERSIONS[number]

export const SAR_LIMITS = {
  /** Characters in any one string (user, group, path, extra value, ...). */
  maxString: 64 * 1024,
  maxGroups: 1000,
  maxExtraKeys: 100,
  maxExtraValues: 1000
} as const

const str = z.string({ error: 'must be a string' }).max(SAR_LIMITS.maxString, `is longer than ${SAR_LIMITS.maxString} characters`)
/** Go's omitempty: absent, null and "" all mean "not set". */
const optStr = str.nullish().transform(v => v ?? '')
const groupList = z.array(str, { error: 'must be an array of strings' })
  .max(SAR_LIMITS.maxGroups, `has more than ${SAR_LIMITS.maxGroups} entries`)
  .nullish()

const ResourceAttributes = z.object({
  namespace: optStr,
  verb: optStr,
  group: optStr,
  version: optStr,
  resource: optStr,
  subresource: optStr,
  name: optStr
  // fieldSelector / labelSelector (1.31+) are accepted and ignored: no policy rule reads them.
}, { error: 'must be an object' })

const NonResourceAttributes = z.object({
  path: optStr,
  verb: optStr
}, { error: 'must be an object' })

const SubjectAccessReviewRequest = z.object({
  apiVersion: z.enum(SAR_VERSIONS, { error: `apiVersion must be one of ${SAR_VERSIONS.join(', ')}` }),
  kind: z.literal('SubjectAccessReview', { error: 'kind must be SubjectAccessReview' }),
  spec: z.object({
    resourceAttributes: ResourceAttributes.nullish(),
    nonResourceAttributes: NonResourceAttributes.nullish(),
    user: optStr,
    uid: optStr,
    groups: groupList,
    group: groupList,
    // Validated by hand below: a record schema would copy keys such as "__proto__" onto a plain object.
    extra: z.unknown().optional()
  }, { error: 'must be an object' })
})

export { SubjectAccessReviewRequest as subjectAccessReviewSchema }

export type ParsedSubjectAccessReview =
  | { ok: true, apiVersion: SubjectAccessReviewVersion, request: AccessRequest }
  | { ok: false, reason: string }

/** Short keys are quoted in messages; a long one may be a token in the wrong place, and is not. */
function quoteKey (key: string): string {
  return key.length <= 64 ? JSON.stringify(key) : `<a key of ${key.length} characters>`
}

function parseExtra (raw: unknown): { ok: true, extra: Record<string, string[]> } | { ok: false, reason: string } {
  // A null-prototype object: keys like "__proto__" or "constructor" are plain data here.
  const extra = Object.create(null) as Record<string, string[]>
  if (raw === undefined || raw === null) return { ok: true, extra }
  if (typeof raw !== 'object' || Array.isArray(raw)) return { ok: false, reason: 'spec.extra: must be an object of string arrays' }
  const keys = Object.keys(raw)
  if (keys.length > SAR_LIMITS.maxExtraKeys) return { ok: false, reason: `spec.extra: has more than ${SAR_LIMITS.maxExtraKeys} keys` }
  for (const key of keys) {
    if (key.length > SAR_LIMITS.maxString) return { ok: false, reason: `spec.extra: a key is longer than ${SAR_LIMITS.maxString} characters` }
    const values = (raw as Record<string, unknown>)[key]
    if (values === null || values === undefined) {
      extra[key] = []
      continue
    }
    if (!Array.isArray(values) || !values.every(v => typeof v === 'string')) {
      return { ok: false, reason: `spec.extra[${quoteKey(key)}]: must be an array of strings` }
    }
    if (values.length > SAR_LIMITS.maxExtraValues) return { ok: false, reason: `spec.extra[${quoteKey(key)}]: has more than ${SAR_LIMITS.maxExtraValues} values` }
    if (values.some(v => v.length > SAR_LIMITS.maxString)) return { ok: false, reason: `spec.extra[${quoteKey(key)}]: a value is longer than ${SAR_LIMITS.maxString} characters` }
    extra[key] = [...values as string[]]
  }
  return { ok: true, extra }
}

/** Body to AccessRequest, or a reason fit for a 400 answer (it never quotes request values). */
export function parseSubjectAccessReview (body: unknown): ParsedSubjectAccessReview {
  return parseWellFormedSubjectAccessReview(body) ?? parseSubjectAccessReviewBySchema(body)
}

const VERSIONS: ReadonlySet<unknown> = new Set(SAR_VERSIONS)

/** A string field as the schema's optStr takes it: absent or null is "", too long is not ours. */
function plainString (v: unknown): string | undefined {
  if (v === undefined || v === null) return ''
  return typeof v === 'string' && v.length <= SAR_LIMITS.maxString ? v : undefined
}

/** A group list as the schema takes it; undefined for anything the schema would refuse. */
function plainGroups (v: unknown): string[] | null | undefined {
  if (v === undefined || v === null) return null
  if (!Array.isArray(v) || v.length > SAR_LIMITS.maxGroups) return undefined
  for (const g of v) if (typeof g !== 'string' || g.length > SAR_LIMITS.maxString) return undefined
  return v as string[]
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * The hot path: what kube-apiserver sends on every authorization check, accepted without building
 * a zod result. It accepts exactly what the schema accepts and gives the same record; for anything
 * it is not sure of it returns undefined, and the schema decides and words the error
 * (test/authz/subject-access-review-fast.test.ts holds the two to agreement).
 */
export function parseWellFormedSubjectAccessReview (body: unknown): ParsedSubjectAccessReview | undefined {
  if (!isObject(body)) return undefined
  const apiVersion = body.apiVersion
  if (!VERSIONS.has(apiVersion) || body.kind !== 'SubjectAccessReview') return undefined
  const spec = body.spec
  if (!isObject(spec)) return undefined
  const user = plainString(spec.user)
  const uid = plainString(spec.uid)
  const v1Groups = plainGroups(spec.groups)
  const betaGroups = plainGroups(spec.group)
  if (user === undefined || uid === undefined || v1Groups === undefined || betaGroups === undefined) return undefined
  let resource: AccessRequest['resource']
  let nonResource: AccessRequest['nonResource']
  const ra = spec.resourceAttributes
  const na = spec.nonResourceAttributes
  if (ra !== undefined && ra !== null) {
    if (!isObject(ra)) return undefined
    const namespace = plainString(ra.namespace)
    const verb = plainString(ra.verb)
    const group = plainString(ra.group)
    const version = plainString(ra.version)
    const res = plainString(ra.resource)
    const subresource = plainString(ra.subresource)
    const name = plainString(ra.name)
    if (namespace === undefined || verb === undefined || group === undefined || version === undefined ||
      res === undefined || subresource === undefined || name === undefined) return undefined
    resource = { namespace, verb, group, version, resource: res, subresource, name }
  }
  // The schema checks nonResourceAttributes even when resourceAttributes wins.
  if (na !== undefined && na !== null) {
    if (!isObject(na)) return undefined
    const path = plainString(na.path)
    const verb = plainString(na.verb)
    if (path === undefined || verb === undefined) return undefined
    if (resource === undefined) nonResource = { path, verb }
  }
  if (resource === undefined && nonResource === undefined) return undefined
  const extra = parseExtra(spec.extra)
  if (!extra.ok) return undefined
  const groups = (apiVersion === 'authorization.k8s.io/v1' ? (v1Groups ?? betaGroups) : (betaGroups ?? v1Groups)) ?? []
  const request: AccessRequest = { user, groups: [...groups], extra: extra.extra }
  if (uid !== '') request.uid = uid
  if (resource !== undefined) request.resource = resource
  else if (nonResource !== undefined) request.nonResource = nonResource
  return { ok: true, apiVersion: apiVersion as SubjectAccessReviewVersion, request }
}

export function parseSubjectAccessReviewBySchema (body: unknown): ParsedSubjectAccessReview {
  const r = SubjectAccessReviewRequest.safeParse(body)
  if (!r.success) return { ok: false, reason: invalidReview('SubjectAccessReview', r.error) }
  const { apiVersion, spec } = r.data
  const extra = parseExtra(spec.extra)
  if (!extra.ok) return { ok: false, reason: `invalid SubjectAccessReview: ${extra.reason}` }
  // The version's own field first; the other one is tolerated, as some clients mix them up.
  const groups = (apiVersion === 'authorization.k8s.io/v1' ? (spec.groups ?? spec.group) : (spec.group ?? spec.groups)) ?? []
  const request: AccessRequest = { user: spec.user, groups: [...groups], extra: extra.extra }
  if (spec.uid !== '') request.uid = spec.uid
  // As in Go, resourceAttributes wins when both are present.
  if (spec.resourceAttributes !== undefined && spec.resourceAttributes !== null) {
    request.resource = { ...spec.resourceAttributes }
  } else if (spec.nonResourceAttributes !== undefined && spec.nonResourceAttributes !== null) {
    request.nonResource = { ...spec.nonResourceAttributes }
  } else {
    return { ok: false, reason: 'invalid SubjectAccessReview: spec: needs resourceAttributes or nonResourceAttributes' }
  }
  return { ok: true, apiVersion, request }
}

/**
 * The answer, in the version asked. Only apiVersion, kind and status (the spec is not echoed).
 * A "no" from the policy is "no opinion" (no `status.denied`), so a later authorizer in
 * --authorization-mode can still allow the request; only a request that the user's application
 * credential access rules do not allow is denied outright.
 */
export function subjectAccessReviewResponse (apiVersion: string, decision: Decision): object {
  const status = decision.denied === true
    ? { allowed: false, denied: true, reason: decision.reason }
    : { allowed: decision.allowed, reason: decision.reason }
  return { apiVersion, kind: 'SubjectAccessReview', status }
}

/** subjectAccessReviewResponse() as JSON text, kept per cached decision (see answerTexts). */
export const subjectAccessReviewAnswer = answerTexts<Decision, SubjectAccessReviewVersion>(
  (apiVersion, decision) => JSON.stringify(subjectAccessReviewResponse(apiVersion, decision)))
