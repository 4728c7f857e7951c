// TokenReview end to end: our HTTPS webhook, the real Keystone, seeded users.
import t, { type Test } from 'tap'
import { writeFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { adminToken, appCredToken, keystoneApi, loadSeed, passwordToken } from '../helpers/keystone.js'
import { startWebhook, tokenReview, type TestWebhook } from '../helpers/webhook.js'
import { keystoneFetch } from '../helpers/keystone-fetch.js'

const seed = loadSeed()
const EXTRA = 'alpha.kubernetes.io/identity/'

t.test('password token, v1 and v1beta1, answered in the version asked', async t => {
  const wh = await startWebhook()
  t.teardown(wh.close)
  const token = await passwordToken(seed, 'demo', 'demo')
  for (const version of ['v1', 'v1beta1'] as const) {
    const res = await wh.post('/webhook', tokenReview(token, version))
    t.equal(res.status, 200)
    t.equal(res.body.apiVersion, `authentication.k8s.io/${version}`)
    t.equal(res.body.kind, 'TokenReview')
    t.equal(res.body.status.authenticated, true)
    const user = res.body.status.user
    t.equal(user.username, 'demo')
    t.equal(user.uid, seed.users.demo?.id)
    // Keystone group names first, then the project id, as the Go binary.
    t.same(user.groups, ['developers', seed.projects.demo?.id])
    t.same(user.extra[`${EXTRA}project/id`], [seed.projects.demo?.id])
    t.same(user.extra[`${EXTRA}project/name`], ['demo'])
    t.same(user.extra[`${EXTRA}user/domain/id`], ['default'])
    t.same(user.extra[`${EXTRA}user/domain/name`], ['Default'])
    // member implies reader in the dev Keystone: both roles are in the token.
    t.same([...user.extra[`${EXTRA}roles`]].sort(), ['member', 'reader'])
    t.same(Object.keys(user.extra).sort(), [
      `${EXTRA}project/id`, `${EXTRA}project/name`, `${EXTRA}roles`, `${EXTRA}user/domain/id`, `${EXTRA}user/domain/name`
    ])
    t.notOk(res.text.includes(token), 'the token is never echoed back')
    t.notOk('spec' in res.body, 'the request spec is not echoed back')
  }
})

t.test('the same answers on /authenticate; /authenticate refuses other kinds', async t => {
  const wh = await startWebhook()
  t.teardown(wh.close)
  const token = await passwordToken(seed, 'demo', 'demo')
  const res = await wh.post('/authenticate', tokenReview(token))
  t.equal(res.status, 200)
  t.equal(res.body.status.user.username, 'demo')
  const sar = await wh.post('/authenticate', { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: {} })
  t.equal(sar.status, 400)
  t.match(sar.body.message, /only kind TokenReview/)
})

t.test('application-credential token', async t => {
  const wh = await startWebhook()
  t.teardown(wh.close)
  const res = await wh.post('/webhook', tokenReview(await appCredToken(seed)))
  t.equal(res.status, 200)
  t.equal(res.body.status.authenticated, true)
  t.equal(res.body.status.user.username, 'demo')
  t.same(res.body.status.user.extra[`${EXTRA}project/id`], [seed.projects.demo?.id])
})

t.test('user of another domain, group role through group membership', async t => {
  const wh = await startWebhook()
  t.teardown(wh.close)
  const res = await wh.post('/webhook', tokenReview(await passwordToken(seed, 'alice', 'ops')))
  const user = res.body.status.user
  t.equal(user.username, 'alice')
  t.same(user.groups, ['ops-team', seed.projects.ops?.id])
  t.same(user.extra[`${EXTRA}user/domain/name`], ['acme'])
  // k8s-viewer comes from the ops-team group's assignment, not a direct one.
  t.same([...user.extra[`${EXTRA}roles`]].sort(), ['k8s-admin', 'k8s-viewer'])
})

t.test('role mappings of the sync config rewrite username and add groups', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'ksa-sync-'))
  const file = join(dir, 'sync.yaml')
  writeFileSync(file, [
    'role-mappings:',
    '  - keystone-role: member',
    '    groups: ["keystone-members"]',
    '  - keystone-role: k8s-admin',
    '    username: cluster-admin-via-keystone',
    '    groups: ["system:masters"]',
    '  - keystone-role: not-held',
    '    username: never',
    '    groups: ["never"]'
  ].join('\n'))
  const wh = await startWebhook(['--sync-config-file', file])
  t.teardown(wh.close)
  const demo = (await wh.post('/webhook', tokenReview(await passwordToken(seed, 'demo', 'demo')))).body.status.user
  t.equal(demo.username, 'demo')
  t.same(demo.groups, ['developers', seed.projects.demo?.id, 'keystone-members'])
  const alice = (await wh.post('/webhook', tokenReview(await passwordToken(seed, 'alice', 'ops')))).body.status.user
  t.equal(alice.username, 'cluster-admin-via-keystone')
  t.same(alice.groups, ['ops-team', seed.projects.ops?.id, 'system:masters'])
})

t.test('a broken sync config file stops start-up with a reason', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'ksa-sync-'))
  const file = join(dir, 'sync.yaml')
  writeFileSync(file, 'data-types-to-sync: [projects, users]\n')
  await t.rejects(startWebhook(['--sync-config-file', file]), /data-types-to-sync\.1: Unsupported data type to sync: users\. Available values: projects,role_assignments/)
  writeFileSync(file, 'namespace-format: "ns-%n"\n')
  await t.rejects(startWebhook(['--sync-config-file', file]), /namespace-format "ns-%n": format string should comprise a %i substring/)
})

t.test('garbage token: authenticated false, HTTP 200, no status.error (cacheable by the apiserver)', async t => {
  const wh = await startWebhook()
  t.teardown(wh.close)
  for (const token of ['garbage', 'gAAAAABnot-a-real-fernet-token', 'x'.repeat(500)]) {
    const res = await wh.post('/webhook', tokenReview(token))
    t.equal(res.status, 200)
    t.same(res.body, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', status: { authenticated: false } })
  }
})

t.test('unscoped and domain-scoped tokens: rejected by default, accepted when allowed', async t => {
  const unscoped = await passwordToken(seed, 'bob', 'unscoped')
  const strict = await startWebhook()
  t.teardown(strict.close)
  t.equal((await strict.post('/webhook', tokenReview(unscoped))).body.status.authenticated, false)

  const open = await startWebhook(['--allowed-token-scopes', 'project', '--allowed-token-scopes', 'unscoped'])
  t.teardown(open.close)
  const res = await open.post('/webhook', tokenReview(unscoped))
  t.equal(res.body.status.authenticated, true)
  const user = res.body.status.user
  t.equal(user.username, 'bob')
  t.same(user.groups, [], 'no project group for an unscoped token')
  t.same(user.extra[`${EXTRA}scope`], ['unscoped'])
  t.notOk(`${EXTRA}project/id` in user.extra)
})

t.test('domain/name username format keeps same-named users of different domains apart', async t => {
  const wh = await startWebhook(['--username-format', 'domain/name'])
  t.teardown(wh.close)
  const alice = (await wh.post('/webhook', tokenReview(await passwordToken(seed, 'alice', 'ops')))).body.status.user
  t.equal(alice.username, 'acme/alice')
  const demo = (await wh.post('/webhook', tokenReview(await passwordToken(seed, 'demo', 'demo')))).body.status.user
  t.equal(demo.username, 'Default/demo')
})

/** A token the webhook has accepted once, then revoked in Keystone (by another token of the user). */
async function acceptedThenRevoked (t: Test, wh: TestWebhook): Promise<string> {
  const keeper = await passwordToken(seed, 'demo', 'demo')
  const victim = await passwordToken(seed, 'demo', 'demo')
  t.equal((await wh.post('/webhook', tokenReview(victim))).body.status.authenticated, true)
  const revoke = await keystoneFetch(`${seed.auth_url}/auth/tokens`, { method: 'DELETE', headers: { 'x-auth-token': keeper, 'x-subject-token': victim } })
  t.equal(revoke.status, 204)
  return victim
}

t.test('revoked token: still true from the cache until its entry expires, false after', async t => {
  const wh = await startWebhook(['--token-cache-ttl', '1500ms'])
  t.teardown(wh.close)
  const victim = await acceptedThenRevoked(t, wh)
  t.equal((await wh.post('/webhook', tokenReview(victim))).body.status.authenticated, true, 'served from the cache')
  const deadline = Date.now() + 10_000
  let authenticated = true
  while (authenticated && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 250))
    authenticated = (await wh.post('/webhook', tokenReview(victim))).body.status.authenticated
  }
  t.equal(authenticated, false, 'false once the cache entry is gone')
})

t.test('revoked token with the cache off: false at once', async t => {
  const wh = await startWebhook(['--token-cache-ttl', '0'])
  t.teardown(wh.close)
  const victim = await acceptedThenRevoked(t, wh)
  t.equal((await wh.post('/webhook', tokenReview(victim))).body.status.authenticated, false)
  t.equal(await wh.metric('k8s_keystone_auth_keystone_requests_total', { operation: 'validate' }), 2, 'each review went to Keystone')
})

t.test('cache: a second review of a token makes no Keystone call; groups cached per user', async t => {
  const wh = await startWebhook()
  t.teardown(wh.close)
  const a = await passwordToken(seed, 'demo', 'demo')
  const b = await passwordToken(seed, 'demo', 'alt')
  await wh.post('/webhook', tokenReview(a))
  await wh.post('/webhook', tokenReview(a))
  t.equal(await wh.metric('k8s_keystone_auth_keystone_requests_total', { operation: 'validate' }), 1)
  t.equal(await wh.metric('k8s_keystone_auth_token_cache_requests_total', { result: 'hit' }), 1)
  const res = await wh.post('/webhook', tokenReview(b))
  t.same(res.body.status.user.groups, ['developers', seed.projects.alt?.id])
  t.same(res.body.status.user.extra[`${EXTRA}roles`], ['reader'])
  t.equal(await wh.metric('k8s_keystone_auth_keystone_requests_total', { operation: 'validate' }), 2)
  t.equal(await wh.metric('k8s_keystone_auth_keystone_requests_total', { operation: 'groups' }), 1, 'groups of demo listed once')
})

t.test('100 concurrent reviews of one fresh token make exactly one Keystone validation', async t => {
  const wh = await startWebhook()
  t.teardown(wh.close)
  const token = await passwordToken(seed, 'demo', 'demo')
  const answers = await Promise.all(Array.from({ length: 100 }, async () => await wh.post('/webhook', tokenReview(token))))
  t.ok(answers.every(a => a.status === 200 && a.body.status.authenticated === true))
  t.equal(await wh.metric('k8s_keystone_auth_keystone_requests_total', { operation: 'validate' }), 1)
})

t.test('service mode: validates with the webhook\'s own application credential', async t => {
  // An application credential of the admin user (admin role on project admin) acts as the
  // service credential, as keystonemiddleware's service user would.
  const admin = await adminToken(seed)
  const adminId = seed.users.admin?.id as string
  const name = `ksa-test-service-${process.pid}-${Date.now()}`
  const created = await keystoneApi(seed, admin, 'POST', `/users/${adminId}/application_credentials`, { application_credential: { name } })
  t.equal(created.status, 201)
  const cred = created.body.application_credential
  t.teardown(async () => { await keystoneApi(seed, admin, 'DELETE', `/users/${adminId}/application_credentials/${cred.id}`) })
  const dir = mkdtempSync(join(tmpdir(), 'ksa-svc-'))
  writeFileSync(join(dir, 'secret'), `${cred.secret}\n`)
  const wh = await startWebhook(['--service-credential-id', cred.id, '--service-credential-secret-file', join(dir, 'secret')])
  t.teardown(wh.close)
  const demo = await passwordToken(seed, 'demo', 'demo')
  const res = await wh.post('/webhook', tokenReview(demo))
  t.equal(res.body.status.authenticated, true)
  t.same(res.body.status.user.groups, ['developers', seed.projects.demo?.id])
  t.equal((await wh.post('/webhook', tokenReview('garbage-in-service-mode'))).body.status.authenticated, false)
  t.equal(await wh.metric('k8s_keystone_auth_keystone_requests_total', { operation: 'issue' }), 1, 'one service login for all reviews')
  t.notOk(wh.logs.join('\n').includes(cred.secret), 'the service secret is never logged')
})

t.test('service mode with a wrong secret: HTTP 500 with a reason the operator can act on', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'ksa-svc-'))
  writeFileSync(join(dir, 'secret'), 'wrong-secret')
  const wh = await startWebhook(['--service-credential-id', 'does-not-exist', '--service-credential-secret-file', join(dir, 'secret')])
  t.teardown(wh.close)
  const res = await wh.post('/webhook', tokenReview(await passwordToken(seed, 'demo', 'demo')))
  t.equal(res.status, 500)
  t.match(res.body.status.error, /service-mode login rejected/)
})

t.test('replay of the captured kube-apiserver 1.32 TokenReview requests', async t => {
  const { readFileSync } = await import('node:fs')
  const wh = await startWebhook()
  t.teardown(wh.close)
  const token = await passwordToken(seed, 'demo', 'demo')
  for (const file of ['tokenreview-v1.json', 'tokenreview-v1beta1.json']) {
    const captured = JSON.parse(readFileSync(new URL(`../fixtures/kube-apiserver-1.32/${file}`, import.meta.url), 'utf8'))
    const body = structuredClone(captured.body)
    const original = body.spec.token
    // The captured one carries its original test token: first as sent (unknown to our Keystone),
    body.spec.token = original
    let res = await wh.post('/webhook', body, captured.headers)
    t.equal(res.status, 200, `${file}: 200 for an unknown token`)
    t.equal(res.body.status.authenticated, false)
    // then with a real token in its place.
    body.spec.token = token
    res = await wh.post('/webhook', body, captured.headers)
    t.equal(res.status, 200)
    t.equal(res.body.apiVersion, captured.body.apiVersion)
    t.equal(res.body.status.authenticated, true)
    t.equal(res.body.status.user.username, 'demo')
  }
})

t.test('User-Agent k8s-keystone-auth/<version> plus --user-agent values; Keystone at a URL without /v3', async t => {
  const { createServer, request: httpRequest } = await import('node:http')
  const { VERSION } = await import('../../src/version.js')
  const target = new URL(seed.auth_url)
  const seen: Array<{ ua: string | undefined, path: string | undefined }> = []
  // A recording proxy in front of the real Keystone.
  const proxy = createServer((req, res) => {
    seen.push({ ua: req.headers['user-agent'], path: req.url })
    // agent: false, one connection per request: uWSGI closes connections after each answer.
    const up = httpRequest({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: { ...req.headers, connection: 'close' }, agent: false }, upRes => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers)
      upRes.pipe(res)
    })
    up.on('error', () => { res.destroy() })
    req.pipe(up)
  })
  await new Promise<void>(resolve => proxy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { proxy.close() })
  const port = (proxy.address() as { port: number }).port
  const wh = await startWebhook(['--keystone-url', `http://127.0.0.1:${port}`, '--user-agent', 'acme-cloud/1.2', '--user-agent', 'site/eu-1'])
  t.teardown(wh.close)
  const res = await wh.post('/webhook', tokenReview(await passwordToken(seed, 'demo', 'demo')))
  t.equal(res.body.status.authenticated, true)
  const validate = seen.find(s => s.path?.startsWith('/v3/auth/tokens'))
  t.ok(validate, '/v3 was appended to the URL')
  t.equal(validate?.ua, `k8s-keystone-auth/${VERSION} acme-cloud/1.2 site/eu-1`)
})
