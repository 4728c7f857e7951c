import { Server as NetServer } from 'node:net'
import type { Server as HttpServer } from 'node:http'

// A graceful stop that drops no review when a successor shares the port (SO_REUSEPORT: the new
// DaemonSet pod listens on 127.0.0.1:8443 before the old one gets SIGTERM).
//
// 1. The listening socket is closed at once: from then on the kernel gives every new connection
//    to the successor's socket. (Connections already completed into our accept queue and not yet
//    accepted are reset by Linux unless net.ipv4.tcp_migrate_req=1; kube-apiserver retries a reset.
//    With keep-alive clients such connections are rare: we close first, and only then ask clients
//    to reconnect.)
// 2. Requests on connections already open are answered as usual (never a 503: Fastify's
//    return503OnClosing is off), each answer with `Connection: close`, so the client opens its
//    next connection, which reaches the successor, and never reuses one we are about to close.
// 3. Connections that stay idle are closed after `idleMs`, then every `idleMs`: by then every
//    connection that carried a request since the drain began has closed itself (step 2), so an
//    idle one has been idle for at least `idleMs`, and a client is unlikely to be writing on it
//    at that instant (the keep-alive race that every HTTP/1.1 server has at its idle timeout).
// 4. When no connection is left, or after `graceMs`, it is over: what is still open is cut.

/** How long a connection must have been idle during a drain before it is closed. */
export const DRAIN_IDLE_MS = 1000

export interface DrainResult {
  /** Connections still open when the grace ended, and cut. */
  cut: number
  ms: number
}

export class Drain {
  #draining = false
  #server: HttpServer | undefined

  /** The server to drain (buildApp's). */
  track (server: HttpServer): void {
    this.#server = server
  }

  /** True from the start of `run`: answers carry `Connection: close`. */
  get draining (): boolean {
    return this.#draining
  }

  async run (graceMs: number, idleMs: number = DRAIN_IDLE_MS): Promise<DrainResult> {
    this.#draining = true
    const started = Date.now()
    const server = this.#server
    if (server === undefined) return { cut: 0, ms: 0 }
    // net.Server's close: stop accepting, call back once every connection has ended. (http's
    // close would also close idle connections at once, racing clients that are reusing them.)
    const allClosed = new Promise<void>(resolve => { NetServer.prototype.close.call(server, () => resolve()) })
    // Node's idle: no request begun and no answer pending (a request still arriving is not idle).
    // Node 22+ counts a connection that never carried a request as idle too; Node 20 leaves it
    // until the grace ends (it has no SO_REUSEPORT, so no surge partner waits on this drain).
    const sweep = setInterval(() => server.closeIdleConnections(), Math.max(1, Math.min(idleMs, graceMs)))
    let timer: NodeJS.Timeout | undefined
    const graceOver = new Promise<'grace'>(resolve => { timer = setTimeout(() => resolve('grace'), graceMs) })
    const how = await Promise.race([allClosed.then(() => 'drained' as const), graceOver])
    clearInterval(sweep)
    clearTimeout(timer)
    let cut = 0
    if (how === 'grace') {
      cut = await new Promise<number>(resolve => server.getConnections((_err, n) => resolve(n)))
      server.closeAllConnections()
      // What is left is in its TLS handshake, accepted before the drain began: the handshake
      // timeout (10 s from arrival) ends it.
      await allClosed
    }
    return { cut, ms: Date.now() - started }
  }
}
