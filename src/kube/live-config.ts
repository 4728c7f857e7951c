import type { Logger } from '../log.js'
import { warningsOf } from '../config/warnings.js'
import { errorMessage } from '../errors.js'

// One configuration value fed by a ConfigMap key: parse each update, apply it only when it
// parses, otherwise keep the last good value and say why. The Go binary replaces the policy with
// whatever it parsed, so one typo in the ConfigMap denies everyone; here a broken update changes
// nothing but `lastError` (for readiness detail), a log line and `onReject` (for a metric).
//
// Deleted or absent ConfigMap, or a ConfigMap without the key: the empty value (empty policy,
// default sync config), as Go, logged as a warning.
//
// An update that parses with warnings (config/warnings.ts: a key Go ignores, say) is applied, and
// each warning is logged once, naming the line; `warnings` keeps them for readiness detail.

export type LiveConfigSource = 'initial' | 'configmap' | 'deleted'

export interface LiveConfigOptions<T> {
  /** ConfigMap namespace/name, for messages. */
  configMap: string
  /** The data key: `policies` or `syncConfig`. */
  key: string
  /** Parses the key's text; throws (ConfigError) when it is unusable. */
  parse: (text: string, source: string) => T
  /** The value for a deleted or absent ConfigMap. */
  empty: () => T
  logger: Logger
  onApply?: (value: T, source: LiveConfigSource) => void
  onReject?: (err: unknown) => void
}

export class LiveConfig<T> {
  readonly #o: LiveConfigOptions<T>
  #value: T
  #source: LiveConfigSource = 'initial'
  #lastError: string | undefined
  #warnings: readonly string[] = []
  #rejected = 0
  #applied = 0

  constructor (opts: LiveConfigOptions<T>) {
    this.#o = opts
    this.#value = opts.empty()
  }

  get current (): T { return this.#value }
  get source (): LiveConfigSource { return this.#source }
  /** Why the latest update was refused (the current value is an older one); undefined when it was applied. */
  get lastError (): string | undefined { return this.#lastError }
  /** The warnings of the value in effect (empty for the empty value). */
  get warnings (): readonly string[] { return this.#warnings }
  get rejectedCount (): number { return this.#rejected }
  get appliedCount (): number { return this.#applied }

  /** Feed from ConfigMapWatcher.onChange. Returns true when the value changed to the update. */
  readonly update = (data: Record<string, string> | null): boolean => {
    const where = `ConfigMap ${this.#o.configMap} key ${this.#o.key}`
    if (data === null || data[this.#o.key] === undefined) {
      const why = data === null ? 'ConfigMap deleted or absent' : `key ${this.#o.key} missing`
      this.#o.logger.warn({ configmap: this.#o.configMap, key: this.#o.key }, `${why}; using the empty/default configuration`)
      this.#set(this.#o.empty(), 'deleted')
      return true
    }
    let next: T
    try {
      next = this.#o.parse(data[this.#o.key] ?? '', where)
    } catch (err) {
      this.#rejected++
      this.#lastError = errorMessage(err)
      this.#o.logger.error({ configmap: this.#o.configMap, key: this.#o.key, err: this.#lastError },
        `invalid update refused; keeping the last good configuration (from ${this.#source})`)
      this.#o.onReject?.(err)
      return false
    }
    const warnings = warningsOf(next)
    for (const w of warnings) this.#o.logger.warn({ configmap: this.#o.configMap, key: this.#o.key }, w)
    this.#o.logger.info({ configmap: this.#o.configMap, key: this.#o.key, warnings: warnings.length }, 'configuration updated')
    this.#set(next, 'configmap')
    return true
  }

  #set (value: T, source: LiveConfigSource): void {
    this.#value = value
    this.#source = source
    this.#lastError = undefined
    this.#warnings = warningsOf(value)
    this.#applied++
    this.#o.onApply?.(value, source)
  }
}
