// Errors carry a stable code (as Fastify and undici do) so that callers and tests branch on the
// code, never on the message text.

// The error catalog: every code the project throws, with the class that carries it, how it
// reaches the outside (HTTP status for the webhook, exit code for the CLIs) and what it means.
// Codes and messages are part of the interface (scripts and tests branch on them), so code
// strings live here only; docs/reference/errors.md is generated from this table
// (`npm run docs:gen`) and a test keeps the two equal.

export interface CatalogEntry {
  readonly code: string
  readonly class: string
  /** How the error reaches the outside: an HTTP status of the webhook, or an exit code. */
  readonly outcome: string
  readonly meaning: string
}

function entry<C extends string> (code: C, cls: string, outcome: string, meaning: string): CatalogEntry & { code: C } {
  return { code, class: cls, outcome, meaning }
}

export const CATALOG = {
  USAGE: entry('KSA_ERR_USAGE', 'UsageError', 'exit 2', 'A command-line flag or env var has a bad or missing value; the message names it.'),
  CONFIG: entry('KSA_ERR_CONFIG', 'ConfigError, PolicyError', 'exit 1 at start-up; a policy reload keeps the last good policy', 'A configuration file (policy, sync config, kubeconfig, TLS files, proxy) cannot be used.'),
  KEYSTONE_UNAVAILABLE: entry('KSA_ERR_KEYSTONE_UNAVAILABLE', 'KeystoneUnavailableError, KeystoneBusyError, LoginFailedError', 'HTTP 500 (kube-apiserver retries); exit 1 in client-keystone-auth', 'Keystone could not give an answer (unreachable, timeout, 5xx, unparsable body, too many validations in flight); never cached.'),
  KEYSTONE_REJECTED: entry('KSA_ERR_KEYSTONE_REJECTED', 'KeystoneRejectedError, LoginFailedError, UnscopedRejectedError', 'a TokenReview answered authenticated: false; exit 1 in client-keystone-auth', 'Keystone answered with a definite "no" (401, 403, 404): bad credentials, or a token or scope it refuses.'),
  KEYSTONE_TLS: entry('KSA_ERR_KEYSTONE_TLS', 'LoginFailedError', 'exit 1', 'client-keystone-auth met a TLS problem talking to Keystone (check --cacert, --cert, --key).'),
  NO_KEYSTONE_V3: entry('KSA_ERR_NO_KEYSTONE_V3', 'KsaError, LoginFailedError', 'exit 1', 'The auth URL does not lead to a Keystone v3 API.'),
  NO_PROJECT: entry('KSA_ERR_NO_PROJECT', 'NoProjectError', 'exit 1', 'The federated (WebSSO) user has no project, several to choose from, or not the one asked for.'),
  MISSING_SETTINGS: entry('KSA_ERR_MISSING_SETTINGS', 'MissingSettingsError', 'exit 1', 'client-keystone-auth lacks settings it needs to log in (auth URL, user, password, ...); the message names them.'),
  TLS_FILES: entry('KSA_ERR_TLS_FILES', 'KsaError', 'exit 1', 'client-keystone-auth cannot read a CA, certificate or key file.'),
  APP_CRED: entry('KSA_ERR_APP_CRED', 'KsaError', 'exit 1', 'Keystone refused or failed to create an application credential for a kubeconfig.'),
  CACHE_UNSAFE: entry('KSA_ERR_CACHE_UNSAFE', 'CacheDirError', 'exit 1', 'The token cache directory is unsafe to use (owner or permissions) or unusable.'),
  PROMPT: entry('KSA_ERR_PROMPT', 'PromptAbortedError', 'exit 1', 'An interactive prompt was aborted or could not be answered.'),
  WEBSSO_LOGIN_NEEDED: entry('KSA_ERR_WEBSSO_LOGIN_NEEDED', 'WebssoLoginNeededError', 'exit 1', 'No usable cached WebSSO token and this run cannot open a browser; run `client-keystone-auth login` first.'),
  WEBSSO_LOCKED: entry('KSA_ERR_WEBSSO_LOCKED', 'KsaError', 'exit 1', 'Another run has held the WebSSO login lock for longer than a login may take.'),
  WEBSSO_PORTS: entry('KSA_ERR_WEBSSO_PORTS', 'WebssoError', 'exit 1', 'No free callback port for the WebSSO login.'),
  WEBSSO_TIMEOUT: entry('KSA_ERR_WEBSSO_TIMEOUT', 'WebssoError', 'exit 1', 'No WebSSO login arrived at the callback in time.'),
  SYNC_TIMEOUT: entry('KSA_ERR_SYNC_TIMEOUT', 'SyncTimeoutError', 'logged; the review goes on', 'Syncing a user to Kubernetes did not finish in time; it continues in the background.'),
  KUBE_API: entry('KSA_ERR_KUBE_API', 'KubeApiError', 'logged; sync of that user fails', 'The Kubernetes API answered an error to a sync request.'),
  KUBE_UNAVAILABLE: entry('KSA_ERR_KUBE_UNAVAILABLE', 'KubeUnavailableError', 'logged; sync of that user fails', 'The Kubernetes API could not be reached.')
} as const

export type ErrorCode = typeof CATALOG[keyof typeof CATALOG]['code']

/** The code of each catalog entry, by its short name: ERR.NO_PROJECT === 'KSA_ERR_NO_PROJECT'. */
export const ERR = Object.fromEntries(Object.entries(CATALOG).map(([k, v]) => [k, v.code])) as { readonly [K in keyof typeof CATALOG]: typeof CATALOG[K]['code'] }

export class KsaError extends Error {
  readonly code: ErrorCode
  constructor (code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'KsaError'
    this.code = code
  }
}

/** A command-line flag or env var has a bad or missing value. The message names the flag. */
export class UsageError extends KsaError {
  constructor (message: string) {
    super(ERR.USAGE, message)
    this.name = 'UsageError'
  }
}

/** A configuration file (policy, sync config, kubeconfig) cannot be used. */
export class ConfigError extends KsaError {
  constructor (message: string, options?: { cause?: unknown }) {
    super(ERR.CONFIG, message, options)
    this.name = 'ConfigError'
  }
}

/**
 * Keystone could not give an answer (unreachable, timeout, 5xx, unparsable body). Such an
 * outcome must never be cached and must reach kube-apiserver as an HTTP 500, so that it retries.
 */
export class KeystoneUnavailableError extends KsaError {
  constructor (message: string, options?: { cause?: unknown }) {
    super(ERR.KEYSTONE_UNAVAILABLE, message, options)
    this.name = 'KeystoneUnavailableError'
  }
}

/** Keystone answered, and the answer is a definite "no" (401, 403, 404 on auth). */
export class KeystoneRejectedError extends KsaError {
  readonly status: number
  constructor (status: number, message: string) {
    super(ERR.KEYSTONE_REJECTED, message)
    this.name = 'KeystoneRejectedError'
    this.status = status
  }
}

export function errorMessage (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
