import { createHash } from 'node:crypto'
import { watch, readFileSync, statSync, type FSWatcher } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { basename, dirname, resolve } from 'node:path'
import type { Logger } from 'pino'
import { ConfigError, errorMessage } from '../errors.js'
import type { PolicyEngine } from './engine.js'
import { formatIssue, PolicyError } from './policy.js'

// Keeps the engine's policy in step with --keystone-policy-file. The directory is watched rather
// than the file, because a ConfigMap or Secret volume replaces the file by swapping a `..data`
// symlink (the file's own inode never changes); a slow poll catches what fs.watch misses (NFS,
// some container runtimes). Events are debounced, and a reload happens only when the content
// changed. A broken update leaves the last good policy in effect.

export const DEFAULT_POLL_INTERVAL_MS = 60_000
export const DEFAULT_DEBOUNCE_MS = 250
export const MAX_POLICY_FILE_BYTES = 8 * 1024 * 1024

export interface PolicyFileWatcherOptions {
  path: string
  engine: PolicyEngine
  logger: Logger
  /** Fallback poll; 0 disables it. */
  pollIntervalMs?: number
  debounceMs?: number
  /** Don't watch (tests, `policy check`); reload() still works. */
  watch?: boolean
}

export type ReloadOutcome = 'unchanged' | 'ok' | 'error'

function digest (text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

function tooLarge (path: string, size: number): ConfigError {
  return new ConfigError(`policy file ${path} is ${size} bytes; the limit is ${MAX_POLICY_FILE_BYTES}`)
}

export class PolicyFileWatcher {
  readonly path: string
  private readonly engine: PolicyEngine
  private readonly logger: Logger
  private readonly debounceMs: number
  /** Digest of the last content we tried (good or bad), or 'unreadable'; avoids repeat work and logs. */
  private lastSeen: string
  private fsWatcher: FSWatcher | undefined
  private pollTimer: NodeJS.Timeout | undefined
  private debounceTimer: NodeJS.Timeout | undefined
  private running: Promise<ReloadOutcome> | undefined
  private again = false
  private closed = false

  /** Loads the file now; a missing, unreadable or invalid file throws ConfigError. */
  constructor (opts: PolicyFileWatcherOptions) {
    this.path = resolve(opts.path)
    this.engine = opts.engine
    this.logger = opts.logger
    this.debounceMs = opts.debounceMs ?? DEFAULT_DEBOUNCE_MS
    let text: string
    try {
      const size = statSync(this.path).size
      if (size > MAX_POLICY_FILE_BYTES) throw tooLarge(this.path, size)
      text = readFileSync(this.path, 'utf8')
    } catch (err) {
      if (err instanceof ConfigError) throw err
      throw new ConfigError(`cannot read policy file ${this.path}: ${errorMessage(err)}`, { cause: err })
    }
    this.lastSeen = digest(text)
    const { entries, warnings } = this.engine.load(text, this.path)
    this.logger.info({ policyFile: this.path, entries, warnings: warnings.length }, 'authorization policy loaded')
    for (const w of warnings) this.logger.warn({ policyFile: this.path }, `authorization policy: ${formatIssue(w)}`)
    if (opts.watch !== false) this.startWatching(opts.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS)
  }

  /** Re-reads the file and loads it if its content changed. Serialised: one reload at a time. */
  reload (): Promise<ReloadOutcome> {
    if (this.running !== undefined) {
      this.again = true
      return this.running
    }
    this.running = this.reloadOnce().finally(() => {
      this.running = undefined
      if (this.again && !this.closed) {
        this.again = false
        void this.reload()
      }
    })
    return this.running
  }

  close (): void {
    this.closed = true
    this.fsWatcher?.close()
    this.fsWatcher = undefined
    clearInterval(this.pollTimer)
    clearTimeout(this.debounceTimer)
  }

  private async reloadOnce (): Promise<ReloadOutcome> {
    let text: string
    try {
      const size = (await stat(this.path)).size
      if (size > MAX_POLICY_FILE_BYTES) throw tooLarge(this.path, size)
      text = await readFile(this.path, 'utf8')
    } catch (err) {
      if (this.lastSeen === 'unreadable') return 'unchanged'
      this.lastSeen = 'unreadable'
      const message = err instanceof ConfigError ? err.message : `cannot read policy file ${this.path}: ${errorMessage(err)}`
      this.engine.reportError(message, this.path)
      this.logger.warn({ policyFile: this.path, err: message }, 'authorization policy not reloaded; keeping the last good policy')
      return 'error'
    }
    const seen = digest(text)
    if (seen === this.lastSeen) return 'unchanged'
    this.lastSeen = seen
    try {
      const { entries, warnings } = this.engine.load(text, this.path)
      this.logger.info({ policyFile: this.path, entries, warnings: warnings.length, generation: this.engine.status.generation }, 'authorization policy reloaded')
      for (const w of warnings) this.logger.warn({ policyFile: this.path }, `authorization policy: ${formatIssue(w)}`)
      return 'ok'
    } catch (err) {
      const issues = err instanceof PolicyError ? err.issues.filter(i => i.severity === 'error').map(i => formatIssue(i)) : undefined
      this.logger.warn({ policyFile: this.path, err: errorMessage(err), issues }, 'authorization policy not reloaded; keeping the last good policy')
      return 'error'
    }
  }

  private schedule (): void {
    if (this.closed) return
    clearTimeout(this.debounceTimer)
    this.debounceTimer = setTimeout(() => { void this.reload() }, this.debounceMs)
    this.debounceTimer.unref()
  }

  private startWatching (pollIntervalMs: number): void {
    const dir = dirname(this.path)
    const name = basename(this.path)
    try {
      this.fsWatcher = watch(dir, { persistent: false }, (_event, filename) => {
        // `..data` is the symlink a kubelet volume swaps; null when the platform cannot say.
        if (filename === null || filename === name || filename === '..data') this.schedule()
      })
      this.fsWatcher.on('error', err => {
        this.logger.warn({ policyFile: this.path, err: errorMessage(err) }, 'cannot watch the policy directory; relying on polling')
        this.fsWatcher?.close()
        this.fsWatcher = undefined
      })
    } catch (err) {
      this.logger.warn({ policyFile: this.path, err: errorMessage(err) }, 'cannot watch the policy directory; relying on polling')
    }
    if (pollIntervalMs > 0) {
      this.pollTimer = setInterval(() => { void this.reload() }, pollIntervalMs)
      this.pollTimer.unref()
    }
  }
}
