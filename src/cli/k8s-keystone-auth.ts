import { basename } from 'node:path'
import type { LevelWithSilent } from 'pino'
import { ServerOptions } from '../config/server-options.js'
import { KsaError, UsageError, errorMessage } from '../errors.js'
import { createLogger } from '../log.js'
import { VERSION } from '../version.js'
import { formatHelp, parseFlags, withDefaults, type ParsedFlags } from '../config/flags.js'
import type { Io } from './io.js'
import { SERVER_FLAGS } from './server-flags.js'

export type { Io }

const USAGE = `k8s-keystone-auth ${VERSION}: Kubernetes webhook authentication and authorization with OpenStack Keystone

Usage:
  k8s-keystone-auth [flags]                 serve TokenReview and SubjectAccessReview over HTTPS
  k8s-keystone-auth policy check FILE       validate a policy file
  k8s-keystone-auth policy eval FILE ...    decide one request against a policy file
  k8s-keystone-auth gen apiserver-config    write the kube-apiserver webhook configuration`

/** Turns parsed flags into validated options; the first problem becomes one UsageError line. */
export function serverOptionsFrom (parsed: ParsedFlags): ServerOptions {
  const raw: Record<string, unknown> = {}
  for (const [k, v] of withDefaults(SERVER_FLAGS, parsed)) raw[k] = v
  const r = ServerOptions.safeParse(raw)
  if (!r.success) {
    const issue = r.error.issues[0]
    const name = String(issue?.path[0] ?? '')
    const source = parsed.sources.get(name) ?? `--${name}`
    throw new UsageError(`${source}: ${issue?.message ?? 'invalid'}`)
  }
  return r.data
}

function levelFor (opts: ServerOptions): LevelWithSilent {
  if (opts.v !== undefined && opts['log-level'] === 'info') {
    if (opts.v >= 6) return 'trace'
    if (opts.v >= 4) return 'debug'
  }
  return opts['log-level']
}

/**
 * The arguments without a leading one that names this program (any path, basename
 * `k8s-keystone-auth`). Go's example Deployment passes `./bin/k8s-keystone-auth` as its first arg:
 * Go's image has no ENTRYPOINT, so there it is the command; with ours it arrives as an argument.
 */
export function withoutProgramName (argv: readonly string[]): string[] {
  const first = argv[0]
  return first !== undefined && basename(first) === 'k8s-keystone-auth' ? argv.slice(1) : [...argv]
}

export async function main (args: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const argv = withoutProgramName(args)
  if (argv[0] === 'policy') {
    const { runPolicyCommand } = await import('./policy.js')
    return await runPolicyCommand(argv.slice(1), io)
  }
  if (argv[0] === 'gen') {
    const mod = await import('./gen.js')
    return await mod.runGenCommand(argv.slice(1), env, io)
  }
  let opts: ServerOptions
  let ignored: string[]
  try {
    const parsed = parseFlags(SERVER_FLAGS, argv, env)
    if (parsed.values.get('help') === true) {
      io.stdout(formatHelp(USAGE, SERVER_FLAGS))
      return 0
    }
    if (parsed.values.get('version') === true) {
      io.stdout(`k8s-keystone-auth ${VERSION}\n`)
      return 0
    }
    if (parsed.positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[0])} (see --help)`)
    opts = serverOptionsFrom(parsed)
    ignored = parsed.ignored
  } catch (err) {
    io.stderr(`k8s-keystone-auth: ${errorMessage(err)}\n`)
    return 2
  }

  const logger = createLogger({ level: levelFor(opts) })
  const workers = await import('../server/workers/cluster.js')
  if (ignored.length > 0 && !workers.isClusterWorker()) {
    logger.warn({ flags: ignored }, `klog flags accepted and ignored: ${ignored.join(' ')} (logs are JSON lines on stderr; --log-level or --v sets the level)`)
  }
  if (opts['listen-reuse-port'] && !workers.isClusterWorker()) {
    const { reusePortSupported, reusePortUnsupportedMessage } = await import('../server/start/listen.js')
    if (!reusePortSupported()) logger.warn({ node: process.versions.node }, reusePortUnsupportedMessage())
  }
  const count = workers.workerCount(opts.workers)
  if (count > 1 && !workers.isClusterWorker()) {
    return await workers.runPrimary({ workers: count, logger, shutdownGraceMs: opts['shutdown-grace'] })
  }
  const { startServer } = await import('../server/start/serve.js')
  let server: Awaited<ReturnType<typeof startServer>>
  try {
    server = await startServer(opts, { env, logger })
  } catch (err) {
    const msg = err instanceof KsaError ? err.message : `cannot start: ${errorMessage(err)}`
    logger.fatal({ code: (err as KsaError).code }, msg)
    io.stderr(`k8s-keystone-auth: ${msg}\n`)
    workers.leaveCluster(1)
    return 1
  }
  if (workers.isClusterWorker()) {
    workers.shareWorkerMetrics(server.metrics.registry)
    workers.announceListening(server.address)
  }

  const code = await new Promise<number>(resolve => {
    let stopping = false
    const stop = (signal: string): void => {
      if (stopping) return
      stopping = true
      logger.info({ signal }, 'shutting down')
      // close() bounds its drain by --shutdown-grace itself; this is for a teardown that hangs.
      const force = setTimeout(() => {
        logger.warn('shutdown did not finish within --shutdown-grace; exiting')
        resolve(0)
      }, opts['shutdown-grace'] + 3000)
      force.unref()
      server.close().then(() => { clearTimeout(force); resolve(0) }, err => {
        logger.error({ err: errorMessage(err) }, 'error during shutdown')
        resolve(1)
      })
    }
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
  })
  workers.leaveCluster(code)
  // Backstop: a stuck handle must not keep a stopped server's process alive.
  setTimeout(() => process.exit(code), 2000).unref()
  return code
}
