import { readFileSync, unwatchFile, watchFile } from 'node:fs'
import { createSecureContext, type SecureContextOptions, type Server as TlsServer } from 'node:tls'
import type { Logger } from 'pino'
import { ConfigError, errorMessage } from '../../errors.js'

// TLS 1.2 and 1.3 only; for 1.2, forward-secret AEAD suites only (kube-apiserver's Go client
// offers these). TLS 1.3 suites are all strong and not set through `ciphers`.
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305'
].join(':')

export interface TlsFiles {
  certFile: string
  keyFile: string
  clientCaFile?: string
}

export function readTlsMaterial (files: TlsFiles): SecureContextOptions {
  const read = (path: string, flag: string): Buffer => {
    try {
      return readFileSync(path)
    } catch (err) {
      throw new ConfigError(`${flag}: cannot read ${path}: ${errorMessage(err)}`)
    }
  }
  const material: SecureContextOptions = {
    cert: read(files.certFile, '--tls-cert-file'),
    key: read(files.keyFile, '--tls-private-key-file'),
    minVersion: 'TLSv1.2',
    ciphers: TLS12_CIPHERS,
    honorCipherOrder: true
  }
  if (files.clientCaFile !== undefined) material.ca = read(files.clientCaFile, '--client-ca-file')
  try {
    // Fails here, at start-up or on reload, for a key that doesn't match its certificate.
    createSecureContext(material)
  } catch (err) {
    throw new ConfigError(`TLS certificate/key ${files.certFile} / ${files.keyFile} unusable: ${errorMessage(err)}`)
  }
  return material
}

/** Options for Fastify's `https`. */
export function httpsOptions (files: TlsFiles): Record<string, unknown> {
  return {
    ...readTlsMaterial(files),
    // With a client CA, ask for a certificate but let the app decide, so probes stay exempt.
    requestCert: files.clientCaFile !== undefined,
    rejectUnauthorized: false
  }
}

/**
 * Re-reads the certificate, key and client CA when any of them changes (cert-manager and
 * Secret volumes replace files in place), and swaps them into the running server. A half-written
 * or mismatched pair keeps the current one and is retried at the next change.
 */
export function watchTlsFiles (server: TlsServer, files: TlsFiles, logger: Logger, intervalMs = 2000): () => void {
  const paths = [files.certFile, files.keyFile, files.clientCaFile].filter((p): p is string => p !== undefined)
  const reload = (): void => {
    try {
      server.setSecureContext(readTlsMaterial(files))
      logger.info({ certFile: files.certFile }, 'TLS certificate reloaded')
    } catch (err) {
      logger.warn({ reason: errorMessage(err) }, 'TLS files changed but cannot be used yet; keeping the current certificate')
    }
  }
  for (const p of paths) {
    watchFile(p, { interval: intervalMs, persistent: false }, (cur, prev) => {
      if (cur.mtimeMs !== prev.mtimeMs || cur.size !== prev.size || cur.ino !== prev.ino) reload()
    })
  }
  return () => { for (const p of paths) unwatchFile(p) }
}
