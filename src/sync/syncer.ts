import { LRUCache } from 'lru-cache'
import { EXTRA_PROJECT_ID, EXTRA_PROJECT_NAME, EXTRA_ROLES, EXTRA_USER_DOMAIN_ID, type UserInfo } from '../identity.js'
import type { SyncConfig } from '../config/sync-config.js'
import { ERR, KsaError, errorMessage } from '../errors.js'
import type { Logger } from '../log.js'
import { KubeApiError } from '../kube/api-error.js'
import type { KubeClient, RoleBindingRecord } from '../kube/client.js'
import { namespaceName } from './namespace-name.js'
import { isSyncedBindingOf, roleBindingName } from './rolebinding-name.js'

// Keystone -> Kubernetes sync after a successful TokenReview (Go's Syncer.syncData), awaited
// before the review is answered so that the user's first request finds its namespace and
// bindings:
//   projects:          the namespace named by namespace-format exists (get, create on 404).
//   role_assignments:  RoleBinding `<user id>_<role>` -> ClusterRole `<role>` for User
//                      `<username>` exists for each role in the token; the user's other synced
//                      bindings in that namespace are deleted. Synced = labelled
//                      app.kubernetes.io/managed-by=k8s-keystone-auth and named exactly
//                      `<user id>_<its ClusterRole>`; nothing else is changed or deleted.
// Differences from Go: Go (sync.go, syncRoleAssignmentsData) deletes every binding whose name's
// part before the first `_` is the user id, labelled or not (Go sets no label), so an admin's
// binding named like that, or another user's where ids contain `_`, was deleted; we delete only
// synced bindings as above, and leave Go-made ones alone. What was synced (user, username,
// project, namespace, role set, data types) is remembered for rememberTtlMs, so repeated reviews
// do not call the Kubernetes API (Go lists RoleBindings on every review); concurrent identical
// syncs share one run; syncs of the same user and namespace run one after another, not under one
// global lock. A failure never throws: it is logged and reported through onResult('error'), and
// not remembered, so the next review retries.

export type SyncOutcome = 'ok' | 'error' | 'skipped' | 'remembered'

export interface SyncerOptions {
  client: KubeClient
  getConfig: () => SyncConfig
  logger: Logger
  /** How long a completed sync is remembered (default 5 min). 0 disables remembering. */
  rememberTtlMs?: number
  /** How many completed syncs are remembered (default 10000). */
  rememberMax?: number
  onResult?: (outcome: SyncOutcome) => void
  /**
   * Longest a review waits for sync (default 5 s). Past it the review goes on ('error' outcome,
   * logged) and the sync finishes in the background; once it has succeeded it is remembered like
   * any other, since the objects are then in place. Go has no bound, so a hung apiserver hangs every login.
   */
  timeoutMs?: number
}

export class SyncTimeoutError extends KsaError {
  constructor (ms: number) {
    super(ERR.SYNC_TIMEOUT, `sync did not finish within ${ms} ms; the review goes on, sync continues in the background`)
    this.name = 'SyncTimeoutError'
  }
}

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by'
export const MANAGED_BY = 'k8s-keystone-auth'
/** On each RoleBinding sync makes: the Keystone project it was made for (read by the reconcile). */
export const PROJECT_ANNOTATION = 'k8s-keystone-auth/project-id'

/** Made by sync (ours or a previous version of it): carries app.kubernetes.io/managed-by=k8s-keystone-auth. */
function isManaged (b: RoleBindingRecord): boolean {
  return b.labels[MANAGED_BY_LABEL] === MANAGED_BY
}

interface Plan {
  userId: string
  username: string
  projectId: string
  namespace: string
  roles: string[]
  syncProjects: boolean
  syncRoles: boolean
}

export class Syncer {
  readonly #client: KubeClient
  readonly #getConfig: () => SyncConfig
  readonly #log: Logger
  readonly #onResult: ((o: SyncOutcome) => void) | undefined
  readonly #remembered: LRUCache<string, true> | undefined
  readonly #inflight = new Map<string, Promise<void>>()
  /** Last run per user+namespace; a new run for the same pair waits for it. */
  readonly #tails = new Map<string, Promise<unknown>>()
  readonly #timeoutMs: number

  constructor (opts: SyncerOptions) {
    this.#client = opts.client
    this.#getConfig = opts.getConfig
    this.#log = opts.logger
    this.#onResult = opts.onResult
    this.#timeoutMs = opts.timeoutMs ?? 5_000
    const ttl = opts.rememberTtlMs ?? 5 * 60_000
    if (ttl > 0) this.#remembered = new LRUCache<string, true>({ max: opts.rememberMax ?? 10_000, ttl, ttlAutopurge: false })
  }

  /** Forget every remembered sync (e.g. after a config change an operator wants applied now). */
  forget (): void { this.#remembered?.clear() }

  /** Never throws. */
  async sync (user: UserInfo): Promise<void> {
    let outcome: SyncOutcome
    let timer: NodeJS.Timeout | undefined
    try {
      const deadline = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new SyncTimeoutError(this.#timeoutMs)), this.#timeoutMs)
      })
      const run = this.#sync(user)
      run.catch(() => {}) // a run that loses the race must not become an unhandled rejection
      outcome = await Promise.race([run, deadline])
    } catch (err) {
      outcome = 'error'
      const fields: Record<string, unknown> = { user: user.username, userId: user.uid, err: errorMessage(err) }
      if (err instanceof KubeApiError) { fields.status = err.status; fields.reason = err.reason }
      this.#log.warn(fields, 'Keystone to Kubernetes sync failed; authentication is not affected')
    } finally {
      clearTimeout(timer)
    }
    try { this.#onResult?.(outcome) } catch { /* a metrics hook must not break authentication */ }
  }

  async #sync (user: UserInfo): Promise<SyncOutcome> {
    const cfg = this.#getConfig()
    const plan = this.#plan(user, cfg)
    if (plan === null) return 'skipped'
    const key = JSON.stringify([plan.userId, plan.username, plan.projectId, plan.namespace, plan.roles, plan.syncProjects, plan.syncRoles])
    if (this.#remembered?.get(key) === true) return 'remembered'

    let run = this.#inflight.get(key)
    if (run === undefined) {
      const pair = `${plan.userId}\u0000${plan.namespace}`
      const before = this.#tails.get(pair) ?? Promise.resolve()
      run = before.catch(() => {}).then(async () => await this.#apply(plan))
      const tail = run.catch(() => {})
      this.#tails.set(pair, tail)
      void tail.then(() => { if (this.#tails.get(pair) === tail) this.#tails.delete(pair) })
      this.#inflight.set(key, run)
      void run.catch(() => {}).finally(() => this.#inflight.delete(key))
      await run
      this.#remembered?.set(key, true)
      return 'ok'
    }
    await run
    return 'ok'
  }

  #plan (user: UserInfo, cfg: SyncConfig): Plan | null {
    const syncProjects = cfg.dataTypesToSync.includes('projects')
    const syncRoles = cfg.dataTypesToSync.includes('role_assignments')
    if (!syncProjects && !syncRoles) return null
    const projectId = user.extra[EXTRA_PROJECT_ID]?.[0]
    // Not project-scoped (unscoped, domain or system token): nothing to sync, as Go.
    if (projectId === undefined || projectId === '') return null
    const projectName = user.extra[EXTRA_PROJECT_NAME]?.[0] ?? ''
    if (cfg.projectsBlacklist.includes(projectId) || cfg.projectsNameBlacklist.includes(projectName)) {
      this.#log.debug({ projectId, projectName }, 'project is blacklisted; not syncing')
      return null
    }
    if (user.uid === '') return null
    const domainId = user.extra[EXTRA_USER_DOMAIN_ID]?.[0] ?? ''
    const namespace = namespaceName(cfg.namespaceFormat, projectId, projectName, domainId)
    if (namespace === '') return null
    const roles = [...new Set(user.extra[EXTRA_ROLES] ?? [])].filter(r => r !== '').sort()
    return { userId: user.uid, username: user.username, projectId, namespace, roles, syncProjects, syncRoles }
  }

  async #apply (p: Plan): Promise<void> {
    const log = this.#log.child({ namespace: p.namespace, userId: p.userId })
    if (p.syncProjects) {
      const ns = await this.#client.getNamespace(p.namespace)
      if (ns === null) {
        const r = await this.#client.createNamespace(p.namespace, { [MANAGED_BY_LABEL]: MANAGED_BY })
        log.info({ projectId: p.projectId, result: r }, 'namespace for Keystone project created')
      }
    }
    if (!p.syncRoles) return
    const existing = await this.#client.listRoleBindings(p.namespace)
    const wanted = new Map(p.roles.map(role => [roleBindingName(p.userId, role), role]))
    const byName = new Map(existing.map(b => [b.name, b]))
    for (const b of existing) {
      // Only what we made is ever ours to delete: our label (a hand-made binding under a name
      // like ours has none) and this user's exact name for its roleRef (not `<id>_*`).
      if (!isManaged(b) || b.roleRef.kind !== 'ClusterRole' || !isSyncedBindingOf(p.userId, b.name, b.roleRef.name) || wanted.has(b.name)) continue
      // The user no longer holds this role in this project (or it was renamed): revoke.
      await this.#client.deleteRoleBinding(p.namespace, b.name)
      log.info({ roleBinding: b.name }, 'role binding for a revoked Keystone role deleted')
    }
    for (const [name, role] of wanted) {
      const found = byName.get(name)
      if (found !== undefined) {
        // Left as it is whoever made it; one without our label (hand-made, or by the Go binary,
        // which sets none) is never changed or deleted by sync.
        if (!isManaged(found)) log.warn({ roleBinding: name, clusterRole: role }, `role binding not made by ${MANAGED_BY} (no ${MANAGED_BY_LABEL}=${MANAGED_BY} label) already has this name; left unchanged`)
        continue
      }
      const r = await this.#client.createRoleBinding(p.namespace, {
        name,
        roleRef: { kind: 'ClusterRole', name: role },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: p.username }],
        labels: { [MANAGED_BY_LABEL]: MANAGED_BY },
        annotations: { [PROJECT_ANNOTATION]: p.projectId }
      })
      log.info({ roleBinding: name, clusterRole: role, result: r }, 'role binding for a Keystone role created')
    }
  }
}
