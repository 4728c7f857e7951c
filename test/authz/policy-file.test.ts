import t, { type Test } from 'tap'
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { PolicyEngine, type ReloadResult } from '../../src/authz/engine.js'
import { PolicyFileWatcher } from '../../src/authz/policy-file.js'
import { createLogger } from '../../src/log.js'
import { accessRequest } from './helpers.js'

const allowPods = JSON.stringify([{ users: { roles: [], projects: ['demo'] }, resource_permissions: { '*/pods': ['get'] } }])
const allowSecrets = JSON.stringify([{ users: { roles: [], projects: ['demo'] }, resource_permissions: { '*/secrets': ['get'] } }])
const broken = '[{"users": {"roles": "admin"}}]'
const who = { name: 'a', projectNames: ['demo'] }
const getPods = accessRequest(who, { verb: 'get', namespace: 'x', resource: 'pods' })
const getSecrets = accessRequest(who, { verb: 'get', namespace: 'x', resource: 'secrets' })

function capture (): { logger: ReturnType<typeof createLogger>, lines: () => Array<Record<string, any>> } {
  const out: string[] = []
  const logger = createLogger({ level: 'info', destination: { write: (s: string) => { out.push(s) } } })
  return { logger, lines: () => out.map(l => JSON.parse(l)) }
}

/** The watcher's handles do not keep a process alive (the server does); a test must, while it waits. */
function keepAlive (t: Test): void {
  const timer = setInterval(() => {}, 60_000)
  t.teardown(() => clearInterval(timer))
}

/** An engine whose reloads can be awaited, one at a time, without any timing assumption. */
function awaitableEngine (): { engine: PolicyEngine, next: () => Promise<ReloadResult> } {
  const waiting: Array<(r: ReloadResult) => void> = []
  const done: ReloadResult[] = []
  const engine = new PolicyEngine({
    onReload: r => {
      const w = waiting.shift()
      if (w !== undefined) w(r)
      else done.push(r)
    }
  })
  return { engine, next: async () => done.shift() ?? await new Promise(resolve => waiting.push(resolve)) }
}

t.test('start-up: a broken or missing file throws a ConfigError naming entry and field', async t => {
  const dir = t.testdir({ 'bad.json': broken })
  const { logger } = capture()
  t.throws(() => new PolicyFileWatcher({ path: join(dir, 'bad.json'), engine: new PolicyEngine(), logger, watch: false }),
    { code: 'KSA_ERR_CONFIG', message: /policy entry 0: users\.roles: expected an array of strings/ })
  t.throws(() => new PolicyFileWatcher({ path: join(dir, 'missing.json'), engine: new PolicyEngine(), logger, watch: false }),
    { code: 'KSA_ERR_CONFIG', message: /cannot read policy file .*missing\.json/ })
})

t.test('reload: unchanged, broken (keep last good), fixed, missing, back', async t => {
  const dir = t.testdir({ 'policy.json': allowPods })
  const file = join(dir, 'policy.json')
  const { logger, lines } = capture()
  const engine = new PolicyEngine()
  const w = new PolicyFileWatcher({ path: file, engine, logger, watch: false })
  t.teardown(() => w.close())
  t.equal(engine.authorize(getPods).allowed, true)
  t.match(lines().find(l => l.msg === 'authorization policy loaded'), { level: 30, entries: 1 })
  t.match(lines().find(l => l.level === 40), { msg: /without their subresources/ }, 'the policy warning is logged at load')

  t.equal(await w.reload(), 'unchanged')

  writeFileSync(file, broken)
  t.equal(await w.reload(), 'error')
  t.equal(engine.authorize(getPods).allowed, true, 'last good policy kept')
  t.match(engine.status.lastError, /policy entry 0: users\.roles/)
  const warn = lines().at(-1)
  t.match(warn, { level: 40, msg: 'authorization policy not reloaded; keeping the last good policy' })
  t.match(warn?.issues, [/policy entry 0: users\.roles: expected an array of strings/])
  const logged = lines().length
  t.equal(await w.reload(), 'unchanged', 'the same broken content is not reloaded again')
  t.equal(lines().length, logged, 'nor logged again')

  writeFileSync(file, allowSecrets)
  t.equal(await w.reload(), 'ok')
  t.equal(engine.authorize(getSecrets).allowed, true)
  t.equal(engine.authorize(getPods).allowed, false)
  t.equal(engine.status.lastError, undefined)

  rmSync(file)
  t.equal(await w.reload(), 'error')
  t.match(engine.status.lastError, /cannot read policy file/)
  t.equal(engine.authorize(getSecrets).allowed, true, 'a vanished file keeps the last good policy')
  t.equal(await w.reload(), 'unchanged')

  writeFileSync(file, allowSecrets)
  t.equal(await w.reload(), 'ok', 'the same content comes back: loaded again, error cleared')
  t.equal(engine.status.lastError, undefined)
})

t.test('concurrent reloads are serialised', async t => {
  const dir = t.testdir({ 'policy.json': allowPods })
  const file = join(dir, 'policy.json')
  const engine = new PolicyEngine()
  const w = new PolicyFileWatcher({ path: file, engine, logger: capture().logger, watch: false })
  t.teardown(() => w.close())
  writeFileSync(file, allowSecrets)
  const [a, b] = await Promise.all([w.reload(), w.reload()])
  t.equal(a, 'ok')
  t.equal(b, 'ok', 'the second caller shares the running reload')
  t.equal(engine.status.generation, 2)
})

t.test('a ConfigMap-style ..data symlink swap is picked up by the directory watch', async t => {
  keepAlive(t)
  const dir = t.testdir({})
  mkdirSync(join(dir, '..v1'))
  writeFileSync(join(dir, '..v1', 'policy.json'), allowPods)
  symlinkSync('..v1', join(dir, '..data'))
  symlinkSync(join('..data', 'policy.json'), join(dir, 'policy.json'))
  const { engine, next } = awaitableEngine()
  const w = new PolicyFileWatcher({ path: join(dir, 'policy.json'), engine, logger: capture().logger, pollIntervalMs: 0, debounceMs: 10 })
  t.teardown(() => w.close())
  t.equal(await next(), 'ok', 'initial load')
  t.equal(engine.authorize(getPods).allowed, true)

  // What the kubelet does: write a new timestamped dir, point a temp symlink at it, rename it over ..data.
  mkdirSync(join(dir, '..v2'))
  writeFileSync(join(dir, '..v2', 'policy.json'), allowSecrets)
  symlinkSync('..v2', join(dir, '..data_tmp'))
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'))
  t.equal(await next(), 'ok', 'reloaded after the swap')
  t.equal(engine.authorize(getSecrets).allowed, true)
  t.equal(engine.authorize(getPods).allowed, false)
})

t.test('the poll fallback reloads when nothing else does', async t => {
  keepAlive(t)
  const dir = t.testdir({ 'policy.json': allowPods })
  const { engine, next } = awaitableEngine()
  const w = new PolicyFileWatcher({ path: join(dir, 'policy.json'), engine, logger: capture().logger, pollIntervalMs: 20, debounceMs: 10_000_000 })
  t.teardown(() => w.close())
  t.equal(await next(), 'ok')
  writeFileSync(join(dir, 'policy.json'), allowSecrets)
  t.equal(await next(), 'ok', 'the poll picked up the change (the debounced watch would wait ~3 hours)')
  t.equal(engine.authorize(getSecrets).allowed, true)
})
