import { Agent, request, type Dispatcher } from 'undici'
import { errorMessage } from '../errors.js'
import { USER_AGENT } from '../version.js'
import { KubeApiError, KubeUnavailableError, kubeApiErrorFrom } from './api-error.js'
import { resolveConnection, type KubeConnection } from './connection.js'

// A small Kubernetes API client over undici, for exactly the calls this program makes. Why not
// @kubernetes/client-node: importing it costs ~0.75 s and 72 MB / 68 packages (node-fetch 2,
// openid-client, ws, tar-fs ...) on Node 20, 2.x needs undici 8; we already ship undici 7, and the
// list+watch semantics we need (bookmarks, 410 -> relist, our own backoff) are easier to get right
// and to test in 300 lines than around a generic informer.
//
// Kubernetes JSON stays here; callers get the small records below.

export interface ConfigMapRecord {
  namespace: string
  name: string
  resourceVersion: string
  data: Record<string, string>
}

export interface RoleBindingSubject { kind: string, name: string, apiGroup?: string, namespace?: string }

export interface RoleBindingRecord {
  namespace: string
  name: string
  /** metadata.labels (string values only); sync changes only bindings carrying its own label. */
  labels: Record<string, string>
  annotations: Record<string, string>
  roleRef: { kind: string, name: string }
  subjects: RoleBindingSubject[]
}

export interface NewRoleBinding {
  name: string
  roleRef: { kind: 'ClusterRole' | 'Role', name: string }
  subjects: RoleBindingSubject[]
  labels?: Record<string, string>
  annotations?: Record<string, string>
}

/** A core/v1 Event about an object sync changed, so that `kubectl describe` and `get events` say why. */
export interface NewEvent {
  involvedObject: { apiVersion: string, kind: string, namespace?: string, name: string }
  reason: string
  message: string
  type: 'Normal' | 'Warning'
}

export type WatchEvent<T> =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED', object: T }
  | { type: 'BOOKMARK', resourceVersion: string }

export interface ListResult<T> { items: T[], resourceVersion: string }

export interface WatchOptions {
  resourceVersion: string
  fieldSelector?: string
  /** Server-side end of the watch; the caller watches again from the last resourceVersion. */
  timeoutSeconds?: number
  signal?: AbortSignal
}

/** What sync and the ConfigMap watcher need from the Kubernetes API. */
export interface KubeClient {
  readonly server: string
  /** The namespace's name, or null when it does not exist. */
  getNamespace (name: string): Promise<{ name: string } | null>
  /** Creates a namespace; 'exists' when someone else created it first (409). */
  createNamespace (name: string, labels?: Record<string, string>): Promise<'created' | 'exists'>
  listRoleBindings (namespace: string): Promise<RoleBindingRecord[]>
  createRoleBinding (namespace: string, rb: NewRoleBinding): Promise<'created' | 'exists'>
  deleteRoleBinding (namespace: string, name: string): Promise<'deleted' | 'absent'>
  /** RoleBindings of every namespace that carry this label selector (e.g. `k=v`). */
  listRoleBindingsEverywhere (labelSelector: string): Promise<RoleBindingRecord[]>
  /** Adds (merges) labels to a namespace; 'absent' when there is no such namespace. */
  labelNamespace (name: string, labels: Record<string, string>): Promise<'labelled' | 'absent'>
  createEvent (namespace: string, event: NewEvent): Promise<void>
  listConfigMaps (namespace: string, opts?: { fieldSelector?: string }): Promise<ListResult<ConfigMapRecord>>
  /** Watch events until the server ends the stream; throws KubeApiError (410 Expired/Gone ...) on an ERROR event. */
  watchConfigMaps (namespace: string, opts: WatchOptions): AsyncIterable<WatchEvent<ConfigMapRecord>>
  close (): Promise<void>
}

export interface KubeCall {
  verb: 'get' | 'list' | 'watch' | 'create' | 'delete' | 'patch'
  resource: 'namespaces' | 'rolebindings' | 'configmaps' | 'events'
  /** HTTP status, or 'error' when no answer came. */
  status: number | 'error'
  durationMs: number
}

export interface HttpKubeClientOptions {
  /** Whole-request timeout for non-watch calls, ms. */
  timeoutMs?: number
  onCall?: (call: KubeCall) => void
  /** Injected for tests or shared pools. */
  dispatcher?: Dispatcher
}

const RBAC = '/apis/rbac.authorization.k8s.io/v1'
const MAX_BODY_BYTES = 16 * 1024 * 1024
const enc = encodeURIComponent

export class HttpKubeClient implements KubeClient {
  readonly server: string
  readonly source: string
  readonly #conn: KubeConnection
  readonly #dispatcher: Dispatcher
  readonly #ownDispatcher: boolean
  readonly #timeoutMs: number
  readonly #onCall: ((call: KubeCall) => void) | undefined
  readonly #watches = new Set<AbortController>()

  constructor (conn: KubeConnection, opts: HttpKubeClientOptions = {}) {
    this.#conn = conn
    this.server = conn.server
    this.source = conn.source
    this.#timeoutMs = opts.timeoutMs ?? 10_000
    this.#onCall = opts.onCall
    if (opts.dispatcher !== undefined) {
      this.#dispatcher = opts.dispatcher
      this.#ownDispatcher = false
    } else {
      const connect: Record<string, unknown> = { timeout: Math.min(this.#timeoutMs, 10_000), rejectUnauthorized: !conn.insecureSkipTlsVerify }
      if (conn.ca !== undefined) connect.ca = conn.ca
      if (conn.cert !== undefined) connect.cert = conn.cert
      if (conn.key !== undefined) connect.key = conn.key
      if (conn.tlsServerName !== undefined) connect.servername = conn.tlsServerName
      this.#dispatcher = new Agent({ connect, connections: 8 })
      this.#ownDispatcher = true
    }
  }

  async getNamespace (name: string): Promise<{ name: string } | null> {
    const r = await this.#json('get', 'namespaces', 'GET', `/api/v1/namespaces/${enc(name)}`)
    if (r.status === 404) return null
    if (r.status !== 200) throw kubeApiErrorFrom(r.status, r.body, `get namespace ${name}`)
    return { name: meta(r.body).name ?? name }
  }

  async createNamespace (name: string, labels?: Record<string, string>): Promise<'created' | 'exists'> {
    const body = { apiVersion: 'v1', kind: 'Namespace', metadata: { name, ...(labels !== undefined ? { labels } : {}) } }
    const r = await this.#json('create', 'namespaces', 'POST', '/api/v1/namespaces', body)
    if (r.status === 201 || r.status === 200) return 'created'
    if (r.status === 409) return 'exists'
    throw kubeApiErrorFrom(r.status, r.body, `create namespace ${name}`)
  }

  async listRoleBindings (namespace: string): Promise<RoleBindingRecord[]> {
    const r = await this.#json('list', 'rolebindings', 'GET', `${RBAC}/namespaces/${enc(namespace)}/rolebindings`)
    if (r.status !== 200) throw kubeApiErrorFrom(r.status, r.body, `list rolebindings in ${namespace}`)
    return items(r.body).map(o => roleBindingRecord(o, namespace))
  }

  async createRoleBinding (namespace: string, rb: NewRoleBinding): Promise<'created' | 'exists'> {
    const body = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: rb.name, namespace, ...(rb.labels !== undefined ? { labels: rb.labels } : {}), ...(rb.annotations !== undefined ? { annotations: rb.annotations } : {}) },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: rb.roleRef.kind, name: rb.roleRef.name },
      subjects: rb.subjects
    }
    const r = await this.#json('create', 'rolebindings', 'POST', `${RBAC}/namespaces/${enc(namespace)}/rolebindings`, body)
    if (r.status === 201 || r.status === 200) return 'created'
    if (r.status === 409) return 'exists'
    throw kubeApiErrorFrom(r.status, r.body, `create rolebinding ${namespace}/${rb.name}`)
  }

  async deleteRoleBinding (namespace: string, name: string): Promise<'deleted' | 'absent'> {
    const r = await this.#json('delete', 'rolebindings', 'DELETE', `${RBAC}/namespaces/${enc(namespace)}/rolebindings/${enc(name)}`)
    if (r.status === 200 || r.status === 202) return 'deleted'
    if (r.status === 404) return 'absent'
    throw kubeApiErrorFrom(r.status, r.body, `delete rolebinding ${namespace}/${name}`)
  }

  async listRoleBindingsEverywhere (labelSelector: string): Promise<RoleBindingRecord[]> {
    const r = await this.#json('list', 'rolebindings', 'GET', `${RBAC}/rolebindings?labelSelector=${encodeURIComponent(labelSelector)}`)
    if (r.status !== 200) throw kubeApiErrorFrom(r.status, r.body, `list rolebindings (${labelSelector})`)
    return items(r.body).map(o => roleBindingRecord(o, ''))
  }

  async labelNamespace (name: string, labels: Record<string, string>): Promise<'labelled' | 'absent'> {
    const r = await this.#json('patch', 'namespaces', 'PATCH', `/api/v1/namespaces/${enc(name)}`, { metadata: { labels } }, 'application/merge-patch+json')
    if (r.status === 200) return 'labelled'
    if (r.status === 404) return 'absent'
    throw kubeApiErrorFrom(r.status, r.body, `label namespace ${name}`)
  }

  async createEvent (namespace: string, ev: NewEvent): Promise<void> {
    const now = new Date().toISOString()
    const body = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { generateName: `${ev.involvedObject.name.replace(/[^a-z0-9.-]/gi, '-').toLowerCase().slice(0, 200)}.`, namespace },
      involvedObject: ev.involvedObject,
      reason: ev.reason,
      message: ev.message,
      type: ev.type,
      source: { component: 'k8s-keystone-auth' },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1
    }
    const r = await this.#json('create', 'events', 'POST', `/api/v1/namespaces/${enc(namespace)}/events`, body)
    if (r.status !== 201 && r.status !== 200) throw kubeApiErrorFrom(r.status, r.body, `create event in ${namespace}`)
  }

  async listConfigMaps (namespace: string, opts: { fieldSelector?: string } = {}): Promise<ListResult<ConfigMapRecord>> {
    const q = new URLSearchParams()
    if (opts.fieldSelector !== undefined) q.set('fieldSelector', opts.fieldSelector)
    const qs = q.size > 0 ? `?${q.toString()}` : ''
    const r = await this.#json('list', 'configmaps', 'GET', `/api/v1/namespaces/${enc(namespace)}/configmaps${qs}`)
    if (r.status !== 200) throw kubeApiErrorFrom(r.status, r.body, `list configmaps in ${namespace}`)
    return {
      items: items(r.body).map(o => configMapRecord(o, namespace)),
      resourceVersion: listMeta(r.body).resourceVersion ?? ''
    }
  }

  async * watchConfigMaps (namespace: string, opts: WatchOptions): AsyncIterable<WatchEvent<ConfigMapRecord>> {
    const q = new URLSearchParams({ watch: '1', allowWatchBookmarks: 'true', resourceVersion: opts.resourceVersion })
    if (opts.fieldSelector !== undefined) q.set('fieldSelector', opts.fieldSelector)
    const timeoutSeconds = opts.timeoutSeconds ?? 300
    q.set('timeoutSeconds', String(timeoutSeconds))
    const ac = new AbortController()
    const onAbort = (): void => ac.abort()
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    this.#watches.add(ac)
    const started = performance.now()
    let res: Dispatcher.ResponseData | undefined
    try {
      res = await this.#send('GET', `/api/v1/namespaces/${enc(namespace)}/configmaps?${q.toString()}`, undefined, {
        signal: ac.signal,
        // The server ends the watch after timeoutSeconds; a silent stream past that is dead.
        bodyTimeout: (timeoutSeconds + 30) * 1000
      })
      this.#report('watch', 'configmaps', res.statusCode, started)
      if (res.statusCode !== 200) {
        const text = await readCapped(res.body)
        throw kubeApiErrorFrom(res.statusCode, parseOrText(text), `watch configmaps in ${namespace}`)
      }
      let buf = ''
      for await (const chunk of res.body) {
        buf += (chunk as Buffer).toString('utf8')
        let nl: number
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim()
          buf = buf.slice(nl + 1)
          if (line === '') continue
          yield watchEvent(line, namespace)
        }
        if (buf.length > MAX_BODY_BYTES) throw new KubeUnavailableError('watch event larger than 16 MiB')
      }
      if (buf.trim() !== '') yield watchEvent(buf.trim(), namespace)
    } catch (err) {
      if (res === undefined) this.#report('watch', 'configmaps', 'error', started)
      if (ac.signal.aborted) return
      if (err instanceof KubeApiError || err instanceof KubeUnavailableError) throw err
      throw new KubeUnavailableError(`watch configmaps in ${namespace}: ${errorMessage(err)}`, { cause: err })
    } finally {
      opts.signal?.removeEventListener('abort', onAbort)
      this.#watches.delete(ac)
      if (res !== undefined && !ac.signal.aborted) res.body.destroy()
      ac.abort()
    }
  }

  async close (): Promise<void> {
    for (const ac of this.#watches) ac.abort()
    this.#watches.clear()
    if (this.#ownDispatcher) await this.#dispatcher.close()
  }

  async #json (verb: KubeCall['verb'], resource: KubeCall['resource'], method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number, body: unknown }> {
    const started = performance.now()
    let status: number
    let text: string
    try {
      const res = await this.#send(method, path, body, { headersTimeout: this.#timeoutMs, bodyTimeout: this.#timeoutMs }, contentType)
      status = res.statusCode
      text = await readCapped(res.body)
    } catch (err) {
      this.#report(verb, resource, 'error', started)
      if (err instanceof KubeUnavailableError) throw err
      throw new KubeUnavailableError(`${method} ${this.server}${path.split('?')[0] ?? ''}: ${errorMessage(err)}`, { cause: err })
    }
    this.#report(verb, resource, status, started)
    const res = { statusCode: status }
    return { status: res.statusCode, body: parseOrText(text) }
  }

  async #send (method: string, path: string, body: unknown, extra: Partial<Dispatcher.RequestOptions>, contentType = 'application/json'): Promise<Dispatcher.ResponseData> {
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { accept: 'application/json', 'user-agent': USER_AGENT }
      const auth = await this.#conn.credentials.authorization()
      if (auth !== undefined) headers.authorization = auth
      if (body !== undefined) headers['content-type'] = contentType
      const res = await request(`${this.server}${path}`, {
        method: method as Dispatcher.HttpMethod,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        dispatcher: this.#dispatcher,
        ...extra
      })
      // A 401 may mean a rotated service-account token or an expired exec credential: fetch anew once.
      if (res.statusCode === 401 && attempt === 0 && auth !== undefined) {
        await res.body.dump()
        this.#conn.credentials.invalidate()
        continue
      }
      return res
    }
  }

  #report (verb: KubeCall['verb'], resource: KubeCall['resource'], status: number | 'error', started: number): void {
    this.#onCall?.({ verb, resource, status, durationMs: performance.now() - started })
  }
}

/** The client the server uses: `--kubeconfig` when given, else in-cluster; ConfigError when neither. */
export function createKubeClient (opts: { kubeconfig?: string, env?: NodeJS.ProcessEnv, serviceAccountDir?: string } & HttpKubeClientOptions): HttpKubeClient {
  const conn = resolveConnection(opts)
  const clientOpts: HttpKubeClientOptions = {}
  if (opts.timeoutMs !== undefined) clientOpts.timeoutMs = opts.timeoutMs
  if (opts.onCall !== undefined) clientOpts.onCall = opts.onCall
  if (opts.dispatcher !== undefined) clientOpts.dispatcher = opts.dispatcher
  return new HttpKubeClient(conn, clientOpts)
}

// ---- Kubernetes JSON -> records ----

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v)

function meta (o: unknown): { name?: string, namespace?: string, resourceVersion?: string, labels: Record<string, string>, annotations: Record<string, string> } {
  const m = isObj(o) && isObj(o.metadata) ? o.metadata : {}
  const out: { name?: string, namespace?: string, resourceVersion?: string, labels: Record<string, string>, annotations: Record<string, string> } = { labels: {}, annotations: {} }
  if (typeof m.name === 'string') out.name = m.name
  if (typeof m.namespace === 'string') out.namespace = m.namespace
  if (typeof m.resourceVersion === 'string') out.resourceVersion = m.resourceVersion
  if (isObj(m.labels)) {
    for (const [k, v] of Object.entries(m.labels)) if (typeof v === 'string') out.labels[k] = v
  }
  if (isObj(m.annotations)) {
    for (const [k, v] of Object.entries(m.annotations)) if (typeof v === 'string') out.annotations[k] = v
  }
  return out
}
const listMeta = meta

function items (body: unknown): unknown[] {
  if (!isObj(body) || !Array.isArray(body.items)) throw new KubeUnavailableError('list answer without items')
  return body.items
}

function configMapRecord (o: unknown, namespace: string): ConfigMapRecord {
  const m = meta(o)
  const data: Record<string, string> = {}
  if (isObj(o) && isObj(o.data)) {
    for (const [k, v] of Object.entries(o.data)) if (typeof v === 'string') data[k] = v
  }
  return { namespace: m.namespace ?? namespace, name: m.name ?? '', resourceVersion: m.resourceVersion ?? '', data }
}

function roleBindingRecord (o: unknown, namespace: string): RoleBindingRecord {
  const m = meta(o)
  const ref = isObj(o) && isObj(o.roleRef) ? o.roleRef : {}
  const subjects = isObj(o) && Array.isArray(o.subjects) ? o.subjects.filter(isObj) : []
  return {
    namespace: m.namespace ?? namespace,
    name: m.name ?? '',
    labels: m.labels,
    annotations: m.annotations,
    roleRef: { kind: String(ref.kind ?? ''), name: String(ref.name ?? '') },
    subjects: subjects.map(s => {
      const out: RoleBindingSubject = { kind: String(s.kind ?? ''), name: String(s.name ?? '') }
      if (typeof s.apiGroup === 'string') out.apiGroup = s.apiGroup
      if (typeof s.namespace === 'string') out.namespace = s.namespace
      return out
    })
  }
}

function watchEvent (line: string, namespace: string): WatchEvent<ConfigMapRecord> {
  let ev: unknown
  try {
    ev = JSON.parse(line)
  } catch {
    throw new KubeUnavailableError('watch stream: a line is not JSON')
  }
  const type = isObj(ev) ? ev.type : undefined
  const object = isObj(ev) ? ev.object : undefined
  switch (type) {
    case 'ADDED': case 'MODIFIED': case 'DELETED':
      return { type, object: configMapRecord(object, namespace) }
    case 'BOOKMARK':
      return { type, resourceVersion: meta(object).resourceVersion ?? '' }
    case 'ERROR': {
      const s = isObj(object) ? object : {}
      const code = typeof s.code === 'number' ? s.code : 500
      throw kubeApiErrorFrom(code, s, 'watch configmaps')
    }
    default:
      throw new KubeUnavailableError(`watch stream: unknown event type ${JSON.stringify(type)}`)
  }
}

function parseOrText (text: string): unknown {
  if (text === '') return undefined
  try {
    return JSON.parse(text)
  } catch {
    return { message: text.slice(0, 300) }
  }
}

async function readCapped (body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const c of body) {
    size += (c as Buffer).length
    if (size > MAX_BODY_BYTES) {
      body.destroy()
      throw new KubeUnavailableError('Kubernetes API answer larger than 16 MiB')
    }
    chunks.push(c as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}
