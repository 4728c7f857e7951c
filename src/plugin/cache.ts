import { chmodSync, closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'

// Tokens kept between kubectl runs: one JSON file per cache key in
// $XDG_CACHE_HOME/k8s-keystone-auth/ (directory 0700, files 0600, written atomically), and a lock
// file per key so that parallel kubectl runs make one login between them.

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

const ENTRY_RE = /^[0-9a-f]{64}\.json$/
const SERVED_KEEP = 16

export function defaultCacheDir (env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CACHE_HOME !== undefined && env.XDG_CACHE_HOME !== ''
    ? env.XDG_CACHE_HOME
    : join(env.HOME ?? homedir(), '.cache')
  return join(base, 'k8s-keystone-auth')
}

export class TokenCache {
  readonly dir: string

  constructor (dir: string) {
    this.dir = dir
  }

  #ensureDir (): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 })
    // An existing directory made by someone else's umask is tightened: it holds tokens.
    if ((statSync(this.dir).mode & 0o077) !== 0) chmodSync(this.dir, 0o700)
  }

  path (key: string): string {
    return join(this.dir, `${key}.json`)
  }

  read (key: string): CacheEntry | undefined {
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
    this.#ensureDir()
    entry.servedTo = entry.servedTo.slice(-SERVED_KEEP)
    const tmp = join(this.dir, `.${key}.${process.pid}.${Date.now()}.tmp`)
    const fd = openSync(tmp, 'wx', 0o600)
    try {
      writeSync(fd, JSON.stringify(entry))
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, this.path(key))
  }

  remove (key: string): boolean {
    try {
      unlinkSync(this.path(key))
      return true
    } catch {
      return false
    }
  }

  /** The keys of the cached tokens. */
  keys (): string[] {
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
