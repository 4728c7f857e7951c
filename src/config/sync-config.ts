import { LineCounter, isAlias, isMap, isScalar, isSeq, parseAllDocuments, visit, type Document, type YAMLMap } from 'yaml'
import { ConfigError } from '../errors.js'
import { withWarnings } from './warnings.js'

// The sync config of the Go k8s-keystone-auth (file --sync-config-file or ConfigMap key
// `syncConfig`), same YAML keys, read as Go reads it: gopkg.in/yaml.v2 decoding into the
// syncConfig struct of pkg/identity/keystone/sync.go (v1.32.1), then its validate().
//
// What yaml.v2 lets through is accepted here too, with a warning naming the line: a key the struct
// does not have (ignored), a number or boolean where a string is expected (yaml.v2 keeps the
// scalar's text: `keystone-role: 1` is "1", `0x10` is "0x10"), a repeated key (the last wins), a
// role mapping without keystone-role (Go's syncRoles never applies it), an empty one (Go would
// dereference nil), documents after the first (yaml.v2 reads only the first). What yaml.v2 refuses
// (a mapping or a list where a string is expected, a single value where a list is expected, a
// document that is not a mapping, bad YAML) and what validate() refuses (a data type other than
// projects and role_assignments, a namespace-format without %i or that cannot make a name) is an
// error: a refused start, or a refused ConfigMap edit with the last good config kept. Unlike Go,
// an edit is never half-applied, and validate() also applies to ConfigMap edits.

export const DATA_TYPES = ['projects', 'role_assignments'] as const
export type DataType = typeof DATA_TYPES[number]

export interface RoleMapping {
  keystoneRole: string
  username?: string
  groups: string[]
}

export interface SyncConfig {
  dataTypesToSync: DataType[]
  namespaceFormat: string
  projectsBlacklist: string[]
  projectsNameBlacklist: string[]
  roleMappings: RoleMapping[]
}

export function defaultSyncConfig (): SyncConfig {
  return { dataTypesToSync: [], namespaceFormat: '%i', projectsBlacklist: [], projectsNameBlacklist: [], roleMappings: [] }
}

/**
 * Validates a namespace format as Go's validate() does: must contain %i; with %i/%n/%d replaced it
 * must be a name. The reasons are Go's own texts (pkg/identity/keystone/sync.go, and its
 * sync_test.go checks them), so that a search for either binary's message finds the other.
 */
export function checkNamespaceFormat (format: string): string | null {
  if (!format.includes('%i')) return 'format string should comprise a %i substring (keystone project id)'
  const sample = format.replaceAll('%i', 'aa').replaceAll('%n', 'aa').replaceAll('%d', 'aa')
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*[a-zA-Z0-9]$/.test(sample)) {
    return "namespace name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
  }
  return null
}

/** A node of the parsed document, before aliases are followed. */
type YNode = unknown

/** Alias hops allowed in one document: bounds the work a document of nested aliases can cause. */
const MAX_ALIASES = 1000

/** Decodes one YAML document as yaml.v2 decodes it into Go struct fields of type string and []string. */
class Decoder {
  readonly warnings: string[] = []
  readonly errors: string[] = []
  #aliases = 0
  readonly #merging = new Set<object>()

  constructor (readonly doc: Document, readonly lines: LineCounter, readonly source: string) {}

  /** `<source>: <path>: <message> (line N)`; `sep` ' ' reads `namespace-format "x" must ...`. */
  format (path: string, node: YNode, message: string, sep = ': '): string {
    const range = (node as { range?: [number, number, number] } | null | undefined)?.range
    const line = range !== undefined ? ` (line ${this.lines.linePos(range[0]).line})` : ''
    return `${this.source}: ${path === '' ? '(top level)' : path}${sep}${message}${line}`
  }

  warn (path: string, node: YNode, message: string): void {
    this.warnings.push(this.format(path, node, message))
  }

  fail (path: string, node: YNode, message: string, sep?: string): void {
    this.errors.push(this.format(path, node, message, sep))
  }

  /** Follows aliases; undefined (after an error) for an unknown anchor or too many hops. */
  deref (node: YNode, path: string): YNode {
    let n = node
    while (isAlias(n)) {
      if (++this.#aliases > MAX_ALIASES) {
        this.fail(path, node, `more than ${MAX_ALIASES} aliases in the document`)
        return undefined
      }
      const target = n.resolve(this.doc)
      if (target === undefined) {
        this.fail(path, n, `unknown anchor ${JSON.stringify(n.source)}`)
        return undefined
      }
      n = target
    }
    return n
  }

  isNull (n: YNode): boolean {
    return n === null || n === undefined || (isScalar(n) && n.value === null)
  }

  describe (n: YNode): string {
    if (isMap(n)) return 'a mapping'
    if (isSeq(n)) return 'a list'
    return `the single value ${JSON.stringify(isScalar(n) ? (n.source ?? String(n.value)) : String(n))}`
  }

  /** A Go string field: null is "", any other scalar its text; a mapping or a list is an error. */
  string (node: YNode, path: string): string | undefined {
    const n = this.deref(node, path)
    if (n === undefined && node !== undefined) return undefined
    if (this.isNull(n)) return ''
    if (isScalar(n)) {
      const v = n.value
      if (typeof v === 'string') return v
      const text = n.source ?? String(v)
      const what = typeof v === 'number' ? 'the number' : typeof v === 'boolean' ? 'the boolean' : 'the value'
      this.warn(path, n, `${what} ${text} is read as the string ${JSON.stringify(text)}, as Go does; quote it to say so`)
      return text
    }
    this.fail(path, n, `expected a string, got ${this.describe(n)}`)
    return undefined
  }

  /** A Go []string field: null is empty; a single value or a mapping is an error. */
  stringList (node: YNode, path: string): string[] | undefined {
    const n = this.deref(node, path)
    if (n === undefined && node !== undefined) return undefined
    if (this.isNull(n)) return []
    if (!isSeq(n)) {
      const hint = isScalar(n) ? ` (write [${n.source ?? String(n.value)}])` : ''
      this.fail(path, n, `expected a list, got ${this.describe(n)}${hint}`)
      return undefined
    }
    const out: string[] = []
    let ok = true
    n.items.forEach((item, i) => {
      const s = this.string(item, `${path}.${i}`)
      if (s === undefined) ok = false
      else out.push(s)
    })
    return ok ? out : undefined
  }

  /**
   * The key/value pairs of a mapping in order, `<<` merge keys expanded in place (yaml.v2 decodes
   * the merged mapping at that point; of a list of mappings, the first wins).
   */
  pairs (map: YAMLMap, path: string): Array<{ key: string, keyNode: YNode, value: YNode, merged: boolean }> {
    const out: Array<{ key: string, keyNode: YNode, value: YNode, merged: boolean }> = []
    if (this.#merging.has(map)) {
      this.fail(path, map, 'a mapping merges itself (<<)')
      return out
    }
    this.#merging.add(map)
    for (const pair of map.items) {
      const k = this.deref(pair.key, path)
      if (isScalar(k) && k.type === 'PLAIN' && k.source === '<<') {
        const v = this.deref(pair.value, path)
        const sources = isSeq(v) ? [...v.items].reverse().map(item => this.deref(item, path)) : [v]
        for (const m of sources) {
          if (isMap(m)) out.push(...this.pairs(m, path).map(p => ({ ...p, merged: true })))
          else this.fail(path, pair.value ?? k, 'a merge key (<<) needs a mapping or a list of mappings')
        }
        continue
      }
      if (k !== undefined && !this.isNull(k) && !isScalar(k)) {
        this.fail(path, k, `expected a key, got ${this.describe(k)}`)
        continue
      }
      const key = isScalar(k) && k.value !== null ? (typeof k.value === 'string' ? k.value : (k.source ?? String(k.value))) : ''
      out.push({ key, keyNode: k ?? pair.key, value: pair.value, merged: false })
    }
    this.#merging.delete(map)
    return out
  }

  /** A Go struct: known keys to their handler, unknown keys ignored with a warning, as yaml.v2 ignores them. */
  struct (node: YNode, path: string, what: string, fields: Record<string, (value: YNode, path: string) => void>): boolean {
    const n = this.deref(node, path)
    if (n === undefined && node !== undefined) return false
    if (this.isNull(n)) return true
    if (!isMap(n)) {
      this.fail(path, n, `expected ${what}, got ${this.describe(n)}`)
      return false
    }
    const seen = new Set<string>()
    for (const { key, keyNode, value, merged } of this.pairs(n, path)) {
      const at = path === '' ? key : `${path}.${key}`
      const handle = Object.hasOwn(fields, key) ? fields[key] : undefined
      if (handle === undefined) {
        if (!merged) this.warn(at, keyNode, `unknown key ${JSON.stringify(key)} ignored, as Go does (known keys: ${Object.keys(fields).join(', ')})`)
        continue
      }
      if (!merged && seen.has(key)) this.warn(at, keyNode, 'key given more than once; the last one is used, as Go does')
      if (!merged) seen.add(key)
      handle(value, at)
    }
    return true
  }
}

function decode (d: Decoder): SyncConfig {
  const cfg = defaultSyncConfig()
  d.struct(d.doc.contents, '', 'a mapping of sync config keys', {
    'data-types-to-sync': (node, path) => {
      const list = d.stringList(node, path)
      if (list === undefined) return
      const n = d.deref(node, path)
      const items = isSeq(n) ? n.items : []
      const types: DataType[] = []
      list.forEach((v, i) => {
        if ((DATA_TYPES as readonly string[]).includes(v)) types.push(v as DataType)
        // Go's validate() text (sync.go), which sync_test.go checks.
        else d.fail(`${path}.${i}`, d.deref(items[i], path), `Unsupported data type to sync: ${v}. Available values: ${DATA_TYPES.join(',')}`)
      })
      cfg.dataTypesToSync = [...new Set(types)]
    },
    'namespace-format': (node, path) => {
      const f = d.string(node, path)
      if (f === undefined) return
      if (f === '') {
        cfg.namespaceFormat = '%i'
        return
      }
      const problem = checkNamespaceFormat(f)
      if (problem !== null) d.fail(path, d.deref(node, path), `${JSON.stringify(f)}: ${problem}`, ' ')
      else cfg.namespaceFormat = f
    },
    'projects-blacklist': (node, path) => { cfg.projectsBlacklist = d.stringList(node, path) ?? cfg.projectsBlacklist },
    'projects-name-blacklist': (node, path) => { cfg.projectsNameBlacklist = d.stringList(node, path) ?? cfg.projectsNameBlacklist },
    'role-mappings': (node, path) => {
      const n = d.deref(node, path)
      if (n === undefined && node !== undefined) return
      cfg.roleMappings = []
      if (d.isNull(n)) return
      if (!isSeq(n)) {
        d.fail(path, n, `expected a list of role mappings, got ${d.describe(n)}`)
        return
      }
      n.items.forEach((item, i) => {
        const at = `${path}.${i}`
        const m = d.deref(item, at)
        if (m === undefined && item !== undefined) return
        if (d.isNull(m)) {
          d.warn(at, item, 'empty role mapping ignored')
          return
        }
        const raw = { keystoneRole: '', username: '', groups: [] as string[] }
        const ok = d.struct(m, at, 'a role mapping (keystone-role, username, groups)', {
          'keystone-role': (v, p) => { raw.keystoneRole = d.string(v, p) ?? raw.keystoneRole },
          username: (v, p) => { raw.username = d.string(v, p) ?? raw.username },
          groups: (v, p) => { raw.groups = d.stringList(v, p) ?? raw.groups }
        })
        if (!ok) return
        if (raw.keystoneRole === '') {
          d.warn(at, m, 'role mapping without keystone-role ignored (it never applies, in Go either)')
          return
        }
        const out: RoleMapping = { keystoneRole: raw.keystoneRole, groups: raw.groups }
        if (raw.username !== '') out.username = raw.username
        cfg.roleMappings.push(out)
      })
    }
  })
  return cfg
}

/**
 * Parses sync config YAML. Throws ConfigError naming `source`, the key and the line. The returned
 * value carries the warnings (see warningsOf in ./warnings.ts) for whoever applies it to log.
 */
export function parseSyncConfig (text: string, source: string): SyncConfig {
  const lines = new LineCounter()
  const docs = parseAllDocuments(text, { lineCounter: lines, uniqueKeys: false, prettyErrors: false })
  const doc = Array.isArray(docs) ? docs[0] : undefined
  if (doc === undefined) return defaultSyncConfig()
  const bad = doc.errors[0]
  if (bad !== undefined) {
    const line = bad.pos[0] >= 0 ? ` (line ${lines.linePos(bad.pos[0]).line})` : ''
    throw new ConfigError(`${source}: not valid YAML: ${bad.message.split('\n')[0] ?? ''}${line}`)
  }
  const d = new Decoder(doc, lines, source)
  for (const w of doc.warnings) d.warnings.push(`${source}: ${w.message.split('\n')[0] ?? ''}`)
  // yaml.v2 refuses an alias to an unknown anchor anywhere, even under a key it then ignores.
  visit(doc, {
    Alias: (_key, node) => {
      if (node.resolve(doc) === undefined) d.fail('', node, `unknown anchor ${JSON.stringify(node.source)}`)
      return visit.SKIP
    }
  })
  if (d.errors.length > 0) throw new ConfigError(d.errors.join('; '))
  const cfg = decode(d)
  if (d.errors.length > 0) throw new ConfigError(d.errors.join('; '))
  const extra = (docs as Document[]).slice(1)
  if (extra.length > 0) {
    d.warn('', extra[0]?.contents ?? extra[0], `only the first YAML document is read, as Go does; ${extra.length} more ignored`)
  }
  return withWarnings(cfg, d.warnings)
}
