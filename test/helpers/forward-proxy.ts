// Keystone reached another way than straight to 127.0.0.1, for tests: a forward proxy
// (absolute-form requests and CONNECT tunnels, counted, optionally with Basic credentials) that
// resolves keystone.test to 127.0.0.1, a name nothing else resolves, so an answer for keystone.test
// proves the proxy carried the request; and a TLS front before the plain-HTTP test Keystone.
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { readFileSync } from 'node:fs'
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net'

export interface ForwardProxy { url: string, forwarded: number, tunnels: number, close: () => void }

/** A forward proxy (absolute-form requests and CONNECT) that resolves keystone.test to 127.0.0.1. */
export async function startForwardProxy (opts: { auth?: string } = {}): Promise<ForwardProxy> {
  const resolve = (host: string): string => host === 'keystone.test' ? '127.0.0.1' : host
  const authorized = (req: IncomingMessage): boolean =>
    opts.auth === undefined || req.headers['proxy-authorization'] === `Basic ${Buffer.from(opts.auth).toString('base64')}`
  const p = { forwarded: 0, tunnels: 0 }
  const server: Server = createHttpServer((req, res) => {
    if (!authorized(req)) { res.writeHead(407, { 'proxy-authenticate': 'Basic realm="test"' }); res.end(); return }
    const target = new URL(req.url ?? '/')
    p.forwarded++
    const headers = { ...req.headers }
    delete headers['proxy-authorization']
    const up = httpRequest({ host: resolve(target.hostname), port: target.port, method: req.method, path: target.pathname + target.search, headers, agent: false }, r => {
      res.writeHead(r.statusCode ?? 502, r.headers)
      r.pipe(res)
    })
    up.on('error', () => { res.writeHead(502); res.end() })
    req.pipe(up)
  })
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    if (!authorized(req)) { client.end('HTTP/1.1 407 Proxy Authentication Required\r\n\r\n'); return }
    const [host, port] = (req.url ?? '').split(':')
    p.tunnels++
    const up = netConnect(Number(port), resolve(host as string), () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      up.write(head)
      up.pipe(client)
      client.pipe(up)
    })
    up.on('error', () => client.destroy())
    client.on('error', () => up.destroy())
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get forwarded () { return p.forwarded },
    get tunnels () { return p.tunnels },
    close: () => { server.closeAllConnections(); server.close() }
  }
}

/** Keystone over TLS: an HTTPS front with the test certificate (which names keystone.test) for `authUrl`. */
export async function startTlsFront (certs: { certFile: string, keyFile: string }, authUrl: string): Promise<{ port: number, close: () => void }> {
  const keystone = new URL(authUrl)
  const front = createHttpsServer({ cert: readFileSync(certs.certFile), key: readFileSync(certs.keyFile) }, (req, res) => {
    // agent: false, a connection per request: the test Keystone (uWSGI --http-socket) closes its
    // side after every answer without saying so, and Node's default keep-alive agent could reuse
    // that dead socket (a 502 seen once in CI under load)
    const up = httpRequest({ host: keystone.hostname, port: keystone.port, method: req.method, path: req.url, headers: { ...req.headers, host: keystone.host }, agent: false }, r => {
      res.writeHead(r.statusCode ?? 502, r.headers)
      r.pipe(res)
    })
    up.on('error', () => { res.writeHead(502); res.end() })
    req.pipe(up)
  })
  await new Promise<void>(resolve => front.listen(0, '127.0.0.1', () => resolve()))
  return { port: (front.address() as AddressInfo).port, close: () => { front.closeAllConnections(); front.close() } }
}
