import { KeystoneRejectedError, KeystoneUnavailableError } from '../errors.js'
import type { KeystoneClient } from './client.js'
import type { AuthMethod } from './types.js'

/**
 * The webhook's own Keystone token for service mode (as keystonemiddleware's service user):
 * it validates users' tokens and reads group names that a user's own token may not read.
 * Refreshed ahead of expiry; concurrent callers share one login.
 */
export class ServiceToken {
  readonly #client: KeystoneClient
  readonly #auth: AuthMethod
  #token: string | undefined
  #refreshAt = 0
  #pending: Promise<string> | undefined

  constructor (client: KeystoneClient, auth: AuthMethod) {
    this.#client = client
    this.#auth = auth
  }

  async get (): Promise<string> {
    if (this.#token !== undefined && Date.now() < this.#refreshAt) return this.#token
    this.#pending ??= this.#login().finally(() => { this.#pending = undefined })
    return await this.#pending
  }

  /** Drops the token after Keystone rejected it (revoked, or expired early). */
  invalidate (): void {
    this.#token = undefined
    this.#refreshAt = 0
  }

  async #login (): Promise<string> {
    try {
      const issued = await this.#client.issueToken(this.#auth)
      const now = Date.now()
      const lifetime = issued.expiresAt.getTime() - now
      // Refresh when 20% of the lifetime is left, and at least a minute before expiry.
      this.#refreshAt = now + Math.max(0, Math.min(lifetime * 0.8, lifetime - 60_000))
      this.#token = issued.token
      return issued.token
    } catch (err) {
      if (err instanceof KeystoneRejectedError) {
        // The operator's credential is wrong: every review would fail, so this is an outage of
        // ours, not a user's bad token. Say so in terms the operator can act on.
        throw new KeystoneUnavailableError(`service-mode login rejected by Keystone (${err.message}); check --service-credential-id and its secret`)
      }
      throw err
    }
  }
}
