import { LRUCache } from 'lru-cache'
import type { Logger } from 'pino'
import { KeystoneRejectedError, KeystoneUnavailableError } from '../errors.js'
import type { KeystoneClient } from '../keystone/client.js'
import type { ServiceToken } from '../keystone/service-token.js'
import type { Group, RevocationEvent, TokenInfo } from '../keystone/types.js'
import type { RoleMapping } from '../config/sync-config.js'
import type { ScopeKind, UsernameFormat } from '../config/server-options.js'
import { applyRoleMappings, identityFrom } from './identity.js'
import { screenKeystoneNames } from './keystone-names.js'
import { accessRulesGate, type AccessRulesOptions } from './access-rules-gate.js'
import { revokes, tokenValues, type TokenValues } from './revocation.js'
import { tokenKey } from './token-key.js'
import { EXTRA_ACCESS_RULES, type UserInfo } from '../identity.js'
import { KeystoneBusyError, ValidationLimit } from './validation-limit.js'

export type AuthResult =
  | { authenticated: true, user: UserInfo, info: TokenInfo, cached: boolean }
  | { authenticated: false, reason: string, cached: boolean }

/** Printable ASCII without spaces: every character a Keystone token can have. */
const KEYSTONE_TOKEN_CHARS = /^[\x21-\x7e]+$/

export type CacheEvent = 'hit' | 'negative_hit' | 'miss' | 'shared'

export interface AuthenticatorOptions {
  keystone: KeystoneClient
  /** Service mode: validate with the webhook's own token instead of the user's. */
  serviceToken?: ServiceToken
  logger: Logger
  getRoleMappings?: () => readonly RoleMapping[]
  allowedScopes?: readonly ScopeKind[]
  usernameFormat?: UsernameFormat
  /** Put before the Keystone username and group names (not the project id, not role-mapping output). */
  usernamePrefix?: string
  groupsPrefix?: string
  /** Positive-entry TTL in ms; 0 turns the token cache off. Capped by the token's own expiry. */
  cacheTtlMs?: number
  negativeCacheTtlMs?: number
  /** Entries of the valid-token cache. */
  cacheMax?: number
  /**
   * Entries of the rejected-token cache, a separate LRU: tokens anyone can make up (junk) must not
   * evict the identities of real users, so they never share a cache with them.
   */
  negativeCacheMax?: number
  groupsCacheTtlMs?: number
  /**
   * Token validations talking to Keystone at once (single flight already merges the same token);
   * as many more wait, and beyond that a review is answered HTTP 500 (KeystoneBusyError). 0: no bound.
   */
  maxInflight?: number
  onCache?: (event: CacheEvent) => void
  /** Application-credential access rules: which service type we are, and whether we enforce them. */
  accessRules?: AccessRulesOptions
  /** A validation refused because maxInflight were running and as many waiting. */
  onBusy?: () => void
  /**
   * A cached token used again this long after Keystone last checked it is served, and checked
   * again in the background, so that what Keystone records no revocation event for (a role
   * removed, an application credential deleted, a project disabled) ends within about this long
   * for tokens in use. 0: never (a cached token lives out cacheTtlMs).
   */
  revalidateAfterMs?: number
  /** The result of a background re-validation: still valid, refused now (dropped), or Keystone could not say (kept). */
  onRevalidate?: (result: 'ok' | 'revoked' | 'error') => void
  /** The clock of revalidateAfterMs (milliseconds), for tests that must not depend on timing. */
  now?: () => number
}

interface Validated {
  info: TokenInfo
  groups: Group[]
  /** The identity last answered for this token, and the role mappings it was built with. */
  answered?: { mappings: readonly RoleMapping[], user: UserInfo }
  /** A restricted application credential's rules (`METHOD path`), carried to the authorizer. */
  accessRules?: string[]
  /** The token as revocation events are matched against it, made on the first event. */
  values?: TokenValues
  /** When Keystone last said the token is valid (ms); a background re-validation moves it. */
  checkedAt: number
}

const NO_MAPPINGS: readonly RoleMapping[] = Object.freeze([])

/** An identity shared by every answer for one cached token must not be changed by any of them. */
function frozen (user: UserInfo): UserInfo {
  Object.freeze(user.groups)
  for (const values of Object.values(user.extra)) Object.freeze(values)
  Object.freeze(user.extra)
  return Object.freeze(user)
}

type Outcome = { ok: true, v: Validated } | { ok: false, reason: string }

/**
 * TokenReview logic: token -> Keystone validation -> groups -> identity, with a bounded cache
 * keyed by SHA-256 of the token and one Keystone call per token in flight. Keystone errors
 * propagate (KeystoneUnavailableError) and are never cached.
 */
export class Authenticator {
  readonly #o: Required<Omit<AuthenticatorOptions, 'serviceToken' | 'onCache' | 'onBusy' | 'onRevalidate'>> & Pick<AuthenticatorOptions, 'serviceToken' | 'onCache' | 'onBusy' | 'onRevalidate'>
  /** Valid tokens: the identities answered to real users. */
  readonly #tokens: LRUCache<string, Outcome & { ok: true }> | undefined
  /** Rejected tokens, kept apart (and small) so that junk cannot push out valid ones. */
  readonly #rejected: LRUCache<string, Outcome & { ok: false }> | undefined
  readonly #limit: ValidationLimit
  readonly #groups: LRUCache<string, Group[]>
  readonly #groupNames: LRUCache<string, string>
  readonly #inflight = new Map<string, Promise<Outcome>>()
  /**
   * Events applied lately: a validation that was on its way when an event came (Keystone said
   * "valid" just before the revocation) must not put the token back into the cache.
   */
  #recentRevocations: RevocationEvent[] = []

  constructor (opts: AuthenticatorOptions) {
    this.#o = {
      getRoleMappings: () => NO_MAPPINGS,
      allowedScopes: ['project'],
      usernameFormat: 'name',
      usernamePrefix: '',
      groupsPrefix: '',
      cacheTtlMs: 60_000,
      negativeCacheTtlMs: 10_000,
      cacheMax: 10_000,
      negativeCacheMax: 1000,
      groupsCacheTtlMs: 60_000,
      maxInflight: 0,
      revalidateAfterMs: 0,
      accessRules: {},
      now: Date.now,
      ...opts
    }
    const max = Math.max(1, this.#o.cacheMax)
    // --token-cache-ttl=0 turns both off: every review is checked with Keystone.
    if (this.#o.cacheTtlMs > 0) {
      this.#tokens = new LRUCache<string, Outcome & { ok: true }>({ max, ttl: this.#o.cacheTtlMs, ttlAutopurge: false })
      if (this.#o.negativeCacheTtlMs > 0 && this.#o.negativeCacheMax > 0) {
        this.#rejected = new LRUCache<string, Outcome & { ok: false }>({ max: this.#o.negativeCacheMax, ttl: this.#o.negativeCacheTtlMs, ttlAutopurge: false })
      }
    }
    this.#limit = new ValidationLimit(this.#o.maxInflight)
    this.#groups = new LRUCache<string, Group[]>({ max, ttl: Math.max(1, this.#o.groupsCacheTtlMs) })
    this.#groupNames = new LRUCache<string, string>({ max, ttl: 10 * 60_000 })
  }

  /** Entries of both token caches (valid and rejected). */
  get cacheSize (): number {
    return (this.#tokens?.size ?? 0) + (this.#rejected?.size ?? 0)
  }

  /** Token validations talking to Keystone now, and waiting for a turn (--keystone-max-inflight). */
  get validations (): { running: number, waiting: number, max: number } {
    return { running: this.#limit.running, waiting: this.#limit.waiting, max: this.#limit.max }
  }

  /**
   * Drops every cached token that one of these Keystone revocation events revokes (and the
   * cached groups of the users they name); returns how many tokens were dropped. Later
   * validations are checked against them too, for as long as a cached token could live.
   */
  applyRevocations (events: readonly RevocationEvent[]): number {
    if (events.length === 0) return 0
    const keep = Date.now() - this.#o.cacheTtlMs - 60_000
    this.#recentRevocations = [...this.#recentRevocations.filter(e => e.revokedAtMs >= keep), ...events].slice(-1000)
    for (const e of events) if (e.userId !== undefined) this.#groups.delete(e.userId)
    if (this.#tokens === undefined) return 0
    const dropped: string[] = []
    for (const [key, outcome] of this.#tokens.entries()) {
      const v = outcome.v
      v.values ??= tokenValues(v.info)
      const values = v.values
      if (events.some(e => revokes(e, values, 1000))) dropped.push(key)
    }
    for (const key of dropped) this.#tokens.delete(key)
    return dropped.length
  }

  /** Drops every cached token outcome and group list (e.g. after a config change). */
  clearCache (): void {
    this.#tokens?.clear()
    this.#rejected?.clear()
    this.#groups.clear()
  }

  async authenticate (token: string): Promise<AuthResult> {
    const key = tokenKey(token)
    const cached = this.#tokens?.get(key) ?? this.#rejected?.get(key)
    let outcome: Outcome
    let fromCache = false
    if (cached !== undefined) {
      this.#o.onCache?.(cached.ok ? 'hit' : 'negative_hit')
      outcome = cached
      fromCache = true
      if (cached.ok && this.#o.revalidateAfterMs > 0 && this.#o.now() - cached.v.checkedAt >= this.#o.revalidateAfterMs && !this.#inflight.has(key) && this.#limit.free) {
        // Served as it is; Keystone is asked again off the hot path, once (checkedAt moves now),
        // and only in a free --keystone-max-inflight slot: with none free, a later use asks.
        cached.v.checkedAt = this.#o.now()
        void this.#revalidate(token, key)
      }
    } else {
      const pending = this.#inflight.get(key)
      if (pending !== undefined) {
        this.#o.onCache?.('shared')
        outcome = await pending
        fromCache = true
      } else if (!KEYSTONE_TOKEN_CHARS.test(token)) {
        // Keystone tokens (Fernet, JWS) are printable ASCII. Anything else cannot be sent as a
        // header (undici refuses control characters and non-Latin-1): without this check such a
        // token became an HTTP 500 "Keystone unreachable", which kube-apiserver retries.
        this.#o.onCache?.('miss')
        return { authenticated: false, reason: 'the token has characters no Keystone token has', cached: false }
      } else {
        this.#o.onCache?.('miss')
        const p = this.#limited(token, key).finally(() => this.#inflight.delete(key))
        this.#inflight.set(key, p)
        outcome = await p
      }
    }
    if (!outcome.ok) return { authenticated: false, reason: outcome.reason, cached: fromCache }
    const v = outcome.v
    const { info, groups } = v
    if (info.expiresAt.getTime() <= Date.now()) {
      this.#tokens?.delete(key)
      return { authenticated: false, reason: 'token expired', cached: fromCache }
    }
    // Role mappings are read on every answer, so a sync-config change applies at once; the
    // identity is rebuilt only when they changed (a new config is a new array).
    const mappings = this.#o.getRoleMappings()
    let user = v.answered?.mappings === mappings ? v.answered.user : undefined
    if (user === undefined) {
      const built = identityFrom(info, groups, this.#o.usernameFormat, { username: this.#o.usernamePrefix, groups: this.#o.groupsPrefix })
      if (v.accessRules !== undefined) built.extra[EXTRA_ACCESS_RULES] = v.accessRules
      user = frozen(applyRoleMappings(built, mappings))
      v.answered = { mappings, user }
    }
    return { authenticated: true, user, info, cached: fromCache }
  }

  /**
   * Asks Keystone again about a cached token (see revalidateAfterMs): a token Keystone now
   * refuses leaves the cache, a valid one is cached afresh (current roles); when Keystone cannot
   * say, the cached answer stays. It starts only when a --keystone-max-inflight slot is free
   * (checked by the caller, and taken at once: nothing is awaited in between), so it never
   * takes a queue place from a review.
   */
  async #revalidate (token: string, key: string): Promise<void> {
    const p = (async (): Promise<Outcome> => await this.#limit.run(async () => await this.#validate(token, key)))()
    this.#inflight.set(key, p)
    try {
      const outcome = await p
      if (!outcome.ok) this.#tokens?.delete(key)
      this.#o.onRevalidate?.(outcome.ok ? 'ok' : 'revoked')
    } catch {
      this.#o.onRevalidate?.('error')
    } finally {
      this.#inflight.delete(key)
    }
  }

  /** #validate in a --keystone-max-inflight slot; refused (and counted) when none is to be had. */
  async #limited (token: string, key: string): Promise<Outcome> {
    try {
      return await this.#limit.run(async () => await this.#validate(token, key))
    } catch (err) {
      if (err instanceof KeystoneBusyError) this.#o.onBusy?.()
      throw err
    }
  }

  async #validate (token: string, key: string): Promise<Outcome> {
    const info = await this.#validateWithKeystone(token)
    let outcome: Outcome
    if (info === null) {
      outcome = { ok: false, reason: 'Keystone does not accept the token (invalid, expired or revoked)' }
    } else if (!this.#o.allowedScopes.includes(info.scope.kind)) {
      outcome = { ok: false, reason: `${info.scope.kind}-scoped tokens are not accepted (allowed: ${this.#o.allowedScopes.join(', ')})` }
    } else {
      const groups = await this.#groupsOf(info, token)
      if (groups === null) outcome = { ok: false, reason: 'Keystone rejected the token while reading its groups' }
      else {
        // Names made by whoever manages users or groups in some domain: no system:, no project-id look-alikes.
        const screened = screenKeystoneNames(info, groups, this.#o.usernameFormat, this.#o.logger)
        const gate = accessRulesGate(info.accessRules, this.#o.accessRules)
        if (!screened.ok) outcome = { ok: false, reason: screened.reason }
        else if (!gate.ok) {
          // Once per validation (the refusal is cached): an operator should see why a credential
          // that Keystone accepts cannot reach Kubernetes.
          this.#o.logger.warn({ user: info.user.id, applicationCredential: info.applicationCredentialId }, `token refused: ${gate.reason}`)
          outcome = { ok: false, reason: gate.reason }
        } else outcome = { ok: true, v: gate.rules !== undefined ? { info, groups: screened.groups, accessRules: gate.rules, checkedAt: this.#o.now() } : { info, groups: screened.groups, checkedAt: this.#o.now() } }
      }
    }
    if (outcome.ok && this.#recentRevocations.length > 0) {
      const values = tokenValues(outcome.v.info)
      if (this.#recentRevocations.some(e => revokes(e, values))) outcome = { ok: false, reason: 'Keystone revoked the token while it was being validated' }
    }
    if (outcome.ok) {
      const ttl = Math.min(this.#o.cacheTtlMs, outcome.v.info.expiresAt.getTime() - Date.now())
      if (ttl > 0) this.#tokens?.set(key, outcome, { ttl })
    } else {
      this.#rejected?.set(key, outcome)
    }
    return outcome
  }

  async #validateWithKeystone (token: string): Promise<TokenInfo | null> {
    const service = this.#o.serviceToken
    if (service === undefined) return await this.#o.keystone.validateToken(token)
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#o.keystone.validateToken(token, await service.get())
      } catch (err) {
        if (err instanceof KeystoneRejectedError && attempt === 0) {
          service.invalidate()
          continue
        }
        if (err instanceof KeystoneRejectedError) throw new KeystoneUnavailableError(err.message)
        throw err
      }
    }
  }

  /** Group list, or null when Keystone says the token went bad in between. */
  async #groupsOf (info: TokenInfo, token: string): Promise<Group[] | null> {
    if (info.federatedGroupIds !== undefined) return await this.#federatedGroups(info.federatedGroupIds)
    const cached = this.#groups.get(info.user.id)
    if (cached !== undefined) return cached
    const authToken = this.#o.serviceToken !== undefined ? await this.#o.serviceToken.get() : token
    try {
      const groups = await this.#o.keystone.listUserGroups(info.user.id, authToken)
      this.#groups.set(info.user.id, groups)
      return groups
    } catch (err) {
      if (!(err instanceof KeystoneRejectedError)) throw err
      if (err.status === 401) return null
      // 403/404: this Keystone's policy hides the user's groups from the token. Groups only ever
      // add permissions, so answer without them rather than lock the user out; say why.
      this.#o.logger.warn({ userId: info.user.id, status: err.status }, 'cannot list the user\'s Keystone groups; answering without them')
      return []
    }
  }

  /**
   * A federated token carries group ids only. A user's own token may not read group names
   * (403), so names come from the service token when there is one; otherwise ids are used.
   */
  async #federatedGroups (ids: readonly string[]): Promise<Group[]> {
    const service = this.#o.serviceToken
    if (service === undefined) return ids.map(id => ({ id, name: id }))
    const out: Group[] = []
    for (const id of ids) {
      const name = this.#groupNames.get(id) ?? await this.#groupName(id, service)
      out.push({ id, name })
    }
    return out
  }

  /** A federated group's name through the service token; only real names are cached. */
  async #groupName (id: string, service: ServiceToken): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      try {
        const group = await this.#o.keystone.getGroup(id, await service.get())
        if (group === null) return id
        this.#groupNames.set(id, group.name)
        return group.name
      } catch (err) {
        if (!(err instanceof KeystoneRejectedError)) throw err
        // 401: the service token itself went bad (revoked, expired early): log in again once.
        if (err.status === 401 && attempt === 0) {
          service.invalidate()
          continue
        }
        this.#o.logger.warn({ groupId: id, status: err.status }, 'service credential cannot read a federated group; using its id')
        return id
      }
    }
  }
}
