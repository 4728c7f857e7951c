// Federated tokens name their groups by id; in service mode the webhook names them with its own
// token. Keystone is mocked here (undici MockAgent) to reach the paths a real one rarely takes:
// the service token going bad between the validation and the group lookup.
import t from 'tap'
import { MockAgent } from 'undici'
import pino from 'pino'
import { Authenticator } from '../../src/authn/authenticator.js'
import { KeystoneClient } from '../../src/keystone/client.js'
import { ServiceToken } from '../../src/keystone/service-token.js'

const BASE = 'http://keystone.test:5000'
const expires = new Date(Date.now() + 3600_000).toISOString()
const fedToken = {
  token: {
    methods: ['openid', 'token'],
    expires_at: expires,
    user: { id: 'f'.repeat(64), name: 'alice@idp', domain: { id: 'd1', name: 'testidp' }, 'OS-FEDERATION': { groups: [{ id: 'g1' }, { id: 'g2' }], identity_provider: { id: 'testidp' }, protocol: { id: 'openid' } } },
    project: { id: 'p1', name: 'demo', domain: { id: 'default', name: 'Default' } },
    roles: [{ id: 'r1', name: 'member' }]
  }
}

function setup (): { mock: MockAgent, auth: Authenticator, logins: () => number } {
  const mock = new MockAgent()
  mock.disableNetConnect()
  const pool = mock.get(BASE)
  let logins = 0
  pool.intercept({ path: '/v3/auth/tokens?nocatalog', method: 'POST' }).reply(() => {
    logins++
    return { statusCode: 201, data: JSON.stringify({ token: { ...fedToken.token, user: { id: 'svc', name: 'svc', domain: { id: 'default', name: 'Default' } } } }), responseOptions: { headers: { 'x-subject-token': `service-token-${logins}`, 'content-type': 'application/json' } } }
  }).persist()
  pool.intercept({ path: '/v3/auth/tokens?nocatalog', method: 'GET' }).reply(200, fedToken).persist()
  const keystone = new KeystoneClient({ url: BASE, dispatcher: mock })
  const logger = pino({ level: 'silent' })
  const service = new ServiceToken(keystone, { method: 'application_credential', id: 'svc-cred', secret: 's' })
  const auth = new Authenticator({ keystone, serviceToken: service, logger })
  return { mock, auth, logins: () => logins }
}

t.test('service mode: group ids become names, looked up once', async t => {
  const { mock, auth } = setup()
  const pool = mock.get(BASE)
  pool.intercept({ path: '/v3/groups/g1', method: 'GET' }).reply(200, { group: { id: 'g1', name: 'federated-users' } })
  pool.intercept({ path: '/v3/groups/g2', method: 'GET' }).reply(200, { group: { id: 'g2', name: 'federated-admins' } })
  const r = await auth.authenticate('user-token-1')
  t.ok(r.authenticated)
  if (r.authenticated) t.same(r.user.groups, ['federated-users', 'federated-admins', 'p1'])
  // A second user token of the same groups: names come from the cache (no more interceptors).
  const r2 = await auth.authenticate('user-token-2')
  if (r2.authenticated) t.same(r2.user.groups, ['federated-users', 'federated-admins', 'p1'])
})

t.test('a service token rejected during the group lookup is renewed once, and the name is still found', async t => {
  const { mock, auth, logins } = setup()
  const pool = mock.get(BASE)
  pool.intercept({ path: '/v3/groups/g1', method: 'GET' }).reply(401, { error: { code: 401, message: 'The request you have made requires authentication.' } })
  pool.intercept({ path: '/v3/groups/g1', method: 'GET' }).reply(200, { group: { id: 'g1', name: 'federated-users' } })
  pool.intercept({ path: '/v3/groups/g2', method: 'GET' }).reply(200, { group: { id: 'g2', name: 'federated-admins' } })
  const r = await auth.authenticate('user-token-1')
  t.ok(r.authenticated)
  if (r.authenticated) t.same(r.user.groups, ['federated-users', 'federated-admins', 'p1'])
  t.equal(logins(), 2, 'one new service login after the 401')
})

t.test('a group the service may not read keeps its id, and is asked again next time (not cached)', async t => {
  const { mock, auth } = setup()
  const pool = mock.get(BASE)
  pool.intercept({ path: '/v3/groups/g1', method: 'GET' }).reply(403, { error: { code: 403, message: 'forbidden' } })
  pool.intercept({ path: '/v3/groups/g2', method: 'GET' }).reply(200, { group: { id: 'g2', name: 'federated-admins' } })
  const r = await auth.authenticate('user-token-1')
  if (r.authenticated) t.same(r.user.groups, ['g1', 'federated-admins', 'p1'])
  pool.intercept({ path: '/v3/groups/g1', method: 'GET' }).reply(200, { group: { id: 'g1', name: 'federated-users' } })
  const r2 = await auth.authenticate('user-token-2')
  if (r2.authenticated) t.same(r2.user.groups, ['federated-users', 'federated-admins', 'p1'], 'the id was not cached as a name')
})

t.test('without service mode the ids are the groups', async t => {
  const mock = new MockAgent()
  mock.disableNetConnect()
  mock.get(BASE).intercept({ path: '/v3/auth/tokens?nocatalog', method: 'GET' }).reply(200, fedToken)
  const keystone = new KeystoneClient({ url: BASE, dispatcher: mock })
  const auth = new Authenticator({ keystone, logger: pino({ level: 'silent' }) })
  const r = await auth.authenticate('user-token')
  if (r.authenticated) t.same(r.user.groups, ['g1', 'g2', 'p1'])
  else t.fail('not authenticated')
})
