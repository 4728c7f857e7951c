import { chmodSync, closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { ERR, KsaError } from '../errors.js'

// Tokens kept between kubectl runs: one JSON file per cache key in
// $XDG_CACHE_HOME/k8s-keystone-auth/ (directory 0700, files 0600, written atomically), and a lock
// file per key so that parallel kubectl runs make one login between them.
// The directory is trusted only when it is the user's own and closed to everyone else (as ssh
// treats a private key file): another user who can write there could plant a token of theirs
// (kubectl would then act as them, and send them what it creates), and one who can read there
// could take ours. Anything else is refused with the fix, never silently repaired.

export interface CacheEntry {
  version: 1
  token: string
  /** ISO dates. */
  expiresAt: string
  issuedAt: string
  lastValidatedAt: string
  authUrl: string
  userId: string
  userName: string
  projectId?: string
  projectName?: string
  /**
   * The processes (kubectl's pid, our parent) the token was handed to, newest last. kubectl runs
   * the plugin again after the API server answers 401; the same parent asking again for a token
   * it already got is that case, and the token is checked with Keystone before it is served again.
   */
  servedTo: Array<{ ppid: number, at: string }>
}

/** Who a WebSSO login logged in as, by the token Keystone validated. */
export interface WebssoIdentity {
  userId: string
  userName: string
  identityProvider: string
  protocol: string
  /** ISO date of that login. */
  at: string
}

const ENTRY_RE = /^[0-9a-f]{64}\.json$/
const SERVED_KEEP = 16

export function defaultCacheDir (env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CACHE_HOME !== undefined && env.XDG_CACHE_HOME !== ''
    ? env.XDG_CACHE_HOME
    : join(env.HOME ?? homedir(), '.cache')
  return join(base, 'k8s-keystone-auth')
}

/** The cache directory is not the user's own, or is open to other users. */
export class CacheDirError extends KsaError {
  constructor (message: string) {
    super(ERR.CACHE_UNSAFE, message)
    this.name = 'CacheDirError'
  }
}

function octal (mode: number): string {
  return (mode & 0o777).toString(8)
}

/**
 * Throws CacheDirError unless `st` (the directory's stat) is a directory owned by `uid` with no
 * group or other permission bit. uid undefined (Windows): not checked.
 */
export function checkCacheDir (dir: string, st: { uid: number, mode: number, isDirectory: () => boolean }, uid: number | undefined): void {
  const refuse = (why: string, fix: string): never => {
    throw new CacheDirError(`refusing the token cache directory ${dir}: ${why}; it holds your Keystone tokens. Fix: ${fix}, or set XDG_CACHE_HOME to a directory of your own (or run with --no-cache)`)
  }
  if (!st.isDirectory()) refuse('it is not a directory', `remove it (rm ${dir})`)
  if (uid === undefined) return
  if (st.uid !== uid) refuse(`it belongs to uid ${st.uid}, not to you (uid ${uid}), so its owner could read your tokens or plant its own`, `chown ${uid} ${dir} (as root) and chmod 700 ${dir}, or remove it (the plugin makes a new one)`)
  if ((st.mode & 0o077) !== 0) {
    const who = (st.mode & 0o022) !== 0 ? 'others could plant their own tokens there' : 'others could read or open your tokens there'
    refuse(`its mode is ${octal(st.mode)}, open to other users (${who})`, `chmod 700 ${dir}`)
  }
}

export class TokenCache {
  readonly dir: string

  constructor (dir: string) {
    this.dir = dir
  }

  /** false: the directory does not exist (yet); throws CacheDirError when it may not be trusted. */
  #trusted (): boolean {
    let st
    try {
      st = statSync(this.dir)
    } catch (err) {
      // ENOTDIR: a file where a parent directory should be; the directory does not exist either
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT' || code === 'ENOTDIR') return false
      throw err
    }
    checkCacheDir(this.dir, st, process.platform === 'win32' ? undefined : process.getuid?.())
    return true
  }

  #ensureDir (): void {
    if (this.#trusted()) return
    mkdirSync(this.dir, { recursive: true, mode: 0o700 })
    // mkdir's mode passes through the umask, which only removes bits; make sure of 0700 anyway.
    chmodSync(this.dir, 0o700)
    this.#trusted()
  }

  path (key: string): string {
    return join(this.dir, `${key}.json`)
  }

  read (key: string): CacheEntry | undefined {
    if (!this.#trusted()) return undefined
    let text: string
    try {
      text = readFileSync(this.path(key), 'utf8')
    } catch {
      return undefined
    }
    try {
      const e = JSON.parse(text) as CacheEntry
      if (e.version !== 1 || typeof e.token !== 'string' || typeof e.expiresAt !== 'string') return undefined
      if (!Array.isArray(e.servedTo)) e.servedTo = []
      return e
    } catch {
      return undefined
    }
  }

  write (key: string, entry: CacheEntry): void {
    entry.servedTo = entry.servedTo.slice(-SERVED_KEEP)
    this.#writeFile(key, this.path(key), JSON.stringify(entry))
  }

  #writeFile (key: string, path: string, text: string): void {
    this.#ensureDir()
    const tmp = join(this.dir, `.${key}.${process.pid}.${Date.now()}.tmp`)
    const fd = openSync(tmp, 'wx', 0o600)
    try {
      writeSync(fd, text)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, path)
  }

  /**
   * The user a WebSSO login (key: webssoUnscopedKey) last logged in as. Kept apart from the tokens:
   * it outlives them and logout (it holds no secret), so that a later login as someone else is
   * noticed; `login --switch` replaces it.
   */
  readIdentity (key: string): WebssoIdentity | undefined {
    if (!this.#trusted()) return undefined
    try {
      const v = JSON.parse(readFileSync(join(this.dir, `${key}.identity`), 'utf8')) as WebssoIdentity
      return typeof v?.userId === 'string' && typeof v.identityProvider === 'string' ? v : undefined
    } catch {
      return undefined
    }
  }

  writeIdentity (key: string, id: WebssoIdentity): void {
    this.#writeFile(key, join(this.dir, `${key}.identity`), JSON.stringify(id))
  }

  remove (key: string): boolean {
    if (!this.#trusted()) return false
    try {
      unlinkSync(this.path(key))
      return true
    } catch {
      return false
    }
  }

  /** The keys of the cached tokens. */
  keys (): string[] {
    if (!this.#trusted()) return []
    try {
      return readdirSync(this.dir).filter(n => ENTRY_RE.test(n)).map(n => n.slice(0, -'.json'.length))
    } catch {
      return []
    }
  }

  /** Removes every cached token; returns how many. */
  removeAll (): number {
    let n = 0
    let names: string[]
    if (!this.#trusted()) return 0
    try {
      names = readdirSync(this.dir)
    } catch {
      return 0
    }
    for (const name of names) {
      if (ENTRY_RE.test(name) || name.endsWith('.tmp')) {
        try {
          unlinkSync(join(this.dir, name))
          if (ENTRY_RE.test(name)) n++
        } catch {}
      }
    }
    return n
  }

  /**
   * Tries once to take the lock of `key`. Returns a release function, or undefined when another
   * live process holds it. A lock whose holder died, or older than `staleMs`, is broken.
   */
  tryLock (key: string, staleMs = 120_000): (() => void) | undefined {
    this.#ensureDir()
    const p = join(this.dir, `${key}.lock`)
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(p, 'wx', 0o600)
        writeSync(fd, String(process.pid))
        closeSync(fd)
        let released = false
        return () => {
          if (released) return
          released = true
          try { unlinkSync(p) } catch {}
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
      if (!isStale(p, staleMs)) return undefined
      try { unlinkSync(p) } catch {}
    }
    return undefined
  }
}

function isStale (lockPath: string, staleMs: number): boolean {
  try {
    const st = statSync(lockPath)
    if (Date.now() - st.mtimeMs > staleMs) return true
    const pid = Number(readFileSync(lockPath, 'utf8').trim())
    if (!Number.isInteger(pid) || pid <= 0) return Date.now() - st.mtimeMs > 5000
    try {
      process.kill(pid, 0)
      return false
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ESRCH'
    }
  } catch {
    // Gone meanwhile: try again.
    return true
  }
}
