import { createHash } from 'node:crypto'

/** Cache keys and log correlation use this digest; the token itself is never stored or logged. */
export function tokenKey (token: string): string {
  return createHash('sha256').update(token).digest('hex')
}
