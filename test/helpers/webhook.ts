// Starts our webhook in-process, on 127.0.0.1 with a random port and a test certificate, with
// the same flag parsing as the binary, and offers an HTTPS client that trusts its CA.
import { Writable } from 'node:stream'
import { Agent, request } from 'undici'
import { readFileSync } from 'node:fs'
import { parseFlags } from '../../src/config/flags.js'
import { SERVER_FLAGS } from '../../src/cli/server-flags.js'
import { serverOptionsFrom } from '../../src/cli/k8s-keystone-auth.js'
import { createLogger } from '../../src/log.js'
import { startServer, type RunningServer } from '../../src/server/start/serve.js'
import { testCerts, type TestCerts } from './certs.js'
import { loadSeed } from './keystone.js'

export interface TestWebhook {
  server: RunningServer
  url: string
  certs: TestCerts
  /** Every log line the server wrote (JSON strings). */
  logs: string[]
  post: (path: string, body: unknown, headers?: Record<string, string>) => Promise<{ status: number, body: any, text: string, headers: Record<string, string | string[] | undefined> }>
  get: (path: string) => Promise<{ status: number, body: any, text: string, headers: Record<string, string | string[] | undefined> }>
  metric: (name: string, labels?: Record<string, string>) => Promise<number>
  close: () => Promise<void>
}

/**
 * Other TLS material than the test CA's (e.g. a real kube-apiserver's): the serving pair, the CA
 * that the test's own client trusts and that --client-ca-file names (with `mtls`), and the client
 * pair the test's client presents (with `clientCert` or `mtls`).
 */
export interface WebhookTls { certFile: string, keyFile: string, caFile: string, clientCertFile: string, clientKeyFile: string }

/**
 * `clientCert`: present the test client certificate. `mtls`: also start with --client-ca-file (the
 * test CA), as kube-apiserver's webhook is run: reviews need the certificate, and /readyz shows
 * its details (Keystone's errors, the policy's source) only to such a client. `tls`: use that
 * material instead of the test CA's.
 */
export async function startWebhook (flags: string[] = [], opts: { env?: NodeJS.ProcessEnv, clientCert?: boolean, mtls?: boolean, tls?: WebhookTls } = {}): Promise<TestWebhook> {
  const certs = testCerts()
  const tls: WebhookTls = opts.tls ?? { certFile: certs.certFile, keyFile: certs.keyFile, caFile: certs.caFile, clientCertFile: certs.clientCertFile, clientKeyFile: certs.clientKeyFile }
  // The seed file exists only where the test Keystone was started: a caller that names its own
  // --keystone-url (a fake, or one never reached) must not need it.
  const ownKeystone = flags.includes('--keystone-url')
  const argv = [
    '--listen', '127.0.0.1:0',
    '--tls-cert-file', tls.certFile,
    '--tls-private-key-file', tls.keyFile,
    ...(ownKeystone ? [] : ['--keystone-url', loadSeed().auth_url]),
    ...(opts.mtls === true ? ['--client-ca-file', tls.caFile] : []),
    ...flags
  ]
  const env = opts.env ?? {}
  const options = serverOptionsFrom(parseFlags(SERVER_FLAGS, argv, env))
  const logs: string[] = []
  const sink = new Writable({ write (chunk, _enc, cb) { logs.push(...String(chunk).split('\n').filter(Boolean)); cb() } })
  const logger = createLogger({ level: options['log-level'], destination: sink })
  const server = await startServer(options, { env, logger })
  const connect: Record<string, unknown> = { ca: readFileSync(tls.caFile, 'utf8') }
  if (opts.clientCert === true || opts.mtls === true) {
    connect.cert = readFileSync(tls.clientCertFile)
    connect.key = readFileSync(tls.clientKeyFile)
  }
  const agent = new Agent({ connect })
  const call = async (method: 'GET' | 'POST', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number, body: any, text: string, headers: Record<string, string | string[] | undefined> }> => {
    const res = await request(server.url + path, {
      method,
      dispatcher: agent,
      headers: body !== undefined ? { 'content-type': 'application/json', ...headers } : headers,
      body: body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body)
    })
    const text = await res.body.text()
    let parsed: unknown
    try { parsed = JSON.parse(text) } catch { parsed = undefined }
    return { status: res.statusCode, body: parsed, text, headers: res.headers }
  }
  return {
    server,
    url: server.url,
    certs,
    logs,
    post: async (path, body, headers) => await call('POST', path, body, headers),
    get: async (path) => await call('GET', path),
    metric: async (name, labels = {}) => {
      const m = await server.metrics.registry.getSingleMetric(name)?.get()
      if (m === undefined) return 0
      return m.values.filter(v => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
        .reduce((a, v) => a + v.value, 0)
    },
    close: async () => {
      // The client first: its idle keep-alive connections would hold the server's drain for 1 s.
      await agent.close()
      await server.close()
    }
  }
}

export function tokenReview (token: string, version: 'v1' | 'v1beta1' = 'v1'): object {
  return { apiVersion: `authentication.k8s.io/${version}`, kind: 'TokenReview', spec: { token } }
}
