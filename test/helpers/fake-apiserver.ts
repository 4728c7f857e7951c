// A small HTTPS server standing in for kube-apiserver in front of kubectl: it checks the bearer
// token with a pluggable `authenticate` (Keystone directly, or our webhook) and answers /version,
// discovery (/api, /apis, the authentication.k8s.io group) and SelfSubjectReview, which is what
// `kubectl version`, `kubectl get --raw /version` and `kubectl auth whoami` need.
import { createServer } from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { readFileSync } from 'node:fs'
import { testCerts } from './certs.js'

export interface UserInfo {
  username: string
  uid: string
  groups: string[]
  extra: Record<string, string[]>
}

export interface FakeApiServer {
  url: string
  caPem: string
  /** File holding caPem, for --certificate-authority. */
  caFile: string
  /** Every bearer token presented, in order (including rejected ones). */
  seenTokens: string[]
  /** Status codes answered, in order, with the path. */
  responses: Array<{ path: string, status: number }>
  close: () => Promise<void>
}

export interface FakeApiServerOptions {
  authenticate: (token: string) => Promise<UserInfo | null>
}

const STATUS_401 = {
  kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401
}

function send (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

async function readBody (req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

export async function startFakeApiServer (opts: FakeApiServerOptions): Promise<FakeApiServer> {
  const certs = testCerts()
  const seenTokens: string[] = []
  const responses: FakeApiServer['responses'] = []
  let port = 0

  const discovery: Record<string, unknown> = {
    '/version': {
      major: '1',
      minor: '32',
      gitVersion: 'v1.32.0-fake',
      gitCommit: 'fake',
      gitTreeState: 'clean',
      buildDate: '2026-01-01T00:00:00Z',
      goVersion: 'go1.23',
      compiler: 'gc',
      platform: 'linux/amd64'
    },
    '/api': () => ({ kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `127.0.0.1:${port}` }] }),
    '/api/v1': { kind: 'APIResourceList', groupVersion: 'v1', resources: [] },
    '/apis': {
      kind: 'APIGroupList',
      apiVersion: 'v1',
      groups: [{
        name: 'authentication.k8s.io',
        versions: [{ groupVersion: 'authentication.k8s.io/v1', version: 'v1' }],
        preferredVersion: { groupVersion: 'authentication.k8s.io/v1', version: 'v1' }
      }]
    },
    '/apis/authentication.k8s.io/v1': {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: 'authentication.k8s.io/v1',
      resources: [
        { name: 'selfsubjectreviews', singularName: 'selfsubjectreview', namespaced: false, kind: 'SelfSubjectReview', verbs: ['create'] },
        { name: 'tokenreviews', singularName: 'tokenreview', namespaced: false, kind: 'TokenReview', verbs: ['create'] }
      ]
    }
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'https://x').pathname
    const reply = (status: number, body: unknown): void => {
      responses.push({ path, status })
      send(res, status, body)
    }
    const auth = req.headers.authorization ?? ''
    const m = /^Bearer (.+)$/.exec(auth)
    const token = m?.[1]
    if (token === undefined) return reply(401, STATUS_401)
    seenTokens.push(token)
    let user: UserInfo | null
    try {
      user = await opts.authenticate(token)
    } catch (err) {
      return reply(500, { ...STATUS_401, message: `authentication error: ${(err as Error).message}`, reason: 'InternalError', code: 500 })
    }
    if (user === null) return reply(401, STATUS_401)
    if (req.method === 'GET' && path in discovery) {
      const d = discovery[path]
      return reply(200, typeof d === 'function' ? (d as () => unknown)() : d)
    }
    if (req.method === 'POST' && path === '/apis/authentication.k8s.io/v1/selfsubjectreviews') {
      await readBody(req)
      return reply(201, {
        kind: 'SelfSubjectReview',
        apiVersion: 'authentication.k8s.io/v1',
        metadata: { creationTimestamp: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') },
        status: { userInfo: user }
      })
    }
    return reply(404, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `the server could not find the requested resource (${path})`, reason: 'NotFound', code: 404 })
  }

  const server = createServer({ cert: readFileSync(certs.certFile), key: readFileSync(certs.keyFile) }, (req, res) => {
    handle(req, res).catch(err => { if (!res.headersSent) send(res, 500, { message: String(err) }) })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  port = (server.address() as AddressInfo).port
  return {
    url: `https://127.0.0.1:${port}`,
    caPem: certs.ca,
    caFile: certs.caFile,
    seenTokens,
    responses,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}
