import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runPolicyCommand } from '../../src/cli/policy.js'
import { repoRoot } from './helpers.js'

async function run (...argv: string[]): Promise<{ code: number, out: string, err: string }> {
  let out = ''
  let err = ''
  const code = await runPolicyCommand(argv, { stdout: s => { out += s }, stderr: s => { err += s } })
  return { code, out, err }
}

const v1 = join(repoRoot, 'config', 'policy.json')
const v2 = join(repoRoot, 'config', 'policy-v2.json')

t.test('check: a valid file', async t => {
  const r = await run('check', v1)
  t.equal(r.code, 0)
  t.equal(r.out, `${v1}: valid: 6 entries, 0 warning(s)\n`)
  t.equal(r.err, '')
})

t.test('check: warnings are printed, and fail only with --strict', async t => {
  const r = await run('check', v2)
  t.equal(r.code, 0)
  t.match(r.out, /valid: 3 entries, 4 warning\(s\)/)
  t.match(r.err, new RegExp(`^${v2.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:\\d+:\\d+: policy entry 1: resource_permissions\\["!kube-system/pods/\\['log', 'exec', 'portforward'\\]"\\]: names a subresource`, 'm'))
  t.match(r.err, /policy entry 2: resource_permissions\["default\/pods"\]: grants pods without their subresources \(pods\/log, pods\/exec, \.\.\.\), which Go grants with them: add e\.g\. "default\/pods\/\*" or "default\/pods\/\['log', 'exec'\]", or start the server with --authorization-subresource-compat/)
  t.equal((await run('check', '--strict', v2)).code, 1)
})

t.test('check: no subresource warning where the policy names them, or grants every resource', async t => {
  const dir = t.testdir({ 'p.json': JSON.stringify([{ users: { roles: [], projects: ['demo'] }, resource_permissions: { 'dev/pods': ['get'], 'dev/pods/log': ['get'], 'dev/*': ['list'], 'dev/configmaps': ['get'] } }]) })
  const r = await run('check', join(dir, 'p.json'))
  t.equal(r.code, 0)
  t.notMatch(r.err, /without their subresources/)
})

t.test('check: an invalid file points at each error', async t => {
  const dir = t.testdir({
    'bad.json': '[\n  {"resource": {"verbs": "get", "resources": ["pods"], "version": "*", "namespace": "*"}},\n  {"users": {"roles": 1}}\n]\n'
  })
  const file = join(dir, 'bad.json')
  const r = await run('check', file)
  t.equal(r.code, 1)
  t.equal(r.out, `${file}: invalid: 2 error(s), 0 warning(s)\n`)
  t.match(r.err, `${file}:2:26: policy entry 0: resource.verbs: expected an array of strings (error)`)
  t.match(r.err, `${file}:3:23: policy entry 1: users.roles: expected an array of strings (error)`)
})

t.test('check: unreadable file', async t => {
  const r = await run('check', '/nonexistent/policy.json')
  t.equal(r.code, 1)
  t.match(r.err, /cannot read/)
})

t.test('eval: allowed and denied, with the reason', async t => {
  const allowed = await run('eval', v1, '--user', 'demo', '--project', 'demo', '--role', 'member', '--verb', 'list', '--resource', 'pods', '--namespace', 'default')
  t.same(allowed, { code: 0, out: 'allowed: allowed by policy entry 0 (resource "pods")\n', err: '' })
  const denied = await run('eval', v1, '--user', 'demo', '--project', 'demo', '--role', 'member', '--verb', 'create', '--resource', 'pods', '--namespace', 'default')
  t.same(denied, { code: 1, out: 'denied: no policy entry matched\n', err: '' })
  const path = await run('eval', v1, '--user', 'ops', '--role', 'utility_exec', '--verb', 'get', '--path', '/apis/apps')
  t.same(path, { code: 0, out: 'allowed: allowed by policy entry 4 (nonresource "/apis/*")\n', err: '' })
})

t.test('eval: subresource, API group, project id, user groups, extras', async t => {
  t.equal((await run('eval', v1, '--user', 'ops', '--role', 'utility_exec', '--verb', 'create', '--resource', 'pods', '--subresource', 'exec', '--namespace', 'utility')).code, 0)
  const dir = t.testdir({
    'p.json': JSON.stringify([
      { resource: { verbs: ['get'], resources: ['deployments'], version: 'apps', namespace: '*' }, match: [{ type: 'group', values: ['devs'] }, { type: 'project', values: ['p-1'] }] },
      { nonresource: { verbs: ['get'], path: '/x' }, match: [{ type: 'role', values: ['r'] }] }
    ])
  })
  const p = join(dir, 'p.json')
  t.equal((await run('eval', p, '--user', 'a', '--user-group', 'devs', '--project-id', 'p-1', '--verb', 'get', '--resource', 'deployments', '--group', 'apps')).code, 0)
  t.equal((await run('eval', p, '--user', 'a', '--user-group', 'devs', '--project-id', 'p-1', '--verb', 'get', '--resource', 'deployments')).code, 1, 'core group differs from apps')
  t.equal((await run('eval', p, '--user', 'a', '--extra', 'alpha.kubernetes.io/identity/roles=r', '--verb', 'get', '--path', '/x')).code, 0)
})

t.test('eval: --authorization-subresource-compat restores the Go behaviour', async t => {
  const dir = t.testdir({ 'p.json': JSON.stringify([{ resource_permissions: { 'default/pods': ['create'] } }]) })
  const args = ['eval', join(dir, 'p.json'), '--user', 'a', '--verb', 'create', '--resource', 'pods', '--subresource', 'exec', '--namespace', 'default']
  t.equal((await run(...args)).code, 1)
  t.equal((await run(...args, '--authorization-subresource-compat')).code, 0)
})

t.test('eval: cluster-wide requests, and --authorization-loose-namespaces', async t => {
  const dir = t.testdir({ 'p.json': JSON.stringify([{ resource_permissions: { 'default/pods': ['list'] } }]) })
  const args = ['eval', join(dir, 'p.json'), '--user', 'a', '--verb', 'list', '--resource', 'pods']
  t.equal((await run(...args)).code, 1, 'Go: listing across all namespaces is not allowed by a "default/..." key')
  t.equal((await run(...args, '--authorization-loose-namespaces')).code, 0)
  t.equal((await run(...args, '--authorization-strict-namespaces=false')).code, 0, 'the old opt-out flag, negated, is the loose mode')
  t.equal((await run(...args, '--authorization-strict-namespaces')).code, 1, 'the old flag alone is the default now')
})

t.test('eval: --user-domain "" stands for a user this webhook did not authenticate', async t => {
  const dir = t.testdir({ 'p.json': JSON.stringify([{ nonresource: { verbs: ['get'], path: '/x' }, match: [{ type: 'user', values: ['a'] }] }]) })
  const args = ['eval', join(dir, 'p.json'), '--user', 'a', '--verb', 'get', '--path', '/x']
  t.equal((await run(...args)).code, 0)
  const r = await run(...args, '--user-domain', '')
  t.equal(r.code, 1)
  t.match(r.out, /no Keystone identity/)
})

t.test('eval: an invalid policy is denied with a pointer to check', async t => {
  const dir = t.testdir({ 'p.json': '[{"match": "x"}]' })
  const r = await run('eval', join(dir, 'p.json'), '--verb', 'get', '--path', '/')
  t.equal(r.code, 1)
  t.match(r.err, /policy entry 0: match: expected an array/)
  t.match(r.out, /^denied: the policy file is invalid/)
})

t.test('usage errors exit 2', async t => {
  const usage: string[][] = [
    [],
    ['frobnicate'],
    ['check'],
    ['check', 'a', 'b'],
    ['eval', v1, '--resource', 'pods'],
    ['eval', v1, '--verb', 'get'],
    ['eval', v1, '--verb', 'get', '--resource', 'pods', '--path', '/x'],
    ['eval', v1, '--verb', 'get', '--path', '/x', '--namespace', 'n'],
    ['eval', v1, '--verb', 'get', '--path', '/x', '--extra', 'novalue'],
    ['eval', v1, '--bogus']
  ]
  for (const argv of usage) {
    const r = await run(...argv)
    t.equal(r.code, 2, argv.join(' ') || '(no arguments)')
    t.match(r.err + r.out, /Usage:/)
  }
})

t.test('help exits 0', async t => {
  t.equal((await run('--help')).code, 0)
  const r = await run('eval', '--help')
  t.equal(r.code, 0)
  t.match(r.out, /--authorization-subresource-compat/)
  t.equal((await run('check', '-h')).code, 0)
})

t.test('YAML policies work in the CLI too', async t => {
  const dir = t.testdir({})
  const file = join(dir, 'p.yaml')
  writeFileSync(file, '- users: {roles: [member], projects: [demo]}\n  resource_permissions:\n    default/pods: [get]\n')
  t.equal((await run('check', file)).code, 0)
  t.equal((await run('eval', file, '--project', 'demo', '--role', 'member', '--verb', 'get', '--resource', 'pods', '--namespace', 'default')).code, 0)
})
