// A DaemonSet rollout with maxSurge: 1, played on one machine: an old server on 127.0.0.1:PORT under
// a steady load of TokenReviews and SubjectAccessReviews (real Keystone tokens, a policy file, mTLS
// as kube-apiserver calls it) from keep-alive clients; a new server started on the same port
// (SO_REUSEPORT); then SIGTERM to the old one. No review may fail or be refused, and the old
// process exits 0 after draining. Once with single processes, once with --workers 2.
//
// SO_REUSEPORT needs Node 22.12+/23.1+ (the image runs Node 26; the machines run Node 20), so the
// binaries run on the Node 26 that scripts/test.sh fetches (KSA_NODE26_DIR, or
// ~/.cache/k8s-keystone-auth/node26), or on this Node when it has reusePort. Needs `npm run build`.
import t from 'tap'
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { Pool } from 'undici'
import { testCerts } from '../helpers/certs.js'
import { loadSeed, passwordToken } from '../helpers/keystone.js'
import { tokenReview } from '../helpers/webhook.js'
import { reusePortSupported } from '../../src/server/start/listen.js'
import { until } from './fault-keystone.js'

t.setTimeout(8 * 60_000)

const BIN = fileURLToPath(new URL('../../bin/k8s-keystone-auth', import.meta.url))

/** A Node that binds with SO_REUSEPORT, or why there is none. */
function nodeWithReusePort (): { node: string } | { why: string } {
  if (reusePortSupported()) return { node: process.execPath }
  const dir = process.env.KSA_NODE26_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'k8s-keystone-auth/node26')
  const node = join(dir, 'bin/node')
  if (!existsSync(node)) return { why: `this Node (${process.version}) has no reusePort and there is no Node 26 at ${node} (scripts/test.sh fetches it; or set KSA_NODE26_DIR)` }
  const version = execFileSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim()
  if (!reusePortSupported(version)) return { why: `${node} is Node ${version}, without reusePort` }
  return { node }
}

const found = nodeWithReusePort()
const skip = 'why' in found ? found.why : false
const NODE = 'node' in found ? found.node : process.execPath

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0))
    })
  })
}

interface Line { msg: string, pid: number, [k: string]: unknown }

interface Server {
  child: ChildProcess
  lines: Line[]
  exited: Promise<number | null>
}

function startServer (port: number, extra: string[], policyFile: string): Server {
  const certs = testCerts()
  const lines: Line[] = []
  // tap's process tracking adds its loaders to the children's NODE_OPTIONS: not for this Node.
  const child = spawn('env', ['-u', 'NODE_OPTIONS', NODE, BIN,
    '--listen', `127.0.0.1:${port}`,
    '--tls-cert-file', certs.certFile, '--tls-private-key-file', certs.keyFile,
    '--client-ca-file', certs.caFile,
    '--keystone-url', loadSeed().auth_url, '--keystone-policy-file', policyFile,
    '--shutdown-grace', '30s',
    ...extra
  ], { env: { PATH: process.env.PATH }, stdio: ['ignore', 'ignore', 'pipe'] })
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  createInterface({ input: child.stderr! }).on('line', l => { try { lines.push(JSON.parse(l) as Line) } catch { lines.push({ msg: `stderr: ${l}`, pid: 0 }) } })
  return { child, lines, exited }
}

const answered = (s: Server): number => s.lines.filter(l => l.msg === 'review answered').length

t.test('rollout on one port: old and new share it, the old drains on SIGTERM, nothing fails', { skip }, async t => {
  const seed = loadSeed()
  const certs = testCerts()
  const dir = mkdtempSync(join(tmpdir(), 'ksa-rollout-'))
  const policyFile = join(dir, 'policy.json')
  writeFileSync(policyFile, JSON.stringify([{ users: { roles: ['member'], projects: ['demo'] }, resource_permissions: { 'default/pods': ['get', 'list'] } }]))
  const demoToken = await passwordToken(seed, 'demo', 'demo')
  const sar = { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: { user: 'demo', extra: { 'alpha.kubernetes.io/identity/roles': ['member'], 'alpha.kubernetes.io/identity/project/name': ['demo'] }, resourceAttributes: { namespace: 'default', verb: 'get', resource: 'pods' } } }
  const bodies = [JSON.stringify(tokenReview(demoToken)), JSON.stringify(sar)]

  for (const variant of [{ name: 'single processes', flags: [] as string[] }, { name: '--workers 2', flags: ['--workers', '2'] }]) {
    await t.test(variant.name, async t => {
      const port = await freePort()
      const started = (s: Server): boolean => variant.flags.length === 0
        ? s.lines.some(l => l.msg === 'k8s-keystone-auth listening')
        : s.lines.some(l => l.msg === 'workers started')
      const old = startServer(port, variant.flags, policyFile)
      t.teardown(() => { if (old.child.exitCode === null) old.child.kill('SIGKILL') })
      t.ok(await until(async () => started(old) || old.child.exitCode !== null, 60_000), 'the old server listens')
      if (old.child.exitCode !== null) t.comment(`the old server exited: ${old.lines.map(l => JSON.stringify(l)).join('\n')}`)
      t.ok(old.lines.some(l => l.msg === 'k8s-keystone-auth listening' && l.reusePort === true), 'with SO_REUSEPORT')

      // Clients as kube-apiserver is one: keep-alive connections, several requests at once, the
      // client certificate. Two clients of 4 connections, 8 requests in flight. No retries.
      const pools = [0, 1].map(() => new Pool(`https://127.0.0.1:${port}`, {
        connections: 4,
        connect: { ca: certs.ca, cert: readFileSync(certs.clientCertFile), key: readFileSync(certs.clientKeyFile) }
      }))
      t.teardown(async () => { await Promise.all(pools.map(async p => await p.destroy())) })
      const load = { stop: false }
      let total = 0
      const failures: string[] = []
      const loop = async (pool: Pool, i: number): Promise<void> => {
        let n = i
        while (!load.stop) {
          const body = bodies[n++ % 2] as string
          total++
          try {
            const res = await pool.request({ path: '/webhook', method: 'POST', headers: { 'content-type': 'application/json' }, body })
            const text = await res.body.text()
            const status = (JSON.parse(text) as { status?: { authenticated?: boolean, allowed?: boolean } }).status
            if (res.statusCode !== 200 || (status?.authenticated !== true && status?.allowed !== true)) failures.push(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`)
          } catch (err) {
            failures.push(`${(err as { code?: string }).code ?? ''} ${(err as Error).message}`)
          }
        }
      }
      const loops = pools.flatMap(p => [0, 1, 2, 3].map(async i => { await loop(p, i) }))

      t.ok(await until(async () => answered(old) >= 200, 60_000), 'the old server answers the load')
      const fresh = startServer(port, variant.flags, policyFile)
      t.teardown(() => { if (fresh.child.exitCode === null) fresh.child.kill('SIGKILL') })
      t.ok(await until(async () => started(fresh) || fresh.child.exitCode !== null, 60_000), 'the new server listens on the same port (surge)')
      t.equal(fresh.child.exitCode, null, 'the new server runs: no EADDRINUSE')
      const beforeTerm = total
      t.ok(await until(async () => total >= beforeTerm + 200, 60_000), 'load goes on with both listening')

      const oldBeforeTerm = answered(old)
      old.child.kill('SIGTERM')
      const code = await old.exited
      const oldAfterTerm = answered(old) - oldBeforeTerm
      t.equal(code, 0, 'the old server exits 0')
      t.ok(old.lines.some(l => l.msg === 'drained: every connection closed'), 'the old server drained: no connection left to cut')
      t.notOk(old.lines.some(l => /grace period over/.test(l.msg)), 'within --shutdown-grace')
      const afterExit = total
      t.ok(await until(async () => total >= afterExit + 200, 60_000), 'the new server answers the load alone')

      load.stop = true
      await Promise.all(loops)
      fresh.child.kill('SIGTERM')
      t.equal(await fresh.exited, 0, 'the new server exits 0 too')
      const byOld = answered(old)
      const byNew = answered(fresh)
      t.comment(`${variant.name}: ${total} requests, ${failures.length} failed; answered by old ${byOld} (${oldAfterTerm} of them after SIGTERM), by new ${byNew}`)
      t.same(failures.slice(0, 5), [], 'no review failed or was refused')
      t.equal(failures.length, 0, `0 of ${total} failed`)
      t.equal(byOld + byNew, total, 'every request was answered by one of the two (their review log lines)')
      t.ok(byNew > 0, 'the new server took over')
    })
  }
})
