import type { SyncConfig } from '../config/sync-config.js'
import { errorMessage } from '../errors.js'
import type { KeystoneClient } from '../keystone/client.js'
import type { ServiceToken } from '../keystone/service-token.js'
import type { Logger } from '../log.js'
import type { KubeClient, RoleBindingRecord } from '../kube/client.js'
import { roleBindingName } from './rolebinding-name.js'
import { MANAGED_BY, MANAGED_BY_LABEL, PROJECT_ANNOTATION } from './syncer.js'

// Sync makes RoleBindings when a user logs in; it cannot take them away when nobody logs in, and
// a user whose roles on a project are all gone gets no token for it. Every
// --sync-reconcile-interval, in service mode, each RoleBinding sync made (our label, our name,
// the project it was made for in PROJECT_ANNOTATION) is held against Keystone as it is now:
// gone when the user no longer holds that role on the project, or the project is disabled or
// deleted. A namespace whose project was deleted is labelled ORPHANED_LABEL and reported, never
// deleted. Only a definite answer from Keystone removes anything: on any error the pass stops
// and changes nothing more. Each removal gets a Kubernetes Event and a metric.

export const ORPHANED_LABEL = 'k8s-keystone-auth/orphaned'

export type ReconcileRemoval = 'role_removed' | 'project_disabled' | 'project_deleted'

export interface ReconcilerOptions {
  client: KubeClient
  keystone: Pick<KeystoneClient, 'getProject' | 'userRolesOnProject'>
  serviceToken: Pick<ServiceToken, 'get'>
  getConfig: () => SyncConfig
  logger: Logger
  intervalMs: number
  onRemoved?: (why: ReconcileRemoval) => void
  onOrphaned?: () => void
  onPass?: (result: 'ok' | 'error') => void
}

export interface ReconcileResult {
  checked: number
  removed: number
  /** Bindings made before sync recorded their project (no annotation): left alone. */
  unknownProject: number
}

export class Reconciler {
  readonly #o: ReconcilerOptions
  #timer: NodeJS.Timeout | undefined
  #running: Promise<ReconcileResult | undefined> | undefined
  #stopped = false

  constructor (opts: ReconcilerOptions) {
    this.#o = opts
  }

  start (): void {
    this.#stopped = false
    this.#schedule(this.#o.intervalMs)
  }

  stop (): void {
    this.#stopped = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
  }

  /** One pass now; undefined when it failed (logged). Never throws. */
  async reconcile (): Promise<ReconcileResult | undefined> {
    this.#running ??= this.#pass().finally(() => { this.#running = undefined })
    return await this.#running
  }

  #schedule (ms: number): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => { void this.reconcile().then(() => this.#schedule(this.#o.intervalMs)) }, ms)
    this.#timer.unref()
  }

  async #pass (): Promise<ReconcileResult | undefined> {
    const { client, keystone, logger } = this.#o
    const result: ReconcileResult = { checked: 0, removed: 0, unknownProject: 0 }
    if (!this.#o.getConfig().dataTypesToSync.includes('role_assignments')) return result
    try {
      const token = await this.#o.serviceToken.get()
      const bindings = await client.listRoleBindingsEverywhere(`${MANAGED_BY_LABEL}=${MANAGED_BY}`)
      const projects = new Map<string, Promise<{ enabled: boolean } | null>>()
      const holds = new Map<string, Promise<string[]>>()
      const orphaned = new Set<string>()
      for (const b of bindings) {
        const userId = syncedUserOf(b)
        if (userId === undefined) continue
        const projectId = b.annotations[PROJECT_ANNOTATION]
        if (projectId === undefined || projectId === '') { result.unknownProject++; continue }
        result.checked++
        if (!projects.has(projectId)) projects.set(projectId, keystone.getProject(projectId, token))
        const project = await projects.get(projectId)
        let why: ReconcileRemoval | undefined
        if (project === null) why = 'project_deleted'
        else if (project?.enabled === false) why = 'project_disabled'
        else {
          const k = `${userId}\u0000${projectId}`
          if (!holds.has(k)) holds.set(k, keystone.userRolesOnProject(userId, projectId, token))
          if (!(await holds.get(k) ?? []).includes(b.roleRef.name)) why = 'role_removed'
        }
        if (why === undefined) continue
        await this.#remove(b, userId, projectId, why)
        result.removed++
        if (why === 'project_deleted' && !orphaned.has(b.namespace)) {
          orphaned.add(b.namespace)
          await this.#orphan(b.namespace, projectId)
        }
      }
      if (result.unknownProject > 0) logger.info({ bindings: result.unknownProject }, `sync reconcile: RoleBindings made before sync recorded their project (no ${PROJECT_ANNOTATION} annotation) are left alone`)
      logger.info(result, 'sync reconcile done')
      this.#o.onPass?.('ok')
      return result
    } catch (err) {
      logger.warn({ err: errorMessage(err), done: result }, 'sync reconcile stopped: Keystone or Kubernetes did not answer; nothing more is removed until the next pass')
      this.#o.onPass?.('error')
      return undefined
    }
  }

  async #remove (b: RoleBindingRecord, userId: string, projectId: string, why: ReconcileRemoval): Promise<void> {
    const words = { role_removed: `no longer holds the Keystone role ${b.roleRef.name} on project ${projectId}`, project_disabled: `project ${projectId} is disabled in Keystone`, project_deleted: `project ${projectId} was deleted in Keystone` }[why]
    await this.#o.client.deleteRoleBinding(b.namespace, b.name)
    this.#o.logger.info({ namespace: b.namespace, roleBinding: b.name, userId, projectId, why }, 'sync reconcile: role binding removed')
    this.#o.onRemoved?.(why)
    await this.#event({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', namespace: b.namespace, name: b.name }, 'KeystoneRoleRevoked', `RoleBinding ${b.name} removed: user ${userId} ${words}`)
  }

  async #orphan (namespace: string, projectId: string): Promise<void> {
    const r = await this.#o.client.labelNamespace(namespace, { [ORPHANED_LABEL]: 'true' })
    if (r === 'absent') return
    this.#o.logger.warn({ namespace, projectId }, 'sync reconcile: the Keystone project of this namespace was deleted; the namespace is labelled, not deleted')
    this.#o.onOrphaned?.()
    await this.#event({ apiVersion: 'v1', kind: 'Namespace', name: namespace }, 'KeystoneProjectDeleted', `Keystone project ${projectId} was deleted; namespace labelled ${ORPHANED_LABEL}=true and kept`)
  }

  /**
   * An Event lives in its object's namespace; one about a cluster-scoped object (a Namespace) in
   * `default`, as client-go's recorder puts it: kube-apiserver refuses (422) an Event whose
   * involvedObject.namespace is not its own namespace, and allows an empty one only in `default`.
   */
  async #event (involvedObject: { apiVersion: string, kind: string, namespace?: string, name: string }, reason: string, message: string): Promise<void> {
    const namespace = involvedObject.namespace ?? 'default'
    try {
      await this.#o.client.createEvent(namespace, { involvedObject, reason, message, type: 'Normal' })
    } catch (err) {
      // An event is a report; failing to write one must not stop the reconcile.
      this.#o.logger.warn({ namespace, reason, err: errorMessage(err) }, 'cannot create a Kubernetes Event')
    }
  }
}

/** The user a synced binding was made for (`<user id>_<its ClusterRole>`), or undefined. */
export function syncedUserOf (b: RoleBindingRecord): string | undefined {
  if (b.labels[MANAGED_BY_LABEL] !== MANAGED_BY || b.roleRef.kind !== 'ClusterRole') return undefined
  const suffix = roleBindingName('', b.roleRef.name)
  if (!b.name.endsWith(suffix) || b.name.length === suffix.length) return undefined
  const userId = b.name.slice(0, -suffix.length)
  return roleBindingName(userId, b.roleRef.name) === b.name ? userId : undefined
}
