import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { ConfigError, errorMessage } from '../errors.js'
import { basicAuth, execCredential, noCredentials, staticBearer, tokenFile, type CredentialSource } from './credentials.js'

// How to reach a Kubernetes API server: from a kubeconfig file (its current context) or from the
// in-cluster service-account files. Only what this program needs is read; unsupported kubeconfig
// features (auth-provider, proxy-url) are a ConfigError naming them, never silently ignored.

export interface KubeConnection {
  /** https://host:port (no trailing slash). */
  server: string
  ca?: Buffer
  cert?: Buffer
  key?: Buffer
  insecureSkipTlsVerify: boolean
  tlsServerName?: string
  credentials: CredentialSource
  /** Where it came from, for logs: `kubeconfig <path> context <name>` or `in-cluster`. */
  source: string
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'

/** In-cluster config as client-go's rest.InClusterConfig: env for the address, files for token and CA. */
export function inClusterConnection (env: NodeJS.ProcessEnv, saDir = SERVICE_ACCOUNT_DIR): KubeConnection {
  const host = env.KUBERNETES_SERVICE_HOST
  const port = env.KUBERNETES_SERVICE_PORT
  if (host === undefined || host === '' || port === undefined || port === '') {
    throw new ConfigError('in-cluster config needs KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT')
  }
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
  let ca: Buffer
  try {
    ca = readFileSync(join(saDir, 'ca.crt'))
  } catch (err) {
    throw new ConfigError(`in-cluster config: cannot read ${join(saDir, 'ca.crt')}: ${errorMessage(err)}`)
  }
  const tokenPath = join(saDir, 'token')
  try {
    readFileSync(tokenPath)
  } catch (err) {
    throw new ConfigError(`in-cluster config: cannot read ${tokenPath}: ${errorMessage(err)}`)
  }
  return {
    server: `https://${hostPart}:${port}`,
    ca,
    insecureSkipTlsVerify: false,
    credentials: tokenFile(tokenPath),
    source: 'in-cluster'
  }
}

interface Named<T> { name?: unknown, [k: string]: unknown, value?: T }

function findNamed (list: unknown, name: string, field: string): Record<string, unknown> | undefined {
  if (!Array.isArray(list)) return undefined
  const hit = (list as Array<Named<unknown>>).find(e => e !== null && typeof e === 'object' && e.name === name)
  const v = hit?.[field]
  return v !== null && typeof v === 'object' ? v as Record<string, unknown> : undefined
}

function str (o: Record<string, unknown>, k: string): string | undefined {
  const v = o[k]
  return typeof v === 'string' && v !== '' ? v : undefined
}

/**
 * Reads a kubeconfig file (one file; no KUBECONFIG merging) and resolves its current context, or
 * `context` when given. Relative file paths are taken relative to the kubeconfig's directory, as
 * client-go does.
 */
export function kubeconfigConnection (path: string, context?: string): KubeConnection {
  let doc: Record<string, unknown>
  try {
    const parsed = parseYaml(readFileSync(path, 'utf8')) as unknown
    if (parsed === null || typeof parsed !== 'object') throw new Error('not a YAML mapping')
    doc = parsed as Record<string, unknown>
  } catch (err) {
    throw new ConfigError(`kubeconfig ${path}: ${errorMessage(err).split('\n')[0] ?? ''}`)
  }
  const base = dirname(path)
  const resolve = (p: string): string => isAbsolute(p) ? p : join(base, p)
  const readRef = (o: Record<string, unknown>, fileKey: string, dataKey: string): Buffer | undefined => {
    const data = str(o, dataKey)
    if (data !== undefined) return Buffer.from(data, 'base64')
    const file = str(o, fileKey)
    if (file === undefined) return undefined
    try {
      return readFileSync(resolve(file))
    } catch (err) {
      throw new ConfigError(`kubeconfig ${path}: ${fileKey}: ${errorMessage(err)}`)
    }
  }

  const ctxName = context ?? (typeof doc['current-context'] === 'string' ? doc['current-context'] : '')
  if (ctxName === '') throw new ConfigError(`kubeconfig ${path}: no current-context`)
  const ctx = findNamed(doc.contexts, ctxName, 'context')
  if (ctx === undefined) throw new ConfigError(`kubeconfig ${path}: context ${JSON.stringify(ctxName)} not found`)
  const clusterName = str(ctx, 'cluster') ?? ''
  const cluster = findNamed(doc.clusters, clusterName, 'cluster')
  if (cluster === undefined) throw new ConfigError(`kubeconfig ${path}: cluster ${JSON.stringify(clusterName)} not found`)
  const server = str(cluster, 'server')
  if (server === undefined) throw new ConfigError(`kubeconfig ${path}: cluster ${JSON.stringify(clusterName)} has no server`)
  if (str(cluster, 'proxy-url') !== undefined) throw new ConfigError(`kubeconfig ${path}: proxy-url is not supported`)
  let url: URL
  try {
    url = new URL(server)
  } catch {
    throw new ConfigError(`kubeconfig ${path}: server ${JSON.stringify(server)} is not a URL`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError(`kubeconfig ${path}: server must be http(s): ${server}`)

  const userName = str(ctx, 'user')
  const user = userName === undefined ? {} : (findNamed(doc.users, userName, 'user') ?? {})
  if (userName !== undefined && findNamed(doc.users, userName, 'user') === undefined) {
    throw new ConfigError(`kubeconfig ${path}: user ${JSON.stringify(userName)} not found`)
  }
  if (user['auth-provider'] !== undefined) throw new ConfigError(`kubeconfig ${path}: user ${userName ?? ''}: auth-provider is not supported; use exec`)

  let credentials: CredentialSource = noCredentials
  const token = str(user, 'token')
  const tokenPath = str(user, 'tokenFile')
  const exec = user.exec
  if (token !== undefined) credentials = staticBearer(token)
  else if (tokenPath !== undefined) credentials = tokenFile(resolve(tokenPath))
  else if (exec !== null && typeof exec === 'object') {
    const e = exec as Record<string, unknown>
    const command = str(e, 'command')
    if (command === undefined) throw new ConfigError(`kubeconfig ${path}: user ${userName ?? ''}: exec.command is missing`)
    const args = Array.isArray(e.args) ? e.args.map(String) : []
    const env = Array.isArray(e.env)
      ? (e.env as Array<Record<string, unknown>>).map(v => ({ name: String(v.name), value: String(v.value ?? '') }))
      : []
    const execCfg: Parameters<typeof execCredential>[0] = { command, args, env, baseDir: base }
    const apiVersion = str(e, 'apiVersion')
    if (apiVersion !== undefined) execCfg.apiVersion = apiVersion
    credentials = execCredential(execCfg)
  } else if (str(user, 'username') !== undefined) {
    credentials = basicAuth(str(user, 'username') ?? '', str(user, 'password') ?? '')
  }

  const conn: KubeConnection = {
    server: server.replace(/\/+$/, ''),
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
    credentials,
    source: `kubeconfig ${path} context ${ctxName}`
  }
  const ca = readRef(cluster, 'certificate-authority', 'certificate-authority-data')
  if (ca !== undefined) conn.ca = ca
  const cert = readRef(user, 'client-certificate', 'client-certificate-data')
  const key = readRef(user, 'client-key', 'client-key-data')
  if ((cert === undefined) !== (key === undefined)) throw new ConfigError(`kubeconfig ${path}: user ${userName ?? ''}: client certificate and key must be given together`)
  if (cert !== undefined) conn.cert = cert
  if (key !== undefined) conn.key = key
  const sni = str(cluster, 'tls-server-name')
  if (sni !== undefined) conn.tlsServerName = sni
  return conn
}

/**
 * The connection the server uses: `--kubeconfig` when given, else in-cluster when
 * KUBERNETES_SERVICE_HOST is set (as client-go's BuildConfigFromFlags with an empty path).
 */
export function resolveConnection (opts: { kubeconfig?: string, env?: NodeJS.ProcessEnv, serviceAccountDir?: string }): KubeConnection {
  const env = opts.env ?? process.env
  if (opts.kubeconfig !== undefined && opts.kubeconfig !== '') return kubeconfigConnection(opts.kubeconfig)
  if (env.KUBERNETES_SERVICE_HOST !== undefined && env.KUBERNETES_SERVICE_HOST !== '') return inClusterConnection(env, opts.serviceAccountDir)
  throw new ConfigError('no Kubernetes API access: not running in a cluster (KUBERNETES_SERVICE_HOST unset) and no --kubeconfig given')
}
