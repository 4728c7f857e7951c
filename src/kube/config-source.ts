import { readFileSync } from 'node:fs'
import { warningsOf } from '../config/warnings.js'
import type { Logger } from '../log.js'
import { ConfigError, errorMessage } from '../errors.js'
import type { KubeClient } from './client.js'
import { ConfigMapWatcher } from './configmap-watch.js'
import { LiveConfig } from './live-config.js'

// Where one configuration (the policy, or the sync config) comes from, as Go decides it: the file
// flag when given (read once; it wins over the ConfigMap), else the ConfigMap (watched, applied
// within about a second, broken edits refused), else nothing (the empty value).
// Unlike Go, a file given together with a ConfigMap is not overwritten by later ConfigMap edits:
// "the file takes precedence" holds for the whole run.

export type ConfigOrigin = 'file' | 'configmap' | 'none'

export interface ConfigSourceOptions<T> {
  /** For messages: 'policy', 'sync config'. */
  what: string
  file?: string
  configMap?: { client: KubeClient, namespace: string, name: string, key: string }
  parse: (text: string, source: string) => T
  empty: () => T
  logger: Logger
  onApply?: (value: T) => void
  /** A ConfigMap edit that did not parse (metric). */
  onReject?: (err: unknown) => void
  /** A failed list/watch (metric). */
  onWatchError?: (err: unknown) => void
}

export interface ConfigSource<T> {
  readonly current: T
  readonly origin: ConfigOrigin
  /** False only while the ConfigMap has never been listed. */
  readonly ready: boolean
  /**
   * Readiness detail: why the ConfigMap cannot be read, why its latest edit was refused, or the
   * warnings of the config in effect (file or ConfigMap).
   */
  readonly detail: string | undefined
  /** Resolves once `ready` (at once for a file or nothing). */
  start (): Promise<void>
  close (): void
}

/** Throws ConfigError when the file cannot be read or parsed (a startup error, as Go). */
export function configSource<T> (opts: ConfigSourceOptions<T>): ConfigSource<T> {
  if (opts.file !== undefined && opts.file !== '') {
    let text: string
    try {
      text = readFileSync(opts.file, 'utf8')
    } catch (err) {
      throw new ConfigError(`${opts.what} file ${opts.file}: ${errorMessage(err)}`)
    }
    const value = opts.parse(text, opts.file)
    const warnings = warningsOf(value)
    for (const w of warnings) opts.logger.warn({ file: opts.file }, w)
    opts.onApply?.(value)
    if (opts.configMap !== undefined) {
      opts.logger.info({ file: opts.file, configmap: `${opts.configMap.namespace}/${opts.configMap.name}` }, `${opts.what}: the file takes precedence; the ConfigMap is not watched`)
    }
    return fixed(value, 'file', warningsDetail(warnings))
  }
  if (opts.configMap === undefined) {
    const value = opts.empty()
    opts.onApply?.(value)
    return fixed(value, 'none')
  }
  const cm = opts.configMap
  const liveOpts: ConstructorParameters<typeof LiveConfig<T>>[0] = {
    configMap: `${cm.namespace}/${cm.name}`, key: cm.key, parse: opts.parse, empty: opts.empty, logger: opts.logger
  }
  if (opts.onApply !== undefined) { const f = opts.onApply; liveOpts.onApply = v => f(v) }
  if (opts.onReject !== undefined) liveOpts.onReject = opts.onReject
  const live = new LiveConfig<T>(liveOpts)
  const watcherOpts: ConstructorParameters<typeof ConfigMapWatcher>[1] = { namespace: cm.namespace, name: cm.name, logger: opts.logger, onChange: live.update }
  if (opts.onWatchError !== undefined) watcherOpts.onError = opts.onWatchError
  const watcher = new ConfigMapWatcher(cm.client, watcherOpts)
  return {
    get current () { return live.current },
    origin: 'configmap',
    get ready () { return watcher.synced },
    get detail () {
      if (watcher.lastError !== undefined) return `ConfigMap ${cm.namespace}/${cm.name}: ${watcher.lastError}`
      if (live.lastError !== undefined) return `refused edit, last good ${opts.what} in effect: ${live.lastError}`
      return warningsDetail(live.warnings)
    },
    start: async () => { await watcher.start() },
    close: () => watcher.close()
  }
}

function fixed<T> (value: T, origin: ConfigOrigin, detail?: string): ConfigSource<T> {
  return { current: value, origin, ready: true, detail, start: async () => {}, close: () => {} }
}

function warningsDetail (warnings: readonly string[]): string | undefined {
  if (warnings.length === 0) return undefined
  return `in effect with ${warnings.length} warning${warnings.length === 1 ? '' : 's'}: ${warnings.join('; ')}`
}
