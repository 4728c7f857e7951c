import cluster, { type Worker } from 'node:cluster'
import { availableParallelism } from 'node:os'
import { AggregatorRegistry, type Registry } from 'prom-client'
import type { Logger } from 'pino'

// --workers N: a primary process forks N workers that share the port: each with its own
// SO_REUSEPORT socket where --listen-reuse-port applies (a fixed port, Node 23.1+/22.12+ on Linux),
// otherwise through node:cluster (the primary accepts and hands connections out round-robin). Each worker is a whole server: it reads the configuration, watches its
// files and ConfigMaps, and keeps its own token and decision caches. The primary only supervises:
// it restarts a worker that died (with backoff), forwards SIGTERM/SIGINT for a graceful stop, and
// answers the workers' /metrics with the sum over all workers (prom-client's AggregatorRegistry).

const METRICS_REQ = 'k8s-keystone-auth:metrics-req'
const METRICS_RES = 'k8s-keystone-auth:metrics-res'
// A worker says it listens by message, not through cluster's 'listening' event: with SO_REUSEPORT
// (--listen-reuse-port on Node 23.1+/22.12+) each worker binds a socket of its own, outside
// node:cluster (the kernel spreads connections over the workers' sockets, and a surge pod's), and
// the primary hears nothing of it.
const LISTENING = 'k8s-keystone-auth:listening'

export function workerCount (requested: number): number {
  return requested === 0 ? availableParallelism() : requested
}

export function isClusterWorker (): boolean {
  return cluster.isWorker
}

export interface PrimaryOptions {
  workers: number
  logger: Logger
  /** How long workers may take to finish in-flight reviews after SIGTERM. */
  shutdownGraceMs: number
  /** Backoff before restarting a crashed worker: base, doubled per recent crash, capped. */
  restartBaseMs?: number
  restartMaxMs?: number
  /** A worker that lived this long resets the crash count. */
  stableAfterMs?: number
}

/**
 * Runs the primary until SIGTERM/SIGINT: forks the workers (same argv and env), keeps them
 * running, and resolves with the exit code once every worker has stopped.
 */
export async function runPrimary (opts: PrimaryOptions): Promise<number> {
  const { logger } = opts
  const base = opts.restartBaseMs ?? 500
  const max = opts.restartMaxMs ?? 30_000
  const stableAfter = opts.stableAfterMs ?? 60_000
  const aggregator = new AggregatorRegistry()
  const slots = new Map<Worker, { slot: number, startedAt: number, listening: boolean }>()
  const crashes = new Map<number, number>()
  const timers = new Set<NodeJS.Timeout>()
  let stopping = false
  let announced = false
  let finish: (code: number) => void = () => {}
  const finished = new Promise<number>(resolve => { finish = resolve })

  /** Stops every worker (SIGTERM, then SIGKILL after the grace) and resolves with `code`. */
  const stop = (why: string, code: number): void => {
    if (stopping) return
    stopping = true
    for (const t of timers) clearTimeout(t)
    logger.info({ why, workers: slots.size }, 'shutting down the workers')
    for (const w of slots.keys()) w.process.kill('SIGTERM')
    // Workers bound their own grace; this is the backstop for one that hangs.
    const force = setTimeout(() => {
      for (const w of slots.keys()) {
        logger.warn({ workerPid: w.process.pid }, 'worker did not stop in time; killing it')
        w.process.kill('SIGKILL')
      }
      finish(1)
    }, opts.shutdownGraceMs + 8000)
    const done = (): void => { if (slots.size === 0) { clearTimeout(force); finish(code) } }
    cluster.on('exit', done)
    done()
  }

  const fork = (slot: number): void => {
    const w = cluster.fork({ KSA_WORKER_SLOT: String(slot) })
    slots.set(w, { slot, startedAt: Date.now(), listening: false })
    w.on('message', (msg: { type?: string, id?: number, host?: string, port?: number }) => {
      if (msg?.type === LISTENING) {
        onListening(w, msg.host ?? '', msg.port ?? 0)
        return
      }
      if (msg?.type !== METRICS_REQ) return
      aggregator.clusterMetrics().then(
        text => { if (w.isConnected()) w.send({ type: METRICS_RES, id: msg.id, text }) },
        (err: Error) => { if (w.isConnected()) w.send({ type: METRICS_RES, id: msg.id, error: err.message }) })
    })
  }

  const listening = new Set<number>()
  function onListening (w: Worker, host: string, port: number): void {
    const s = slots.get(w)
    logger.debug({ worker: s?.slot, workerPid: w.process.pid, port }, 'worker listening')
    if (s !== undefined) {
      s.listening = true
      listening.add(s.slot)
    }
    if (!announced && listening.size >= opts.workers) {
      announced = true
      logger.info({ workers: opts.workers, address: host, port }, 'workers started')
    }
  }

  cluster.on('exit', (w, code, signal) => {
    const s = slots.get(w)
    slots.delete(w)
    if (s === undefined || stopping) return
    if (!s.listening && code !== 0 && signal === null) {
      // It failed to start (bad flags, unreadable files, port in use): retrying will not help, so
      // stop as a single process would, and let the pod restart.
      logger.fatal({ worker: s.slot, workerPid: w.process.pid, code }, 'a worker failed to start; stopping')
      stop('a worker failed to start', code ?? 1)
      return
    }
    const lived = Date.now() - s.startedAt
    const n = lived >= stableAfter ? 1 : (crashes.get(s.slot) ?? 0) + 1
    crashes.set(s.slot, n)
    const delay = Math.min(max, base * 2 ** (n - 1))
    logger.error({ worker: s.slot, workerPid: w.process.pid, code, signal, livedMs: lived, restartInMs: delay }, 'worker exited; restarting it')
    const timer = setTimeout(() => {
      timers.delete(timer)
      if (!stopping) fork(s.slot)
    }, delay)
    timers.add(timer)
  })

  process.once('SIGTERM', () => stop('SIGTERM', 0))
  process.once('SIGINT', () => stop('SIGINT', 0))
  for (let i = 0; i < opts.workers; i++) fork(i)
  return await finished
}

/**
 * In a worker: let the primary read this worker's metrics, and make `registry.metrics()` (what
 * /metrics serves) answer with the sum over every worker. Falls back to this worker's own
 * metrics when the primary does not answer.
 */
export function shareWorkerMetrics (registry: Registry, timeoutMs = 5000): void {
  // Constructing an AggregatorRegistry in a worker installs prom-client's answer to the primary.
  void new AggregatorRegistry()
  AggregatorRegistry.setRegistries([registry])
  const own = registry.metrics.bind(registry)
  const pending = new Map<number, (r: { text?: string, error?: string }) => void>()
  let next = 0
  process.on('message', (msg: { type?: string, id?: number, text?: string, error?: string }) => {
    if (msg?.type !== METRICS_RES || msg.id === undefined) return
    pending.get(msg.id)?.(msg)
  })
  registry.metrics = async (): Promise<string> => {
    if (process.send === undefined || !process.connected) return await own()
    const id = next++
    const answer = await new Promise<{ text?: string, error?: string }>(resolve => {
      const timer = setTimeout(() => resolve({ error: 'the primary did not answer' }), timeoutMs)
      pending.set(id, r => { clearTimeout(timer); resolve(r) })
      process.send?.({ type: METRICS_REQ, id })
    })
    pending.delete(id)
    return answer.text ?? await own()
  }
}

/** In a worker, once its server listens (all its listeners): tell the primary. */
export function announceListening (address: { host: string, port: number }): void {
  if (cluster.isWorker) process.send?.({ type: LISTENING, host: address.host, port: address.port })
}

/**
 * In a worker that has closed its server (or failed to start): exit with `code`. The IPC channel
 * would keep the process alive, and a disconnect makes node:cluster exit with 0 whatever happened.
 */
export function leaveCluster (code: number): void {
  if (cluster.isWorker) process.exit(code)
}
