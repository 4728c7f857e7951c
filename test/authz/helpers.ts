import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { EXTRA_PROJECT_ID, EXTRA_PROJECT_NAME, EXTRA_ROLES, EXTRA_USER_DOMAIN_ID, EXTRA_USER_DOMAIN_NAME } from '../../src/identity.js'
import { PolicyEngine, type PolicyEngineOptions } from '../../src/authz/engine.js'
import type { AccessRequest, Decision } from '../../src/authz/types.js'
import { parseSubjectAccessReview } from '../../src/server/http/subject-access-review.js'

export const here = dirname(fileURLToPath(import.meta.url))
export const repoRoot = join(here, '..', '..')

export function readText (...parts: string[]): string {
  return readFileSync(join(...parts), 'utf8')
}

export interface Who {
  name: string
  uid?: string
  groups?: string[]
  projectNames?: string[]
  projectIds?: string[]
  roles?: string[]
  /** false: a user this webhook did not authenticate (no alpha.kubernetes.io/identity/ extras). */
  keystone?: false
}

export interface Ask {
  verb: string
  resource?: string
  subresource?: string
  namespace?: string
  group?: string
  path?: string
}

export function accessRequest (who: Who, ask: Ask): AccessRequest {
  const extra: Record<string, string[]> = {}
  // Every user our TokenReview answers carries its domain, project-scoped or not.
  if (who.keystone !== false) {
    extra[EXTRA_USER_DOMAIN_ID] = ['default']
    extra[EXTRA_USER_DOMAIN_NAME] = ['Default']
  }
  if (who.projectNames !== undefined) extra[EXTRA_PROJECT_NAME] = who.projectNames
  if (who.projectIds !== undefined) extra[EXTRA_PROJECT_ID] = who.projectIds
  if (who.roles !== undefined) extra[EXTRA_ROLES] = who.roles
  const req: AccessRequest = { user: who.name, groups: who.groups ?? [], extra }
  if (who.uid !== undefined) req.uid = who.uid
  if (ask.path !== undefined) {
    req.nonResource = { path: ask.path, verb: ask.verb }
  } else {
    req.resource = {
      namespace: ask.namespace ?? '',
      verb: ask.verb,
      group: ask.group ?? '',
      version: 'v1',
      resource: ask.resource ?? '',
      subresource: ask.subresource ?? '',
      name: ''
    }
  }
  return req
}

/** The same request as kube-apiserver would send it, in the given API version. */
export function sarBody (version: 'v1' | 'v1beta1', req: AccessRequest): Record<string, unknown> {
  const spec: Record<string, unknown> = { user: req.user, extra: req.extra }
  if (req.uid !== undefined) spec.uid = req.uid
  spec[version === 'v1' ? 'groups' : 'group'] = req.groups
  if (req.resource !== undefined) {
    // Empty fields are omitted on the wire (Go's omitempty).
    spec.resourceAttributes = Object.fromEntries(Object.entries(req.resource).filter(([, v]) => v !== ''))
  } else {
    spec.nonResourceAttributes = req.nonResource
  }
  return { apiVersion: `authorization.k8s.io/${version}`, kind: 'SubjectAccessReview', metadata: { creationTimestamp: null }, spec, status: { allowed: false } }
}

/**
 * Decides a request directly and through the SubjectAccessReview parser in v1 and v1beta1; the
 * three must agree (the caller's test then checks the one answer).
 */
export function decideEverywhere (engine: PolicyEngine, req: AccessRequest): { direct: Decision, v1: Decision, v1beta1: Decision } {
  const viaWire = (version: 'v1' | 'v1beta1'): Decision => {
    const parsed = parseSubjectAccessReview(JSON.parse(JSON.stringify(sarBody(version, req))))
    if (!parsed.ok) throw new Error(`fixture did not parse: ${parsed.reason}`)
    return engine.authorize(parsed.request)
  }
  return { direct: engine.authorize(req), v1: viaWire('v1'), v1beta1: viaWire('v1beta1') }
}

export function engineWith (text: string, opts: PolicyEngineOptions = {}): PolicyEngine {
  // No cache by default, so that every call exercises the matcher.
  const engine = new PolicyEngine({ cacheMax: 0, ...opts })
  engine.load(text, 'test')
  return engine
}
