import type { AuthMethod, DomainSel, ScopeRequest, UserRef } from './types.js'

// Keystone URL and login-body rules shared by the webhook's KeystoneClient (undici) and the
// plugin's lean client (node:http): no dependency here, so the plugin's start-up stays cheap.

/**
 * The Keystone v3 URL for what a user gave, as gophercloud turns it into one (the Go plugin and
 * webhook: openstack.NewClient + NewIdentityV3, through utils.BaseEndpoint): the path is cut at
 * its first version segment (`/v2.0`, `/v3`, `/v3.14`, with anything after it), and `/v3` is
 * added. So `http://k:5000`, `http://k:5000/`, `http://k:5000/v2.0` and `http://k:5000/v3/` all
 * give `http://k:5000/v3`; `https://k/identity` gives `https://k/identity/v3`. No version
 * discovery is made (neither does the Go plugin): the version document is read only to explain
 * a failure (see versionProblem).
 */
export function normalizeKeystoneUrl (raw: string): string {
  let u: URL
  try {
    u = new URL(raw)
  } catch {
    throw new TypeError(`Keystone URL is not a URL: ${JSON.stringify(raw)}`)
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new TypeError(`Keystone URL must be http or https: ${raw}`)
  const segments = u.pathname.split('/')
  const version = segments.findIndex(seg => /^v[0-9][0-9.]*$/.test(seg))
  const kept = (version === -1 ? segments : segments.slice(0, version)).filter(seg => seg !== '')
  u.pathname = [...kept, 'v3'].join('/')
  u.search = ''
  u.hash = ''
  return u.toString().replace(/\/+$/, '')
}

/**
 * Why the answer to a GET of the v3 root (`url`) is not Keystone's v3 version document
 * (`{"version": {"id": "v3.14", "status": "stable", ...}}`), or undefined when it is. Only for
 * answers below 500: a 5xx is Keystone (or its front) failing, not a wrong URL.
 */
export function versionProblem (url: string, status: number, body: unknown): string | undefined {
  const v = (typeof body === 'object' && body !== null ? (body as { version?: unknown }).version : undefined) as { id?: unknown, status?: unknown } | undefined
  if (status === 200 && typeof v?.id === 'string' && /^v3(\.|$)/.test(v.id) && typeof v.status === 'string') return undefined
  return `no Keystone v3 API at ${url} (HTTP ${status}${status === 200 ? ', not a Keystone v3 version document' : ''})`
}

/**
 * A 4xx answer that did not come from Keystone's API: not a JSON object (an HTML 404 page of a
 * web server, or of Keystone itself for a path it does not serve). Keystone's own errors are
 * `{"error": {...}}`.
 */
export function notKeystoneAnswer (body: unknown): boolean {
  return typeof body !== 'object' || body === null || Array.isArray(body)
}

function domainJson (d: DomainSel): Record<string, string> {
  return 'id' in d ? { id: d.id } : { name: d.name }
}

function userJson (u: UserRef): Record<string, unknown> {
  return 'id' in u ? { id: u.id } : { name: u.name, domain: domainJson(u.domain) }
}

export function authRequestBody (auth: AuthMethod, scope?: ScopeRequest): unknown {
  let identity: Record<string, unknown>
  switch (auth.method) {
    case 'password':
      identity = { methods: ['password'], password: { user: { ...userJson(auth.user), password: auth.password } } }
      break
    case 'application_credential':
      identity = {
        methods: ['application_credential'],
        application_credential: 'id' in auth
          ? { id: auth.id, secret: auth.secret }
          : { name: auth.name, user: userJson(auth.user), secret: auth.secret }
      }
      break
    case 'token':
      identity = { methods: ['token'], token: { id: auth.token } }
      break
  }
  const body: Record<string, unknown> = { identity }
  if (scope === 'unscoped') body.scope = 'unscoped'
  else if (scope !== undefined) {
    if ('project' in scope) body.scope = { project: 'id' in scope.project ? { id: scope.project.id } : { name: scope.project.name, domain: domainJson(scope.project.domain) } }
    else if ('domain' in scope) body.scope = { domain: domainJson(scope.domain) }
    else if ('trust' in scope) body.scope = { 'OS-TRUST:trust': { id: scope.trust.id } }
    else body.scope = { system: { all: true } }
  }
  return { auth: body }
}
