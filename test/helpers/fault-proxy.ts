// A fault-injecting HTTP proxy for tests: sits on 127.0.0.1 between the webhook and a real
// Keystone and, per request, passes the request on or injects a fault. Faults are decided when a
// request arrives, so a keep-alive connection opened while healthy sees the fault too (as it would
// when a real Keystone stalls behind a load balancer).
//
//   pass          forward to the upstream Keystone
//   latency       wait `ms`, then forward
//   status        answer `code` itself (Keystone-style JSON error body), Keystone never sees it
//   reset         send a TCP RST on the client connection (socket.resetAndDestroy)
//   blackhole     keep the connection open and never answer
//   hold          keep the request until release() passes it on (a Keystone call held in flight
//                 for as long as a test needs, without timing)
//
// When the upstream refuses (Keystone killed), the proxy resets the client connection: what an L4
// load balancer in front of a dead backend does.
import { createServer, request as httpRequest, Agent, type IncomingMessage, type ServerResponse, type Server } from 'node:http'
import type { Socket } from 'node:net'

export type Fault =
  | { mode: 'pass' }
  | { mode: 'latency', ms: number }
  | { mode: 'status', code: number }
  | { mode: 'reset' }
  | { mode: 'blackhole' }
  | { mode: 'hold' }

export interface FaultProxy {
  /** Base URL of the proxy with the upstream's path, e.g. http://127.0.0.1:40123/v3 */
  url: string
  port: number
  set: (fault: Fault) => void
  readonly fault: Fault
  /** Requests seen, by what happened to them. */
  counts: Record<'passed' | 'delayed' | 'status' | 'reset' | 'blackholed' | 'held' | 'upstreamError', number>
  /** Every token that crossed the proxy (X-Auth-Token / X-Subject-Token, both ways), for leak checks. */
  tokens: Set<string>
  /** Requests currently held by the blackhole. */
  readonly held: number
  /** Method and path of the requests the hold mode keeps, in arrival order. */
  readonly holding: string[]
  /** Switches to pass and forwards every request the hold mode kept. */
  release: () => void
  close: () => Promise<void>
}

export async function startFaultProxy (upstream: string): Promise<FaultProxy> {
  const up = new URL(upstream)
  if (up.hostname !== '127.0.0.1' && up.hostname !== 'localhost') throw new Error(`fault proxy: upstream must be on loopback, got ${up.hostname}`)
  let fault: Fault = { mode: 'pass' }
  const counts: FaultProxy['counts'] = { passed: 0, delayed: 0, status: 0, reset: 0, blackholed: 0, held: 0, upstreamError: 0 }
  const holding: Array<{ what: string, forward: () => void }> = []
  const sockets = new Set<Socket>()
  const held = new Set<ServerResponse>()
  const timers = new Set<NodeJS.Timeout>()
  const agent = new Agent({ keepAlive: true, maxSockets: 64 })
  const tokens = new Set<string>()
  const note = (v: string | string[] | undefined): void => {
    for (const x of Array.isArray(v) ? v : v === undefined ? [] : [v]) if (x !== '') tokens.add(x)
  }

  const reset = (req: IncomingMessage): void => {
    const s = req.socket as Socket & { resetAndDestroy?: () => Socket }
    if (typeof s.resetAndDestroy === 'function') s.resetAndDestroy()
    else s.destroy()
  }

  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer): void => {
    const headers = { ...req.headers, host: up.host }
    const out = httpRequest({
      host: up.hostname, port: up.port, method: req.method, path: req.url, headers, agent
    }, upRes => {
      note(upRes.headers['x-subject-token'])
      res.writeHead(upRes.statusCode ?? 502, upRes.headers)
      upRes.pipe(res)
    })
    out.on('error', () => {
      counts.upstreamError++
      if (!res.headersSent) reset(req)
      else res.destroy()
    })
    out.end(body)
  }

  const server: Server = createServer((req, res) => {
    note(req.headers['x-auth-token'])
    note(req.headers['x-subject-token'])
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      const f = fault
      switch (f.mode) {
        case 'pass':
          counts.passed++
          forward(req, res, body)
          return
        case 'latency': {
          counts.delayed++
          const timer = setTimeout(() => {
            timers.delete(timer)
            if (!req.socket.destroyed) forward(req, res, body)
          }, f.ms)
          timers.add(timer)
          return
        }
        case 'status': {
          counts.status++
          const text = JSON.stringify({ error: { code: f.code, title: 'Injected fault', message: `fault proxy answered ${f.code}` } })
          res.writeHead(f.code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
          res.end(text)
          return
        }
        case 'reset':
          counts.reset++
          reset(req)
          return
        case 'blackhole':
          counts.blackholed++
          held.add(res)
          res.on('close', () => held.delete(res))
          return
        case 'hold':
          counts.held++
          holding.push({ what: `${req.method ?? ''} ${req.url ?? ''}`, forward: () => { if (!req.socket.destroyed) forward(req, res, body) } })
      }
    })
  })
  server.keepAliveTimeout = 60_000
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const port = (server.address() as { port: number }).port
  const url = `http://127.0.0.1:${port}${up.pathname.replace(/\/+$/, '')}`
  return {
    url,
    port,
    counts,
    tokens,
    get fault () { return fault },
    get held () { return held.size },
    get holding () { return holding.map(h => h.what) },
    set: f => { fault = f },
    release: () => {
      fault = { mode: 'pass' }
      for (const h of holding.splice(0)) h.forward()
    },
    close: async () => {
      for (const t of timers) clearTimeout(t)
      for (const s of sockets) s.destroy()
      agent.destroy()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}
