import { ERR, KeystoneRejectedError, KsaError, errorMessage } from '../errors.js'
import type { TokenCache } from './cache.js'
import { fromCache, serve, sleep, store, usable, writeEntry, type GetTokenOptions, type TokenResult } from './cached-token.js'
import { liteOptions, LoginFailedError } from './login.js'
import { cacheKey, describeProject, webssoUnscopedKey, type Settings } from './settings.js'
import type { LiteProject, LiteToken, TokenInfo } from './keystone-lite.js'

// A kubectl token for a federated user: the project-scoped token from the cache; else, under the
// browser lock, a new scoped token from the cached unscoped federated token (switching project
// needs no browser); else a WebSSO browser login, when this run may open one. Parallel runs wait
// on the browser lock (the unscoped token's lock file), so that one browser opens, and then use
// what the first run cached.

export class WebssoLoginNeededError extends KsaError {
  constructor (why: string) {
    super(ERR.WEBSSO_LOGIN_NEEDED, `no usable cached Keystone token for this WebSSO login and ${why}; run \`client-keystone-auth login\` (with the same settings: OS_AUTH_URL, OS_AUTH_TYPE=v3websso, OS_PROTOCOL, ...) in a terminal first`)
    this.name = 'WebssoLoginNeededError'
  }
}

const NOT_INTERACTIVE = 'this run cannot open a browser (not an interactive session: no terminal, or kubectl\'s interactiveMode forbids it)'

export async function getWebssoToken (opts: GetTokenOptions, authUrl: string): Promise<TokenResult> {
  const s = opts.settings
  const now = opts.now ?? Date.now
  const ws = opts.websso ?? { ports: [8250], timeoutMs: 300_000 }
  const force = ws.force === true
  const browserAllowed = opts.interactive || force
  const cache = opts.cache
  const scopedKey = cacheKey(s)
  const browserKey = webssoUnscopedKey(s)

  if (cache !== undefined && !force) {
    const hit = await fromCache(cache, scopedKey, authUrl, opts)
    if (hit !== undefined) return hit
  }
  if (cache === undefined) {
    if (!browserAllowed) throw new WebssoLoginNeededError(`the token cache is off (--no-cache) and ${NOT_INTERACTIVE}`)
    const { token: unscoped } = await browserLogin(s, authUrl, ws, opts, undefined, browserKey)
    const scoped = await scope(s, authUrl, unscoped, opts)
    return { token: scoped.token, expiresAt: scoped.expiresAt, source: 'login' }
  }

  let release: (() => void) | undefined
  try {
    // The browser lock: held for the whole login (a person typing), so a waiter waits that long.
    const staleMs = ws.timeoutMs + 30_000
    const deadline = now() + ws.timeoutMs + 15_000
    for (;;) {
      release = cache.tryLock(browserKey, staleMs)
      if (release !== undefined) break
      if (now() > deadline) throw new KsaError(ERR.WEBSSO_LOCKED, `another client-keystone-auth run has been holding the WebSSO login lock in ${cache.dir} for longer than the login may take; if no login is running, run \`client-keystone-auth logout\``)
      await sleep(100)
      const e = cache.read(scopedKey)
      if (usable(e, authUrl, now(), opts.marginMs)) return serve(cache, scopedKey, e, opts)
    }
    if (!force) {
      const hit = await fromCache(cache, scopedKey, authUrl, opts)
      if (hit !== undefined) return hit
      const u = cache.read(browserKey)
      if (usable(u, authUrl, now(), opts.marginMs)) {
        try {
          const scoped = await scope(s, authUrl, u.token, opts)
          return store(cache, scopedKey, scoped, authUrl, opts)
        } catch (err) {
          if (!(err instanceof UnscopedRejectedError)) throw err
          cache.remove(browserKey)
        }
      }
    }
    if (!browserAllowed) throw new WebssoLoginNeededError(NOT_INTERACTIVE)
    const { token: unscoped, info } = await browserLogin(s, authUrl, ws, opts, cache, browserKey)
    // Cache the unscoped token before scoping, so that a project choice that fails needs no new login.
    const at = new Date(now()).toISOString()
    writeEntry(cache, browserKey, {
      version: 1,
      token: unscoped,
      expiresAt: info.expiresAt.toISOString(),
      issuedAt: at,
      lastValidatedAt: at,
      authUrl,
      userId: info.userId,
      userName: info.userName,
      servedTo: []
    })
    let scoped: LiteToken
    try {
      scoped = await scope(s, authUrl, unscoped, opts)
    } catch (err) {
      if (err instanceof UnscopedRejectedError) cache.remove(browserKey)
      throw err
    }
    return store(cache, scopedKey, scoped, authUrl, opts)
  } finally {
    release?.()
  }
}

function who (u: { userName: string, userId: string, identityProvider: string }): string {
  return `user ${u.userName} (id ${u.userId}) of identity provider ${u.identityProvider}`
}

/**
 * One browser login. Every token posted to the callback is checked with Keystone first: it must be
 * valid, federated, from the configured identity provider and protocol, and (with a cache) of the
 * user this login last logged in as, unless `login --switch`. The Origin check stops web pages;
 * this stops another local process, which can post any token with any Origin. Who logged in is
 * said on stderr, so that even a first login planted that way is seen.
 */
async function browserLogin (s: Settings, authUrl: string, ws: NonNullable<GetTokenOptions['websso']>, opts: GetTokenOptions,
  cache: TokenCache | undefined, identityKey: string): Promise<{ token: string, info: TokenInfo }> {
  const { webssoLogin } = await import('./websso.js')
  const lite = await import('./keystone-lite.js')
  const lo = await liteOptions(s, authUrl, opts.timeoutMs)
  // The URL line (indented) goes out bare, so that it can be copied as it is.
  const log = ws.log ?? ((line: string) => { process.stderr.write(line.startsWith(' ') ? `${line}\n` : `client-keystone-auth: ${line}\n`) })
  const protocol = s.protocol?.value ?? ''
  const wantIdp = s.identityProvider?.value
  const last = cache?.readIdentity(identityKey)
  const accepted = new Map<string, TokenInfo>()
  const accept = async (token: string): Promise<string | undefined> => {
    const info = await lite.inspectToken(lo, token)
    if (info === null) return `Keystone at ${authUrl} does not accept the posted token`
    const fed = info.federation
    if (fed === undefined) return `the posted token, of user ${info.userName} (id ${info.userId}), is not a federated (WebSSO) token`
    if (wantIdp !== undefined && wantIdp !== '' && fed.identityProvider !== wantIdp) return `the posted token of user ${info.userName} came through identity provider ${fed.identityProvider}, not ${wantIdp}`
    if (fed.protocol !== protocol) return `the posted token of user ${info.userName} came through protocol ${fed.protocol}, not ${protocol}`
    const now = { userName: info.userName, userId: info.userId, identityProvider: fed.identityProvider }
    if (last !== undefined && ws.switchUser !== true && (last.userId !== info.userId || last.identityProvider !== fed.identityProvider)) {
      return `it is a token of ${who(now)}, but this login (Keystone ${authUrl}, identity provider ${wantIdp ?? '(any)'}, protocol ${protocol}) last logged in as ${who(last)} on ${last.at}; ` +
        'another local process may have posted it. If you meant to log in as another user, stop this run and use `client-keystone-auth login --switch`'
    }
    accepted.set(token, info)
    return undefined
  }
  const o: import('./websso.js').WebssoLoginOptions = { authUrl, protocol, ports: ws.ports, timeoutMs: ws.timeoutMs, log, accept }
  if (wantIdp !== undefined) o.identityProvider = wantIdp
  if (ws.browser !== undefined) o.browser = ws.browser
  const token = await webssoLogin(o)
  const info = accepted.get(token) as TokenInfo
  const fed = info.federation as NonNullable<TokenInfo['federation']>
  const now = { userName: info.userName, userId: info.userId, identityProvider: fed.identityProvider }
  const switched = last !== undefined && (last.userId !== info.userId || last.identityProvider !== fed.identityProvider)
  log(`logged in to Keystone as ${who(now)}, protocol ${fed.protocol}${switched ? ` (switched from ${who(last)})` : ''}`)
  if (cache !== undefined) {
    try {
      cache.writeIdentity(identityKey, { ...now, protocol: fed.protocol, at: new Date((opts.now ?? Date.now)()).toISOString() })
    } catch (err) {
      process.stderr.write(`client-keystone-auth: warning: cannot write the token cache in ${cache.dir}: ${errorMessage(err)}\n`)
    }
  }
  return { token, info }
}

/** The federated user's projects do not name one project to scope to. */
class NoProjectError extends LoginFailedError {
  constructor (message: string) {
    super(ERR.NO_PROJECT, message)
  }
}

/** Keystone refused the unscoped token itself (expired, revoked): a new browser login is needed. */
class UnscopedRejectedError extends KsaError {
  constructor (message: string) {
    super(ERR.KEYSTONE_REJECTED, message)
    this.name = 'UnscopedRejectedError'
  }
}

/** Picks the project (configured, the only one, or asked for) and exchanges the unscoped token for a scoped one. */
async function scope (s: Settings, authUrl: string, unscoped: string, opts: GetTokenOptions): Promise<LiteToken> {
  const lite = await import('./keystone-lite.js')
  const o = await liteOptions(s, authUrl, opts.timeoutMs)
  let projects: LiteProject[]
  try {
    projects = await lite.listAuthProjects(o, unscoped)
  } catch (err) {
    if (err instanceof KeystoneRejectedError && err.status === 401) throw new UnscopedRejectedError(`Keystone at ${authUrl} no longer accepts the federated token (expired or revoked)`)
    throw err
  }
  const project = await pickProject(s, projects, opts)
  try {
    return await lite.issueToken(o, { method: 'token', token: unscoped }, { project: { id: project.id } })
  } catch (err) {
    if (err instanceof KeystoneRejectedError) {
      if (err.status === 401) throw new UnscopedRejectedError(`Keystone at ${authUrl} refused to scope the federated token to project ${project.name} (${project.id}): ${err.message}`)
      throw new LoginFailedError(ERR.KEYSTONE_REJECTED, `Keystone at ${authUrl} refused to scope the federated token to project ${project.name} (${project.id}): ${err.message}`)
    }
    throw err
  }
}

async function pickProject (s: Settings, projects: LiteProject[], opts: GetTokenOptions): Promise<LiteProject> {
  const names = (list: LiteProject[]): string => list.map(p => p.name).sort().join(', ')
  if (s.projectId !== undefined) {
    const p = projects.find(x => x.id === s.projectId?.value)
    if (p === undefined) throw new NoProjectError(`the federated user has no access to project id ${s.projectId.value}; its projects: ${names(projects) || 'none'}`)
    return p
  }
  if (s.projectName !== undefined) {
    let matches = projects.filter(x => x.name === s.projectName?.value)
    const d = s.projectDomain?.sel
    if (d !== undefined && 'id' in d) matches = matches.filter(x => x.domainId === d.id)
    if (matches.length === 1) return matches[0] as LiteProject
    if (matches.length === 0) throw new NoProjectError(`the federated user has no access to ${describeProject(s)}; its projects: ${names(projects) || 'none'}`)
    throw new NoProjectError(`${matches.length} projects named ${s.projectName.value} in different domains: set the project by id (OS_PROJECT_ID) or domain id (OS_PROJECT_DOMAIN_ID)`)
  }
  if (projects.length === 1) return projects[0] as LiteProject
  if (projects.length === 0) throw new NoProjectError('the federated user has no project in Keystone (its identity provider groups give no role on any project); ask your cloud administrator')
  const prompter = opts.interactive ? opts.prompter?.() : undefined
  if (prompter === undefined) throw new NoProjectError(`the federated user has ${projects.length} projects (${names(projects)}): choose one with --project-name/OS_PROJECT_NAME or --project-id/OS_PROJECT_ID`)
  const sorted = [...projects].sort((a, b) => a.name.localeCompare(b.name))
  process.stderr.write(`Your projects:\n${sorted.map((p, i) => `  ${i + 1}) ${p.name} (${p.id})`).join('\n')}\n`)
  const answer = await prompter.ask('the project (number or name)')
  const n = Number(answer)
  const chosen = Number.isInteger(n) && n >= 1 && n <= sorted.length ? sorted[n - 1] : sorted.find(p => p.name === answer || p.id === answer)
  if (chosen === undefined) throw new NoProjectError(`no project ${JSON.stringify(answer)} among ${names(projects)}`)
  process.stderr.write(`client-keystone-auth: using project ${chosen.name}; set OS_PROJECT_NAME=${chosen.name} to skip this question\n`)
  return chosen
}
