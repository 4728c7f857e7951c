import { readFileSync } from 'node:fs'
import { Agent, ProxyAgent, request, type Dispatcher } from 'undici'
import type { z } from 'zod'
import { KeystoneRejectedError, KeystoneUnavailableError, errorMessage } from '../errors.js'
import { USER_AGENT } from '../version.js'
import { GroupBody, GroupsBody, ProjectBody, ProjectsBody, RevocationEventsBody, RoleAssignmentsBody, TokenBody } from './wire.js'
import { authRequestBody, normalizeKeystoneUrl, notKeystoneAnswer, versionProblem } from './auth-request.js'
import { shownProxy } from './proxy.js'
import type { AuthMethod, Group, IssuedToken, NamedRef, RevocationEvent, ScopeRequest, TokenInfo } from './types.js'

export { authRequestBody, normalizeKeystoneUrl }

export interface KeystoneClientOptions {
  /** Keystone identity URL; `/v3` is appended when missing (as gophercloud's discovery would). */
  url: string
  /** PEM bundle trusted for Keystone's TLS certificate, in addition to nothing else. */
  caFile?: string
  /** Client certificate and key for Keystone (mutual TLS), as the Go plugin's --cert/--key. */
  certFile?: string
  keyFile?: string
  /** Whole-request timeout in ms (connect, headers and body). */
  timeoutMs?: number
  /** Extra User-Agent products, appended after `k8s-keystone-auth/<version>`. */
  userAgent?: string[]
  /** Keep-alive connections per origin. */
  connections?: number
  /** An http:// forward proxy to reach Keystone through (see proxyFor in ./proxy.js). */
  proxy?: URL
  /** Injected for tests (undici MockAgent) or shared pools. */
  dispatcher?: Dispatcher
  /** Called after every HTTP exchange with Keystone, for metrics. */
  onCall?: (call: KeystoneCall) => void
  /**
   * Called when the answer to "is there a Keystone v3 API at the URL" changes (see checkApi):
   * the reason (`no Keystone v3 API at URL (HTTP 404)`), or undefined once it is found.
   */
  onApiProblem?: (problem: string | undefined) => void
  /**
   * --access-rules-service-type: tell Keystone we enforce application-credential access rules
   * (so it validates such tokens and sends their rules). Unset: we do not claim to, and Keystone
   * refuses those tokens (404), as it does for the Go binary.
   */
  accessRulesServiceType?: string | undefined
}

/** How often a 404 that may come from a wrong URL re-reads the version document, at most. */
const API_RECHECK_MS = 5000
const REDIRECTS = new Set([301, 302, 303, 307, 308])

export interface KeystoneCall {
  operation: 'validate' | 'groups' | 'group' | 'issue' | 'projects' | 'discovery' | 'revocations' | 'project' | 'assignments' | 'other'
  /** HTTP status, or 'error' when no answer came. */
  status: number | 'error'
  durationMs: number
}

const MAX_BODY_BYTES = 4 * 1024 * 1024

interface RawResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: unknown
}

export class KeystoneClient {
  readonly baseUrl: string
  readonly timeoutMs: number
  readonly #dispatcher: Dispatcher
  /** Named in errors when a proxy is used. */
  readonly #via: string
  readonly #ownDispatcher: boolean
  readonly #userAgent: string
  readonly #onCall: ((call: KeystoneCall) => void) | undefined
  readonly #onApiProblem: ((problem: string | undefined) => void) | undefined
  readonly #validateHeaders: Record<string, string>
  /** Why the URL is not a Keystone v3 API, from the last version-document check; undefined: it is, or not checked. */
  #apiProblem: string | undefined
  #apiCheckedAt = 0
  #apiCheck: Promise<string | undefined> | undefined

  constructor (opts: KeystoneClientOptions) {
    this.baseUrl = normalizeKeystoneUrl(opts.url)
    this.timeoutMs = opts.timeoutMs ?? 10_000
    this.#userAgent = [USER_AGENT, ...(opts.userAgent ?? [])].join(' ')
    this.#onCall = opts.onCall
    this.#onApiProblem = opts.onApiProblem
    this.#validateHeaders = opts.accessRulesServiceType !== undefined && opts.accessRulesServiceType !== ''
      ? { 'openstack-identity-access-rules': '1.0' }
      : {}
    if (opts.dispatcher !== undefined) {
      this.#dispatcher = opts.dispatcher
      this.#ownDispatcher = false
      this.#via = ''
    } else {
      const connect: Record<string, unknown> = { timeout: Math.min(this.timeoutMs, 10_000) }
      if (opts.caFile !== undefined) connect.ca = readFileSync(opts.caFile)
      if (opts.certFile !== undefined) connect.cert = readFileSync(opts.certFile)
      if (opts.keyFile !== undefined) connect.key = readFileSync(opts.keyFile)
      const pool = {
        connections: opts.connections ?? 64,
        keepAliveTimeout: 30_000,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs
      }
      // Through a proxy, https:// Keystone is reached by a CONNECT tunnel with Keystone's TLS
      // settings inside it; the proxy's credentials come from the proxy URL's user:password.
      this.#dispatcher = opts.proxy !== undefined
        ? new ProxyAgent({ ...pool, uri: opts.proxy.href, requestTls: connect, proxyTls: { timeout: connect.timeout as number } })
        : new Agent({ ...pool, connect })
      this.#ownDispatcher = true
      this.#via = opts.proxy !== undefined ? ` through the proxy ${shownProxy(opts.proxy)}` : ''
    }
  }

  async close (): Promise<void> {
    if (this.#ownDispatcher) await this.#dispatcher.close()
  }

  /**
   * Validates `subjectToken` (GET /v3/auth/tokens?nocatalog). With no `authToken` the token
   * validates itself, as the Go binary does. Returns null when Keystone says the token is not
   * valid (401 in self-validation, 404 when another token asks); throws KeystoneUnavailableError
   * when Keystone cannot say, and KeystoneRejectedError when a separate auth token is rejected.
   */
  async validateToken (subjectToken: string, authToken: string = subjectToken): Promise<TokenInfo | null> {
    const res = await this.#call('validate', 'GET', '/auth/tokens?nocatalog', {
      'x-auth-token': authToken,
      'x-subject-token': subjectToken,
      // Application-credential tokens with access rules validate only for services that say
      // they enforce them (keystonemiddleware sends the same header); only with
      // --access-rules-service-type, which makes the authenticator and authorizer enforce them.
      ...this.#validateHeaders
    })
    if (res.status === 200) return tokenInfoFrom(this.#parse(TokenBody, res, 'token validation'))
    if (res.status === 404 || (res.status === 401 && authToken === subjectToken)) await this.#notFoundIsKeystone(res, 'token validation')
    if (res.status === 404) return null
    // 431: the token (sent in two headers) is too large for Keystone or its front end; no retry
    // can make it valid, so it is a rejected token, not an unavailable Keystone (HTTP 500).
    if (res.status === 431) return null
    if (res.status === 401) {
      // In self-validation a 401 is the subject token's fault; with a service token it is the
      // service token's, and the caller must log in again rather than deny the user.
      if (authToken === subjectToken) return null
      throw new KeystoneRejectedError(401, 'Keystone rejected the service token used to validate tokens')
    }
    if (res.status === 403) {
      // 403 means the auth token may not validate others' tokens: a service-mode misconfiguration
      // rather than a bad user token, so it is an error the operator must see.
      throw new KeystoneUnavailableError('Keystone answered 403 to token validation: the service credential lacks the right to validate tokens')
    }
    throw this.#unexpected('token validation', res)
  }

  /**
   * All groups of a user (GET /v3/users/{id}/groups), following `links.next` on this Keystone
   * only (see nextPageUrl): every page is asked with the token.
   */
  async listUserGroups (userId: string, authToken: string): Promise<Group[]> {
    const groups: Group[] = []
    let next: string | null = `${this.baseUrl}/users/${encodeURIComponent(userId)}/groups`
    for (let page = 0; next !== null && page < 100; page++) {
      const res = await this.#call('groups', 'GET', next, { 'x-auth-token': authToken })
      if (res.status === 401 || res.status === 403 || res.status === 404) {
        throw new KeystoneRejectedError(res.status, `Keystone answered ${res.status} to listing the groups of user ${userId}`)
      }
      if (res.status !== 200) throw this.#unexpected('group listing', res)
      const body = this.#parse(GroupsBody, res, 'group listing')
      for (const g of body.groups) groups.push(g.domain_id !== undefined ? { id: g.id, name: g.name, domainId: g.domain_id } : { id: g.id, name: g.name })
      const link = body.links?.next
      next = link === undefined || link === null || link === '' ? null : nextPageUrl(this.baseUrl, link, 'group listing')
    }
    return groups
  }

  /** One group by id (GET /v3/groups/{id}); used to name the group ids of federated tokens. */
  async getGroup (groupId: string, authToken: string): Promise<Group | null> {
    const res = await this.#call('group', 'GET', `/groups/${encodeURIComponent(groupId)}`, { 'x-auth-token': authToken })
    if (res.status === 404) return null
    if (res.status === 401 || res.status === 403) {
      throw new KeystoneRejectedError(res.status, `Keystone answered ${res.status} to reading group ${groupId}`)
    }
    if (res.status !== 200) throw this.#unexpected('group lookup', res)
    const g = this.#parse(GroupBody, res, 'group lookup').group
    return g.domain_id !== undefined ? { id: g.id, name: g.name, domainId: g.domain_id } : { id: g.id, name: g.name }
  }

  /** Projects the token's user may scope to (GET /v3/auth/projects). */
  async listAuthProjects (authToken: string): Promise<Array<NamedRef & { domainId?: string }>> {
    const res = await this.#call('projects', 'GET', '/auth/projects', { 'x-auth-token': authToken })
    if (res.status === 401) throw new KeystoneRejectedError(401, 'Keystone rejected the token when listing projects')
    if (res.status !== 200) throw this.#unexpected('project listing', res)
    return this.#parse(ProjectsBody, res, 'project listing').projects.map(p =>
      p.domain_id !== undefined ? { id: p.id, name: p.name, domainId: p.domain_id } : { id: p.id, name: p.name })
  }

  /**
   * Logs in (POST /v3/auth/tokens). Throws KeystoneRejectedError for 400/401/403/404 (bad
   * credentials or scope) and KeystoneUnavailableError when Keystone cannot answer.
   */
  async issueToken (auth: AuthMethod, scope?: ScopeRequest): Promise<IssuedToken> {
    const res = await this.#call('issue', 'POST', '/auth/tokens?nocatalog', { 'content-type': 'application/json' },
      JSON.stringify(authRequestBody(auth, scope)))
    if (res.status === 201 || res.status === 200) {
      const token = headerValue(res.headers['x-subject-token'])
      if (token === undefined || token === '') throw new KeystoneUnavailableError('Keystone issued a token without an X-Subject-Token header')
      const info = tokenInfoFrom(this.#parse(TokenBody, res, 'login'))
      return { token, expiresAt: info.expiresAt, info }
    }
    if (res.status >= 400 && res.status < 500) {
      if (res.status === 404 || notKeystoneAnswer(res.body)) await this.#notFoundIsKeystone(res, 'login')
      const msg = keystoneErrorMessage(res.body)
      throw new KeystoneRejectedError(res.status, `Keystone answered ${res.status} to the login${msg !== '' ? `: ${msg}` : ''}`)
    }
    throw this.#unexpected('login', res)
  }

  /** Why the URL is not a Keystone v3 API, as the last check found; undefined when it is (or was not checked). */
  get apiProblem (): string | undefined {
    return this.#apiProblem
  }

  /**
   * Reads the version document (GET of the v3 root, one redirect followed) and remembers the
   * outcome: undefined when it is Keystone's v3 document, else the reason, `no Keystone v3 API
   * at URL (HTTP 404)`. Throws KeystoneUnavailableError when Keystone gives no answer or a 5xx
   * (it is down, which says nothing about the URL; the last outcome is kept).
   */
  async checkApi (): Promise<string | undefined> {
    this.#apiCheck ??= (async () => {
      try {
        let res = await this.#call('discovery', 'GET', this.baseUrl, {})
        const location = headerValue(res.headers.location)
        if (REDIRECTS.has(res.status) && location !== undefined) {
          res = await this.#call('discovery', 'GET', new URL(location, this.baseUrl + '/').href, {})
        }
        if (res.status >= 500) throw this.#unexpected('version discovery', res)
        const problem = versionProblem(this.baseUrl, res.status, res.body)
        this.#apiCheckedAt = Date.now()
        if (problem !== this.#apiProblem) {
          this.#apiProblem = problem
          this.#onApiProblem?.(problem)
        }
        return problem
      } finally {
        this.#apiCheck = undefined
      }
    })()
    return await this.#apiCheck
  }

  /** GET of the version document, for readiness probes: see checkApi. */
  async probe (): Promise<void> {
    await this.checkApi()
  }

  /**
   * A "not found" (or a self-validation 401) means the token or credential only when it came
   * from Keystone's v3 API. Throws KeystoneUnavailableError when the URL is known not to be one,
   * or when the answer is not Keystone's (an HTML page) and the version document says so or
   * cannot be read: kube-apiserver must not cache a rejection that no token could have avoided.
   */
  async #notFoundIsKeystone (res: RawResponse, what: string): Promise<void> {
    const foreign = notKeystoneAnswer(res.body)
    if (this.#apiProblem === undefined && !foreign) return
    let problem = this.#apiProblem
    if (problem === undefined || Date.now() - this.#apiCheckedAt >= API_RECHECK_MS) {
      try {
        problem = await this.checkApi()
      } catch (err) {
        if (problem === undefined) throw new KeystoneUnavailableError(`Keystone at ${this.baseUrl} answered HTTP ${res.status} to the ${what} with a page that is not Keystone's, and its version document cannot be read: ${errorMessage(err)}`)
      }
    }
    if (problem !== undefined) throw new KeystoneUnavailableError(problem)
  }

  /**
   * Revocation events recorded after `since` (Keystone's own `revoked_at` of the last event seen;
   * Keystone compares strictly), oldest first. Needs the admin or service role
   * (identity:list_revoke_events is rule:service_or_admin).
   */
  async revocationEvents (authToken: string, since: string): Promise<RevocationEvent[]> {
    const res = await this.#call('revocations', 'GET', `/OS-REVOKE/events?since=${encodeURIComponent(since)}`, { 'x-auth-token': authToken })
    if (res.status === 401 || res.status === 403) {
      throw new KeystoneRejectedError(res.status, `Keystone answered ${res.status} to listing revocation events (the service credential needs the admin or service role)`)
    }
    if (res.status !== 200) throw this.#unexpected('revocation event listing', res)
    return this.#parse(RevocationEventsBody, res, 'revocation event listing').events.map(revocationEventFrom)
  }

  /** A project by id (GET /v3/projects/{id}); null when Keystone has no such project (404). */
  async getProject (projectId: string, authToken: string): Promise<{ id: string, name: string, enabled: boolean } | null> {
    const res = await this.#call('project', 'GET', `/projects/${encodeURIComponent(projectId)}`, { 'x-auth-token': authToken })
    if (res.status === 404) return null
    if (res.status === 401 || res.status === 403) throw new KeystoneRejectedError(res.status, `Keystone answered ${res.status} to reading project ${projectId}`)
    if (res.status !== 200) throw this.#unexpected('project lookup', res)
    const p = this.#parse(ProjectBody, res, 'project lookup').project
    return { id: p.id, name: p.name, enabled: p.enabled !== false }
  }

  /**
   * The names of the roles a user holds on a project now, directly or through groups and
   * inheritance (GET /v3/role_assignments?effective&include_names).
   */
  async userRolesOnProject (userId: string, projectId: string, authToken: string): Promise<string[]> {
    const q = `user.id=${encodeURIComponent(userId)}&scope.project.id=${encodeURIComponent(projectId)}&effective&include_names`
    const res = await this.#call('assignments', 'GET', `/role_assignments?${q}`, { 'x-auth-token': authToken })
    if (res.status === 401 || res.status === 403) throw new KeystoneRejectedError(res.status, `Keystone answered ${res.status} to listing role assignments`)
    if (res.status !== 200) throw this.#unexpected('role assignment listing', res)
    return [...new Set(this.#parse(RoleAssignmentsBody, res, 'role assignment listing').role_assignments.map(a => a.role.name))]
  }

  /** Generic JSON call for the few other endpoints the plugin and sync need. */
  async json (method: string, path: string, authToken: string, body?: unknown): Promise<{ status: number, body: unknown }> {
    const headers: Record<string, string> = { 'x-auth-token': authToken }
    if (body !== undefined) headers['content-type'] = 'application/json'
    const res = await this.#call('other', method, path, headers, body === undefined ? undefined : JSON.stringify(body))
    return { status: res.status, body: res.body }
  }

  async #call (operation: KeystoneCall['operation'], method: string, path: string,
    headers: Record<string, string>, body?: string): Promise<RawResponse> {
    const url = path.startsWith('http://') || path.startsWith('https://') ? path : this.baseUrl + path
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#once(operation, method, url, headers, body)
      } catch (err) {
        // A pooled keep-alive connection that the server (or a proxy) closed while idle fails
        // on first use; that request never reached Keystone, so one retry on a fresh connection
        // is safe. Timeouts are not retried: the caller's deadline is already spent.
        if (attempt >= 2 || !isStaleConnection(err)) throw err
      }
    }
  }

  async #once (operation: KeystoneCall['operation'], method: string, url: string,
    headers: Record<string, string>, body?: string): Promise<RawResponse> {
    const started = performance.now()
    let status: number | 'error' = 'error'
    try {
      const res = await request(url, {
        method: method as Dispatcher.HttpMethod,
        headers: { accept: 'application/json', 'user-agent': this.#userAgent, ...headers },
        body: body ?? null,
        dispatcher: this.#dispatcher,
        signal: AbortSignal.timeout(this.timeoutMs)
      })
      status = res.statusCode
      const text = await readCapped(res.body)
      let parsed: unknown
      try {
        parsed = text === '' ? undefined : JSON.parse(text)
      } catch {
        parsed = text
      }
      return { status: res.statusCode, headers: res.headers, body: parsed }
    } catch (err) {
      if (err instanceof KeystoneUnavailableError) throw err
      throw new KeystoneUnavailableError(`Keystone at ${this.baseUrl} is unreachable${this.#via}: ${describeNetError(err, this.timeoutMs)}`, { cause: err })
    } finally {
      this.#onCall?.({ operation, status, durationMs: performance.now() - started })
    }
  }

  #parse<T extends z.ZodTypeAny>(schema: T, res: RawResponse, what: string): z.infer<T> {
    const r = schema.safeParse(res.body)
    if (!r.success) {
      throw new KeystoneUnavailableError(`Keystone's answer to the ${what} is not in the expected format: ${r.error.issues[0]?.path.join('.') ?? ''} ${r.error.issues[0]?.message ?? ''}`.trim())
    }
    return r.data
  }

  #unexpected (what: string, res: RawResponse): KeystoneUnavailableError {
    const msg = keystoneErrorMessage(res.body)
    return new KeystoneUnavailableError(`Keystone answered HTTP ${res.status} to the ${what}${msg !== '' ? `: ${msg}` : ''}`)
  }
}

async function readCapped (body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY_BYTES) {
      body.destroy()
      throw new KeystoneUnavailableError(`Keystone's answer is larger than ${MAX_BODY_BYTES} bytes`)
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * The absolute URL of a list's next page, when `link` (its `links.next`, absolute or relative)
 * leads to the Keystone at `baseUrl`: the same scheme, host and port (default ports written or
 * not), and no user:password. Anything else is a KeystoneUnavailableError naming both origins
 * (never the token nor the whole link): the next request carries the X-Auth-Token, and a
 * Keystone, a front end or anyone on a plain-HTTP path could otherwise point it at a host,
 * port or scheme of their choosing and collect the user's or the service token there. A
 * Keystone whose links name another origin (a public_endpoint that is not the URL the webhook
 * uses) is told by the message; the review is a 500, never an answer from partial groups.
 */
export function nextPageUrl (baseUrl: string, link: string, what: string): string {
  const base = new URL(baseUrl)
  let url: URL
  try {
    url = new URL(link, base.href.endsWith('/') ? base.href : `${base.href}/`)
  } catch {
    throw new KeystoneUnavailableError(`Keystone's answer to the ${what} has a links.next that is not a URL (${link.length} characters); not followed`)
  }
  if (url.origin !== base.origin || url.username !== '' || url.password !== '') {
    const shownOrigin = url.origin !== 'null' ? url.origin : `a ${url.protocol} URL`
    throw new KeystoneUnavailableError(`Keystone's answer to the ${what} has a links.next to ${shownOrigin}${url.username !== '' || url.password !== '' ? ' with credentials' : ''}, not to ${base.origin} where Keystone is; not followed, as the next page would carry the token there (check Keystone's public_endpoint, or the --keystone-url)`)
  }
  return url.href
}

function isStaleConnection (err: unknown): boolean {
  for (let e = err as { code?: string, cause?: unknown } | undefined, depth = 0; e !== undefined && e !== null && depth < 4; e = e.cause as typeof e, depth++) {
    if (e.code === 'ECONNRESET' || e.code === 'EPIPE' || e.code === 'UND_ERR_SOCKET') return true
  }
  return false
}

function describeNetError (err: unknown, timeoutMs: number): string {
  const e = err as { name?: string, code?: string, cause?: { code?: string, message?: string } }
  if (e.name === 'TimeoutError' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT' || e.code === 'UND_ERR_CONNECT_TIMEOUT') {
    return `no answer within ${timeoutMs} ms`
  }
  const code = e.code ?? e.cause?.code
  const tlsHint = code !== undefined && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ALTNAME/.test(code)
    ? ' (TLS: is --keystone-ca-file / the CA bundle right?)'
    : ''
  return `${code !== undefined ? `${code}: ` : ''}${errorMessage(err)}${tlsHint}`
}

function headerValue (v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v
}

function keystoneErrorMessage (body: unknown): string {
  if (typeof body === 'object' && body !== null && 'error' in body) {
    const e = (body as { error?: { message?: unknown } }).error
    if (typeof e?.message === 'string') return e.message.slice(0, 300)
  }
  return ''
}

function ref (r: { id: string, name?: string | undefined } | undefined, fallbackId = ''): NamedRef {
  return { id: r?.id ?? fallbackId, name: r?.name ?? '' }
}

export function tokenInfoFrom (body: TokenBody): TokenInfo {
  const t = body.token
  const expiresAt = new Date(t.expires_at)
  if (Number.isNaN(expiresAt.getTime())) throw new KeystoneUnavailableError(`Keystone token has an invalid expires_at: ${t.expires_at}`)
  let scope: TokenInfo['scope']
  if (t.project !== undefined) scope = { kind: 'project', project: { id: t.project.id, name: t.project.name }, domain: ref(t.project.domain) }
  else if (t.domain !== undefined) scope = { kind: 'domain', domain: ref(t.domain) }
  else if (t.system !== undefined) scope = { kind: 'system' }
  else scope = { kind: 'unscoped' }
  const info: TokenInfo = {
    user: { id: t.user.id, name: t.user.name },
    userDomain: ref(t.user.domain),
    scope,
    roles: (t.roles ?? []).map(r => ref(r)),
    methods: t.methods,
    expiresAt
  }
  const fed = t.user['OS-FEDERATION']
  if (fed !== undefined) {
    info.federatedGroupIds = fed.groups.map(g => g.id)
    if (fed.identity_provider !== undefined) info.identityProvider = fed.identity_provider.id
  }
  if (t.audit_ids !== undefined) info.auditIds = t.audit_ids
  if (t.issued_at !== undefined) {
    const issuedAt = new Date(t.issued_at)
    if (!Number.isNaN(issuedAt.getTime())) info.issuedAt = issuedAt
  }
  const trust = t['OS-TRUST:trust']
  if (trust !== undefined) info.trust = { id: trust.id, trustorId: trust.trustor_user.id, trusteeId: trust.trustee_user.id }
  if (t.application_credential !== undefined) {
    info.applicationCredentialId = t.application_credential.id
    const rules = t.application_credential.access_rules
    if (rules !== undefined) info.accessRules = rules.map(r => ({ service: r.service, method: r.method, path: r.path }))
  }
  return info
}

/** Keystone's times without a zone are UTC (oslo's isotime); microseconds are cut to ms. */
function keystoneTime (s: string): number {
  const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : `${s}Z`)
  if (Number.isNaN(ms)) throw new KeystoneUnavailableError(`Keystone sent a revocation event with an invalid time: ${s.slice(0, 40)}`)
  return ms
}

export function revocationEventFrom (e: z.infer<typeof RevocationEventsBody>['events'][number]): RevocationEvent {
  const out: RevocationEvent = { issuedBefore: keystoneTime(e.issued_before), revokedAt: e.revoked_at, revokedAtMs: keystoneTime(e.revoked_at) }
  if (e.user_id !== undefined) out.userId = e.user_id
  if (e.project_id !== undefined) out.projectId = e.project_id
  if (e.domain_id !== undefined) out.domainId = e.domain_id
  if (e.domain_scope_id !== undefined) out.domainScopeId = e.domain_scope_id
  if (e.audit_id !== undefined) out.auditId = e.audit_id
  if (e.audit_chain_id !== undefined) out.auditChainId = e.audit_chain_id
  if (e.role_id !== undefined) out.roleId = e.role_id
  if (e['OS-TRUST:trust_id'] !== undefined) out.trustId = e['OS-TRUST:trust_id']
  if (e['OS-OAUTH1:consumer_id'] !== undefined) out.consumerId = e['OS-OAUTH1:consumer_id']
  if (e['OS-OAUTH1:access_token_id'] !== undefined) out.accessTokenId = e['OS-OAUTH1:access_token_id']
  if (e.expires_at !== undefined) out.expiresAt = Math.floor(keystoneTime(e.expires_at) / 1000)
  return out
}
