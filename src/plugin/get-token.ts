import { ERR, KsaError, errorMessage } from '../errors.js'
import { fromCache, serve, sleep, store, usable, type GetTokenOptions, type TokenResult } from './cached-token.js'
import { CacheDirError } from './cache.js'
import { login } from './login.js'
import { cacheKey, hintFor, methodOf, missingSettings, normalizeAuthUrl, type Field, type Settings } from './settings.js'

export type { GetTokenOptions, TokenResult, WebssoRunOptions } from './cached-token.js'

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

/** Asks for every missing setting when allowed, or throws MissingSettingsError naming them. */
export async function completeSettings (s: Settings, opts: Pick<GetTokenOptions, 'interactive' | 'prompter'>, why: string): Promise<void> {
  const missing = missingSettings(s).map(m => m.field)
  if (missing.length === 0) return
  if (!opts.interactive) throw new MissingSettingsError(missing, why)
  await fill(s, missing, opts)
}

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

  let cache = opts.cache
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
        try {
          release = cache.tryLock(key)
        } catch (err) {
          // An unsafe directory stays an error (it would hold tokens); one that cannot be made or
          // written (a read-only root, as in the container image) only costs the cache.
          if (err instanceof CacheDirError) throw err
          process.stderr.write(`client-keystone-auth: warning: token cache in ${cache.dir} not usable (${errorMessage(err)}); logging in without it\n`)
          cache = undefined
          break
        }
        if (release !== undefined) break
        if (now() > deadline) break
        await sleep(50)
        const e = cache.read(key)
        if (usable(e, authUrl, now(), opts.marginMs)) return serve(cache, key, e, opts)
      }
      const e = cache?.read(key)
      if (cache !== undefined && usable(e, authUrl, now(), opts.marginMs)) {
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
    if (cache !== undefined) return store(cache, key, issued, authUrl, opts)
    return { token: issued.token, expiresAt: issued.expiresAt, source: 'login' }
  } finally {
    release?.()
  }
}
