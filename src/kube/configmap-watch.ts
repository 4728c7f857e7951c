import type { Logger } from '../log.js'
import { errorMessage } from '../errors.js'
import { KubeApiError } from './api-error.js'
import type { KubeClient } from './client.js'

// Keeps one ConfigMap's data current: list (field selector on the name), then watch from the
// list's resourceVersion with bookmarks, as a client-go reflector does. A watch that ends is
// resumed from the last resourceVersion seen; an error backs off (capped, jittered); 410 Gone /
// Expired means our resourceVersion is compacted away, so we list again.

export interface ConfigMapWatcherOptions {
  namespace: string
  name: string
  logger: Logger
  /** The ConfigMap's data, or null when it is deleted or absent. Called on every change, and once after the first list. */
  onChange: (data: Record<string, string> | null) => void
  /** Called after each failed list/watch, for metrics. */
  onError?: (err: unknown) => void
  /** Backoff after errors: first delay and cap, ms. */
  backoffInitialMs?: number
  backoffMaxMs?: number
  /** Server-side watch timeout, seconds; client-go picks 5-10 min at random. */
  watchTimeoutSeconds?: number
}

export class ConfigMapWatcher {
  readonly namespace: string
  readonly name: string
  readonly #client: KubeClient
  readonly #opts: ConfigMapWatcherOptions
  readonly #log: Logger
  #synced = false
  #lastError: string | undefined
  #closed = false
  #abort = new AbortController()
  #running: Promise<void> | undefined
  #firstSync: { promise: Promise<void>, resolve: () => void }
  /** resourceVersion of the data last handed to onChange, or 'absent'; avoids repeat calls after a relist. */
  #delivered: string | undefined
  #wake: (() => void) | undefined

  constructor (client: KubeClient, opts: ConfigMapWatcherOptions) {
    this.#client = client
    this.#opts = opts
    this.namespace = opts.namespace
    this.name = opts.name
    this.#log = opts.logger.child({ configmap: `${opts.namespace}/${opts.name}` })
    let resolve!: () => void
    const promise = new Promise<void>(_resolve => { resolve = _resolve })
    this.#firstSync = { promise, resolve }
  }

  /** True once a list succeeded (readiness). */
  get synced (): boolean { return this.#synced }
  /** Why the last list/watch failed; cleared by the next success. */
  get lastError (): string | undefined { return this.#lastError }

  /** Starts list+watch; resolves after the first successful list (or when closed first). */
  async start (): Promise<void> {
    this.#running ??= this.#loop()
    await this.#firstSync.promise
  }

  close (): void {
    if (this.#closed) return
    this.#closed = true
    this.#abort.abort()
    this.#wake?.()
    this.#firstSync.resolve()
  }

  async #loop (): Promise<void> {
    const initial = this.#opts.backoffInitialMs ?? 100
    const max = this.#opts.backoffMaxMs ?? 10_000
    let failures = 0
    let rv: string | undefined
    const fieldSelector = `metadata.name=${this.name}`
    while (!this.#closed) {
      try {
        if (rv === undefined) {
          const list = await this.#client.listConfigMaps(this.namespace, { fieldSelector })
          const cm = list.items.find(i => i.name === this.name)
          this.#deliver(cm === undefined ? null : cm.data, cm?.resourceVersion ?? 'absent')
          rv = list.resourceVersion
          this.#lastError = undefined
          if (!this.#synced) {
            this.#synced = true
            this.#log.info({ resourceVersion: rv, present: cm !== undefined }, 'ConfigMap listed')
            this.#firstSync.resolve()
          }
        }
        const timeoutSeconds = this.#opts.watchTimeoutSeconds ?? 300 + Math.floor(Math.random() * 300)
        let events = 0
        for await (const ev of this.#client.watchConfigMaps(this.namespace, { resourceVersion: rv, fieldSelector, timeoutSeconds, signal: this.#abort.signal })) {
          events++
          if (ev.type === 'BOOKMARK') {
            if (ev.resourceVersion !== '') rv = ev.resourceVersion
            continue
          }
          rv = ev.object.resourceVersion !== '' ? ev.object.resourceVersion : rv
          if (ev.object.name !== this.name) continue
          if (ev.type === 'DELETED') this.#deliver(null, 'absent')
          else this.#deliver(ev.object.data, ev.object.resourceVersion)
          failures = 0
          this.#lastError = undefined
        }
        if (this.#closed) break
        // A watch the server ended normally (timeoutSeconds) resumes at once; one that ends
        // immediately again and again (a proxy closing it) backs off like an error.
        if (events === 0) failures++
        else failures = 0
        this.#log.debug({ resourceVersion: rv }, 'watch ended; resuming')
      } catch (err) {
        if (this.#closed) break
        this.#lastError = errorMessage(err)
        this.#opts.onError?.(err)
        if (err instanceof KubeApiError && (err.status === 410 || err.reason === 'Expired' || err.reason === 'Gone')) {
          // Our resourceVersion is too old: list again (no need to wait long, nothing is wrong).
          this.#log.info({ resourceVersion: rv }, 'watch resourceVersion expired (410); listing again')
          rv = undefined
          failures = Math.max(failures, 0)
          await this.#sleep(initial)
          continue
        }
        failures++
        this.#log.warn({ err: this.#lastError, failures }, 'ConfigMap list/watch failed; retrying')
      }
      if (failures > 0) {
        const base = Math.min(max, initial * 2 ** (failures - 1))
        await this.#sleep(base / 2 + Math.random() * base / 2)
      }
    }
  }

  #deliver (data: Record<string, string> | null, version: string): void {
    if (this.#delivered === version) return
    this.#delivered = version
    try {
      this.#opts.onChange(data)
    } catch (err) {
      this.#log.error({ err: errorMessage(err) }, 'ConfigMap change handler threw')
    }
  }

  async #sleep (ms: number): Promise<void> {
    if (this.#closed) return
    await new Promise<void>(resolve => {
      const t = setTimeout(() => { this.#wake = undefined; resolve() }, ms)
      this.#wake = () => { clearTimeout(t); this.#wake = undefined; resolve() }
    })
  }
}
