import type { Logger } from 'pino'
import { errorMessage } from '../errors.js'
import type { KeystoneClient } from '../keystone/client.js'
import type { ServiceToken } from '../keystone/service-token.js'
import type { RevocationEvent } from '../keystone/types.js'

// Keystone's revocation events, asked every --revocation-poll-interval with the webhook's own
// credential (service mode), so that a token revoked, a user disabled, deleted or given a new
// password, a project deleted, stop working within one interval instead of a cache TTL. One
// request per interval whatever the number of cached tokens. A poll that fails changes nothing
// but the readiness detail and a metric: valid tokens are never refused for it.

export interface RevocationPollerOptions {
  keystone: Pick<KeystoneClient, 'revocationEvents'>
  serviceToken: Pick<ServiceToken, 'get' | 'invalidate'>
  /** Drops what the events revoke; returns how many cached tokens went. */
  apply: (events: readonly RevocationEvent[]) => number
  intervalMs: number
  /** How far back the first poll looks: what was revoked while this process started. */
  lookBackMs: number
  logger: Logger
  onPoll?: (result: 'ok' | 'error') => void
  onApplied?: (events: readonly RevocationEvent[], evicted: number) => void
  now?: () => number
}

export class RevocationPoller {
  readonly #o: RevocationPollerOptions
  #since: string
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined
  #lastOk: number | undefined
  #lastError: string | undefined
  #stopped = false

  constructor (opts: RevocationPollerOptions) {
    this.#o = opts
    this.#since = new Date((opts.now ?? Date.now)() - opts.lookBackMs).toISOString()
  }

  start (): void {
    this.#stopped = false
    this.#schedule(0)
  }

  stop (): void {
    this.#stopped = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
  }

  /** One poll now (tests, and the timer). Never throws. */
  async poll (): Promise<void> {
    this.#running ??= this.#poll().finally(() => { this.#running = undefined })
    await this.#running
  }

  /** For /readyz: always ok (a failed poll refuses no token); the detail says how it goes. */
  check = (): { ok: true, detail: string } => {
    const every = `every ${this.#o.intervalMs / 1000} s`
    if (this.#lastError !== undefined) return { ok: true, detail: `revocation events: last poll failed (${this.#lastError}); cached tokens live out --token-cache-ttl until it works` }
    if (this.#lastOk === undefined) return { ok: true, detail: `revocation events: polled ${every}, not yet answered` }
    return { ok: true, detail: `revocation events: polled ${every}, last answered ${new Date(this.#lastOk).toISOString()}` }
  }

  #schedule (ms: number): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => { void this.poll().then(() => this.#schedule(this.#o.intervalMs)) }, ms)
    this.#timer.unref()
  }

  async #poll (): Promise<void> {
    const now = this.#o.now ?? Date.now
    try {
      let events: RevocationEvent[]
      try {
        events = await this.#o.keystone.revocationEvents(await this.#o.serviceToken.get(), this.#since)
      } catch (err) {
        // The service token may have expired or been revoked itself: log in once more.
        if ((err as { status?: number }).status !== 401) throw err
        this.#o.serviceToken.invalidate()
        events = await this.#o.keystone.revocationEvents(await this.#o.serviceToken.get(), this.#since)
      }
      const last = events.at(-1)
      if (last !== undefined) {
        const evicted = this.#o.apply(events)
        this.#since = last.revokedAt
        this.#o.onApplied?.(events, evicted)
        this.#o.logger.info({ events: events.length, evicted }, 'Keystone revocation events applied')
      }
      if (this.#lastError !== undefined) this.#o.logger.info('Keystone revocation events readable again')
      this.#lastOk = now()
      this.#lastError = undefined
      this.#o.onPoll?.('ok')
    } catch (err) {
      if (this.#lastError === undefined) this.#o.logger.warn({ err: errorMessage(err) }, 'cannot read Keystone revocation events; cached tokens live out --token-cache-ttl until this works')
      this.#lastError = errorMessage(err)
      this.#o.onPoll?.('error')
    }
  }
}
