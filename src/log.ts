import { pino, type Logger, type LevelWithSilent } from 'pino'

// Every place a secret can travel through a log object. pino's redaction runs on the serialized
// object, so a token logged by mistake under one of these keys is replaced, not written.
export const REDACT_PATHS = [
  'token', '*.token', '*.*.token', 'spec.token', '*.spec.token',
  'password', '*.password', '*.*.password',
  'secret', '*.secret', '*.*.secret',
  'authorization', '*.authorization',
  'req.headers.authorization', 'req.headers["x-auth-token"]', 'req.headers["x-subject-token"]',
  'headers["x-auth-token"]', 'headers["x-subject-token"]', 'headers.authorization',
  '*.headers["x-auth-token"]', '*.headers["x-subject-token"]', '*.headers.authorization',
  'application_credential_secret', '*.application_credential_secret'
]

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

export interface LoggerOptions {
  level?: LevelWithSilent
  /** Where to write; defaults to stderr so that a binary's stdout stays machine-readable. */
  destination?: NodeJS.WritableStream | { write (s: string): void }
  name?: string
}

export function createLogger (opts: LoggerOptions = {}): Logger {
  return pino({
    name: opts.name ?? 'k8s-keystone-auth',
    level: opts.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime
  }, (opts.destination ?? pino.destination(2)) as pino.DestinationStream)
}

export type { Logger }
