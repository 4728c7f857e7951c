// Shared pieces of the plugin tests: a counting proxy in front of the real Keystone (to prove
// that a run was served from the cache, or that parallel runs logged in once), a kubeconfig whose
// exec user runs our plugin, and a way to run the real kubectl with a clean environment.
import { createServer, request as httpRequest, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { execFile, spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { KeystoneClient } from '../../src/keystone/client.js'
import { startFakeApiServer, type FakeApiServer, type UserInfo } from '../helpers/fake-apiserver.js'
import { keystoneFetch } from '../helpers/keystone-fetch.js'

export const PLUGIN = fileURLToPath(new URL('../../bin/client-keystone-auth', import.meta.url))

export interface CountingProxy {
  url: string
  /** POST /v3/auth/tokens: logins. */
  logins: () => number
  /** GET /v3/auth/tokens: validations. */
  validations: () => number
  /** Every request as "METHOD path". */
  requests: string[]
  close: () => Promise<void>
}

export async function startCountingProxy (target: string): Promise<CountingProxy> {
  const t = new URL(target)
  const requests: string[] = []
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/'
    requests.push(`${req.method ?? ''} ${path.split('?')[0] ?? ''}`)
    // agent: false: a fresh upstream connection per request; uWSGI closes idle keep-alive sockets,
    // and a request sent on one as it closes fails (a spurious 502).
    const up = httpRequest({ host: t.hostname, port: t.port, method: req.method, path, headers: { ...req.headers, host: t.host }, agent: false }, upRes => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers)
      upRes.pipe(res)
    })
    up.on('error', () => { res.writeHead(502); res.end() })
    req.pipe(up)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()))
  const port = (server.address() as AddressInfo).port
  const count = (re: RegExp): number => requests.filter(r => re.test(r)).length
  return {
    url: `http://127.0.0.1:${port}${t.pathname.replace(/\/$/, '')}`,
    logins: () => count(/^POST \/v3\/auth\/tokens$/),
    validations: () => count(/^GET \/v3\/auth\/tokens$/),
    requests,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}

/** The API server's view of a token, straight from Keystone: user name and id, project id as group. */
export function keystoneAuthenticator (authUrl: string): { authenticate: (token: string) => Promise<UserInfo | null>, close: () => Promise<void> } {
  const client = new KeystoneClient({ url: authUrl, timeoutMs: 10_000 })
  return {
    authenticate: async (token: string) => {
      const info = await client.validateToken(token)
      if (info === null) return null
      const groups = info.scope.kind === 'project' ? [info.scope.project.id] : []
      return { username: info.user.name, uid: info.user.id, groups, extra: {} }
    },
    close: async () => await client.close()
  }
}

/**
 * The API server's view of a token through our webhook (POST /webhook with a TokenReview), as
 * kube-apiserver would ask it. `webhook` is test/helpers/webhook.ts's startWebhook() result.
 */
export function webhookAuthenticator (webhook: { post: (path: string, body: unknown) => Promise<{ status: number, body: any }> }): (token: string) => Promise<UserInfo | null> {
  return async (token: string) => {
    const res = await webhook.post('/webhook', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } })
    if (res.status !== 200) throw new Error(`webhook answered ${res.status}`)
    const st = res.body?.status
    if (st?.authenticated !== true) return null
    const u = st.user ?? {}
    return { username: u.username ?? '', uid: u.uid ?? '', groups: u.groups ?? [], extra: u.extra ?? {} }
  }
}

/**
 * How the fake API server checks tokens: through our webhook (the default, as kube-apiserver
 * would), or straight with Keystone when KSA_PLUGIN_TESTS_AUTHN=keystone.
 */
export async function startAuthn (authUrl: string): Promise<{ authenticate: (token: string) => Promise<UserInfo | null>, close: () => Promise<void>, via: string }> {
  if (process.env.KSA_PLUGIN_TESTS_AUTHN === 'keystone') {
    const k = keystoneAuthenticator(authUrl)
    return { ...k, via: 'keystone' }
  }
  const { startWebhook } = await import('../helpers/webhook.js')
  const w = await startWebhook()
  return { authenticate: webhookAuthenticator(w), close: async () => await w.close(), via: 'webhook' }
}

/** What the kubectl tests of a file share: the token checker, the API server, the counting proxy. */
export interface PluginStack {
  authn: Awaited<ReturnType<typeof startAuthn>>
  api: FakeApiServer
  proxy: CountingProxy
}

/**
 * Starts the stack before the file's first test and stops it after the last (tap's before and
 * teardown of the file's root test). Read its members inside tests, not at import time.
 */
export function usePluginStack (t: { before: (fn: () => Promise<void>) => void, teardown: (fn: () => Promise<void>) => void }, authUrl: string): PluginStack {
  const stack = {} as PluginStack
  t.before(async () => {
    // Tokens are checked through our webhook, as kube-apiserver would (KSA_PLUGIN_TESTS_AUTHN=keystone: directly).
    stack.authn = await startAuthn(authUrl)
    stack.api = await startFakeApiServer({ authenticate: stack.authn.authenticate })
    stack.proxy = await startCountingProxy(authUrl)
  })
  t.teardown(async () => {
    await stack.api?.close()
    await stack.proxy?.close()
    await stack.authn?.close()
  })
  return stack
}

export interface Sandbox {
  dir: string
  home: string
  cacheDir: string
  kubeconfig: string
  /** A clean environment for kubectl and the plugin: no OS_* leaks from the test process. */
  env: NodeJS.ProcessEnv
}

export function sandbox (): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), 'ksa-plugin-'))
  const home = join(dir, 'home')
  mkdirSync(home)
  const cacheDir = join(dir, 'cache')
  const kubeconfig = join(dir, 'kubeconfig')
  return {
    dir,
    home,
    cacheDir,
    kubeconfig,
    env: { PATH: process.env.PATH, HOME: home, XDG_CACHE_HOME: cacheDir, KUBECONFIG: kubeconfig }
  }
}

export interface ExecUser {
  apiVersion: 'client.authentication.k8s.io/v1' | 'client.authentication.k8s.io/v1beta1'
  env: Record<string, string>
  args?: string[]
  interactiveMode?: 'Never' | 'IfAvailable' | 'Always'
}

/** A kubeconfig (JSON is YAML) with one cluster and one exec user running our plugin. */
export function writeKubeconfig (path: string, server: { url: string, caPem: string }, user: ExecUser): void {
  const exec: Record<string, unknown> = {
    apiVersion: user.apiVersion,
    command: PLUGIN,
    args: user.args ?? [],
    // tap injects its loaders through NODE_OPTIONS into every child (kubectl, and so the plugin);
    // they cannot load the extensionless ESM launcher, and users have no such NODE_OPTIONS.
    env: Object.entries({ NODE_OPTIONS: '', ...user.env }).map(([name, value]) => ({ name, value }))
  }
  if (user.apiVersion === 'client.authentication.k8s.io/v1') exec.interactiveMode = user.interactiveMode ?? 'Never'
  else if (user.interactiveMode !== undefined) exec.interactiveMode = user.interactiveMode
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server: server.url, 'certificate-authority-data': Buffer.from(server.caPem).toString('base64') } }],
    users: [{ name: 'keystone', user: { exec } }],
    contexts: [{ name: 'test', context: { cluster: 'test', user: 'keystone' } }],
    'current-context': 'test'
  }
  writeFileSync(path, JSON.stringify(doc, null, 2), { mode: 0o600 })
}

export interface RunResult { code: number | null, stdout: string, stderr: string, killed: boolean }

/** Runs a command with stdin closed (not a terminal) and a bounded time, so a hang fails the test. */
export async function run (cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<RunResult> {
  return await new Promise(resolve => {
    const child = execFile(cmd, args, { env, timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { killed?: boolean, code?: number | string }) | null
      resolve({ code: e === null ? 0 : typeof e.code === 'number' ? e.code : (child.exitCode ?? null), stdout, stderr, killed: e?.killed === true })
    })
    child.stdin?.end()
  })
}

export async function kubectl (args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  // `env -u` drops the NODE_OPTIONS that tap adds to every child (see writeKubeconfig).
  return await run('env', ['-u', 'NODE_OPTIONS', 'kubectl', ...args], env)
}

export async function plugin (args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  // `env -u` drops the NODE_OPTIONS that tap adds to every child (see writeKubeconfig).
  return await run('env', ['-u', 'NODE_OPTIONS', PLUGIN, ...args], env)
}

/**
 * Runs the plugin with a parent process of its own (a shell that stays), as each kubectl run is:
 * runs with the same parent count as kubectl asking again after a 401.
 */
export async function pluginNewParent (args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  return await run('sh', ['-c', 'env -u NODE_OPTIONS "$0" "$@"; exit $?', PLUGIN, ...args], env)
}

/** Starts a command without waiting, for parallel runs. */
export function spawnRun (cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise(resolve => {
    const child = spawn('env', ['-u', 'NODE_OPTIONS', cmd, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', d => { stdout += String(d) })
    child.stderr.on('data', d => { stderr += String(d) })
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, stdout, stderr, killed: signal !== null }) })
  })
}

/** Revokes a token in Keystone (DELETE /v3/auth/tokens), the token revoking itself. */
export async function revokeToken (authUrl: string, token: string): Promise<number> {
  const res = await keystoneFetch(`${authUrl}/auth/tokens`, { method: 'DELETE', headers: { 'x-auth-token': token, 'x-subject-token': token } })
  return res.status
}

/** What Keystone says of a token now, the token checking itself: 200 valid, 401 no longer honoured. */
export async function tokenStatus (authUrl: string, token: string): Promise<number> {
  const res = await keystoneFetch(`${authUrl}/auth/tokens?nocatalog`, { headers: { 'x-auth-token': token, 'x-subject-token': token } })
  await res.arrayBuffer()
  return res.status
}
