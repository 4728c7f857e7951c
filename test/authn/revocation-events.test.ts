// What Keystone takes away, Kubernetes loses within --revocation-poll-interval, in spite of the
// token cache: against the real Keystone, in service mode, each case with a user and project of
// its own (so that disabling or deleting them touches no other test). Each prints the seconds
// from the change in Keystone to the first "authenticated: false".
import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { adminToken, keystoneApi, loadSeed, type Seed } from '../helpers/keystone.js'
import { keystoneFetch } from '../helpers/keystone-fetch.js'
import { startWebhook, tokenReview, type TestWebhook } from '../helpers/webhook.js'

type Teardown = Pick<typeof t, 'teardown'>

const POLL_S = 2
const seed: Seed = loadSeed()
let admin: string

async function ok (p: Promise<{ status: number, body: any }>, status: number, what: string): Promise<any> {
  const r = await p
  if (r.status !== status) throw new Error(`${what}: Keystone answered ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}

/** A user with the member role on a project, both new, and a project-scoped token of theirs. */
async function newUser (t: Teardown, tag: string): Promise<{ userId: string, projectId: string, token: string }> {
  const name = `ksa-rv-${tag}-${process.pid}-${Date.now()}`
  const project = (await ok(keystoneApi(seed, admin, 'POST', '/projects', { project: { name, domain_id: 'default' } }), 201, 'create project')).project
  const user = (await ok(keystoneApi(seed, admin, 'POST', '/users', { user: { name, domain_id: 'default', password: `${name}-pass` } }), 201, 'create user')).user
  await ok(keystoneApi(seed, admin, 'PUT', `/projects/${project.id}/users/${user.id}/roles/${seed.roles.member?.id ?? ''}`), 204, 'assign member')
  t.teardown(async () => {
    await keystoneApi(seed, admin, 'DELETE', `/users/${user.id}`)
    await keystoneApi(seed, admin, 'DELETE', `/projects/${project.id}`)
  })
  const res = await keystoneFetch(`${seed.auth_url}/auth/tokens?nocatalog`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { id: user.id, password: `${name}-pass` } } }, scope: { project: { id: project.id } } } })
  })
  if (res.status !== 201) throw new Error(`login of ${name}: ${res.status}`)
  return { userId: user.id, projectId: project.id, token: res.headers.get('x-subject-token') as string }
}

/** The webhook in service mode, with an application credential of the admin user (admin role). */
async function serviceWebhook (t: Teardown, flags: string[]): Promise<TestWebhook> {
  const adminId = seed.users.admin?.id as string
  const cred = (await ok(keystoneApi(seed, admin, 'POST', `/users/${adminId}/application_credentials`, { application_credential: { name: `ksa-rv-svc-${process.pid}-${Date.now()}` } }), 201, 'create service credential')).application_credential
  t.teardown(async () => { await keystoneApi(seed, admin, 'DELETE', `/users/${adminId}/application_credentials/${cred.id}`) })
  const dir = mkdtempSync(join(tmpdir(), 'ksa-rv-'))
  writeFileSync(join(dir, 'secret'), cred.secret)
  const wh = await startWebhook(['--service-credential-id', cred.id, '--service-credential-secret-file', join(dir, 'secret'), ...flags])
  t.teardown(wh.close)
  return wh
}

async function authenticated (wh: TestWebhook, token: string): Promise<boolean> {
  return (await wh.post('/webhook', tokenReview(token))).body.status.authenticated === true
}

/** Seconds until the webhook answers "authenticated: false", asking every 250 ms, at most `limitS`. */
async function secondsToLockout (wh: TestWebhook, token: string, limitS: number): Promise<number> {
  const started = performance.now()
  while ((performance.now() - started) / 1000 < limitS) {
    if (!(await authenticated(wh, token))) return (performance.now() - started) / 1000
    await new Promise(resolve => setTimeout(resolve, 250))
  }
  return Infinity
}

t.before(async () => { admin = await adminToken(seed) })

const CASES: Array<[string, (u: { userId: string, projectId: string, token: string }) => Promise<void>]> = [
  ['token revoked (DELETE /v3/auth/tokens)', async u => { await ok(keystoneFetch(`${seed.auth_url}/auth/tokens`, { method: 'DELETE', headers: { 'x-auth-token': admin, 'x-subject-token': u.token } }).then(r => ({ status: r.status, body: undefined })), 204, 'revoke') }],
  ['user disabled', async u => { await ok(keystoneApi(seed, admin, 'PATCH', `/users/${u.userId}`, { user: { enabled: false } }), 200, 'disable') }],
  ['user deleted', async u => { await ok(keystoneApi(seed, admin, 'DELETE', `/users/${u.userId}`), 204, 'delete user') }],
  ['password changed', async u => { await ok(keystoneApi(seed, admin, 'PATCH', `/users/${u.userId}`, { user: { password: 'a-new-password-1' } }), 200, 'new password') }],
  ['project deleted', async u => { await ok(keystoneApi(seed, admin, 'DELETE', `/projects/${u.projectId}`), 204, 'delete project') }]
]

for (const [what, change] of CASES) {
  t.test(`${what}: a cached token is refused within --revocation-poll-interval + 5 s`, async t => {
    const wh = await serviceWebhook(t, ['--revocation-poll-interval', `${POLL_S}s`])
    const u = await newUser(t, what.split(' ')[0] as string)
    t.ok(await authenticated(wh, u.token), 'authenticated before the change')
    t.ok(await authenticated(wh, u.token), 'and answered from the cache')
    t.equal(await wh.metric('k8s_keystone_auth_keystone_requests_total', { operation: 'validate' }), 1, 'one validation: the second answer came from the cache')
    await change(u)
    const s = await secondsToLockout(wh, u.token, POLL_S + 5)
    t.comment(`${what}: refused after ${s.toFixed(1)} s (poll interval ${POLL_S} s; token cache TTL 60 s)`)
    t.ok(s <= POLL_S + 5, `refused after ${s.toFixed(1)} s`)
    t.ok(await wh.metric('k8s_keystone_auth_revocation_evicted_total') >= 1, 'counted as evicted by an event')
    t.match(JSON.stringify((await wh.get('/readyz')).body), /"ready":true/, 'still ready')
  })
}

t.test('without polling (--revocation-poll-interval 0), the cache keeps a revoked token: the bound is the TTL', async t => {
  const wh = await serviceWebhook(t, ['--revocation-poll-interval', '0'])
  const u = await newUser(t, 'nopoll')
  t.ok(await authenticated(wh, u.token))
  await ok(keystoneFetch(`${seed.auth_url}/auth/tokens`, { method: 'DELETE', headers: { 'x-auth-token': admin, 'x-subject-token': u.token } }).then(r => ({ status: r.status, body: undefined })), 204, 'revoke')
  await new Promise(resolve => setTimeout(resolve, (POLL_S + 1) * 1000))
  t.ok(await authenticated(wh, u.token), 'still answered from the cache: what the poller exists for')
  t.equal(await wh.metric('k8s_keystone_auth_revocation_polls_total'), 0, 'no poll')
})

t.test('a token of another user stays cached when one user is disabled', async t => {
  const wh = await serviceWebhook(t, ['--revocation-poll-interval', `${POLL_S}s`])
  const gone = await newUser(t, 'gone')
  const stays = await newUser(t, 'stays')
  t.ok(await authenticated(wh, gone.token))
  t.ok(await authenticated(wh, stays.token))
  await ok(keystoneApi(seed, admin, 'PATCH', `/users/${gone.userId}`, { user: { enabled: false } }), 200, 'disable')
  t.ok(await secondsToLockout(wh, gone.token, POLL_S + 5) <= POLL_S + 5)
  const before = await wh.metric('k8s_keystone_auth_keystone_requests_total', { operation: 'validate' })
  t.ok(await authenticated(wh, stays.token), 'the other user still authenticated')
  t.equal(await wh.metric('k8s_keystone_auth_keystone_requests_total', { operation: 'validate' }), before, 'from the cache: nothing else was evicted')
})
