// Readiness is the sum of named checks, each with a human-readable detail for /readyz, so an
// operator sees *why* a pod is not ready (Keystone down, policy broken, ConfigMap not listed).

export interface CheckResult {
  ok: boolean
  detail: string
}

export type Check = () => CheckResult

export class Readiness {
  readonly #checks = new Map<string, Check>()
  #shuttingDown = false

  add (name: string, check: Check): void {
    this.#checks.set(name, check)
  }

  markShuttingDown (): void {
    this.#shuttingDown = true
  }

  report (): { ready: boolean, checks: Record<string, CheckResult> } {
    const checks: Record<string, CheckResult> = {}
    let ready = !this.#shuttingDown
    if (this.#shuttingDown) checks.shutdown = { ok: false, detail: 'shutting down' }
    for (const [name, check] of this.#checks) {
      let r: CheckResult
      try {
        r = check()
      } catch (err) {
        r = { ok: false, detail: `check failed: ${(err as Error).message}` }
      }
      checks[name] = r
      if (!r.ok) ready = false
    }
    return { ready, checks }
  }
}

/**
 * Keystone is "up" when it answered any HTTP request (even a 4xx) recently. When no review has
 * reached it for a while, a cheap probe of the version document keeps the answer fresh.
 *
 * A URL that is not a Keystone v3 API (its version document is missing: `apiProblem`) is not
 * ready whatever else answers, since every token would be refused; while it lasts the probe
 * runs on every interval (the 404s of reviews keep the answers fresh), so that fixing the URL's
 * target makes the pod ready again. A Keystone that does not answer at all is the freshness
 * rule above, as before: the probe throws, and the last problem found is kept.
 */
export class KeystoneHealth {
  #lastAnswer = 0
  #lastError = 'no answer from Keystone yet'
  #timer: NodeJS.Timeout | undefined
  readonly freshMs: number
  readonly #apiProblem: () => string | undefined

  constructor (freshMs = 30_000, apiProblem: () => string | undefined = () => undefined) {
    this.freshMs = freshMs
    this.#apiProblem = apiProblem
  }

  recordAnswer (): void {
    this.#lastAnswer = Date.now()
  }

  recordError (message: string): void {
    this.#lastError = message
  }

  get fresh (): boolean {
    return Date.now() - this.#lastAnswer < this.freshMs
  }

  check: Check = () => {
    const problem = this.#apiProblem()
    if (problem !== undefined) return { ok: false, detail: problem }
    return this.fresh
      ? { ok: true, detail: 'Keystone answered recently' }
      : { ok: false, detail: this.#lastError }
  }

  /** Probes when the last answer is getting old; `probe` resolves on any HTTP answer. */
  start (probe: () => Promise<void>, intervalMs = Math.max(1000, Math.floor(this.freshMs / 3))): void {
    const tick = async (): Promise<void> => {
      if (Date.now() - this.#lastAnswer < intervalMs && this.#apiProblem() === undefined) return
      try {
        await probe()
        this.recordAnswer()
      } catch (err) {
        this.recordError((err as Error).message)
      }
    }
    void tick()
    this.#timer = setInterval(() => { void tick() }, intervalMs)
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
  }
}
