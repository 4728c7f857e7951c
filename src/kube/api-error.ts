import { ERR, KsaError } from '../errors.js'

// A Kubernetes API answer that is not a success, with the fields of its `Status` body that callers
// branch on. `reason` is the machine-readable one (NotFound, AlreadyExists, Invalid, Expired, Gone,
// Forbidden, Unauthorized ...); `status` is the HTTP code, or the `code` of a watch ERROR event.

export class KubeApiError extends KsaError {
  readonly status: number
  readonly reason: string
  constructor (status: number, reason: string, message: string, options?: { cause?: unknown }) {
    super(ERR.KUBE_API, message, options)
    this.name = 'KubeApiError'
    this.status = status
    this.reason = reason
  }
}

/** The Kubernetes API could not be reached or its answer could not be read (no Status to go by). */
export class KubeUnavailableError extends KsaError {
  constructor (message: string, options?: { cause?: unknown }) {
    super(ERR.KUBE_UNAVAILABLE, message, options)
    this.name = 'KubeUnavailableError'
  }
}

/** Builds a KubeApiError from an HTTP status and a (possibly non-Status) body. */
export function kubeApiErrorFrom (status: number, body: unknown, what: string): KubeApiError {
  const s = (typeof body === 'object' && body !== null ? body : {}) as { kind?: unknown, reason?: unknown, message?: unknown, code?: unknown }
  const reason = typeof s.reason === 'string' && s.reason !== '' ? s.reason : `HTTP${status}`
  const message = typeof s.message === 'string' && s.message !== '' ? s.message : `HTTP ${status}`
  return new KubeApiError(status, reason, `${what}: ${message} (${status} ${reason})`)
}
