// What Keystone takes away, Kubernetes loses within --revocation-poll-interval, in spite of the
// token cache: against the real Keystone, in service mode, each case with a user and project of
// its own (so that disabling or deleting them touches no other test). Each prints the seconds
// from the change in Keystone to the first "authenticated: false".
import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { adminToken, keystoneApi, loadSeed, passwordToken, type Seed } from '../helpers/keystone.js'
import { keystoneFetch } from '../helpers/keystone-fetch.js'
import { startWebhook, tokenReview, type TestWebhook } from '../helpers/webhook.js'

type Teardown = Pick<typeof t, 'teardown'>
interface User { userId: string, projectId: string, token: string }

const POLL_S = 2
const seed: Seed = loadSeed()
let admin: string

async function ok (p: Promise<{ status: number, body: any }>, status: number, what: string): Promise<any> {
  const r = await p
  if (r.status !== status) throw new Error(`${what}: Keystone answered ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}

/** A user with the member role on a project, both new, and a project-scoped token of theirs. */
async function newUser (t: Teardown, tag: string): Promise<User> {
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

async function until (what: () => Promise<boolean>, limitMs: number): Promise<boolean> {
  const started = performance.now()
  while (!(await what())) {
    if (performance.now() - started > limitMs) return false
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  return true
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

const CASES: Array<[string, (u: User) => Promise<void>]> = [
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
    t.equal(await wh.metric('k8s_keystone_auth_token_cache_requests_total', { result: 'hit' }), 1, 'the second answer came from the cache')
    await change(u)
    const s = await secondsToLockout(wh, u.token, POLL_S + 5)
    t.comment(`${what}: refused after ${s.toFixed(1)} s (poll interval ${POLL_S} s; token cache TTL 60 s)`)
    t.ok(s <= POLL_S + 5, `refused after ${s.toFixed(1)} s`)
    t.ok(await wh.metric('k8s_keystone_auth_revocation_evicted_total') >= 1, 'counted as evicted by an event')
    t.match(JSON.stringify((await wh.get('/readyz')).body), /"ready":true/, 'still ready')
  })
}

t.test('without polling and re-validation, the cache keeps a revoked token: the bound is the TTL', async t => {
  const wh = await serviceWebhook(t, ['--revocation-poll-interval', '0', '--token-revalidate-interval', '0'])
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
  const before = await wh.metric('k8s_keystone_auth_token_cache_requests_total', { result: 'miss' })
  t.ok(await authenticated(wh, stays.token), 'the other user still authenticated')
  t.equal(await wh.metric('k8s_keystone_auth_token_cache_requests_total', { result: 'miss' }), before, 'from the cache: nothing else was evicted')
})

// What Keystone records no event for: re-validation of tokens in use (--token-revalidate-interval),
// with event polling off so that re-validation alone is measured.
const REVALIDATE_S = 3

const NO_EVENT: Array<[string, (u: User) => Promise<{ token: string, change: () => Promise<void> }>]> = [
  ['role assignment removed', async u => ({
    token: u.token,
    change: async () => { await ok(keystoneApi(seed, admin, 'DELETE', `/projects/${u.projectId}/users/${u.userId}/roles/${seed.roles.member?.id ?? ''}`), 204, 'unassign') }
  })],
  ['project disabled', async u => ({
    token: u.token,
    change: async () => { await ok(keystoneApi(seed, admin, 'PATCH', `/projects/${u.projectId}`, { project: { enabled: false } }), 200, 'disable project') }
  })],
  ['application credential deleted', async u => {
    // The user's own credential, and a token of it.
    const cred = (await ok(keystoneApi(seed, u.token, 'POST', `/users/${u.userId}/application_credentials`, { application_credential: { name: `ksa-rv-ac-${Date.now()}` } }), 201, 'create credential')).application_credential
    const res = await keystoneFetch(`${seed.auth_url}/auth/tokens?nocatalog`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ auth: { identity: { methods: ['application_credential'], application_credential: { id: cred.id, secret: cred.secret } } } }) })
    if (res.status !== 201) throw new Error(`application credential login: ${res.status}`)
    return {
      token: res.headers.get('x-subject-token') as string,
      change: async () => { await ok(keystoneApi(seed, admin, 'DELETE', `/users/${u.userId}/application_credentials/${cred.id as string}`), 204, 'delete credential') }
    }
  }]
]

for (const [what, setUp] of NO_EVENT) {
  t.test(`${what} (no revocation event): a token in use is refused within --token-revalidate-interval + 5 s`, async t => {
    const wh = await serviceWebhook(t, ['--revocation-poll-interval', '0', '--token-revalidate-interval', `${REVALIDATE_S}s`])
    const { token, change } = await setUp(await newUser(t, what.split(' ')[0] as string))
    t.ok(await authenticated(wh, token), 'authenticated before the change')
    await change()
    t.ok(await authenticated(wh, token), 'answered from the cache right after it')
    const s = await secondsToLockout(wh, token, REVALIDATE_S + 5)
    t.comment(`${what}: refused after ${s.toFixed(1)} s (re-validation every ${REVALIDATE_S} s, event polling off; token cache TTL 60 s)`)
    t.ok(s <= REVALIDATE_S + 5, `refused after ${s.toFixed(1)} s`)
    t.ok(await wh.metric('k8s_keystone_auth_token_revalidations_total', { result: 'revoked' }) >= 1, 'counted as a re-validation that dropped the token')
  })
}

t.test('what it costs Keystone: one event request per interval whatever the cache holds, one re-validation per token in use per interval', async t => {
  const wh = await serviceWebhook(t, ['--revocation-poll-interval', '1s', '--token-revalidate-interval', '6s'])
  const tokens = await Promise.all(Array.from({ length: 20 }, async () => await passwordToken(seed, 'demo', 'demo')))
  // Validations we start (cache misses and background re-validations); Keystone's request count
  // can be higher by the test Keystone's closed keep-alive connections, which the client retries.
  const misses = async (): Promise<number> => await wh.metric('k8s_keystone_auth_token_cache_requests_total', { result: 'miss' })
  const revalidations = async (): Promise<number> => await wh.metric('k8s_keystone_auth_token_revalidations_total')
  const round = async (): Promise<void> => { for (const tok of tokens) t.ok(await authenticated(wh, tok)) }
  const started = performance.now()
  await round()
  await round()
  t.equal(await misses(), 20, 'within the interval: one validation per token, the rest from the cache')
  t.equal(await revalidations(), 0)
  await new Promise(resolve => setTimeout(resolve, 6200))
  await round()
  // Each token used after the interval was served from the cache and re-validated in the background.
  t.ok(await until(async () => await revalidations() >= 20, 15_000), 'each token in use re-validated')
  const seconds = (performance.now() - started) / 1000
  const r = await revalidations()
  const polls = await wh.metric('k8s_keystone_auth_revocation_polls_total')
  t.comment(`20 tokens in use for ${seconds.toFixed(1)} s: ${await misses()} validations on first use, ${r} re-validations (6 s interval), ${polls} event polls (1 s interval)`)
  t.equal(await misses(), 20, 'no token fell out of the cache')
  t.ok(r <= 20 * Math.ceil(seconds / 6), `at most one re-validation per token in use per interval (${r} for 20 tokens over ${seconds.toFixed(1)} s)`)
  t.ok(polls >= 1 && polls <= seconds + 2, `at most one event request per interval, for 20 cached tokens as for one (${polls} in ${seconds.toFixed(1)} s)`)
})

t.test('the service role alone is enough to validate tokens and read revocation events (not to read groups)', async t => {
  // identity:validate_token and identity:list_revoke_events allow the admin or the service role.
  let role = (await keystoneApi(seed, admin, 'GET', '/roles?name=service')).body.roles[0]
  if (role === undefined) role = (await ok(keystoneApi(seed, admin, 'POST', '/roles', { role: { name: 'service' } }), 201, 'create role service')).role
  const svc = await newUser(t, 'svconly')
  await ok(keystoneApi(seed, admin, 'PUT', `/projects/${svc.projectId}/users/${svc.userId}/roles/${role.id as string}`), 204, 'assign service')
  await ok(keystoneApi(seed, admin, 'DELETE', `/projects/${svc.projectId}/users/${svc.userId}/roles/${seed.roles.member?.id ?? ''}`), 204, 'drop member')
  // The member role is gone, so its first token no longer works; it logs in again below.
  const roles = (await keystoneApi(seed, admin, 'GET', `/role_assignments?user.id=${svc.userId}&include_names`)).body.role_assignments.map((a: any) => a.role.name)
  t.same(roles, ['service'], 'the credential\'s user has the service role only')
  const user = (await keystoneApi(seed, admin, 'GET', `/users/${svc.userId}`)).body.user
  const pw = `${user.name as string}-pass`
  const tokRes = await keystoneFetch(`${seed.auth_url}/auth/tokens?nocatalog`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { id: svc.userId, password: pw } } }, scope: { project: { id: svc.projectId } } } }) })
  t.equal(tokRes.status, 201)
  const cred = (await ok(keystoneApi(seed, tokRes.headers.get('x-subject-token') as string, 'POST', `/users/${svc.userId}/application_credentials`, { application_credential: { name: `ksa-rv-svconly-${Date.now()}` } }), 201, 'service credential')).application_credential
  const dir = mkdtempSync(join(tmpdir(), 'ksa-rv-'))
  writeFileSync(join(dir, 'secret'), cred.secret)
  const wh = await startWebhook(['--service-credential-id', cred.id, '--service-credential-secret-file', join(dir, 'secret'), '--revocation-poll-interval', `${POLL_S}s`])
  t.teardown(wh.close)
  const u = await newUser(t, 'bysvc')
  t.ok(await authenticated(wh, u.token), 'validated with the service role')
  await ok(keystoneFetch(`${seed.auth_url}/auth/tokens`, { method: 'DELETE', headers: { 'x-auth-token': admin, 'x-subject-token': u.token } }).then(r => ({ status: r.status, body: undefined })), 204, 'revoke')
  t.ok(await secondsToLockout(wh, u.token, POLL_S + 5) <= POLL_S + 5, 'the revocation event was read with the service role')
  t.equal(await wh.metric('k8s_keystone_auth_revocation_polls_total', { result: 'error' }), 0, 'no poll refused')
  t.ok(wh.logs.some(l => l.includes('cannot list the user\'s Keystone groups')), 'groups need more than the service role: said in the log')
})
