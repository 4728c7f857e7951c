import { KeystoneUnavailableError } from '../errors.js'

/**
 * Thrown when --keystone-max-inflight validations are running and as many again are waiting. It is
 * a KeystoneUnavailableError, so the review is answered HTTP 500 with this message as the reason:
 * kube-apiserver caches nothing and retries (with backoff), where an "authenticated: false" would
 * lock the user out for its cache TTL.
 */
export class KeystoneBusyError extends KeystoneUnavailableError {
  constructor (max: number, waiting: number) {
    super(`too many tokens being validated with Keystone: ${max} in flight (--keystone-max-inflight) and ${waiting} waiting; retry`)
    this.name = 'KeystoneBusyError'
  }
}

/**
 * Bounds the token validations that talk to Keystone at once (a validation is the token check and
 * the group listing that follows it). Up to `max` run; up to `queue` more wait, first come first
 * served, for a running one to finish; anything beyond is refused at once with KeystoneBusyError.
 * Each running validation ends within its Keystone timeouts, so a waiter waits at most about as
 * long as one validation takes: never forever. `max` 0 means no bound.
 */
export class ValidationLimit {
  readonly max: number
  readonly queue: number
  #running = 0
  readonly #waiters: Array<() => void> = []

  constructor (max: number, queue: number = max) {
    if (!Number.isInteger(max) || max < 0) throw new RangeError(`ValidationLimit: max must be an integer >= 0, got ${max}`)
    if (!Number.isInteger(queue) || queue < 0) throw new RangeError(`ValidationLimit: queue must be an integer >= 0, got ${queue}`)
    this.max = max
    this.queue = queue
  }

  /** Validations holding a slot. */
  get running (): number { return this.#running }
  /** Validations waiting for a slot. */
  get waiting (): number { return this.#waiters.length }

  /** A slot is free now: run() would start at once, without waiting. */
  get free (): boolean { return this.max === 0 || this.#running < this.max }

  /**
   * Runs `fn` in a slot: at once when one is free, after a short wait when the queue has room;
   * otherwise throws KeystoneBusyError without calling `fn`.
   */
  async run<T> (fn: () => Promise<T>): Promise<T> {
    if (this.max === 0) return await fn()
    if (this.#running < this.max) {
      this.#running++
    } else if (this.#waiters.length < this.queue) {
      // The slot is handed over by release(): #running stays the same.
      await new Promise<void>(resolve => this.#waiters.push(resolve))
    } else {
      throw new KeystoneBusyError(this.max, this.#waiters.length)
    }
    try {
      return await fn()
    } finally {
      this.#release()
    }
  }

  #release (): void {
    const next = this.#waiters.shift()
    if (next !== undefined) next()
    else this.#running--
  }
}
