// Errors carry a stable code (as Fastify and undici do) so that callers and tests branch on the
// code, never on the message text.

export class KsaError extends Error {
  readonly code: string
  constructor (code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'KsaError'
    this.code = code
  }
}

/** A command-line flag or env var has a bad or missing value. The message names the flag. */
export class UsageError extends KsaError {
  constructor (message: string) {
    super('KSA_ERR_USAGE', message)
    this.name = 'UsageError'
  }
}

/** A configuration file (policy, sync config, kubeconfig) cannot be used. */
export class ConfigError extends KsaError {
  constructor (message: string, options?: { cause?: unknown }) {
    super('KSA_ERR_CONFIG', message, options)
    this.name = 'ConfigError'
  }
}

/**
 * Keystone could not give an answer (unreachable, timeout, 5xx, unparsable body). Such an
 * outcome must never be cached and must reach kube-apiserver as an HTTP 500, so that it retries.
 */
export class KeystoneUnavailableError extends KsaError {
  constructor (message: string, options?: { cause?: unknown }) {
    super('KSA_ERR_KEYSTONE_UNAVAILABLE', message, options)
    this.name = 'KeystoneUnavailableError'
  }
}

/** Keystone answered, and the answer is a definite "no" (401, 403, 404 on auth). */
export class KeystoneRejectedError extends KsaError {
  readonly status: number
  constructor (status: number, message: string) {
    super('KSA_ERR_KEYSTONE_REJECTED', message)
    this.name = 'KeystoneRejectedError'
    this.status = status
  }
}

export function errorMessage (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
