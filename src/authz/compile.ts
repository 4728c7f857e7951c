import { EXTRA_PROJECT_ID, EXTRA_PROJECT_NAME, EXTRA_ROLES } from '../identity.js'
import { matchNamePattern, parseNamePattern, type ParsedPattern } from './name-pattern.js'
import type { MatchRule, PermissionRule, PolicyEntry, V1NonResourceSpec, V1ResourceSpec } from './policy.js'
import type { AccessRequest, Decision, NonResourceAttributes, ResourceAttributes } from './types.js'

// Turns parsed policy entries into closures over Sets, once per policy change, so that a request
// costs a few Set lookups per entry and never touches the policy text. The semantics are those of
// the Go authorizer (pkg/identity/keystone/authorizer.go at v1.32.1), with the differences listed
// in docs/differences-from-go.md: v2 keys may name a subresource, a plain v2 resource key does not
// grant its subresources unless `subresourceCompat` is set, and a review without a Keystone
// identity in its extras is denied before any entry is looked at.

export interface CompileOptions {
  /** Go behaviour: a v2 key `ns/pods` also grants `pods/log`, `pods/exec`, ... */
  subresourceCompat?: boolean
  /**
   * Opt-in, not Go: in v2 keys, a request without a namespace (cluster-scoped, or a list across
   * all namespaces) is matched by every namespace part, so `default/pods: [list]` also allows
   * `kubectl get pods -A` and `!kube-system/*` allows ClusterRoleBindings. Go skips every key whose
   * namespace part is not exactly `*` for such requests (resourcePermissionAllowed, since PR #1292),
   * and so do we by default.
   */
  looseNamespaces?: boolean
}

/** What the matchers need to know about the requesting user, computed once per request. */
export interface Subject {
  user: string
  uid: string
  groups: ReadonlySet<string>
  roles: ReadonlySet<string>
  projectIds: ReadonlySet<string>
  projectNames: ReadonlySet<string>
}

export interface CompiledPolicy {
  readonly entries: number
  decide (req: AccessRequest): Decision
}

/** Returns a label of the rule that allows the request, or undefined. */
type ResourceRule = (attrs: ResourceAttributes, subject: Subject) => string | undefined
type NonResourceRule = (attrs: NonResourceAttributes, subject: Subject) => string | undefined

interface CompiledEntry {
  index: number
  appliesTo: (subject: Subject) => boolean
  resource?: ResourceRule
  nonResource?: NonResourceRule
}

export const NO_MATCH_REASON = 'no policy entry matched'
export const NO_IDENTITY_REASON = 'the request carries no Keystone identity (no alpha.kubernetes.io/identity/ extras); only users authenticated by this webhook are authorized by its policy'

const IDENTITY_PREFIX = 'alpha.kubernetes.io/identity/'

/**
 * Did this webhook's TokenReview authenticate the user? Its answer always carries the user's
 * domain (and, for project tokens, the project and roles) under `alpha.kubernetes.io/identity/`.
 * A certificate user or another authenticator's user has none of these, and must not reach the
 * policy: a v1 `user`/`group` match or an entry without `users` would otherwise let a name that
 * merely equals a Keystone one through. Go denies only when `extra` is absent altogether
 * (Authorize: "No auth info found"); this is stricter by design.
 */
export function hasKeystoneIdentity (extra: Record<string, string[]>): boolean {
  for (const key of Object.keys(extra)) {
    if (key.startsWith(IDENTITY_PREFIX) && (extra[key]?.length ?? 0) > 0) return true
  }
  return false
}

function extraValues (extra: Record<string, string[]>, key: string): string[] {
  return Object.hasOwn(extra, key) ? (extra[key] ?? []) : []
}

export function subjectOf (req: AccessRequest): Subject {
  return {
    user: req.user,
    // The Go webhook never passes spec.uid to its authorizer, so there it is always "".
    uid: req.uid ?? '',
    groups: new Set(req.groups),
    roles: new Set(extraValues(req.extra, EXTRA_ROLES)),
    projectIds: new Set(extraValues(req.extra, EXTRA_PROJECT_ID)),
    projectNames: new Set(extraValues(req.extra, EXTRA_PROJECT_NAME))
  }
}

function intersects (a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  for (const x of a) if (b.has(x)) return true
  return false
}

/** v2 `users`: every listed role is required, and any listed project (name or id) matches. */
function compileUsers (users: PolicyEntry['users']): (s: Subject) => boolean {
  if (users === undefined) return () => true
  const roles = [...new Set(users.roles)]
  const projects = new Set(users.projects)
  return s => roles.every(r => s.roles.has(r)) && (intersects(projects, s.projectNames) || intersects(projects, s.projectIds))
}

/** v1 `match`: every condition must hold; an unknown type makes the entry never match, as in Go. */
function compileMatch (rules: MatchRule[]): (s: Subject) => boolean {
  const conditions: Array<(s: Subject) => boolean> = []
  for (const rule of rules) {
    const values = new Set(rule.values)
    const wildcard = values.has('*')
    switch (rule.type) {
      case 'group': if (!wildcard) conditions.push(s => intersects(s.groups, values)); break
      case 'user': if (!wildcard) conditions.push(s => values.has(s.user) || values.has(s.uid)); break
      case 'project': if (!wildcard) conditions.push(s => intersects(s.projectIds, values) || intersects(s.projectNames, values)); break
      case 'role': if (!wildcard) conditions.push(s => intersects(s.roles, values)); break
      default: return () => false
    }
  }
  return s => conditions.every(c => c(s))
}

function compileV1Resource (spec: V1ResourceSpec, match: (s: Subject) => boolean): ResourceRule {
  const verbs = new Set(spec.verbs)
  const resources = new Set(spec.resources)
  const anyVerb = verbs.has('*')
  const anyResource = resources.has('*')
  const group = spec.version
  const namespace = spec.namespace
  return (a, s) => {
    if (group !== '*' && group !== a.group) return undefined
    if (namespace !== '*' && namespace !== a.namespace) return undefined
    let matched: string
    if (a.subresource !== '') {
      const full = `${a.resource}/${a.subresource}`
      const star = `${a.resource}/*`
      if (anyResource) matched = '*'
      else if (resources.has(full)) matched = full
      else if (resources.has(star)) matched = star
      else return undefined
    } else {
      if (anyResource) matched = '*'
      else if (resources.has(a.resource)) matched = a.resource
      else return undefined
    }
    if (!anyVerb && !verbs.has(a.verb)) return undefined
    if (!match(s)) return undefined
    return `resource ${JSON.stringify(matched)}`
  }
}

function compileV1NonResource (spec: V1NonResourceSpec, match: (s: Subject) => boolean): NonResourceRule | undefined {
  if (spec.verbs.includes('') || spec.path === undefined) return undefined
  const verbs = new Set(spec.verbs)
  const anyVerb = verbs.has('*')
  const path = spec.path
  // A trailing `*` is a prefix match: "/api/*" covers "/api/v1"; Go trims every trailing `*`.
  const prefix = path.endsWith('*') ? path.replace(/\*+$/, '') : undefined
  const label = `nonresource ${JSON.stringify(path)}`
  return (a, s) => {
    if (!anyVerb && !verbs.has(a.verb)) return undefined
    if (path !== '*' && path !== a.path && !(prefix !== undefined && a.path.startsWith(prefix))) return undefined
    return match(s) ? label : undefined
  }
}

interface V2ResourceKey {
  label: string
  verbs: ReadonlySet<string>
  anyVerb: boolean
  namespace: ParsedPattern
  resource: ParsedPattern
  subresource?: ParsedPattern
}

function compileV2Resource (rules: PermissionRule[], opts: CompileOptions): ResourceRule {
  const keys: V2ResourceKey[] = []
  for (const rule of rules) {
    const parts = rule.key.split('/').map(p => p.trim().toLowerCase())
    // Go accepts exactly two parts; a third one (a subresource) is our extension.
    if (parts.length < 2 || parts.length > 3) continue
    const verbs = new Set(rule.verbs.map(v => v.toLowerCase()))
    const key: V2ResourceKey = {
      label: `resource_permissions ${JSON.stringify(rule.key)}`,
      verbs,
      anyVerb: verbs.has('*'),
      namespace: parseNamePattern(parts[0] as string),
      resource: parseNamePattern(parts[1] as string)
    }
    if (parts.length === 3) key.subresource = parseNamePattern(parts[2] as string)
    keys.push(key)
  }
  const compat = opts.subresourceCompat === true
  const looseNamespaces = opts.looseNamespaces === true
  return (a) => {
    for (const k of keys) {
      if (!k.anyVerb && !k.verbs.has(a.verb)) continue
      if (a.namespace === '') {
        // Go: `if nsDef != "*" && ns == "" { continue }`. The literal "*" only: `['*']` and
        // `!kube-system` mean "some namespaces", never "the whole cluster".
        if (!looseNamespaces && k.namespace.source !== '*') continue
      } else if (!matchNamePattern(k.namespace, a.namespace)) continue
      if (!matchNamePattern(k.resource, a.resource)) continue
      if (k.subresource !== undefined) {
        if (a.subresource === '' || !matchNamePattern(k.subresource, a.subresource, false)) continue
      } else if (a.subresource !== '' && !compat && k.resource.pattern.kind !== 'any') {
        // As RBAC: "pods" does not grant "pods/exec"; "*" grants everything.
        continue
      }
      return k.label
    }
    return undefined
  }
}

function compileV2NonResource (rules: PermissionRule[]): NonResourceRule {
  // Go compares the key with the path exactly, and the verbs case-sensitively.
  const byPath = new Map<string, { label: string, verbs: Set<string> }[]>()
  for (const rule of rules) {
    const list = byPath.get(rule.key) ?? []
    list.push({ label: `nonresource_permissions ${JSON.stringify(rule.key)}`, verbs: new Set(rule.verbs) })
    byPath.set(rule.key, list)
  }
  return (a) => {
    for (const r of byPath.get(a.path) ?? []) {
      if (r.verbs.has('*') || r.verbs.has(a.verb)) return r.label
    }
    return undefined
  }
}

function compileEntry (e: PolicyEntry, opts: CompileOptions): CompiledEntry {
  const match = compileMatch(e.match)
  const out: CompiledEntry = { index: e.index, appliesTo: compileUsers(e.users) }
  // v2 takes precedence over v1 within an entry, per kind of request, as in Go.
  if (e.resourcePermissions !== undefined) out.resource = compileV2Resource(e.resourcePermissions, opts)
  else if (e.resource !== undefined && e.resource.version !== undefined && e.resource.namespace !== undefined) {
    out.resource = compileV1Resource(e.resource, match)
  }
  if (e.nonresourcePermissions !== undefined) out.nonResource = compileV2NonResource(e.nonresourcePermissions)
  else if (e.nonresource !== undefined) {
    const rule = compileV1NonResource(e.nonresource, match)
    if (rule !== undefined) out.nonResource = rule
  }
  return out
}

export function compilePolicy (entries: PolicyEntry[], opts: CompileOptions = {}): CompiledPolicy {
  const compiled = entries.map(e => compileEntry(e, opts)).filter(e => e.resource !== undefined || e.nonResource !== undefined)
  return {
    entries: entries.length,
    decide (req: AccessRequest): Decision {
      if (!hasKeystoneIdentity(req.extra)) return { allowed: false, reason: NO_IDENTITY_REASON }
      const subject = subjectOf(req)
      for (const e of compiled) {
        let label: string | undefined
        if (req.resource !== undefined) {
          if (e.resource === undefined || !e.appliesTo(subject)) continue
          label = e.resource(req.resource, subject)
        } else if (req.nonResource !== undefined) {
          if (e.nonResource === undefined || !e.appliesTo(subject)) continue
          label = e.nonResource(req.nonResource, subject)
        }
        if (label !== undefined) return { allowed: true, reason: `allowed by policy entry ${e.index} (${label})` }
      }
      return { allowed: false, reason: NO_MATCH_REASON }
    }
  }
}
