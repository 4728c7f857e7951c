import { LRUCache } from 'lru-cache'
import { EXTRA_ACCESS_RULES, EXTRA_PROJECT_ID, EXTRA_PROJECT_NAME, EXTRA_ROLES } from '../identity.js'
import { accessRulesVerdict } from './access-rules.js'
import { ConfigError, errorMessage } from '../errors.js'
import { compilePolicy, hasKeystoneIdentity, type CompiledPolicy } from './compile.js'
import { loadPolicy } from './policy.js'
import type { AccessRequest, Decision, PolicyIssue } from './types.js'

// The authorization engine: holds the compiled policy in effect, swaps it atomically on a good
// load, keeps it on a bad one, and caches decisions until the next change.

export const NO_POLICY_REASON = 'no authorization policy is configured'

export type ReloadResult = 'ok' | 'error'

export interface PolicyEngineOptions {
  /** Decision cache size in entries; 0 disables the cache. Default 10000. */
  cacheMax?: number
  /** Go behaviour for v2 keys: `ns/pods` also grants `pods/<any subresource>`. */
  subresourceCompat?: boolean
  /** Opt-in, not Go: a v2 namespace part other than `*` also matches requests without a namespace. */
  looseNamespaces?: boolean
  /** Called after every load() (ok or error), e.g. to count reloads in a metric. */
  onReload?: (result: ReloadResult, source: string) => void
}

export interface PolicyStatus {
  /** A policy is in effect (possibly with zero entries). */
  loaded: boolean
  source?: string
  entries: number
  /** Why the last load failed, while that failure is the latest word; cleared by a good load. */
  lastError?: string
  lastErrorAt?: Date
  /** Bumped on every change of the policy in effect. */
  generation: number
  /** Warnings of the policy in effect (fields Go ignores, keys that never match, ...). */
  warnings: PolicyIssue[]
}

export interface CacheStats {
  hits: number
  misses: number
  size: number
}

const DEFAULT_CACHE_MAX = 10_000
// Bounds memory even when keys are large (many groups): about 64 MiB of key text at most.
const CACHE_MAX_KEY_CHARS = 32 * 1024 * 1024

function extraOf (extra: Record<string, string[]>, key: string): string[] {
  return Object.hasOwn(extra, key) ? (extra[key] ?? []) : []
}

/** A string with its length in front: concatenations of these can be split back apart. */
function field (s: string): string {
  return `${s.length}:${s}`
}

function list (xs: readonly string[]): string {
  let out = `${xs.length}[`
  for (const x of xs) out += `${x.length}:${x}`
  return out
}

/**
 * Everything a decision depends on, and nothing else: whether the request carries a Keystone
 * identity at all, the user, the uid, groups, the three Keystone extras, and the request attributes the policy can look at (not `name` or `version`,
 * which no rule reads, so that requests for different objects share one cache entry).
 *
 * Every part is length-prefixed, so two different requests never share a key (a key is a decision
 * served to somebody else); cheaper than JSON.stringify of the same parts, which escapes as it goes.
 */
export function decisionCacheKey (req: AccessRequest): string {
  const who = (hasKeystoneIdentity(req.extra) ? 'k' : '-') + field(req.user) + field(req.uid ?? '') + list(req.groups) + list(extraOf(req.extra, EXTRA_ROLES)) +
    list(extraOf(req.extra, EXTRA_PROJECT_ID)) + list(extraOf(req.extra, EXTRA_PROJECT_NAME)) +
    (Object.hasOwn(req.extra, EXTRA_ACCESS_RULES) ? 'a' + list(extraOf(req.extra, EXTRA_ACCESS_RULES)) : '-')
  if (req.resource !== undefined) {
    const r = req.resource
    // Access rules read the object name and the version too (they see the request path).
    const path = Object.hasOwn(req.extra, EXTRA_ACCESS_RULES) ? field(r.name) + field(r.version) : ''
    return 'r' + who + field(r.verb) + field(r.namespace) + field(r.group) + field(r.resource) + field(r.subresource) + path
  }
  const n = req.nonResource
  return 'n' + who + field(n?.verb ?? '') + field(n?.path ?? '')
}

export class PolicyEngine {
  private policy: CompiledPolicy | undefined
  private readonly cache: LRUCache<string, Decision> | undefined
  private readonly opts: PolicyEngineOptions
  private hits = 0
  private misses = 0
  private state: PolicyStatus = { loaded: false, entries: 0, generation: 0, warnings: [] }

  constructor (opts: PolicyEngineOptions = {}) {
    this.opts = opts
    const max = opts.cacheMax ?? DEFAULT_CACHE_MAX
    if (!Number.isInteger(max) || max < 0) throw new ConfigError(`decision cache size must be a non-negative integer, got ${max}`)
    if (max > 0) {
      this.cache = new LRUCache<string, Decision>({
        max,
        maxSize: CACHE_MAX_KEY_CHARS,
        sizeCalculation: (_v, k) => k.length + 64
      })
    }
  }

  /**
   * Parses, checks and compiles `text`, then puts it in effect. On any error the policy in
   * effect stays, the error is recorded in `status`, and a ConfigError naming entry and field
   * is thrown.
   */
  load (text: string, source: string): { entries: number, warnings: PolicyIssue[] } {
    let compiled: CompiledPolicy
    let warnings: PolicyIssue[]
    try {
      const parsed = loadPolicy(text, source)
      compiled = compilePolicy(parsed.entries, {
        subresourceCompat: this.opts.subresourceCompat === true,
        looseNamespaces: this.opts.looseNamespaces === true
      })
      warnings = parsed.issues.filter(i => i.severity === 'warning')
    } catch (err) {
      const configErr = err instanceof ConfigError ? err : new ConfigError(`cannot load authorization policy ${source}: ${errorMessage(err)}`, { cause: err })
      this.state = { ...this.state, lastError: configErr.message, lastErrorAt: new Date() }
      this.opts.onReload?.('error', source)
      throw configErr
    }
    this.install(compiled, source, warnings)
    this.opts.onReload?.('ok', source)
    return { entries: compiled.entries, warnings }
  }

  /**
   * Records a failure that happened before load() could run (the file cannot be read): the
   * policy in effect stays, and status/onReload say why, as for a broken policy.
   */
  reportError (message: string, source: string): void {
    this.state = { ...this.state, lastError: message, lastErrorAt: new Date() }
    this.opts.onReload?.('error', source)
  }

  /** No policy in effect: every request is denied (no opinion), as in Go without a policy. */
  clear (source: string): void {
    this.policy = undefined
    this.cache?.clear()
    this.state = { loaded: false, source, entries: 0, generation: this.state.generation + 1, warnings: [] }
  }

  authorize (req: AccessRequest): Decision {
    const policy = this.policy
    if (policy === undefined) return accessRulesVerdict(req) ?? { allowed: false, reason: NO_POLICY_REASON }
    if (this.cache === undefined) return accessRulesVerdict(req) ?? policy.decide(req)
    const key = decisionCacheKey(req)
    const cached = this.cache.get(key)
    if (cached !== undefined) {
      this.hits++
      return cached
    }
    this.misses++
    const decision = accessRulesVerdict(req) ?? policy.decide(req)
    this.cache.set(key, decision)
    return decision
  }

  get status (): Readonly<PolicyStatus> {
    return this.state
  }

  get cacheStats (): CacheStats {
    return { hits: this.hits, misses: this.misses, size: this.cache?.size ?? 0 }
  }

  private install (compiled: CompiledPolicy, source: string, warnings: PolicyIssue[]): void {
    this.policy = compiled
    this.cache?.clear()
    this.state = { loaded: true, source, entries: compiled.entries, generation: this.state.generation + 1, warnings }
  }
}
