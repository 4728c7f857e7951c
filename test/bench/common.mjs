// What the benchmarks share: a throwaway certificate, the generated 1,000-entry policy, review
// bodies, a real Keystone login, and starting a server and waiting for its /healthz.
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const seed = JSON.parse(readFileSync(join(process.env.KEYSTONE_DEV_DIR ?? '/tmp/keystone-dev', 'seed.json'), 'utf8'))

/**
 * A temp dir with cert.pem/key.pem (self-signed for 127.0.0.1) and policy.json (1,000 entries;
 * with `negated`, each entry also has a `!['secrets']` key, as in the webhook benchmark).
 */
export function benchDir (prefix, { negated = false } = {}) {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' })
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0' // self-signed, loopback only, benchmarks only
  // 999 entries for other projects, the last one for demo: a miss evaluates every entry.
  const policy = []
  for (let i = 0; i < 999; i++) {
    const perms = { [`ns-${i}/pods`]: ['get', 'list'] }
    if (negated) perms[`ns-${i}/!['secrets']`] = ['get']
    policy.push({ users: { roles: ['member'], projects: [`project-${i}`] }, resource_permissions: perms })
  }
  policy.push({ users: { roles: ['member'], projects: ['demo'] }, resource_permissions: { '*/pods': ['get', 'list', 'watch'] } })
  writeFileSync(join(dir, 'policy.json'), JSON.stringify(policy))
  return dir
}

export const tokenReview = token => ({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } })
export const sar = (user, verb = 'list') => ({
  apiVersion: 'authorization.k8s.io/v1',
  kind: 'SubjectAccessReview',
  spec: { user, groups: ['developers'], extra: { 'alpha.kubernetes.io/identity/roles': ['member'], 'alpha.kubernetes.io/identity/project/name': ['demo'] }, resourceAttributes: { namespace: 'demo', verb, resource: 'pods', version: 'v1' } }
})

/** A project-scoped token of the seeded user demo, straight from Keystone. */
export async function login () {
  const res = await fetch(`${seed.auth_url}/auth/tokens?nocatalog`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { id: seed.users.demo.id, password: seed.users.demo.password } } }, scope: { project: { id: seed.projects.demo.id } } } })
  })
  if (res.status !== 201) throw new Error(`login: ${res.status}`)
  return res.headers.get('x-subject-token')
}

/**
 * With two or more CPUs and taskset: the load generator (this process) on CPU 0 and the servers
 * on CPU 1, so that they never take turns on one core, which made runs differ more than the
 * servers did. BENCH_PIN=0 turns it off.
 */
export const pinning = process.env.BENCH_PIN !== '0' && cpus().length >= 2 && (() => {
  try { execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' }); return true } catch { return false }
})()

/** Spawns `node args…` (without tap's NODE_OPTIONS) and resolves once healthUrl answers 200. */
export function startProcess (args, healthUrl) {
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  const child = pinning
    ? spawn('taskset', ['-c', '1', process.execPath, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env })
    : spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env })
  let err = ''
  child.stderr.on('data', d => { err += String(d); if (err.length > 100_000) err = err.slice(-50_000) })
  child.logTail = (n = 2000) => err.slice(-n)
  return new Promise((resolve, reject) => {
    child.on('exit', code => reject(new Error(`${args[0]} exited ${code}: ${err}`)))
    const poll = async () => {
      try { if ((await fetch(healthUrl)).ok) return resolve(child) } catch {}
      setTimeout(poll, 100)
    }
    void poll()
  })
}
