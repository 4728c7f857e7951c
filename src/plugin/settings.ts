import { createHash } from 'node:crypto'
import { normalizeKeystoneUrl } from '../keystone/auth-request.js'
import { resolve } from 'node:path'
import type { ParsedFlags } from '../config/flags.js'
import type { AuthMethod, DomainSel, ScopeRequest, UserRef } from '../keystone/types.js'
import type { CloudEntry } from './clouds.js'

// Turns flags, env and a clouds.yaml entry into one login: which method, which user or credential,
// which scope, and what is still missing. Precedence per setting: flag, then env, then clouds.yaml.
// Domains, at each level: the specific setting (OS_USER_DOMAIN_*, OS_PROJECT_DOMAIN_*), then
// OS_DOMAIN_ID/OS_DOMAIN_NAME (--domain-name), then OS_DEFAULT_DOMAIN_ID/OS_DEFAULT_DOMAIN/
// OS_DEFAULT_DOMAIN_NAME; an id before a name. This is gophercloud clientconfig's
// setDomainIfNeeded, which the Go plugin uses, where the one domain serves for both the user and
// the project. The scope: a trust, else the project, else the system (OS_SYSTEM_SCOPE), else the
// domain of OS_DOMAIN_ID/OS_DOMAIN_NAME (clientconfig's v3auth: no project gives a domain or
// system scope, the system winning).

export interface Value { value: string, source: string }

export interface Settings {
  authUrl?: Value
  userName?: Value
  userId?: Value
  userDomain?: { sel: DomainSel, source: string }
  projectName?: Value
  projectId?: Value
  projectDomain?: { sel: DomainSel, source: string }
  /** OS_DOMAIN_ID / OS_DOMAIN_NAME (--domain-name): without a project, the domain of a domain-scoped token. */
  domainScope?: { sel: DomainSel, source: string }
  /** OS_SYSTEM_SCOPE: any non-empty value asks for a system-scoped token (`all`), as in gophercloud. */
  systemScope?: Value
  /** OS_TRUST_ID: a trust-scoped token (the user logging in is the trustee). */
  trustId?: Value
  password?: Value
  token?: Value
  appCredId?: Value
  appCredName?: Value
  appCredSecret?: Value
  cacert?: Value
  cert?: Value
  key?: Value
  /** keystoneauth's auth_type; only `v3websso` (or `websso`) changes the login. */
  authType?: Value
  /** WebSSO: the identity provider (optional) and the federation protocol. */
  identityProvider?: Value
  protocol?: Value
}

export type Field = 'authUrl' | 'userName' | 'userDomain' | 'projectName' | 'password' | 'appCredSecret' | 'protocol'

export interface Missing {
  field: Field
  /** How to give it: `--password or OS_PASSWORD`. */
  hint: string
}

const HINTS: Record<Field, string> = {
  authUrl: 'Keystone URL (--keystone-url or OS_AUTH_URL)',
  userName: 'user name (--user-name or OS_USERNAME)',
  userDomain: 'user domain (--domain-name, OS_DOMAIN_NAME or OS_USER_DOMAIN_NAME)',
  projectName: 'project (--project-name, OS_PROJECT_NAME or OS_PROJECT_ID)',
  password: 'password (--password or OS_PASSWORD)',
  appCredSecret: 'application credential secret (--application-credential-secret or OS_APPLICATION_CREDENTIAL_SECRET)',
  protocol: 'federation protocol (--protocol or OS_PROTOCOL, e.g. openid, saml2, mapped)'
}

export function hintFor (field: Field): string {
  return HINTS[field]
}

type Level = 'flag' | 'env' | 'cloud'
const LEVELS: Level[] = ['flag', 'env', 'cloud']

function fromFlags (p: ParsedFlags, name: string, level: Level): Value | undefined {
  const v = p.values.get(name)
  const source = p.sources.get(name)
  if (typeof v !== 'string' || v === '' || source === undefined) return undefined
  const isFlag = source.startsWith('--')
  if ((level === 'flag') !== isFlag || level === 'cloud') return undefined
  return { value: v, source }
}

function fromCloud (c: CloudEntry | undefined, key: keyof CloudEntry): Value | undefined {
  const v = c?.[key]
  if (typeof v !== 'string' || v === '' || key === 'source') return undefined
  return { value: v, source: `clouds.yaml ${key} (${c?.source ?? ''})` }
}

export function resolveSettings (p: ParsedFlags, cloud?: CloudEntry): Settings {
  const one = (flag: string, cloudKey: keyof CloudEntry): Value | undefined => {
    for (const level of LEVELS) {
      const v = level === 'cloud' ? fromCloud(cloud, cloudKey) : fromFlags(p, flag, level)
      if (v !== undefined) return v
    }
    return undefined
  }
  const get = (level: Level, flag: string, key: keyof CloudEntry): Value | undefined =>
    level === 'cloud' ? fromCloud(cloud, key) : fromFlags(p, flag, level)
  // The domain settings of a level, most specific first; an id before a name.
  const domain = (idFlag: string, nameFlag: string, idKey: keyof CloudEntry, nameKey: keyof CloudEntry): Settings['userDomain'] => {
    const chain: Array<[string, keyof CloudEntry, 'id' | 'name']> = [
      [idFlag, idKey, 'id'], [nameFlag, nameKey, 'name'],
      ['domain-id', 'domain_id', 'id'], ['domain-name', 'domain_name', 'name'],
      ['default-domain-id', 'default_domain_id', 'id'], ['default-domain-id', 'default_domain', 'id'],
      ['default-domain-name', 'default_domain_name', 'name']
    ]
    for (const level of LEVELS) {
      for (const [flag, key, kind] of chain) {
        const v = get(level, flag, key)
        if (v !== undefined) return { sel: kind === 'id' ? { id: v.value } : { name: v.value }, source: v.source }
      }
    }
    return undefined
  }
  const domainScope = (): Settings['domainScope'] => {
    for (const level of LEVELS) {
      const id = get(level, 'domain-id', 'domain_id')
      if (id !== undefined) return { sel: { id: id.value }, source: id.source }
      const name = get(level, 'domain-name', 'domain_name')
      if (name !== undefined) return { sel: { name: name.value }, source: name.source }
    }
    return undefined
  }
  const s: Settings = {}
  const set = <K extends keyof Settings>(k: K, v: Settings[K] | undefined): void => { if (v !== undefined) s[k] = v }
  set('authUrl', one('keystone-url', 'auth_url'))
  set('userName', one('user-name', 'username'))
  set('userId', one('user-id', 'user_id'))
  set('userDomain', domain('user-domain-id', 'user-domain-name', 'user_domain_id', 'user_domain_name'))
  set('projectName', one('project-name', 'project_name'))
  set('projectId', one('project-id', 'project_id'))
  set('projectDomain', domain('project-domain-id', 'project-domain-name', 'project_domain_id', 'project_domain_name'))
  set('domainScope', domainScope())
  // Settings whose clouds.yaml key is the flag's name with `_` for `-`.
  const plain = { systemScope: 'system-scope', trustId: 'trust-id', password: 'password', token: 'token', appCredId: 'application-credential-id', appCredName: 'application-credential-name', appCredSecret: 'application-credential-secret', cacert: 'cacert', cert: 'cert', key: 'key', authType: 'auth-type', identityProvider: 'identity-provider', protocol: 'protocol' } as const
  for (const [field, flag] of Object.entries(plain) as Array<[keyof typeof plain, string]>) set(field, one(flag, flag.replaceAll('-', '_') as keyof CloudEntry))
  return s
}

export type Method = 'password' | 'application_credential' | 'token' | 'websso'

/** auth_type values (keystoneauth's naming, and the short form) that select the browser login. */
export function isWebssoAuthType (v: string | undefined): boolean {
  return v !== undefined && ['v3websso', 'websso'].includes(v.toLowerCase())
}

/** What a password or token login is scoped to; `none` when nothing names a scope. */
export type ScopeKind = 'trust' | 'project' | 'system' | 'domain' | 'none'

export function scopeOf (s: Settings): ScopeKind {
  if (s.trustId !== undefined) return 'trust'
  if (s.projectId !== undefined || s.projectName !== undefined) return 'project'
  if (s.systemScope !== undefined) return 'system'
  if (s.domainScope !== undefined) return 'domain'
  return 'none'
}

export function methodOf (s: Settings): Method {
  if (isWebssoAuthType(s.authType?.value)) return 'websso'
  if (s.appCredId !== undefined || s.appCredName !== undefined) return 'application_credential'
  if (s.password !== undefined) return 'password'
  if (s.token !== undefined) return 'token'
  return 'password'
}

/** Settings missing for a login, in prompt order; the secrets last. */
export function missingSettings (s: Settings): Missing[] {
  const out: Field[] = []
  const method = methodOf(s)
  if (s.authUrl === undefined) out.push('authUrl')
  if (method === 'websso') {
    // The project is optional: it is picked from the user's projects after the login.
    if (s.protocol === undefined) out.push('protocol')
    return out.map(field => ({ field, hint: HINTS[field] }))
  }
  const needUser = method === 'password' || (method === 'application_credential' && s.appCredId === undefined)
  if (needUser && s.userId === undefined) {
    // The Go plugin's prompt order: URL, domain, user, project, password.
    if (s.userDomain === undefined) out.push('userDomain')
    if (s.userName === undefined) out.push('userName')
  }
  if (method !== 'application_credential') {
    const scope = scopeOf(s)
    if (scope === 'none') out.push('projectName')
    else if (scope === 'project' && s.projectId === undefined && projectDomainOf(s) === undefined && !out.includes('userDomain')) out.push('userDomain')
  }
  if (method === 'password' && s.password === undefined) out.push('password')
  if (method === 'application_credential' && s.appCredSecret === undefined) out.push('appCredSecret')
  return out.map(field => ({ field, hint: HINTS[field] }))
}

function projectDomainOf (s: Settings): DomainSel | undefined {
  return s.projectDomain?.sel ?? s.userDomain?.sel
}

function domainLabel (d: DomainSel | undefined): string {
  if (d === undefined) return '?'
  return 'id' in d ? `id ${d.id}` : d.name
}

function userRef (s: Settings): UserRef {
  if (s.userId !== undefined) return { id: s.userId.value }
  return { name: s.userName?.value ?? '', domain: s.userDomain?.sel ?? { name: 'Default' } }
}

export const normalizeAuthUrl = normalizeKeystoneUrl

/** Who logs in, for messages: "user demo in domain Default", "application credential 3f2…". */
export function describeIdentity (s: Settings): string {
  const method = methodOf(s)
  const user = s.userId !== undefined ? `user id ${s.userId.value}` : `user ${s.userName?.value ?? '?'} in domain ${domainLabel(s.userDomain?.sel)}`
  if (method === 'application_credential') {
    return s.appCredId !== undefined ? `application credential ${s.appCredId.value}` : `application credential ${s.appCredName?.value ?? ''} of ${user}`
  }
  if (method === 'token') return `the token from ${s.token?.source ?? 'OS_TOKEN'}`
  if (method === 'websso') return `the WebSSO login${s.identityProvider !== undefined ? ` of identity provider ${s.identityProvider.value}` : ''} (protocol ${s.protocol?.value ?? '?'})`
  return user
}

/** What the token is scoped to, for messages: "project demo in domain Default", "domain acme". */
export function describeProject (s: Settings): string {
  if (methodOf(s) !== 'websso' && methodOf(s) !== 'application_credential') {
    const scope = scopeOf(s)
    if (scope === 'trust') return `trust ${s.trustId?.value ?? ''}`
    if (scope === 'system') return 'the system scope'
    if (scope === 'domain') return `domain ${domainLabel(s.domainScope?.sel)}`
  }
  if (s.projectId !== undefined) return `project id ${s.projectId.value}`
  if (s.projectName !== undefined) {
    const d = projectDomainOf(s)
    return methodOf(s) === 'websso' && d === undefined ? `project ${s.projectName.value}` : `project ${s.projectName.value} in domain ${domainLabel(d)}`
  }
  return methodOf(s) === 'websso' ? 'the only project of the user' : 'the credential\'s project'
}

/**
 * The cache key: SHA-256 over the auth URL, method, user or credential, domains, project and TLS
 * settings. Secrets are not part of it (a cached token is served without asking for the password
 * again); an OS_TOKEN is, hashed, since it is the identity of that login.
 */
export function cacheKey (s: Settings): string {
  const method = methodOf(s)
  const parts: unknown[] = [1, s.authUrl !== undefined ? normalizeAuthUrl(s.authUrl.value) : '', method]
  if (method === 'websso') {
    parts.push(webssoIdentity(s))
    parts.push(s.projectId !== undefined ? { id: s.projectId.value } : { name: s.projectName?.value, domain: projectDomainOf(s) })
  } else if (method === 'application_credential') {
    parts.push(s.appCredId !== undefined ? { id: s.appCredId.value } : { name: s.appCredName?.value, user: userRef(s) })
  } else {
    if (method === 'password') parts.push(userRef(s))
    else parts.push({ token: createHash('sha256').update(s.token?.value ?? '').digest('hex') })
    // A project keeps the key it had before other scopes existed (cached tokens stay found).
    const scope = scopeOf(s)
    if (scope === 'trust') parts.push({ trust: s.trustId?.value })
    else if (scope === 'system') parts.push({ system: 'all' })
    else if (scope === 'domain') parts.push({ domainScope: s.domainScope?.sel })
    else parts.push(s.projectId !== undefined ? { id: s.projectId.value } : { name: s.projectName?.value, domain: projectDomainOf(s) })
  }
  parts.push(tlsPart(s))
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex')
}

function webssoIdentity (s: Settings): unknown {
  return { idp: s.identityProvider?.value ?? '', protocol: s.protocol?.value ?? '' }
}

function tlsPart (s: Settings): unknown {
  const abs = (v: Value | undefined): string => v === undefined ? '' : resolve(v.value)
  return { cacert: abs(s.cacert), cert: abs(s.cert), key: abs(s.key) }
}

/**
 * The cache key of the unscoped federated token a WebSSO login gives: the same Keystone, identity
 * provider, protocol and TLS settings, any project. Its lock is the browser lock: parallel runs
 * wait on it, so that one browser opens.
 */
export function webssoUnscopedKey (s: Settings): string {
  const parts: unknown[] = [1, s.authUrl !== undefined ? normalizeAuthUrl(s.authUrl.value) : '', 'websso-unscoped', webssoIdentity(s), tlsPart(s)]
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex')
}

/** The Keystone login these settings describe; call only when missingSettings() is empty. */
export function loginRequest (s: Settings): { auth: AuthMethod, scope?: ScopeRequest } {
  const method = methodOf(s)
  if (method === 'websso') throw new TypeError('a WebSSO login has no request of its own: see websso.ts')
  if (method === 'application_credential') {
    const secret = s.appCredSecret?.value ?? ''
    if (s.appCredId !== undefined) return { auth: { method, id: s.appCredId.value, secret } }
    return { auth: { method, name: s.appCredName?.value ?? '', user: userRef(s), secret } }
  }
  let scope: ScopeRequest
  const kind = scopeOf(s)
  if (kind === 'trust') scope = { trust: { id: s.trustId?.value ?? '' } }
  else if (kind === 'system') scope = { system: true }
  else if (kind === 'domain') scope = { domain: s.domainScope?.sel ?? { name: 'Default' } }
  else if (s.projectId !== undefined) scope = { project: { id: s.projectId.value } }
  else scope = { project: { name: s.projectName?.value ?? '', domain: projectDomainOf(s) ?? { name: 'Default' } } }
  if (method === 'token') return { auth: { method, token: s.token?.value ?? '' }, scope }
  return { auth: { method, user: userRef(s), password: s.password?.value ?? '' }, scope }
}
