import { ERR, KeystoneRejectedError, KeystoneUnavailableError, KsaError } from '../errors.js'
import type { LiteOptions, LiteToken } from './keystone-lite.js'
import { describeIdentity, describeProject, loginRequest, methodOf, scopeOf, type Settings } from './settings.js'

// Logging in to Keystone from the plugin, and the words of a failed login. keystone-lite.js (undici)
// is imported only when a call is made, so that a run served from the cache never loads it.

export async function liteOptions (s: Settings, authUrl: string, timeoutMs: number): Promise<LiteOptions> {
  const { VERSION } = await import('../version.js')
  const o: LiteOptions = { url: authUrl, timeoutMs, userAgent: `client-keystone-auth/${VERSION}` }
  if (s.cacert !== undefined) o.caFile = s.cacert.value
  if (s.cert !== undefined && s.key !== undefined) { o.certFile = s.cert.value; o.keyFile = s.key.value }
  return o
}

/** true: valid; false: Keystone says it is not; undefined: Keystone could not say. */
export async function checkToken (s: Settings, authUrl: string, token: string, timeoutMs: number): Promise<boolean | undefined> {
  try {
    const { validateToken } = await import('./keystone-lite.js')
    return await validateToken(await liteOptions(s, authUrl, Math.min(timeoutMs, 10_000)), token)
  } catch {
    return undefined
  }
}

export async function login (s: Settings, authUrl: string, timeoutMs: number): Promise<LiteToken> {
  const { issueToken } = await import('./keystone-lite.js')
  const { auth, scope } = loginRequest(s)
  try {
    return await issueToken(await liteOptions(s, authUrl, timeoutMs), auth, scope)
  } catch (err) {
    throw explainLoginError(err, s, authUrl)
  }
}

/** The codes a failed plugin login carries: each names a different cause (see the catalog). */
export type LoginFailedCode = typeof ERR.KEYSTONE_REJECTED | typeof ERR.KEYSTONE_UNAVAILABLE | typeof ERR.KEYSTONE_TLS | typeof ERR.NO_PROJECT | typeof ERR.NO_KEYSTONE_V3

export class LoginFailedError extends KsaError {
  constructor (code: LoginFailedCode, message: string) {
    super(code, message)
    this.name = 'LoginFailedError'
  }
}

const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ALTNAME|SSL|EPROTO/

export function explainLoginError (err: unknown, s: Settings, authUrl: string): Error {
  const who = describeIdentity(s)
  const method = methodOf(s)
  if (err instanceof KsaError && err.code === ERR.NO_KEYSTONE_V3) {
    return new LoginFailedError(err.code, `${err.message}: check --keystone-url/OS_AUTH_URL`)
  }
  if (err instanceof KeystoneRejectedError) {
    if (err.status === 401 || err.status === 404) {
      let msg: string
      if (method === 'password') {
        msg = `Keystone at ${authUrl} rejected the password of ${who} (or that user has no role on ${describeProject(s)})`
      } else if (method === 'application_credential') {
        msg = `Keystone at ${authUrl} rejected ${who}: wrong secret, or the credential expired or was deleted`
      } else {
        msg = `Keystone at ${authUrl} rejected ${who} for ${describeProject(s)}: the token expired or was revoked, or gives no access to ${scopeOf(s) === 'project' ? 'that project' : 'it'}`
      }
      return new LoginFailedError(ERR.KEYSTONE_REJECTED, msg)
    }
    return new LoginFailedError(ERR.KEYSTONE_REJECTED, `Keystone at ${authUrl} refused the login of ${who}: ${err.message}`)
  }
  if (err instanceof KeystoneUnavailableError) {
    const cause = err.cause as { code?: string, cause?: { code?: string, message?: string }, message?: string } | undefined
    const code = cause?.code ?? cause?.cause?.code ?? ''
    const detail = cause?.cause?.message ?? cause?.message ?? err.message
    if (TLS_CODES.test(code) || /certificate|TLS|SSL/i.test(detail)) {
      return new LoginFailedError(ERR.KEYSTONE_TLS, `TLS problem talking to Keystone at ${authUrl}: ${code !== '' ? `${code}: ` : ''}${detail} (check --cacert/OS_CACERT, --cert/OS_CERT and --key/OS_KEY)`)
    }
    if (cause !== undefined) {
      const via = (err as { via?: string }).via ?? ''
      return new LoginFailedError(ERR.KEYSTONE_UNAVAILABLE, `cannot reach Keystone at ${authUrl}${via}: ${code !== '' ? `${code}: ` : ''}${detail}`)
    }
    return new LoginFailedError(ERR.KEYSTONE_UNAVAILABLE, `Keystone at ${authUrl} did not answer the login properly: ${err.message}`)
  }
  return err instanceof Error ? err : new Error(String(err))
}
