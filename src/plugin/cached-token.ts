import { errorMessage } from '../errors.js'
import type { CacheEntry, TokenCache } from './cache.js'
import type { LiteToken } from './keystone-lite.js'
import { checkToken } from './login.js'
import type { Prompter } from './prompt.js'
import type { Settings } from './settings.js'

// What every way of getting a token shares (password and application credential in get-token.ts,
// the browser login in websso-token.ts): its options and result, and serving a cached token.

export interface GetTokenOptions {
  settings: Settings
  /** undefined: no cache (--no-cache, --token-cache=none). */
  cache?: TokenCache | undefined
  marginMs: number
  revalidateAfterMs: number
  timeoutMs: number
  interactive: boolean
  prompter?: (() => Prompter) | undefined
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

/** A cache entry for this Keystone that stays valid for marginMs more. */
export function usable (e: CacheEntry | undefined, authUrl: string, now: number, marginMs: number): e is CacheEntry {
  return e !== undefined && e.authUrl === authUrl && Date.parse(e.expiresAt) - marginMs > now
}

export const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

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

/** A cache that cannot be written is a warning, not a failed login. */
export function writeEntry (cache: TokenCache, key: string, e: CacheEntry): void {
  try {
    cache.write(key, e)
  } catch (err) {
    process.stderr.write(`client-keystone-auth: warning: cannot write the token cache in ${cache.dir}: ${errorMessage(err)}\n`)
  }
}

/** A token just issued: cached for this key, and handed to kubectl. */
export function store (cache: TokenCache, key: string, t: LiteToken, authUrl: string, opts: GetTokenOptions): TokenResult {
  const at = new Date((opts.now ?? Date.now)()).toISOString()
  const e: CacheEntry = {
    version: 1,
    token: t.token,
    expiresAt: t.expiresAt.toISOString(),
    issuedAt: at,
    lastValidatedAt: at,
    authUrl,
    userId: t.userId,
    userName: t.userName,
    servedTo: [{ ppid: opts.ppid, at }]
  }
  if (t.projectId !== undefined) { e.projectId = t.projectId; e.projectName = t.projectName ?? '' }
  writeEntry(cache, key, e)
  return { token: t.token, expiresAt: t.expiresAt, source: 'login' }
}
