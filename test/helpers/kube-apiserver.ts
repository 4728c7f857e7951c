// A real kube-apiserver v1.32 with etcd for a test file, through the shared script
// kube-apiserver-dev.sh (start|stop|status|env) that KSA_KUBE_APISERVER_DEV names; a fresh clone
// has no such script, and the files that need it skip with one line saying so.
//
// Each file gets its own state dir (KUBE_DEV_DIR) and free ports, since tap runs files in parallel;
// the API server and etcd are stopped in the file's teardown (and, as a last resort, when the test
// process exits), and the state dir is removed when every test of the file passed.
import { execFile, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import t from 'tap'
import { join } from 'node:path'

export const KUBE_APISERVER_DEV = process.env.KSA_KUBE_APISERVER_DEV

/** Why the real API server cannot be used here, or undefined when it can. */
export function kubeApiserverSkipReason (): string | undefined {
  if (KUBE_APISERVER_DEV === undefined || KUBE_APISERVER_DEV === '') {
    return 'KSA_KUBE_APISERVER_DEV is unset: no real kube-apiserver here (.ci/run sets it to shared/kube-apiserver/kube-apiserver-dev.sh where that exists)'
  }
  // Set but wrong is a set-up error, not a reason to skip.
  if (!existsSync(KUBE_APISERVER_DEV)) throw new Error(`KSA_KUBE_APISERVER_DEV=${KUBE_APISERVER_DEV}: no such file`)
  return undefined
}

/**
 * The prologue of every test/kube-apiserver/ file: its tests (one API server start, then many
 * checks) get 10 minutes, or the whole file is skipped with the one-line reason.
 */
export function whenKubeApiserver (tests: () => void): void {
  const skip = kubeApiserverSkipReason()
  t.setTimeout(10 * 60_000)
  if (skip !== undefined) t.plan(0, skip)
  else tests()
}

export interface RunResult { code: number | null, stdout: string, stderr: string }

/**
 * Runs a command without blocking the event loop (the webhook under test may live in this
 * process), with stdin closed and tap's NODE_OPTIONS dropped: tap adds its loaders to every child's
 * environment, whatever env is given, and they must not reach our binaries or kubectl's plugins.
 */
export async function run (cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv, input?: string, timeoutMs?: number } = {}): Promise<RunResult> {
  const env = opts.env ?? process.env
  return await new Promise(resolve => {
    const child = execFile('env', ['-u', 'NODE_OPTIONS', cmd, ...args], { env, timeout: opts.timeoutMs ?? 120_000, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null
      resolve({ code: e === null ? 0 : typeof e.code === 'number' ? e.code : (child.exitCode ?? null), stdout, stderr })
    })
    child.stdin?.end(opts.input ?? '')
  })
}

/** A TCP port free on 127.0.0.1 now (and, with `pairs`, the next one too: etcd's peer port). */
export async function freePort (pair = false): Promise<number> {
  const tryListen = async (port: number): Promise<number | undefined> => await new Promise(resolve => {
    const s = createServer()
    s.once('error', () => resolve(undefined))
    s.listen(port, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port
      s.close(() => resolve(p))
    })
  })
  for (let i = 0; i < 50; i++) {
    const p = await tryListen(0)
    if (p === undefined || p >= 65535) continue
    if (!pair || await tryListen(p + 1) !== undefined) return p
  }
  throw new Error('no free port on 127.0.0.1')
}

export interface KubeApiserver {
  dir: string
  url: string
  /** The script's CA: it signed the API server's certificate and the webhook pairs below. */
  caFile: string
  caPem: string
  /** cluster-admin (system:masters) kubeconfig, and its client pair. */
  adminKubeconfig: string
  adminCertFile: string
  adminKeyFile: string
  /** For a webhook to serve with: issued for 127.0.0.1 by caFile. */
  webhookCertFile: string
  webhookKeyFile: string
  /** What the API server presents to webhooks (CN kube-apiserver-webhook-client, by caFile). */
  webhookClientCertFile: string
  webhookClientKeyFile: string
  /** kubectl as cluster-admin (or with another --kubeconfig given in args). */
  kubectl: (args: string[], opts?: { input?: string, env?: NodeJS.ProcessEnv }) => Promise<RunResult>
  /** kube-apiserver's own log so far. */
  log: () => string
  /**
   * Runs `fn` before the API server stops, e.g. to close a webhook that watches it: kube-apiserver
   * waits for open watches when stopped (the script kills it after 30 s).
   */
  beforeStop: (fn: () => Promise<void> | void) => void
  stop: () => Promise<void>
}

export interface KubeApiserverOptions {
  /** KUBE_DEV_* variables for the script (KUBE_DEV_AUTHN_WEBHOOK, ..._AUTHORIZATION_CONFIG, ..._EXTRA). */
  env?: Record<string, string>
}

type Tap = { teardown: (fn: () => Promise<void> | void) => void, passing: () => boolean, comment: (...m: unknown[]) => void }

/**
 * Starts a fresh API server for this file (about 10 s plus etcd; longer on a loaded machine).
 * Registers its stop in `t`'s teardown before starting it, so that a failed start is cleaned up too.
 */
export async function startKubeApiserver (t: Tap, name: string, opts: KubeApiserverOptions = {}): Promise<KubeApiserver> {
  const script = KUBE_APISERVER_DEV
  if (script === undefined) throw new Error('KSA_KUBE_APISERVER_DEV is unset')
  const dir = mkdtempSync(join(tmpdir(), `ksa-kube-${name}-`))
  let env: NodeJS.ProcessEnv = {}
  let stopped = false
  const first: Array<() => Promise<void> | void> = []
  const scriptEnv = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: process.env.HOME, KUBE_DEV_DIR: dir, ...env })
  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    for (const fn of first.splice(0).reverse()) {
      try { await fn() } catch (err) { t.comment(`before stopping kube-apiserver: ${String(err)}`) }
    }
    process.off('exit', lastResort)
    await run('bash', [script, 'stop'], { env: scriptEnv(), timeoutMs: 60_000 })
    if (t.passing() && process.env.KSA_KEEP_KUBE_APISERVER !== '1') rmSync(dir, { recursive: true, force: true })
    else t.comment(`kube-apiserver state and logs kept in ${dir}`)
  }
  // tap's teardown does not run when the process is killed mid-test: stop etcd and the API server anyway.
  const lastResort = (): void => { if (!stopped) spawnSync('bash', [script, 'stop'], { env: scriptEnv(), stdio: 'ignore', timeout: 30_000 }) }
  process.on('exit', lastResort)
  t.teardown(stop)

  let started: RunResult | undefined
  for (let attempt = 1; attempt <= 3; attempt++) {
    env = { KUBE_DEV_PORT: String(await freePort()), KUBE_DEV_ETCD_PORT: String(await freePort(true)), KUBE_DEV_READY_TIMEOUT: '180', ...opts.env }
    started = await run('bash', [script, 'start'], { env: scriptEnv(), timeoutMs: 300_000 })
    // Another file (or run) took a port between the check and the start: try other ports.
    if (started.code === 0 || !/already in use/.test(started.stderr) || opts.env?.KUBE_DEV_PORT !== undefined) break
  }
  if (started?.code !== 0) throw new Error(`kube-apiserver-dev.sh start failed (${String(started?.code)}): ${started?.stderr ?? ''}`)
  const pki = join(dir, 'pki')
  const adminKubeconfig = join(dir, 'admin.kubeconfig')
  const url = `https://127.0.0.1:${env.KUBE_DEV_PORT ?? ''}`
  return {
    dir,
    url,
    caFile: join(pki, 'ca.crt'),
    caPem: readFileSync(join(pki, 'ca.crt'), 'utf8'),
    adminKubeconfig,
    adminCertFile: join(pki, 'admin.crt'),
    adminKeyFile: join(pki, 'admin.key'),
    webhookCertFile: join(pki, 'webhook.crt'),
    webhookKeyFile: join(pki, 'webhook.key'),
    webhookClientCertFile: join(pki, 'webhook-client.crt'),
    webhookClientKeyFile: join(pki, 'webhook-client.key'),
    kubectl: async (args, o = {}) => {
      const hasKubeconfig = args.some(a => a === '--kubeconfig' || a.startsWith('--kubeconfig='))
      return await run('kubectl', [...(hasKubeconfig ? [] : ['--kubeconfig', adminKubeconfig]), '--request-timeout=60s', ...args],
        { env: { PATH: process.env.PATH, HOME: dir, ...o.env }, ...(o.input !== undefined ? { input: o.input } : {}) })
    },
    beforeStop: fn => { first.push(fn) },
    log: () => { try { return readFileSync(join(dir, 'kube-apiserver.log'), 'utf8') } catch { return '' } },
    stop
  }
}

/** A kubeconfig for `server` that presents a bearer token (e.g. a service account's). */
export function tokenKubeconfig (path: string, api: Pick<KubeApiserver, 'url' | 'caPem'>, token: string): string {
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'dev', cluster: { server: api.url, 'certificate-authority-data': Buffer.from(api.caPem).toString('base64') } }],
    users: [{ name: 'token', user: { token } }],
    contexts: [{ name: 'dev', context: { cluster: 'dev', user: 'token' } }],
    'current-context': 'dev'
  }
  writeFileSync(path, JSON.stringify(doc, null, 2), { mode: 0o600 })
  return path
}

/** Polls `cond` every 250 ms until it holds or `ms` pass (a generous deadline, never a timing assertion). */
export async function until (cond: () => Promise<boolean> | boolean, ms = 60_000): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await cond()) return true
    await new Promise(resolve => setTimeout(resolve, 250))
  }
  return await cond()
}
