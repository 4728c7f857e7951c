import { hash } from 'node:crypto'

/**
 * Cache keys and log correlation use this digest; the token itself is never stored or logged.
 * The one-shot hash() costs a quarter of createHash().update().digest(), which builds a Hash
 * object per call; this runs on every TokenReview.
 */
export function tokenKey (token: string): string {
  return hash('sha256', token, 'hex')
}
