import type { AuthMethod, DomainSel, ScopeRequest, UserRef } from './types.js'

// Keystone URL and login-body rules shared by the webhook's KeystoneClient (undici) and the
// plugin's lean client (node:http): no dependency here, so the plugin's start-up stays cheap.

export function normalizeKeystoneUrl (raw: string): string {
  let u: URL
  try {
    u = new URL(raw)
  } catch {
    throw new TypeError(`Keystone URL is not a URL: ${JSON.stringify(raw)}`)
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new TypeError(`Keystone URL must be http or https: ${raw}`)
  let path = u.pathname.replace(/\/+$/, '')
  if (!/\/v3$/.test(path)) path += '/v3'
  u.pathname = path
  u.search = ''
  u.hash = ''
  return u.toString().replace(/\/+$/, '')
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
    else body.scope = { system: { all: true } }
  }
  return { auth: body }
}
