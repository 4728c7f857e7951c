// --workers: the built binary with 2 workers sharing the port. Every worker answers; a policy-file
// change is seen by every worker; /metrics is the sum over the workers; a killed worker is
// restarted; SIGTERM to the primary stops them all. Needs `npm run build` (bin/ runs dist/).
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { request as httpsRequest } from 'node:https'
import { mkdtempSync, writeFileSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { testCerts } from '../helpers/certs.js'
import { loadSeed, passwordToken } from '../helpers/keystone.js'
import { tokenReview } from '../helpers/webhook.js'
import { until } from './fault-keystone.js'

t.setTimeout(5 * 60_000)

const BIN = fileURLToPath(new URL('../../bin/k8s-keystone-auth', import.meta.url))
const seed = loadSeed()
const certs = testCerts()
const dir = mkdtempSync(join(tmpdir(), 'ksa-workers-'))
const policyFile = join(dir, 'policy.json')

const policy = (verbs: string[]): string => JSON.stringify([{ users: { roles: ['member'], projects: ['demo'] }, resource_permissions: { 'default/pods': verbs } }])
const sar = { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: { user: 'demo', extra: { 'alpha.kubernetes.io/identity/roles': ['member'], 'alpha.kubernetes.io/identity/project/name': ['demo'] }, resourceAttributes: { namespace: 'default', verb: 'get', resource: 'pods' } } }

interface Line { level: number, msg: string, pid: number, [k: string]: unknown }

/** One request on its own connection, so that the primary hands it to the next worker. */
async function call (port: number, method: string, path: string, body?: unknown): Promise<{ status: number, body: any, text: string }> {
  return await new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, method, path, ca: certs.ca, agent: false, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, res => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { text += c })
      res.on('end', () => {
        let parsed: unknown
        try { parsed = JSON.parse(text) } catch {}
        resolve({ status: res.statusCode ?? 0, body: parsed, text })
      })
    })
    req.on('error', reject)
    req.end(body === undefined ? undefined : JSON.stringify(body))
  })
}

function metricSum (text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue
    sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return sum
}

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

t.test('2 workers: all answer, policy reload in each, aggregated metrics, restart, SIGTERM', async t => {
  writeFileSync(policyFile, policy(['get']))
  const lines: Line[] = []
  const child: ChildProcess = spawn('env', ['-u', 'NODE_OPTIONS', BIN,
    '--listen', '127.0.0.1:0', '--workers', '2',
    '--tls-cert-file', certs.certFile, '--tls-private-key-file', certs.keyFile,
    '--keystone-url', seed.auth_url, '--keystone-policy-file', policyFile, '--log-level', 'debug'
  ], { env: { PATH: process.env.PATH }, stdio: ['ignore', 'ignore', 'pipe'] })
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  createInterface({ input: child.stderr! }).on('line', l => { try { lines.push(JSON.parse(l) as Line) } catch { t.comment(`stderr: ${l}`) } })

  t.ok(await until(async () => lines.some(l => l.msg === 'workers started'), 30_000), 'the primary says the workers started')
  const started = lines.find(l => l.msg === 'workers started') as Line
  const port = started.port as number
  const primaryPid = started.pid
  t.equal(primaryPid, child.pid, 'the primary is the process we started')
  const workerPids = (): Set<number> => new Set(lines.filter(l => l.msg === 'k8s-keystone-auth listening').map(l => l.pid))
  // a worker logs its own line after the primary hears of its listening socket: wait for both
  await until(async () => workerPids().size >= 2, 30_000)
  t.equal(workerPids().size, 2, 'two workers listen')
  t.notOk(workerPids().has(primaryPid), 'the primary serves nothing itself')

  // Every worker answers: who answered is in the review log line (pid).
  const answeredBy = (from: number): Set<number> => new Set(lines.slice(from).filter(l => l.msg === 'review answered').map(l => l.pid))
  let mark = lines.length
  const before = await Promise.all(Array.from({ length: 20 }, async () => await call(port, 'POST', '/webhook', sar)))
  t.same(before.map(r => r.body?.status?.allowed), before.map(() => true), 'the policy allows get')
  t.ok(await until(async () => answeredBy(mark).size === 2, 5000), 'both workers answered reviews')

  // Caches are per worker: one token, 20 reviews, at most one Keystone validation per worker.
  const token = await passwordToken(seed, 'demo', 'demo')
  const trs = await Promise.all(Array.from({ length: 20 }, async () => await call(port, 'POST', '/webhook', tokenReview(token))))
  t.same(trs.map(r => r.body?.status?.authenticated), trs.map(() => true), 'TokenReviews answered by every worker')

  // /metrics is the sum over the workers (any worker answers it, by asking the primary).
  const m = (await call(port, 'GET', '/metrics')).text
  t.equal(metricSum(m, 'k8s_keystone_auth_reviews_total', { kind: 'SubjectAccessReview' }), 20, '/metrics counts the SubjectAccessReviews of both workers')
  t.equal(metricSum(m, 'k8s_keystone_auth_reviews_total', { kind: 'TokenReview' }), 20, '/metrics counts the TokenReviews of both workers')
  const misses = metricSum(m, 'k8s_keystone_auth_token_cache_requests_total', { result: 'miss' }) + metricSum(m, 'k8s_keystone_auth_token_cache_requests_total', { result: 'shared' })
  const validations = metricSum(m, 'k8s_keystone_auth_keystone_requests_total', { operation: 'validate' })
  t.ok(validations >= 1 && validations <= 2, `one Keystone validation per worker at most (${validations})`)
  t.ok(misses >= 1 && misses <= 20, `cache misses+shared ${misses}`)
  const m2 = (await call(port, 'GET', '/metrics')).text
  t.equal(metricSum(m2, 'k8s_keystone_auth_reviews_total', { kind: 'SubjectAccessReview' }), 20, 'the same sum from whichever worker answers')

  // A policy change (atomic rename, as a ConfigMap volume) is seen by every worker.
  const tmp = join(dir, 'policy.json.new')
  writeFileSync(tmp, policy(['list']))
  renameSync(tmp, policyFile)
  t.ok(await until(async () => new Set(lines.filter(l => l.msg === 'authorization policy reloaded').map(l => l.pid)).size === 2, 30_000), 'both workers reloaded the policy')
  const allDenied = await until(async () => {
    mark = lines.length
    const rs = await Promise.all(Array.from({ length: 10 }, async () => await call(port, 'POST', '/webhook', sar)))
    await until(async () => answeredBy(mark).size === 2, 2000)
    return rs.every(r => r.body?.status?.allowed === false) && answeredBy(mark).size === 2
  }, 30_000, 300)
  t.ok(allDenied, 'every worker answers the new decision (allowed=false)')

  // A worker that dies is replaced; service goes on.
  const victim = [...workerPids()][0] as number
  process.kill(victim, 'SIGKILL')
  t.ok(await until(async () => lines.some(l => l.msg === 'worker exited; restarting it' && l.pid === primaryPid), 10_000), 'the primary notices the crash')
  t.ok(await until(async () => [...workerPids()].filter(p => p !== victim && alive(p)).length === 2, 30_000), 'a new worker takes its place')
  const after = await Promise.all(Array.from({ length: 10 }, async () => await call(port, 'POST', '/webhook', sar)))
  t.same(after.map(r => r.status), after.map(() => 200), 'reviews answered after the restart')
  t.equal((await call(port, 'GET', '/healthz')).status, 200)

  // SIGTERM to the primary: the workers stop gracefully, then the primary exits 0.
  const pids = [...workerPids()].filter(alive)
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'the primary exits 0')
  t.same(pids.filter(alive), [], 'no worker is left running')
  t.ok(lines.filter(l => l.msg === 'shutting down').length >= 2, 'each worker shut down gracefully')
})

t.test('a worker that cannot start (broken policy file) stops the primary with exit 1, no restart loop', async t => {
  const broken = join(dir, 'broken.json')
  writeFileSync(broken, '[{"users": 42}]')
  const lines: string[] = []
  const child = spawn('env', ['-u', 'NODE_OPTIONS', BIN,
    '--listen', '127.0.0.1:0', '--workers', '2',
    '--tls-cert-file', certs.certFile, '--tls-private-key-file', certs.keyFile,
    '--keystone-url', seed.auth_url, '--keystone-policy-file', broken
  ], { env: { PATH: process.env.PATH }, stdio: ['ignore', 'ignore', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  createInterface({ input: child.stderr! }).on('line', l => lines.push(l))
  const code = await new Promise<number | null>(resolve => child.on('exit', c => resolve(c)))
  t.equal(code, 1, 'the primary exits 1, as a single process would')
  t.ok(lines.some(l => l.includes('a worker failed to start')), 'and says why')
  t.notOk(lines.some(l => l.includes('restarting it')), 'without restarting the worker')
})
