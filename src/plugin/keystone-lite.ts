import { readFileSync } from 'node:fs'
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage } from 'node:http'
import { isIP, type Socket } from 'node:net'
import { ERR, KeystoneRejectedError, KeystoneUnavailableError, KsaError, errorMessage } from '../errors.js'
import { authRequestBody, notKeystoneAnswer, versionProblem } from '../keystone/auth-request.js'
import type { AuthMethod, ScopeRequest } from '../keystone/types.js'
import { proxyAuthorization, proxyFor, shownProxy } from '../keystone/proxy.js'

// The three Keystone calls the plugin makes (log in, check a token, create an application
// credential) over node:http/https. The server's KeystoneClient (undici + zod) costs about
// 0.4 s of CPU to load, more than the login itself; kubectl waits for this process on every
// command, so the plugin keeps to the built-in modules. Errors are the same classes as
// KeystoneClient's, with the network error (and its code) as `cause`.

export interface LiteOptions {
  /** Normalized identity URL ending in /v3. */
  url: string
  caFile?: string
  certFile?: string
  keyFile?: string
  timeoutMs: number
  userAgent?: string
}

export interface LiteToken {
  token: string
  expiresAt: Date
  userId: string
  userName: string
  projectId?: string
  projectName?: string
}

interface Answer { status: number, headers: IncomingHttpHeaders, body: unknown }

const MAX_BODY = 4 * 1024 * 1024

export async function call (o: LiteOptions, method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<Answer> {
  const url = new URL(o.url + path)
  const mod = url.protocol === 'https:' ? await import('node:https') : await import('node:http')
  const tls: Record<string, unknown> = {}
  if (url.protocol === 'https:') {
    const read = (file: string, what: string): Buffer => {
      try {
        return readFileSync(file)
      } catch (err) {
        throw new KsaError(ERR.TLS_FILES, `cannot read the ${what} file ${file}: ${(err as { code?: string }).code ?? errorMessage(err)}`)
      }
    }
    if (o.caFile !== undefined) tls.ca = read(o.caFile, 'CA (--cacert/OS_CACERT)')
    if (o.certFile !== undefined) tls.cert = read(o.certFile, 'client certificate (--cert/OS_CERT)')
    if (o.keyFile !== undefined) tls.key = read(o.keyFile, 'client key (--key/OS_KEY)')
  }
  const payload = body === undefined ? undefined : JSON.stringify(body)
  const h: Record<string, string> = { accept: 'application/json', 'user-agent': o.userAgent ?? 'client-keystone-auth', ...headers }
  if (payload !== undefined) { h['content-type'] = 'application/json'; h['content-length'] = String(Buffer.byteLength(payload)) }
  const proxy = proxyFor(url, process.env)
  const via = proxy !== undefined ? ` through the proxy ${shownProxy(proxy)}` : ''
  const http = proxy !== undefined ? await import('node:http') : undefined
  const tlsConnect = proxy !== undefined && url.protocol === 'https:' ? (await import('node:tls')).connect : undefined
  const proxyAuth = proxy !== undefined ? proxyAuthorization(proxy) : undefined
  return await new Promise<Answer>((resolve, reject) => {
    const fail = (err: unknown): void => {
      const e = err as { code?: string }
      const what = e.code === 'ETIMEDOUT_KSA' ? `no answer within ${o.timeoutMs} ms` : `${e.code !== undefined ? `${e.code}: ` : ''}${errorMessage(err)}`
      // `via` lets the login error, which words its own message from `cause`, name the proxy too.
      reject(Object.assign(new KeystoneUnavailableError(`Keystone at ${o.url} is unreachable${via}: ${what}`, { cause: err }), { via }))
    }
    let req: ClientRequest | undefined
    // eslint-disable-next-line prefer-const -- assigned once, later, but read by the timeout above it
    let tunnel: ClientRequest | undefined
    const timer = setTimeout(() => {
      const err = Object.assign(new Error('timeout'), { code: 'ETIMEDOUT_KSA' })
      req?.destroy(err)
      tunnel?.destroy(err)
    }, o.timeoutMs)
    const onResponse = (res: IncomingMessage): void => {
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (c: Buffer) => {
        size += c.length
        if (size > MAX_BODY) { req?.destroy(new Error(`answer larger than ${MAX_BODY} bytes`)); return }
        chunks.push(c)
      })
      res.on('end', () => {
        clearTimeout(timer)
        const text = Buffer.concat(chunks).toString('utf8')
        let parsed: unknown = text
        try { parsed = text === '' ? undefined : JSON.parse(text) } catch {}
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed })
      })
      res.on('error', fail)
    }
    const send = (r: ClientRequest): void => {
      req = r
      r.on('error', err => { clearTimeout(timer); fail(err) })
      r.end(payload)
    }
    // A fresh connection per call: Keystone's uWSGI/Apache may close idle keep-alive sockets, and a
    // POST on such a socket fails with ECONNRESET. The plugin makes one or two calls per run.
    if (proxy === undefined || http === undefined) {
      send(mod.request(url, { method, headers: h, agent: false, ...tls }, onResponse))
      return
    }
    const proxyPort = proxy.port !== '' ? Number(proxy.port) : 80
    const authHeader: Record<string, string> = proxyAuth !== undefined ? { 'proxy-authorization': proxyAuth } : {}
    if (tlsConnect === undefined) {
      // http:// Keystone: the request goes to the proxy with the full URL as its target.
      send(http.request({ host: proxy.hostname, port: proxyPort, method, path: url.href, headers: { ...h, ...authHeader, host: url.host }, agent: false }, onResponse))
      return
    }
    // https:// Keystone: a CONNECT tunnel, then TLS with Keystone inside it (the proxy sees no token).
    const target = `${url.hostname}:${url.port !== '' ? url.port : '443'}`
    const connect = http.request({ host: proxy.hostname, port: proxyPort, method: 'CONNECT', path: target, headers: { ...authHeader, host: target }, agent: false })
    tunnel = connect
    connect.on('connect', (res: IncomingMessage, socket: Socket) => {
      if (res.statusCode !== 200) {
        socket.destroy()
        clearTimeout(timer)
        fail(Object.assign(new Error(`the proxy answered HTTP ${res.statusCode ?? 0} to CONNECT ${target}`), { code: 'EPROXY' }))
        return
      }
      const host = url.hostname.replace(/^\[|\]$/g, '')
      const sni = isIP(host) === 0 ? { servername: host } : {}
      // No `agent` here: Node uses createConnection only for a request without one.
      send(mod.request(url, { method, headers: h, createConnection: () => tlsConnect({ socket, host, ...sni, ...tls }) }, onResponse))
    })
    connect.on('error', err => { clearTimeout(timer); fail(err) })
    connect.end()
  })
}

/** POST /v3/auth/tokens body: the same rules as the webhook's KeystoneClient. */
export const loginBody = authRequestBody

function keystoneMessage (body: unknown): string {
  const m = (body as { error?: { message?: unknown } } | undefined)?.error?.message
  return typeof m === 'string' ? m.slice(0, 300) : ''
}

export async function issueToken (o: LiteOptions, auth: AuthMethod, scope?: ScopeRequest): Promise<LiteToken> {
  const res = await call(o, 'POST', '/auth/tokens?nocatalog', {}, loginBody(auth, scope))
  if (res.status === 201 || res.status === 200) {
    const raw = res.headers['x-subject-token']
    const token = Array.isArray(raw) ? raw[0] : raw
    const t = (res.body as { token?: { expires_at?: unknown, user?: { id?: unknown, name?: unknown }, project?: { id?: unknown, name?: unknown } } } | undefined)?.token
    const expiresAt = new Date(typeof t?.expires_at === 'string' ? t.expires_at : NaN)
    if (token === undefined || token === '' || Number.isNaN(expiresAt.getTime()) || typeof t?.user?.id !== 'string') {
      throw new KeystoneUnavailableError(`Keystone at ${o.url} answered the login without a usable token`)
    }
    const out: LiteToken = { token, expiresAt, userId: t.user.id, userName: typeof t.user.name === 'string' ? t.user.name : '' }
    if (typeof t.project?.id === 'string') { out.projectId = t.project.id; out.projectName = typeof t.project.name === 'string' ? t.project.name : '' }
    return out
  }
  const msg = keystoneMessage(res.body)
  if (res.status >= 400 && res.status < 500) {
    // Keystone answers 404 for an unknown credential too; a wrong URL (a path that is no v3 API)
    // answers 404 as well, or some other page: the version document tells them apart.
    if (res.status === 404 || notKeystoneAnswer(res.body)) {
      const problem = await apiProblem(o)
      if (problem !== undefined) throw new KsaError(ERR.NO_KEYSTONE_V3, problem)
    }
    throw new KeystoneRejectedError(res.status, `Keystone answered ${res.status} to the login${msg !== '' ? `: ${msg}` : ''}`)
  }
  throw new KeystoneUnavailableError(`Keystone at ${o.url} answered HTTP ${res.status} to the login${msg !== '' ? `: ${msg}` : ''}`)
}

const REDIRECTS = new Set([301, 302, 303, 307, 308])

/**
 * Why `o.url` is not a Keystone v3 API (`no Keystone v3 API at URL (HTTP 404)`), from a GET of
 * its version document (one redirect followed); undefined when it is one, or when that cannot
 * be told (no answer, 5xx).
 */
export async function apiProblem (o: LiteOptions): Promise<string | undefined> {
  try {
    let res = await call(o, 'GET', '', {})
    const raw = res.headers.location
    const location = Array.isArray(raw) ? raw[0] : raw
    if (REDIRECTS.has(res.status) && location !== undefined) {
      res = await call({ ...o, url: new URL(location, o.url + '/').href }, 'GET', '', {})
    }
    if (res.status >= 500) return undefined
    return versionProblem(o.url, res.status, res.body)
  } catch {
    return undefined
  }
}

/** Self-validation: true when valid, false when Keystone says it is not (401/404); throws when it cannot say. */
export async function validateToken (o: LiteOptions, token: string): Promise<boolean> {
  const res = await call(o, 'GET', '/auth/tokens?nocatalog', {
    'x-auth-token': token, 'x-subject-token': token, 'openstack-identity-access-rules': '1.0'
  })
  if (res.status === 200) return true
  if (res.status === 401 || res.status === 404) return false
  throw new KeystoneUnavailableError(`Keystone at ${o.url} answered HTTP ${res.status} to the token check`)
}

/**
 * Revokes a token, the token authorising its own revocation (DELETE /v3/auth/tokens). true: revoked
 * now; false: Keystone no longer honours it (401/404: expired or revoked before); throws when
 * Keystone cannot say.
 */
export async function revokeToken (o: LiteOptions, token: string): Promise<boolean> {
  const res = await call(o, 'DELETE', '/auth/tokens', { 'x-auth-token': token, 'x-subject-token': token })
  if (res.status === 204 || res.status === 200) return true
  if (res.status === 401 || res.status === 404) return false
  throw new KeystoneUnavailableError(`Keystone at ${o.url} answered HTTP ${res.status} to the revocation`)
}

export interface LiteProject { id: string, name: string, domainId: string }

/** GET /v3/auth/projects: the projects the token's user may scope to. */
export async function listAuthProjects (o: LiteOptions, token: string): Promise<LiteProject[]> {
  const res = await call(o, 'GET', '/auth/projects', { 'x-auth-token': token })
  if (res.status === 200) {
    const list = (res.body as { projects?: unknown } | undefined)?.projects
    if (!Array.isArray(list)) throw new KeystoneUnavailableError(`Keystone at ${o.url} answered GET /auth/projects without a project list`)
    return list.flatMap((p: { id?: unknown, name?: unknown, domain_id?: unknown, enabled?: unknown }) =>
      typeof p?.id === 'string' && p.enabled !== false
        ? [{ id: p.id, name: typeof p.name === 'string' ? p.name : p.id, domainId: typeof p.domain_id === 'string' ? p.domain_id : '' }]
        : [])
  }
  const msg = keystoneMessage(res.body)
  if (res.status >= 400 && res.status < 500) throw new KeystoneRejectedError(res.status, `Keystone answered ${res.status} to listing the token's projects${msg !== '' ? `: ${msg}` : ''}`)
  throw new KeystoneUnavailableError(`Keystone at ${o.url} answered HTTP ${res.status} to listing the token's projects`)
}

/** Who a token is: its user and, for a federated token, the identity provider and protocol it came through. */
export interface TokenInfo {
  expiresAt: Date
  userId: string
  userName: string
  /** user.OS-FEDERATION of a federated token. */
  federation?: { identityProvider: string, protocol: string }
}

/** Self-validation that returns the token's user and expiry; null when Keystone says it is not valid. */
export async function inspectToken (o: LiteOptions, token: string): Promise<TokenInfo | null> {
  const res = await call(o, 'GET', '/auth/tokens?nocatalog', { 'x-auth-token': token, 'x-subject-token': token })
  if (res.status === 401 || res.status === 404) return null
  type Fed = { identity_provider?: { id?: unknown }, protocol?: { id?: unknown } }
  const t = (res.body as { token?: { expires_at?: unknown, user?: { id?: unknown, name?: unknown, 'OS-FEDERATION'?: Fed } } } | undefined)?.token
  const expiresAt = new Date(typeof t?.expires_at === 'string' ? t.expires_at : NaN)
  if (res.status !== 200 || Number.isNaN(expiresAt.getTime()) || typeof t?.user?.id !== 'string') {
    throw new KeystoneUnavailableError(`Keystone at ${o.url} answered HTTP ${res.status} to the token check`)
  }
  const out: TokenInfo = { expiresAt, userId: t.user.id, userName: typeof t.user.name === 'string' ? t.user.name : '' }
  const fed = t.user['OS-FEDERATION']
  const idp = fed?.identity_provider?.id
  const protocol = fed?.protocol?.id
  if (typeof idp === 'string' && typeof protocol === 'string') out.federation = { identityProvider: idp, protocol }
  return out
}
