// A fake kube-apiserver for tests: the real paths, JSON shapes and status codes (401, 404, 409,
// 410, 422), a global resourceVersion that increases on every write, chunked watch streams of
// newline-delimited events with bookmarks, and a TLS listener with a certificate generated per
// start (openssl CLI; plain HTTP when `https: false` or openssl is missing).
//
// Shapes follow kube-apiserver 1.32: list items carry no kind/apiVersion, watch event objects do;
// errors are metav1.Status; an expired resourceVersion on watch is a 200 stream with one ERROR
// event (code 410, reason Expired), as the real server does it.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import type { AddressInfo, Socket } from 'node:net'

type Obj = Record<string, any>
type Resource = 'configmaps' | 'namespaces' | 'rolebindings' | 'events'

interface Stored { resource: Resource, namespace: string, name: string, object: Obj }
interface Event { rv: number, resource: Resource, namespace: string, type: 'ADDED' | 'MODIFIED' | 'DELETED', object: Obj }
interface Watch { resource: Resource, namespace: string, name?: string, res: ServerResponse, bookmarks: boolean, timer?: NodeJS.Timeout, endTimer?: NodeJS.Timeout }

export interface FakeKubeRequest { method: string, path: string, query: string, verb: string, resource: string, namespace?: string, name?: string, /** Parsed JSON body of a create. */ body?: any }

export interface FakeKubeOptions {
  https?: boolean
  token?: string
  /** How often an open watch with allowWatchBookmarks=true gets a BOOKMARK (real: ~1 min). */
  bookmarkIntervalMs?: number
}

export interface FakeKube {
  url: string
  kubeconfigPath: string
  token: string
  caPem?: string
  requests: FakeKubeRequest[]
  /** Number of watch streams open now. */
  readonly openWatches: number
  setConfigMap (ns: string, name: string, data: Record<string, string>): void
  deleteConfigMap (ns: string, name: string): void
  /** Direct access to the stored objects (as a kubectl get would show). */
  getObject (resource: Resource, ns: string, name: string): Obj | undefined
  listObjects (resource: Resource, ns?: string): Obj[]
  /** Creates an object as an admin would (kubectl apply), bypassing the API. */
  putObject (resource: Resource, ns: string, obj: Obj): void
  removeObject (resource: Resource, ns: string, name: string): void
  /** Cuts every open watch connection (socket destroyed mid-stream). */
  dropWatches (): void
  /** Compacts history: a watch from any resourceVersion issued so far gets 410 Expired. */
  expireResourceVersions (): void
  /** The next `times` requests matching method and path prefix fail with `status` (a real Status body). */
  failNext (match: { method?: string, pathPrefix?: string }, status: number, times?: number): void
  /** Closes the listener and every connection (the apiserver goes away). */
  close (): Promise<void>
}

const RBAC_GV = 'rbac.authorization.k8s.io/v1'
const KIND: Record<Resource, string> = { configmaps: 'ConfigMap', namespaces: 'Namespace', rolebindings: 'RoleBinding', events: 'Event' }
const API_VERSION: Record<Resource, string> = { configmaps: 'v1', namespaces: 'v1', rolebindings: RBAC_GV, events: 'v1' }
const GROUP: Record<Resource, string> = { configmaps: '', namespaces: '', rolebindings: 'rbac.authorization.k8s.io', events: '' }

/** Namespaces every kube-apiserver has from its start; the fake takes them as existing. */
const BUILTIN_NAMESPACES = new Set(['default', 'kube-system', 'kube-public', 'kube-node-lease'])

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

/** What kube-apiserver's validation says about a name, or null when valid. */
function nameProblem (resource: Resource, name: string): string | null {
  if (name === '') return 'Required value: name or generateName is required'
  if (resource === 'namespaces') {
    if (name.length > 63) return `Invalid value: "${name}": must be no more than 63 characters`
    if (!DNS1123_LABEL.test(name)) return `Invalid value: "${name}": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`
    return null
  }
  if (resource === 'rolebindings') {
    // RBAC objects are validated with path.IsValidPathSegmentName only (system:... names exist).
    if (name === '.' || name === '..') return `Invalid value: "${name}": may not be '${name}'`
    if (name.includes('/') || name.includes('%')) return `Invalid value: "${name}": may not contain '/' or '%'`
    return null
  }
  if (name.length > 253 || !DNS1123_SUBDOMAIN.test(name)) return `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'`
  return null
}

function status (code: number, reason: string, message: string, details?: Obj): Obj {
  const s: Obj = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }
  if (details !== undefined) s.details = details
  return s
}

const REASON: Record<number, string> = { 400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 405: 'MethodNotAllowed', 409: 'AlreadyExists', 410: 'Expired', 422: 'Invalid', 429: 'TooManyRequests', 500: 'InternalError', 503: 'ServiceUnavailable' }

function generateCert (): { key: string, cert: string } | null {
  const dir = mkdtempSync(join(tmpdir(), 'fake-kube-cert-'))
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=fake-kube-apiserver',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' })
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') }
  } catch {
    return null
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export async function startFakeKube (opts: FakeKubeOptions = {}): Promise<FakeKube> {
  const token = opts.token ?? `fake-${randomUUID()}`
  const bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 200
  const store = new Map<string, Stored>()
  const events: Event[] = []
  const watches = new Set<Watch>()
  const sockets = new Set<Socket>()
  const requests: FakeKubeRequest[] = []
  const failures: Array<{ method?: string, pathPrefix?: string, status: number, times: number }> = []
  let rv = 1
  /** Watches from a resourceVersion below this get 410 Expired. */
  let oldestWatchableRv = 0

  const key = (r: Resource, ns: string, name: string): string => `${r}/${ns}/${name}`

  function write (resource: Resource, ns: string, name: string, type: Event['type'], object: Obj | null): Obj | undefined {
    const k = key(resource, ns, name)
    if (type === 'DELETED') {
      const old = store.get(k)
      if (old === undefined) return undefined
      store.delete(k)
      rv++
      const gone = structuredClone(old.object)
      gone.metadata.resourceVersion = String(rv)
      emit({ rv, resource, namespace: ns, type, object: gone })
      return gone
    }
    rv++
    const obj = structuredClone(object) as Obj
    obj.kind = KIND[resource]
    obj.apiVersion = API_VERSION[resource]
    obj.metadata = { ...(obj.metadata ?? {}), name, resourceVersion: String(rv) }
    if (resource !== 'namespaces') obj.metadata.namespace = ns
    const old = store.get(k)
    obj.metadata.uid = old?.object.metadata.uid ?? randomUUID()
    obj.metadata.creationTimestamp = old?.object.metadata.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z')
    if (resource === 'namespaces') {
      obj.metadata.labels = { ...(obj.metadata.labels ?? {}), 'kubernetes.io/metadata.name': name }
      obj.spec = { finalizers: ['kubernetes'] }
      obj.status = { phase: 'Active' }
    }
    store.set(k, { resource, namespace: ns, name, object: obj })
    emit({ rv, resource, namespace: ns, type: old === undefined ? 'ADDED' : 'MODIFIED', object: obj })
    return obj
  }

  function emit (ev: Event): void {
    events.push(ev)
    for (const w of watches) {
      if (w.resource === ev.resource && w.namespace === ev.namespace && (w.name === undefined || w.name === ev.object.metadata.name)) {
        w.res.write(JSON.stringify({ type: ev.type, object: ev.object }) + '\n')
      }
    }
  }

  for (const ns of ['default', 'kube-system', 'kube-public']) write('namespaces', '', ns, 'ADDED', { metadata: { name: ns } })

  function send (res: ServerResponse, code: number, body: Obj): void {
    const text = JSON.stringify(body)
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-cache, private' })
    res.end(text)
  }

  function listBody (resource: Resource, items: Obj[]): Obj {
    return {
      kind: `${KIND[resource]}List`,
      apiVersion: API_VERSION[resource],
      metadata: { resourceVersion: String(rv) },
      // List items carry no kind/apiVersion on the wire.
      items: items.map(o => { const { kind: _k, apiVersion: _a, ...rest } = o; return rest })
    }
  }

  function route (method: string, path: string): { resource: Resource, namespace: string, name?: string } | null {
    let m = /^\/api\/v1\/namespaces\/([^/]+)\/configmaps(?:\/([^/]+))?$/.exec(path)
    if (m !== null) return { resource: 'configmaps', namespace: decodeURIComponent(m[1]!), ...(m[2] !== undefined ? { name: decodeURIComponent(m[2]) } : {}) }
    m = /^\/apis\/rbac\.authorization\.k8s\.io\/v1\/namespaces\/([^/]+)\/rolebindings(?:\/([^/]+))?$/.exec(path)
    if (m !== null) return { resource: 'rolebindings', namespace: decodeURIComponent(m[1]!), ...(m[2] !== undefined ? { name: decodeURIComponent(m[2]) } : {}) }
    // Every namespace's RoleBindings (a ClusterRole's list), as GET /apis/rbac.../v1/rolebindings.
    if (path === '/apis/rbac.authorization.k8s.io/v1/rolebindings') return { resource: 'rolebindings', namespace: '*' }
    m = /^\/api\/v1\/namespaces\/([^/]+)\/events(?:\/([^/]+))?$/.exec(path)
    if (m !== null) return { resource: 'events', namespace: decodeURIComponent(m[1]!), ...(m[2] !== undefined ? { name: decodeURIComponent(m[2]) } : {}) }
    m = /^\/api\/v1\/namespaces(?:\/([^/]+))?$/.exec(path)
    if (m !== null) return { resource: 'namespaces', namespace: '', ...(m[1] !== undefined ? { name: decodeURIComponent(m[1]) } : {}) }
    void method
    return null
  }

  async function readBody (req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    return Buffer.concat(chunks).toString('utf8')
  }

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x')
    const method = req.method ?? 'GET'
    const r = route(method, url.pathname)
    const isWatch = url.searchParams.get('watch') === '1' || url.searchParams.get('watch') === 'true'
    const verb = method === 'GET' ? (isWatch ? 'watch' : r?.name !== undefined ? 'get' : 'list') : method === 'POST' ? 'create' : method === 'DELETE' ? 'delete' : method === 'PUT' ? 'update' : method === 'PATCH' ? 'patch' : method.toLowerCase()
    const record: FakeKubeRequest = { method, path: url.pathname, query: url.search, verb, resource: r?.resource ?? '' }
    if (r !== null && r.resource !== 'namespaces') record.namespace = r.namespace
    if (r?.name !== undefined) record.name = r.name
    requests.push(record)

    if (req.headers.authorization !== `Bearer ${token}`) { send(res, 401, status(401, 'Unauthorized', 'Unauthorized')); return }
    const f = failures.find(x => (x.method === undefined || x.method === method) && (x.pathPrefix === undefined || url.pathname.startsWith(x.pathPrefix)))
    if (f !== undefined) {
      if (--f.times <= 0) failures.splice(failures.indexOf(f), 1)
      send(res, f.status, status(f.status, REASON[f.status] ?? 'Unknown', `injected failure ${f.status}`))
      return
    }
    if (r === null) { send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource')); return }
    const { resource, namespace } = r
    const kindPlural = resource
    const details = (name: string): Obj => ({ name, ...(GROUP[resource] !== '' ? { group: GROUP[resource] } : {}), kind: kindPlural })
    const nsMissing = resource !== 'namespaces' && namespace !== '*' && !BUILTIN_NAMESPACES.has(namespace) && !store.has(key('namespaces', '', namespace))

    if (method === 'GET' && isWatch) {
      if (r.name !== undefined) { send(res, 405, status(405, 'MethodNotAllowed', 'watch of a single object by path is not supported here; use fieldSelector')); return }
      const from = Number(url.searchParams.get('resourceVersion') ?? '0')
      const fs = url.searchParams.get('fieldSelector')
      const nameSel = fs !== null ? /^metadata\.name=(.+)$/.exec(fs)?.[1] : undefined
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache, private' })
      res.flushHeaders()
      if (from !== 0 && from < oldestWatchableRv) {
        res.end(JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${from} (${oldestWatchableRv})`) }) + '\n')
        return
      }
      const w: Watch = { resource, namespace, res, bookmarks: url.searchParams.get('allowWatchBookmarks') === 'true' }
      if (nameSel !== undefined) w.name = decodeURIComponent(nameSel)
      // Replay what happened after `from`; `from` = 0 means "start with the current state".
      const backlog = from === 0
        ? [...store.values()].filter(s => s.resource === resource && s.namespace === namespace).map(s => ({ type: 'ADDED', object: s.object }))
        : events.filter(e => e.rv > from && e.resource === resource && e.namespace === namespace)
      for (const e of backlog) {
        if (w.name === undefined || w.name === e.object.metadata.name) res.write(JSON.stringify({ type: e.type, object: e.object }) + '\n')
      }
      watches.add(w)
      if (w.bookmarks) {
        w.timer = setInterval(() => {
          res.write(JSON.stringify({ type: 'BOOKMARK', object: { kind: KIND[resource], apiVersion: API_VERSION[resource], metadata: { resourceVersion: String(rv) } } }) + '\n')
        }, bookmarkIntervalMs)
      }
      const timeout = Number(url.searchParams.get('timeoutSeconds') ?? '0')
      if (timeout > 0) w.endTimer = setTimeout(() => res.end(), timeout * 1000)
      const done = (): void => { clearInterval(w.timer); clearTimeout(w.endTimer); watches.delete(w) }
      res.on('close', done)
      return
    }

    if (method === 'GET' && r.name === undefined) {
      const fs = url.searchParams.get('fieldSelector')
      const nameSel = fs !== null ? /^metadata\.name=(.+)$/.exec(fs)?.[1] : undefined
      const ls = url.searchParams.get('labelSelector')
      const [lk, lv] = ls !== null ? ls.split('=') : []
      const items = [...store.values()]
        .filter(s => s.resource === resource && (namespace === '*' || s.namespace === namespace) && (nameSel === undefined || s.name === nameSel))
        .filter(s => lk === undefined || s.object.metadata?.labels?.[lk] === lv)
        .sort((a, b) => a.name.localeCompare(b.name)).map(s => s.object)
      send(res, 200, listBody(resource, items))
      return
    }
    if (method === 'GET') {
      const s = store.get(key(resource, namespace, r.name!))
      if (s === undefined) { send(res, 404, status(404, 'NotFound', `${kindPlural}${GROUP[resource] !== '' ? '.' + GROUP[resource] : ''} "${r.name!}" not found`, details(r.name!))); return }
      send(res, 200, s.object)
      return
    }
    if (method === 'POST' && r.name === undefined) {
      let body: Obj
      try {
        body = JSON.parse(await readBody(req))
        record.body = body
      } catch {
        send(res, 400, status(400, 'BadRequest', 'the body of the request was in an unknown format'))
        return
      }
      if ((body?.metadata?.name ?? '') === '' && typeof body?.metadata?.generateName === 'string') {
        body.metadata.name = `${body.metadata.generateName as string}${Math.random().toString(36).slice(2, 7)}`
      }
      const name = String(body?.metadata?.name ?? '')
      if (body?.kind !== KIND[resource]) { send(res, 400, status(400, 'BadRequest', `the API version in the data (${String(body?.apiVersion)}) does not match the expected API version (${API_VERSION[resource]})`)); return }
      const problem = nameProblem(resource, name)
      if (problem !== null) {
        const msg = `${KIND[resource]}${GROUP[resource] !== '' ? '.' + GROUP[resource] : ''} "${name}" is invalid: metadata.name: ${problem}`
        send(res, 422, status(422, 'Invalid', msg, { name, ...(GROUP[resource] !== '' ? { group: GROUP[resource] } : {}), kind: KIND[resource], causes: [{ reason: 'FieldValueInvalid', message: problem, field: 'metadata.name' }] }))
        return
      }
      if (resource === 'events') {
        // kube-apiserver's ValidateEventCreate (events without eventTime): the involved object's
        // namespace is the Event's; an empty one (a cluster-scoped object) only in `default`.
        const involved = String(body?.involvedObject?.namespace ?? '')
        if (involved === '' ? namespace !== 'default' : involved !== namespace) {
          send(res, 422, status(422, 'Invalid', `Event "${name}" is invalid: involvedObject.namespace: Invalid value: "${involved}": does not match event.namespace`, { name, kind: KIND[resource] }))
          return
        }
      }
      if (resource === 'rolebindings') {
        const ref = body.roleRef
        if (ref?.apiGroup !== 'rbac.authorization.k8s.io' || (ref?.kind !== 'ClusterRole' && ref?.kind !== 'Role') || typeof ref?.name !== 'string' || ref.name === '') {
          send(res, 422, status(422, 'Invalid', `RoleBinding.rbac.authorization.k8s.io "${name}" is invalid: roleRef: Invalid value`, { name, group: GROUP[resource], kind: KIND[resource] }))
          return
        }
      }
      if (nsMissing) { send(res, 404, status(404, 'NotFound', `namespaces "${namespace}" not found`, { name: namespace, kind: 'namespaces' })); return }
      if (store.has(key(resource, namespace, name))) { send(res, 409, status(409, 'AlreadyExists', `${kindPlural}${GROUP[resource] !== '' ? '.' + GROUP[resource] : ''} "${name}" already exists`, details(name))); return }
      const created = write(resource, namespace, name, 'ADDED', body)!
      send(res, 201, created)
      return
    }
    if (method === 'PATCH' && r.name !== undefined) {
      if (req.headers['content-type'] !== 'application/merge-patch+json') { send(res, 415, status(415, 'UnsupportedMediaType', 'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json')); return }
      const s0 = store.get(key(resource, resource === 'namespaces' ? '' : namespace, r.name))
      if (s0 === undefined) { send(res, 404, status(404, 'NotFound', `${kindPlural} "${r.name}" not found`, details(r.name))); return }
      const patch = JSON.parse(await readBody(req))
      record.body = patch
      const merged = { ...s0.object, metadata: { ...s0.object.metadata, labels: { ...(s0.object.metadata?.labels ?? {}), ...(patch?.metadata?.labels ?? {}) } } }
      const updated = write(resource, resource === 'namespaces' ? '' : namespace, r.name, 'MODIFIED', merged)!
      send(res, 200, updated)
      return
    }
    if (method === 'DELETE' && r.name !== undefined) {
      const gone = write(resource, namespace, r.name, 'DELETED', null)
      if (gone === undefined) { send(res, 404, status(404, 'NotFound', `${kindPlural}${GROUP[resource] !== '' ? '.' + GROUP[resource] : ''} "${r.name}" not found`, details(r.name))); return }
      send(res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { ...details(r.name), uid: gone.metadata.uid } })
      return
    }
    send(res, 405, status(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'))
  }

  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch(err => { if (!res.headersSent) send(res, 500, status(500, 'InternalError', String(err))) })
  }

  const cert = opts.https === false ? null : generateCert()
  const server: Server = cert !== null ? createHttpsServer({ key: cert.key, cert: cert.cert }, listener) : createHttpServer(listener)
  server.on(cert !== null ? 'secureConnection' : 'connection', (s: Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const url = `${cert !== null ? 'https' : 'http'}://127.0.0.1:${port}`

  const dir = mkdtempSync(join(tmpdir(), 'fake-kube-'))
  const kubeconfigPath = join(dir, 'kubeconfig')
  const cluster: Obj = { server: url }
  if (cert !== null) cluster['certificate-authority-data'] = Buffer.from(cert.cert).toString('base64')
  writeFileSync(kubeconfigPath, [
    'apiVersion: v1', 'kind: Config', 'current-context: fake',
    'clusters:', '- name: fake', '  cluster:', ...Object.entries(cluster).map(([k, v]) => `    ${k}: ${String(v)}`),
    'users:', '- name: fake-user', '  user:', `    token: ${token}`,
    'contexts:', '- name: fake', '  context:', '    cluster: fake', '    user: fake-user', ''
  ].join('\n'))

  const fake: FakeKube = {
    url,
    kubeconfigPath,
    token,
    requests,
    get openWatches () { return watches.size },
    setConfigMap (ns, name, data) {
      const old = store.get(key('configmaps', ns, name))
      write('configmaps', ns, name, 'MODIFIED', { metadata: { ...(old?.object.metadata ?? {}), name }, data })
    },
    deleteConfigMap (ns, name) { write('configmaps', ns, name, 'DELETED', null) },
    getObject (resource, ns, name) { return store.get(key(resource, resource === 'namespaces' ? '' : ns, name))?.object },
    listObjects (resource, ns) { return [...store.values()].filter(s => s.resource === resource && (ns === undefined || s.namespace === ns)).map(s => s.object) },
    putObject (resource, ns, obj) { write(resource, resource === 'namespaces' ? '' : ns, String(obj.metadata?.name), 'ADDED', obj) },
    removeObject (resource, ns, name) { write(resource, resource === 'namespaces' ? '' : ns, name, 'DELETED', null) },
    dropWatches () {
      for (const w of [...watches]) { w.res.socket?.destroy(); watches.delete(w); clearInterval(w.timer); clearTimeout(w.endTimer) }
    },
    expireResourceVersions () {
      // As after an etcd compaction plus some unrelated write: every RV handed out so far is too old.
      rv++
      oldestWatchableRv = rv
    },
    failNext (match, code, times = 1) { failures.push({ ...match, status: code, times }) },
    async close () {
      fake.dropWatches()
      for (const s of sockets) s.destroy()
      await new Promise<void>(resolve => server.close(() => resolve()))
      rmSync(dir, { recursive: true, force: true })
    }
  }
  if (cert !== null) fake.caPem = cert.cert
  return fake
}

/** Polls `check` until it returns true or `withinMs` passes; resolves to whether it got there. */
export async function waitFor (check: () => boolean, withinMs = 1000, everyMs = 10): Promise<boolean> {
  const deadline = Date.now() + withinMs
  for (;;) {
    if (check()) return true
    if (Date.now() >= deadline) return false
    await new Promise(resolve => setTimeout(resolve, everyMs))
  }
}

/** A pino logger that keeps its records for assertions. */
export async function memoryLogger (): Promise<{ logger: import('pino').Logger, records: Array<Record<string, any>> }> {
  const { pino } = await import('pino')
  const records: Array<Record<string, any>> = []
  const logger = pino({ level: 'debug' }, { write: (s: string) => { records.push(JSON.parse(s)) } })
  return { logger, records }
}
