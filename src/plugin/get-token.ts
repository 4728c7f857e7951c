import { ERR, KeystoneRejectedError, KeystoneUnavailableError, KsaError, errorMessage } from '../errors.js'
import { TokenCache, type CacheEntry } from './cache.js'
import type { Prompter } from './prompt.js'
import {
  cacheKey, describeIdentity, describeProject, hintFor, loginRequest, methodOf, missingSettings,
  normalizeAuthUrl, scopeOf, type Field, type Settings
} from './settings.js'

// Getting a token for kubectl: from the cache when a good one is there, otherwise by logging in to
// Keystone (under a per-key lock, so that parallel kubectl runs log in once), prompting for what
// is missing only when interactive use is allowed.

export class MissingSettingsError extends KsaError {
  readonly missing: Field[]
  constructor (missing: Field[], why: string) {
    super(ERR.MISSING_SETTINGS, `missing ${missing.map(hintFor).join(', ')}; ${why}`)
    this.name = 'MissingSettingsError'
    this.missing = missing
  }
}

export interface GetTokenOptions {
  settings: Settings
  /** undefined: no cache (--no-cache, --token-cache=none). */
  cache?: TokenCache
  marginMs: number
  revalidateAfterMs: number
  timeoutMs: number
  interactive: boolean
  prompter?: () => Prompter
  /** Our parent, normally kubectl. */
  ppid: number
  now?: () => number
  /** Settings of the WebSSO (browser) login; used when the auth type is v3websso. */
  websso?: WebssoRunOptions
}

export interface WebssoRunOptions {
  ports: number[]
  timeoutMs: number
  /** Opener command (undefined: print the URL only). */
  browser?: string[]
  /** `client-keystone-auth login`: a new browser login even when a cached token would do. */
  force?: boolean
  /** `client-keystone-auth login --switch`: take a login as another user than this login's last one. */
  switchUser?: boolean
  /** One line to the user, on stderr. */
  log?: (line: string) => void
}

export interface TokenResult {
  token: string
  expiresAt: Date
  source: 'cache' | 'login'
}

const PROMPT_LABELS: Record<Field, [string, boolean]> = {
  authUrl: ['Keystone Auth URL', false],
  userDomain: ['domain name', false],
  userName: ['user name', false],
  projectName: ['project name', false],
  password: ['password', true],
  appCredSecret: ['application credential secret', true],
  protocol: ['federation protocol (e.g. openid)', false]
}

const SECRET_FIELDS: Field[] = ['password', 'appCredSecret']

async function fill (s: Settings, fields: Field[], opts: Pick<GetTokenOptions, 'prompter'>): Promise<void> {
  const prompter = opts.prompter?.()
  if (prompter === undefined) throw new MissingSettingsError(fields, 'no terminal to ask on')
  for (const f of fields) {
    const [label, secret] = PROMPT_LABELS[f]
    const value = await prompter.ask(label, secret)
    if (value === '') throw new MissingSettingsError([f], 'the answer was empty')
    const v = { value, source: 'prompt' }
    if (f === 'userDomain') s.userDomain = { sel: { name: value }, source: 'prompt' }
    else s[f] = v
  }
}

export function usable (e: CacheEntry | undefined, authUrl: string, now: number, marginMs: number): e is CacheEntry {
  return e !== undefined && e.authUrl === authUrl && Date.parse(e.expiresAt) - marginMs > now
}

/** Asks for every missing setting when allowed, or throws MissingSettingsError naming them. */
export async function completeSettings (s: Settings, opts: Pick<GetTokenOptions, 'interactive' | 'prompter'>, why: string): Promise<void> {
  const missing = missingSettings(s).map(m => m.field)
  if (missing.length === 0) return
  if (!opts.interactive) throw new MissingSettingsError(missing, why)
  await fill(s, missing, opts)
}

export const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

export async function getToken (opts: GetTokenOptions): Promise<TokenResult> {
  const s = opts.settings
  const now = opts.now ?? Date.now
  const notInteractive = 'not prompting because this is not an interactive session (no terminal, or kubectl\'s interactiveMode forbids it)'

  // Non-secret settings first: they make the cache key.
  const missing = missingSettings(s).map(m => m.field)
  const identityMissing = missing.filter(f => !SECRET_FIELDS.includes(f))
  if (identityMissing.length > 0) {
    if (!opts.interactive) throw new MissingSettingsError(missing, notInteractive)
    await fill(s, identityMissing, opts)
  }
  let authUrl: string
  try {
    authUrl = normalizeAuthUrl(s.authUrl?.value ?? '')
  } catch (err) {
    throw new KsaError(ERR.USAGE, errorMessage(err))
  }

  if (methodOf(s) === 'websso') {
    const { getWebssoToken } = await import('./websso-token.js')
    return await getWebssoToken(opts, authUrl)
  }

  const cache = opts.cache
  const key = cache !== undefined ? cacheKey(s) : ''
  if (cache !== undefined) {
    const hit = await fromCache(cache, key, authUrl, opts)
    if (hit !== undefined) return hit
  }

  let release: (() => void) | undefined
  try {
    if (cache !== undefined) {
      // Wait for a login another run is making; give up waiting (and log in ourselves) after
      // the time a login may take, so that a stuck process cannot block kubectl for good.
      const deadline = now() + opts.timeoutMs + 5000
      for (;;) {
        release = cache.tryLock(key)
        if (release !== undefined) break
        if (now() > deadline) break
        await sleep(50)
        const e = cache.read(key)
        if (usable(e, authUrl, now(), opts.marginMs)) return serve(cache, key, e, opts)
      }
      const e = cache.read(key)
      if (usable(e, authUrl, now(), opts.marginMs)) {
        const hit = await fromCache(cache, key, authUrl, opts)
        if (hit !== undefined) return hit
      }
    }

    const secretMissing = missingSettings(s).map(m => m.field)
    if (secretMissing.length > 0) {
      if (!opts.interactive) throw new MissingSettingsError(secretMissing, notInteractive)
      await fill(s, secretMissing, opts)
    }

    const issued = await login(s, authUrl, opts.timeoutMs)
    if (cache !== undefined) {
      const at = new Date(now()).toISOString()
      const entry: CacheEntry = {
        version: 1,
        token: issued.token,
        expiresAt: issued.expiresAt.toISOString(),
        issuedAt: at,
        lastValidatedAt: at,
        authUrl,
        userId: issued.userId,
        userName: issued.userName,
        servedTo: [{ ppid: opts.ppid, at }]
      }
      if (issued.projectId !== undefined) { entry.projectId = issued.projectId; entry.projectName = issued.projectName ?? '' }
      try {
        cache.write(key, entry)
      } catch (err) {
        process.stderr.write(`client-keystone-auth: warning: cannot write the token cache in ${cache.dir}: ${errorMessage(err)}\n`)
      }
    }
    return { token: issued.token, expiresAt: issued.expiresAt, source: 'login' }
  } finally {
    release?.()
  }
}

/**
 * A cached token, checked with Keystone first when (a) the same parent process already got it —
 * kubectl runs the plugin again after the API server answered 401, e.g. for a token revoked in
 * Keystone — or (b) it was last checked longer ago than revalidateAfterMs. A token Keystone
 * rejects is dropped (and the caller logs in); when Keystone cannot be reached the token is
 * served, and the API server decides.
 */
export async function fromCache (cache: TokenCache, key: string, authUrl: string, opts: GetTokenOptions): Promise<TokenResult | undefined> {
  const now = (opts.now ?? Date.now)()
  const e = cache.read(key)
  if (!usable(e, authUrl, now, opts.marginMs)) return undefined
  const rerun = e.servedTo.some(x => x.ppid === opts.ppid)
  // A lastValidatedAt in the future (a clock set back, a restored snapshot, an edited file) or one
  // that does not parse counts as never checked: merely capped at now, it would look just checked
  // on every run, for good.
  const last = Date.parse(e.lastValidatedAt)
  const old = !(last <= now) || now - last >= opts.revalidateAfterMs
  if (rerun || old) {
    const valid = await checkToken(opts.settings, authUrl, e.token, opts.timeoutMs)
    if (valid === false) {
      cache.remove(key)
      return undefined
    }
    // Keystone unreachable (undefined): serve the token anyway; the API server decides.
    if (valid === true) e.lastValidatedAt = new Date(now).toISOString()
  }
  return serve(cache, key, e, opts)
}

export function serve (cache: TokenCache, key: string, e: CacheEntry, opts: GetTokenOptions): TokenResult {
  const at = new Date((opts.now ?? Date.now)()).toISOString()
  e.servedTo = [...e.servedTo.filter(x => x.ppid !== opts.ppid), { ppid: opts.ppid, at }]
  try {
    cache.write(key, e)
  } catch {}
  return { token: e.token, expiresAt: new Date(e.expiresAt), source: 'cache' }
}

async function liteOptions (s: Settings, authUrl: string, timeoutMs: number): Promise<import('./keystone-lite.js').LiteOptions> {
  const { VERSION } = await import('../version.js')
  const o: import('./keystone-lite.js').LiteOptions = { url: authUrl, timeoutMs, userAgent: `client-keystone-auth/${VERSION}` }
  if (s.cacert !== undefined) o.caFile = s.cacert.value
  if (s.cert !== undefined && s.key !== undefined) { o.certFile = s.cert.value; o.keyFile = s.key.value }
  return o
}

/** true: valid; false: Keystone says it is not; undefined: Keystone could not say. */
async function checkToken (s: Settings, authUrl: string, token: string, timeoutMs: number): Promise<boolean | undefined> {
  try {
    const { validateToken } = await import('./keystone-lite.js')
    return await validateToken(await liteOptions(s, authUrl, Math.min(timeoutMs, 10_000)), token)
  } catch {
    return undefined
  }
}

export async function login (s: Settings, authUrl: string, timeoutMs: number): Promise<import('./keystone-lite.js').LiteToken> {
  const { issueToken } = await import('./keystone-lite.js')
  const { auth, scope } = loginRequest(s)
  try {
    return await issueToken(await liteOptions(s, authUrl, timeoutMs), auth, scope)
  } catch (err) {
    throw explainLoginError(err, s, authUrl)
  }
}

export { liteOptions }

/** The codes a failed plugin login carries: each names a different cause (see the catalog). */
export type LoginFailedCode = typeof ERR.KEYSTONE_REJECTED | typeof ERR.KEYSTONE_UNAVAILABLE | typeof ERR.KEYSTONE_TLS | typeof ERR.NO_PROJECT | typeof ERR.NO_KEYSTONE_V3

export class LoginFailedError extends KsaError {
  constructor (code: LoginFailedCode, message: string) {
    super(code, message)
    this.name = 'LoginFailedError'
  }
}

const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ALTNAME|SSL|EPROTO/

export function explainLoginError (err: unknown, s: Settings, authUrl: string): Error {
  const who = describeIdentity(s)
  const method = methodOf(s)
  if (err instanceof KsaError && err.code === ERR.NO_KEYSTONE_V3) {
    return new LoginFailedError(err.code, `${err.message}: check --keystone-url/OS_AUTH_URL`)
  }
  if (err instanceof KeystoneRejectedError) {
    if (err.status === 401 || err.status === 404) {
      let msg: string
      if (method === 'password') {
        msg = `Keystone at ${authUrl} rejected the password of ${who} (or that user has no role on ${describeProject(s)})`
      } else if (method === 'application_credential') {
        msg = `Keystone at ${authUrl} rejected ${who}: wrong secret, or the credential expired or was deleted`
      } else {
        msg = `Keystone at ${authUrl} rejected ${who} for ${describeProject(s)}: the token expired or was revoked, or gives no access to ${scopeOf(s) === 'project' ? 'that project' : 'it'}`
      }
      return new LoginFailedError(ERR.KEYSTONE_REJECTED, msg)
    }
    return new LoginFailedError(ERR.KEYSTONE_REJECTED, `Keystone at ${authUrl} refused the login of ${who}: ${err.message}`)
  }
  if (err instanceof KeystoneUnavailableError) {
    const cause = err.cause as { code?: string, cause?: { code?: string, message?: string }, message?: string } | undefined
    const code = cause?.code ?? cause?.cause?.code ?? ''
    const detail = cause?.cause?.message ?? cause?.message ?? err.message
    if (TLS_CODES.test(code) || /certificate|TLS|SSL/i.test(detail)) {
      return new LoginFailedError(ERR.KEYSTONE_TLS, `TLS problem talking to Keystone at ${authUrl}: ${code !== '' ? `${code}: ` : ''}${detail} (check --cacert/OS_CACERT, --cert/OS_CERT and --key/OS_KEY)`)
    }
    if (cause !== undefined) {
      const via = (err as { via?: string }).via ?? ''
      return new LoginFailedError(ERR.KEYSTONE_UNAVAILABLE, `cannot reach Keystone at ${authUrl}${via}: ${code !== '' ? `${code}: ` : ''}${detail}`)
    }
    return new LoginFailedError(ERR.KEYSTONE_UNAVAILABLE, `Keystone at ${authUrl} did not answer the login properly: ${err.message}`)
  }
  return err instanceof Error ? err : new Error(String(err))
}
