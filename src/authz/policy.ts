import { LineCounter, parseDocument, isMap, isSeq, isScalar, isPair, type Node as YamlNode } from 'yaml'
import { ConfigError } from '../errors.js'
import { matchNamePattern, parseNamePattern, type ParsedPattern } from './name-pattern.js'
import type { PolicyIssue } from './types.js'

// Reads a policy file (JSON, or YAML with the same shape) into typed entries, and says what is
// wrong with it. Errors are what the Go binary refuses to load, or what makes it crash when a
// request reaches the entry; warnings are what Go accepts but silently ignores or treats in a
// surprising way (typos in field names, unknown match types, keys it skips), so that
// `policy check` can point at them while an existing file keeps loading exactly as in Go.

export interface MatchRule {
  type: string
  values: string[]
}

/** v1 `resource`: `version` is compared with the API group, as the Go code does. */
export interface V1ResourceSpec {
  verbs: string[]
  resources: string[]
  version?: string
  namespace?: string
}

export interface V1NonResourceSpec {
  verbs: string[]
  path?: string
}

/** One `key: [verbs]` of a v2 permissions map, in file order. */
export interface PermissionRule {
  key: string
  verbs: string[]
}

export interface PolicyEntry {
  /** 0-based position in the file. */
  index: number
  /** v2 `users`; present (even empty) means the entry only applies to matching users, as in Go. */
  users?: { roles: string[], projects: string[] }
  match: MatchRule[]
  resource?: V1ResourceSpec
  nonresource?: V1NonResourceSpec
  resourcePermissions?: PermissionRule[]
  nonresourcePermissions?: PermissionRule[]
}

export interface ParsedPolicy {
  entries: PolicyEntry[]
  issues: PolicyIssue[]
}

export const MATCH_TYPES = ['user', 'group', 'project', 'role'] as const

const ENTRY_FIELDS = ['resource', 'nonresource', 'match', 'resource_permissions', 'nonresource_permissions', 'users']
const RESOURCE_FIELDS = ['verbs', 'resources', 'version', 'namespace']
const NONRESOURCE_FIELDS = ['verbs', 'path']
const MATCH_FIELDS = ['type', 'values']

/** A policy that cannot be used; `issues` holds every problem found, errors and warnings. */
export class PolicyError extends ConfigError {
  readonly issues: PolicyIssue[]
  constructor (message: string, issues: PolicyIssue[]) {
    super(message)
    this.name = 'PolicyError'
    this.issues = issues
  }
}

type Path = Array<string | number>

/** Finds the source position of a path in the YAML/JSON document, for messages. */
class Locator {
  private readonly doc: ReturnType<typeof parseDocument> | undefined
  private readonly lines = new LineCounter()
  constructor (text: string) {
    try {
      const doc = parseDocument(text, { lineCounter: this.lines, uniqueKeys: false, prettyErrors: false })
      this.doc = doc.errors.length === 0 ? doc : undefined
    } catch {
      this.doc = undefined
    }
  }

  locate (path: Path): { line: number, col: number } | undefined {
    if (this.doc === undefined) return undefined
    let node: unknown = this.doc.contents
    let offset: number | undefined = rangeStart(node)
    for (const seg of path) {
      if (isSeq(node) && typeof seg === 'number') {
        node = node.items[seg]
      } else if (isMap(node)) {
        const pairs = node.items.filter(p => isPair(p) && isScalar(p.key) && String(p.key.value).toLowerCase() === String(seg).toLowerCase())
        const pair = pairs.find(p => isScalar(p.key) && p.key.value === seg) ?? pairs.at(-1)
        if (pair === undefined) break
        offset = rangeStart(pair.key) ?? offset
        node = pair.value
      } else {
        break
      }
      offset = rangeStart(node) ?? offset
    }
    return offset === undefined ? undefined : this.lines.linePos(offset)
  }
}

function rangeStart (node: unknown): number | undefined {
  const range = (node as YamlNode | null | undefined)?.range
  return Array.isArray(range) ? range[0] : undefined
}

function isPlainObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function fieldPath (path: Path): string {
  let out = ''
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(seg)) out += out === '' ? seg : `.${seg}`
    else out += `[${JSON.stringify(seg)}]`
  }
  return out
}

class Collector {
  readonly issues: PolicyIssue[] = []
  constructor (private readonly locator: Locator) {}

  add (severity: PolicyIssue['severity'], entry: number | undefined, path: Path, message: string): void {
    const issue: PolicyIssue = { severity, message }
    if (entry !== undefined) issue.entry = entry
    if (path.length > 0) issue.field = fieldPath(path)
    const pos = this.locator.locate(entry === undefined ? path : [entry, ...path])
    if (pos !== undefined) {
      issue.line = pos.line
      issue.col = pos.col
    }
    this.issues.push(issue)
  }
}

/**
 * Go's encoding/json matches field names case-insensitively (an exact match wins; later keys
 * overwrite earlier ones). We do the same, and warn, so `"Resource"` works as it does in Go.
 */
function readFields (obj: Record<string, unknown>, known: readonly string[], c: Collector, entry: number, path: Path): Map<string, unknown> {
  const out = new Map<string, unknown>()
  for (const key of Object.keys(obj)) {
    const value = obj[key]
    if (known.includes(key)) {
      out.set(key, value)
      continue
    }
    const canonical = known.find(k => k.toLowerCase() === key.toLowerCase())
    if (canonical !== undefined) {
      c.add('warning', entry, [...path, key], `field name is matched case-insensitively (as in Go); write "${canonical}"`)
      out.set(canonical, value)
    } else {
      c.add('warning', entry, [...path, key], `unknown field, ignored (known fields: ${known.join(', ')})`)
    }
  }
  return out
}

/** Go's []string: null is an empty list; anything else but an array of strings is an error. */
function stringList (value: unknown, c: Collector, entry: number, path: Path): string[] | undefined {
  if (value === null || value === undefined) return []
  if (!Array.isArray(value) || !value.every(v => typeof v === 'string')) {
    c.add('error', entry, path, 'expected an array of strings')
    return undefined
  }
  return value as string[]
}

/** Go's *string: null or absent is "not set". */
function optionalString (value: unknown, c: Collector, entry: number, path: Path): string | undefined | false {
  if (value === null || value === undefined) return undefined
  if (typeof value !== 'string') {
    c.add('error', entry, path, 'expected a string')
    return false
  }
  return value
}

/** Go's map[string][]string, in file order; null is "not set". */
function permissionMap (value: unknown, c: Collector, entry: number, path: Path): PermissionRule[] | undefined | false {
  if (value === null || value === undefined) return undefined
  if (!isPlainObject(value)) {
    c.add('error', entry, path, 'expected an object mapping keys to arrays of verbs')
    return false
  }
  const rules: PermissionRule[] = []
  let ok = true
  for (const key of Object.keys(value)) {
    const verbs = stringList(value[key], c, entry, [...path, key])
    if (verbs === undefined) ok = false
    else rules.push({ key, verbs })
  }
  return ok ? rules : false
}

function parseEntry (raw: unknown, index: number, c: Collector): PolicyEntry | undefined {
  if (!isPlainObject(raw)) {
    c.add('error', index, [], raw === null ? 'entry is null (the Go binary crashes on it)' : 'expected an object')
    return undefined
  }
  const errorsBefore = c.issues.filter(i => i.severity === 'error').length
  const f = readFields(raw, ENTRY_FIELDS, c, index, [])
  const entry: PolicyEntry = { index, match: [] }

  // match
  const rawMatch = f.get('match')
  if (rawMatch !== undefined && rawMatch !== null) {
    if (!Array.isArray(rawMatch)) {
      c.add('error', index, ['match'], 'expected an array of {type, values}')
    } else {
      rawMatch.forEach((m, i) => {
        const p: Path = ['match', i]
        if (!isPlainObject(m)) {
          // Go decodes null into an empty match (type ""), which is unknown and never matches.
          if (m !== null) { c.add('error', index, p, 'expected an object {type, values}'); return }
          m = {}
        }
        const mf = readFields(m as Record<string, unknown>, MATCH_FIELDS, c, index, p)
        const type = optionalString(mf.get('type'), c, index, [...p, 'type'])
        const values = stringList(mf.get('values'), c, index, [...p, 'values'])
        if (type === false || values === undefined) return
        if (!(MATCH_TYPES as readonly string[]).includes(type ?? '')) {
          c.add('warning', index, [...p, 'type'], `unknown match type ${JSON.stringify(type ?? '')} (expected one of ${MATCH_TYPES.join(', ')}); as in Go, this entry never matches`)
        }
        entry.match.push({ type: type ?? '', values })
      })
    }
  }

  // resource (v1)
  const rawResource = f.get('resource')
  if (rawResource !== undefined && rawResource !== null) {
    if (!isPlainObject(rawResource)) {
      c.add('error', index, ['resource'], 'expected an object {verbs, resources, version, namespace}')
    } else {
      const rf = readFields(rawResource, RESOURCE_FIELDS, c, index, ['resource'])
      const verbs = stringList(rf.get('verbs'), c, index, ['resource', 'verbs'])
      const resources = stringList(rf.get('resources'), c, index, ['resource', 'resources'])
      const version = optionalString(rf.get('version'), c, index, ['resource', 'version'])
      const namespace = optionalString(rf.get('namespace'), c, index, ['resource', 'namespace'])
      if (verbs !== undefined && resources !== undefined && version !== false && namespace !== false) {
        entry.resource = { verbs, resources }
        if (version !== undefined) entry.resource.version = version
        if (namespace !== undefined) entry.resource.namespace = namespace
      }
    }
  }

  // nonresource (v1)
  const rawNonResource = f.get('nonresource')
  if (rawNonResource !== undefined && rawNonResource !== null) {
    if (!isPlainObject(rawNonResource)) {
      c.add('error', index, ['nonresource'], 'expected an object {verbs, path}')
    } else {
      const nf = readFields(rawNonResource, NONRESOURCE_FIELDS, c, index, ['nonresource'])
      const verbs = stringList(nf.get('verbs'), c, index, ['nonresource', 'verbs'])
      const path = optionalString(nf.get('path'), c, index, ['nonresource', 'path'])
      if (verbs !== undefined && path !== false) {
        entry.nonresource = { verbs }
        if (path !== undefined) entry.nonresource.path = path
      }
    }
  }

  // v2
  const rp = permissionMap(f.get('resource_permissions'), c, index, ['resource_permissions'])
  if (rp !== undefined && rp !== false) entry.resourcePermissions = rp
  const np = permissionMap(f.get('nonresource_permissions'), c, index, ['nonresource_permissions'])
  if (np !== undefined && np !== false) entry.nonresourcePermissions = np

  const rawUsers = f.get('users')
  if (rawUsers !== undefined && rawUsers !== null) {
    if (!isPlainObject(rawUsers)) {
      c.add('error', index, ['users'], 'expected an object {roles, projects}')
    } else {
      let roles: string[] = []
      let projects: string[] = []
      for (const key of Object.keys(rawUsers)) {
        const list = stringList(rawUsers[key], c, index, ['users', key])
        if (list === undefined) continue
        if (key === 'roles') roles = list
        else if (key === 'projects') projects = list
        else c.add('warning', index, ['users', key], 'unknown key, ignored (known keys: roles, projects)')
      }
      entry.users = { roles, projects }
    }
  }

  if (c.issues.filter(i => i.severity === 'error').length > errorsBefore) return undefined
  checkSemantics(entry, c)
  return entry
}

/** What Go accepts but would crash on, ignore, or apply more widely than the author likely meant. */
function checkSemantics (e: PolicyEntry, c: Collector): void {
  const i = e.index
  const hasV1 = e.resource !== undefined || e.nonresource !== undefined
  const hasV2 = e.resourcePermissions !== undefined || e.nonresourcePermissions !== undefined
  if (!hasV1 && !hasV2) {
    c.add('warning', i, [], 'entry has none of resource, nonresource, resource_permissions, nonresource_permissions; it never allows anything')
  }
  if (e.resource !== undefined) {
    if (e.resourcePermissions !== undefined) {
      c.add('warning', i, ['resource'], 'ignored: resource_permissions in the same entry takes precedence (as in Go)')
    } else {
      // The Go code dereferences both without a check: a request reaching this entry crashes it.
      if (e.resource.version === undefined) c.add('error', i, ['resource', 'version'], 'required (use "*" for any API group; the Go binary crashes on requests that reach an entry without it)')
      if (e.resource.namespace === undefined) c.add('error', i, ['resource', 'namespace'], 'required (use "*" for any namespace; the Go binary crashes on requests that reach an entry without it)')
      if (e.resource.resources.length === 0) c.add('warning', i, ['resource', 'resources'], 'empty: this entry never allows a resource request')
      if (e.resource.verbs.length === 0) c.add('warning', i, ['resource', 'verbs'], 'empty: this entry never allows a resource request')
    }
  }
  if (e.nonresource !== undefined) {
    if (e.nonresourcePermissions !== undefined) {
      c.add('warning', i, ['nonresource'], 'ignored: nonresource_permissions in the same entry takes precedence (as in Go)')
    } else {
      if (e.nonresource.path === undefined) c.add('warning', i, ['nonresource', 'path'], 'missing: as in Go, this entry never allows a non-resource request')
      if (e.nonresource.verbs.includes('')) c.add('warning', i, ['nonresource', 'verbs'], 'contains "": as in Go, this entry never allows a non-resource request')
      if (e.nonresource.verbs.length === 0) c.add('warning', i, ['nonresource', 'verbs'], 'empty: this entry never allows a non-resource request')
    }
  }
  if (hasV1 && e.match.length === 0 && e.users === undefined) {
    c.add('warning', i, ['match'], 'missing or empty: as in Go, the v1 rules of this entry apply to every user')
  }
  if (hasV2 && e.users === undefined) {
    c.add('warning', i, ['users'], 'missing: as in Go, the v2 permissions of this entry apply to every user')
  }
  if (e.users !== undefined && e.users.projects.length === 0) {
    c.add('warning', i, ['users', 'projects'], 'empty: as in Go, an entry with users but no projects never matches anyone')
  }
  warnUngrantedSubresources(e, c)
  for (const rule of e.resourcePermissions ?? []) {
    const parts = rule.key.split('/')
    const p: Path = ['resource_permissions', rule.key]
    if (parts.length < 2 || parts.length > 3) {
      c.add('warning', i, p, 'key must be "namespace/resource" or "namespace/resource/subresource"; ignored')
      continue
    }
    if (parts.length === 3) {
      c.add('warning', i, p, 'names a subresource: this key is ignored by the Go binary')
    }
    for (const part of parts) {
      const pattern = parseNamePattern(part.trim().toLowerCase()).pattern
      if (pattern.kind === 'never') c.add('warning', i, p, `${pattern.why}; this key never matches (as in Go)`)
    }
  }
  for (const rule of e.nonresourcePermissions ?? []) {
    if (rule.key.includes('*')) {
      c.add('warning', i, ['nonresource_permissions', rule.key], 'keys of nonresource_permissions are exact paths; "*" is not a wildcard here (as in Go)')
    }
  }
}

// Subresources of the built-in resources that users reach for (kubectl logs, exec, attach,
// port-forward, scale, ...), for the warning below.
const WELL_KNOWN_SUBRESOURCES: ReadonlyArray<[string, string[]]> = [
  ['pods', ['log', 'exec', 'attach', 'portforward', 'proxy', 'eviction', 'ephemeralcontainers', 'status']],
  ['deployments', ['scale', 'status']],
  ['statefulsets', ['scale', 'status']],
  ['replicasets', ['scale', 'status']],
  ['replicationcontrollers', ['scale', 'status']],
  ['services', ['proxy', 'status']],
  ['nodes', ['proxy', 'status']],
  ['serviceaccounts', ['token']],
  ['namespaces', ['finalize', 'status']],
  ['certificatesigningrequests', ['approval', 'status']]
]

/**
 * Go lets a v2 key `ns/pods` grant `pods/log`, `pods/exec`, ... (it never looks at the
 * subresource); by default we do not, as RBAC does not. A policy written for Go then loses
 * `kubectl logs` and `kubectl exec` without a word, so say which keys would give them back.
 */
function warnUngrantedSubresources (e: PolicyEntry, c: Collector): void {
  const keys = (e.resourcePermissions ?? []).map(rule => ({ rule, parts: rule.key.split('/').map(p => p.trim().toLowerCase()) }))
  const withSub: ParsedPattern[] = keys.filter(k => k.parts.length === 3).map(k => parseNamePattern(k.parts[1] as string))
  for (const { rule, parts } of keys) {
    if (parts.length !== 2) continue
    const resource = parseNamePattern(parts[1] as string)
    if (resource.pattern.kind === 'any' || resource.pattern.kind === 'never') continue
    const lost = WELL_KNOWN_SUBRESOURCES.filter(([r]) => matchNamePattern(resource, r, false) && !withSub.some(p => matchNamePattern(p, r, false)))
    if (lost.length === 0) continue
    const names = lost.map(([r]) => r)
    const examples = lost.flatMap(([r, subs]) => subs.slice(0, 2).map(sub => `${r}/${sub}`)).slice(0, 4)
    const [first, firstSubs] = lost[0] as [string, string[]]
    const ns = parts[0] as string
    c.add('warning', e.index, ['resource_permissions', rule.key],
      `grants ${names.slice(0, 3).join(', ')}${names.length > 3 ? ', ...' : ''} without their subresources (${examples.join(', ')}, ...), which Go grants with them: ` +
      `add e.g. "${ns}/${first}/*" or "${ns}/${first}/['${firstSubs.slice(0, 2).join("', '")}']", or start the server with --authorization-subresource-compat`)
  }
}

function describeJsonError (text: string, err: unknown): { message: string, line?: number, col?: number } {
  const msg = err instanceof Error ? err.message : String(err)
  const m = /position (\d+)/.exec(msg)
  if (m !== null) {
    const pos = Number(m[1])
    const before = text.slice(0, pos)
    const line = before.split('\n').length
    const col = pos - before.lastIndexOf('\n')
    return { message: `invalid JSON: ${msg}`, line, col }
  }
  return { message: `invalid JSON: ${msg}` }
}

/** Text to a value: JSON when it parses as JSON, else YAML. */
function parseText (text: string, c: Collector): { ok: true, value: unknown } | { ok: false } {
  if (text.trim() === '') {
    c.add('error', undefined, [], 'the policy is empty (write [] for an empty policy)')
    return { ok: false }
  }
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch (jsonErr) {
    const doc = parseDocument(text, { uniqueKeys: false, prettyErrors: false })
    if (doc.errors.length === 0) return { ok: true, value: doc.toJS({ maxAliasCount: 100 }) }
    const looksJson = /^\s*[[{]/.test(text)
    if (looksJson) {
      const d = describeJsonError(text, jsonErr)
      const issue: PolicyIssue = { severity: 'error', message: d.message }
      if (d.line !== undefined) { issue.line = d.line; issue.col = d.col as number }
      c.issues.push(issue)
    } else {
      const e = doc.errors[0]
      const issue: PolicyIssue = { severity: 'error', message: `invalid YAML: ${e?.message.split('\n')[0] ?? 'unknown error'}` }
      const pos = e?.linePos?.[0]
      if (pos !== undefined) { issue.line = pos.line; issue.col = pos.col }
      c.issues.push(issue)
    }
    return { ok: false }
  }
}

/** Parses and checks a policy; never throws. Entries are returned only when there is no error. */
export function parsePolicy (text: string): ParsedPolicy {
  const c = new Collector(new Locator(text))
  const parsed = parseText(text, c)
  if (!parsed.ok) return { entries: [], issues: c.issues }
  const value = parsed.value
  if (value === null) {
    // Go decodes `null` into an empty list: a valid policy that allows nothing.
    c.add('warning', undefined, [], 'the policy is null: nothing is allowed')
    return { entries: [], issues: c.issues }
  }
  if (!Array.isArray(value)) {
    c.add('error', undefined, [], 'expected a list of policy entries (a JSON array)')
    return { entries: [], issues: c.issues }
  }
  const entries: PolicyEntry[] = []
  value.forEach((raw, i) => {
    const e = parseEntry(raw, i, c)
    if (e !== undefined) entries.push(e)
  })
  const failed = c.issues.some(i => i.severity === 'error')
  return { entries: failed ? [] : entries, issues: c.issues }
}

/** `source:line:col: policy entry 3: resource.verbs: expected an array of strings` */
export function formatIssue (issue: PolicyIssue, source?: string): string {
  const where: string[] = []
  if (source !== undefined) where.push(source)
  if (issue.line !== undefined) where.push(String(issue.line), String(issue.col ?? 1))
  const parts: string[] = []
  if (where.length > 0) parts.push(where.join(':'))
  if (issue.entry !== undefined) parts.push(`policy entry ${issue.entry}`)
  if (issue.field !== undefined) parts.push(issue.field)
  parts.push(issue.message)
  return parts.join(': ')
}

/** Parses a policy for use; throws PolicyError (a ConfigError) naming each error. */
export function loadPolicy (text: string, source: string): ParsedPolicy {
  const result = parsePolicy(text)
  const errors = result.issues.filter(i => i.severity === 'error')
  if (errors.length > 0) {
    const shown = errors.slice(0, 5).map(i => formatIssue(i, source)).join('; ')
    const more = errors.length > 5 ? ` (and ${errors.length - 5} more errors)` : ''
    throw new PolicyError(`invalid authorization policy: ${shown}${more}`, result.issues)
  }
  return result
}
