import { readFile } from 'node:fs/promises'
import { execFile } from 'node:child_process'
import { ConfigError, errorMessage } from '../errors.js'

// Where the Authorization header for the Kubernetes API comes from. Every source may be asked to
// forget what it holds (after a 401) so that a rotated token or an expired exec credential is
// fetched again instead of failing until restart.

export interface CredentialSource {
  /** The Authorization header value, or undefined for none (client certificates only). */
  authorization (): Promise<string | undefined>
  /** Drop any cached credential; the next authorization() fetches a fresh one. */
  invalidate (): void
}

export const noCredentials: CredentialSource = {
  authorization: async () => undefined,
  invalidate: () => {}
}

export function staticBearer (token: string): CredentialSource {
  return { authorization: async () => `Bearer ${token}`, invalidate: () => {} }
}

export function basicAuth (username: string, password: string): CredentialSource {
  const v = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`
  return { authorization: async () => v, invalidate: () => {} }
}

/**
 * A bearer token read from a file and re-read at most every `maxAgeMs` (and after a 401): a
 * projected service-account token is rotated by the kubelet in place, as client-go expects.
 */
export function tokenFile (path: string, maxAgeMs = 60_000, now: () => number = Date.now): CredentialSource {
  let cached: { token: string, readAt: number } | undefined
  return {
    async authorization () {
      if (cached === undefined || now() - cached.readAt >= maxAgeMs) {
        let text: string
        try {
          text = await readFile(path, 'utf8')
        } catch (err) {
          // A token read earlier stays usable while the file is briefly missing during rotation.
          if (cached !== undefined) return `Bearer ${cached.token}`
          throw new ConfigError(`cannot read token file ${path}: ${errorMessage(err)}`)
        }
        cached = { token: text.trim(), readAt: now() }
      }
      return `Bearer ${cached.token}`
    },
    invalidate () { cached = undefined }
  }
}

export interface ExecConfig {
  command: string
  args?: string[]
  env?: Array<{ name: string, value: string }>
  apiVersion?: string
  /** Directory the command is resolved against when it is a relative path (the kubeconfig's). */
  baseDir?: string
}

/**
 * A client-go exec credential plugin (kubeconfig `users[].user.exec`), e.g. client-keystone-auth.
 * Runs the command non-interactively, reads an ExecCredential from stdout and keeps its token until
 * `status.expirationTimestamp` (or until a 401). Certificate-returning plugins are not supported.
 */
export function execCredential (cfg: ExecConfig, now: () => number = Date.now): CredentialSource {
  let cached: { token: string, expiresAt: number } | undefined
  let inflight: Promise<string> | undefined
  const apiVersion = cfg.apiVersion ?? 'client.authentication.k8s.io/v1'

  async function run (): Promise<string> {
    const execInfo = JSON.stringify({ apiVersion, kind: 'ExecCredential', spec: { interactive: false } })
    const env: NodeJS.ProcessEnv = { ...process.env, KUBERNETES_EXEC_INFO: execInfo }
    for (const e of cfg.env ?? []) env[e.name] = e.value
    const command = cfg.command.includes('/') && !cfg.command.startsWith('/') && cfg.baseDir !== undefined
      ? `${cfg.baseDir}/${cfg.command}`
      : cfg.command
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(command, cfg.args ?? [], { env, timeout: 60_000, maxBuffer: 1024 * 1024 }, (err, out, stderr) => {
        if (err !== null) {
          reject(new ConfigError(`exec credential plugin ${cfg.command} failed: ${errorMessage(err).split('\n')[0] ?? ''}${stderr !== '' ? `: ${stderr.trim().slice(0, 300)}` : ''}`))
        } else resolve(out)
      })
    })
    let cred: { apiVersion?: unknown, kind?: unknown, status?: { token?: unknown, expirationTimestamp?: unknown, clientCertificateData?: unknown } }
    try {
      cred = JSON.parse(stdout)
    } catch {
      throw new ConfigError(`exec credential plugin ${cfg.command} did not print an ExecCredential JSON object`)
    }
    if (cred?.kind !== 'ExecCredential') throw new ConfigError(`exec credential plugin ${cfg.command}: kind is ${JSON.stringify(cred?.kind)}, expected ExecCredential`)
    const token = cred.status?.token
    if (typeof token !== 'string' || token === '') {
      throw new ConfigError(`exec credential plugin ${cfg.command}: no status.token` +
        (cred.status?.clientCertificateData !== undefined ? ' (client certificates from exec plugins are not supported)' : ''))
    }
    const exp = typeof cred.status?.expirationTimestamp === 'string' ? Date.parse(cred.status.expirationTimestamp) : NaN
    cached = { token, expiresAt: Number.isNaN(exp) ? Number.POSITIVE_INFINITY : exp }
    return token
  }

  return {
    async authorization () {
      if (cached !== undefined && now() < cached.expiresAt) return `Bearer ${cached.token}`
      // One plugin run serves all requests that arrive while it runs.
      inflight ??= run().finally(() => { inflight = undefined })
      return `Bearer ${await inflight}`
    },
    invalidate () { cached = undefined }
  }
}
