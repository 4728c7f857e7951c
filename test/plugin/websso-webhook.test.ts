// The webhook with federated (WebSSO) tokens from the real federated Keystone on :5001. A federated
// token carries its groups as ids only, and the user's own token may not read their names (403 on
// GET /v3/groups/{id}). In service mode the webhook reads the names with its own credential and
// caches them; without it the ids are the groups.
import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startWebhook, tokenReview } from '../helpers/webhook.js'
import { ensureFederatedKeystone, federatedToken, type FederatedKeystone } from '../helpers/keystone-fed.js'
import { adminToken, keystoneApi } from '../helpers/keystone.js'
import { keystoneFetch } from '../helpers/keystone-fetch.js'

let k: FederatedKeystone
t.before(async () => { k = await ensureFederatedKeystone() })

const user = `fed-wh-${process.pid}`

t.test('a federated user\'s own token may not read its group names (why service mode is needed)', async t => {
  const token = await federatedToken(k, user, ['federated-users'], k.seed.projects.demo?.id)
  const res = await keystoneFetch(`${k.authUrl}/groups/${k.fed.groups['federated-users']?.id ?? ''}`, { headers: { 'x-auth-token': token } })
  t.equal(res.status, 403)
})

t.test('without service mode: the groups are the federated group ids', async t => {
  const wh = await startWebhook(['--keystone-url', k.authUrl])
  t.teardown(wh.close)
  const demo = k.seed.projects.demo?.id as string
  const token = await federatedToken(k, user, ['federated-users', 'federated-admins'], demo)
  const res = await wh.post('/webhook', tokenReview(token))
  t.equal(res.status, 200)
  t.equal(res.body.status.authenticated, true, res.text)
  const u = res.body.status.user
  t.equal(u.username, user)
  t.match(u.uid, /^[0-9a-f]{64}$/, 'a federated user id')
  t.same([...u.groups].sort(), [k.fed.groups['federated-users']?.id, k.fed.groups['federated-admins']?.id, demo].sort())
  t.same(u.extra['alpha.kubernetes.io/identity/user/domain/name'], [k.fed.identity_provider.domain_name])
  t.ok((u.extra['alpha.kubernetes.io/identity/roles'] as string[]).includes('k8s-admin'), 'roles from the federated groups')
  t.equal(await wh.metric('k8s_keystone_auth_keystone_requests_total', { operation: 'group' }), 0, 'no group lookups without a service credential')
})

t.test('service mode: group ids resolved to names with the webhook\'s credential, and cached', async t => {
  // An application credential of the federated Keystone's admin user is the service credential.
  const seed = k.seed
  const admin = await adminToken(seed)
  const adminId = seed.users.admin?.id as string
  const created = await keystoneApi(seed, admin, 'POST', `/users/${adminId}/application_credentials`, { application_credential: { name: `ksa-websso-svc-${process.pid}-${Date.now()}` } })
  t.equal(created.status, 201)
  const cred = created.body.application_credential
  t.teardown(async () => { await keystoneApi(seed, admin, 'DELETE', `/users/${adminId}/application_credentials/${cred.id as string}`) })
  const dir = mkdtempSync(join(tmpdir(), 'ksa-websso-svc-'))
  writeFileSync(join(dir, 'secret'), `${cred.secret as string}\n`, { mode: 0o600 })
  const wh = await startWebhook(['--keystone-url', k.authUrl, '--service-credential-id', cred.id, '--service-credential-secret-file', join(dir, 'secret')])
  t.teardown(wh.close)
  const demo = seed.projects.demo?.id as string

  const r1 = await wh.post('/webhook', tokenReview(await federatedToken(k, user, ['federated-users', 'federated-admins'], demo)))
  t.equal(r1.body.status.authenticated, true, r1.text)
  t.equal(r1.body.status.user.username, user)
  t.same([...r1.body.status.user.groups].sort(), ['federated-admins', 'federated-users', demo].sort())
  t.equal(await wh.metric('k8s_keystone_auth_keystone_requests_total', { operation: 'group' }), 2, 'one lookup per group')

  // Another federated user with one of the same groups: its name comes from the cache.
  const r2 = await wh.post('/webhook', tokenReview(await federatedToken(k, `${user}-2`, ['federated-users'], demo)))
  t.equal(r2.body.status.authenticated, true, r2.text)
  t.same([...r2.body.status.user.groups].sort(), ['federated-users', demo].sort())
  t.equal(await wh.metric('k8s_keystone_auth_keystone_requests_total', { operation: 'group' }), 2, 'group names served from the cache')
  t.notOk(wh.logs.join('\n').includes(cred.secret as string), 'the service secret is never logged')
})
