// Application credentials restricted by access rules, against the real Keystone. The attack kept
// here: a credential limited to object-storage GET used to log in to Kubernetes with all the
// user's roles, because we told Keystone we enforce access rules and then enforced nothing.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { EXTRA_ACCESS_RULES } from '../../src/identity.js'
import { keystoneApi, loadSeed, passwordToken, type Seed } from '../helpers/keystone.js'
import { startWebhook, tokenReview, type TestWebhook } from '../helpers/webhook.js'
import { keystoneFetch } from '../helpers/keystone-fetch.js'

const seed: Seed = loadSeed()
const ALL = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']

async function credentialToken (userToken: string, rules: Array<{ service: string, method: string, path: string }>): Promise<{ token: string, id: string }> {
  const uid = seed.users.demo?.id as string
  const made = await keystoneApi(seed, userToken, 'POST', `/users/${uid}/application_credentials`, {
    application_credential: { name: `access-rules-${randomBytes(4).toString('hex')}`, access_rules: rules }
  })
  if (made.status !== 201) throw new Error(`cannot create the application credential: ${made.status} ${JSON.stringify(made.body)}`)
  const ac = made.body.application_credential
  const res = await keystoneFetch(`${seed.auth_url}/auth/tokens?nocatalog`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ auth: { identity: { methods: ['application_credential'], application_credential: { id: ac.id, secret: ac.secret } } } })
  })
  if (res.status !== 201) throw new Error(`login with the application credential failed: ${res.status}`)
  return { token: res.headers.get('x-subject-token') as string, id: ac.id }
}

const sar = (user: any, attrs: object): object => ({
  apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: { user: user.username, uid: user.uid, groups: user.groups, extra: user.extra, ...attrs }
})

t.test('application credentials with access rules', async t => {
  const userToken = await passwordToken(seed, 'demo', 'demo')
  const made: string[] = []
  const make = async (rules: Array<{ service: string, method: string, path: string }>): Promise<string> => {
    const c = await credentialToken(userToken, rules)
    made.push(c.id)
    return c.token
  }
  t.teardown(async () => {
    for (const id of made) await keystoneApi(seed, userToken, 'DELETE', `/users/${seed.users.demo?.id as string}/application_credentials/${id}`)
  })
  const objectStore = await make([{ service: 'object-store', method: 'GET', path: '/v1/**' }])
  const unrestricted = await make(ALL.map(method => ({ service: 'kubernetes', method, path: '/**' })))
  const podsOnly = await make([{ service: 'kubernetes', method: 'GET', path: '/api/v1/namespaces/*/pods' }])

  const review = async (wh: TestWebhook, token: string): Promise<any> => {
    const res = await wh.post('/webhook', tokenReview(token))
    t.equal(res.status, 200)
    return res.body.status
  }

  t.test('default (as Go): Keystone is not told we enforce access rules, and refuses such tokens', async t => {
    const wh = await startWebhook()
    t.teardown(wh.close)
    t.equal((await review(wh, objectStore)).authenticated, false, 'an object-store GET credential does not reach Kubernetes')
    t.equal((await review(wh, podsOnly)).authenticated, false)
  })

  t.test('--access-rules-service-type: unrestricted credentials log in; restricted ones are refused with the reason', async t => {
    const wh = await startWebhook(['--access-rules-service-type', 'kubernetes'])
    t.teardown(wh.close)
    t.equal((await review(wh, objectStore)).authenticated, false, 'no rule for kubernetes')
    const ok = await review(wh, unrestricted)
    t.equal(ok.authenticated, true, 'every method on /**')
    t.notOk(EXTRA_ACCESS_RULES in ok.user.extra)
    t.equal((await review(wh, podsOnly)).authenticated, false, 'restricted, and not enforced')
    t.ok(wh.logs.some(l => l.includes('accepted only with --access-rules-enforce')), 'the log says why')
    t.ok(wh.logs.some(l => l.includes('none for service type')), 'and why for the object-store credential')
    t.notOk(wh.logs.some(l => l.includes(podsOnly)), 'never the token')
  })

  t.test('--access-rules-enforce: restricted credentials log in, and the authorizer denies what their rules do not allow', async t => {
    const wh = await startWebhook(['--access-rules-service-type', 'kubernetes', '--access-rules-enforce'])
    t.teardown(wh.close)
    const st = await review(wh, podsOnly)
    t.equal(st.authenticated, true)
    t.same(st.user.extra[EXTRA_ACCESS_RULES], ['GET /api/v1/namespaces/*/pods'])
    const list = await wh.post('/webhook', sar(st.user, { resourceAttributes: { verb: 'list', namespace: 'dev', version: 'v1', resource: 'pods' } }))
    t.same(list.body.status, { allowed: false, reason: 'no authorization policy is configured' }, 'allowed by the rules: no opinion, RBAC decides')
    const exec = await wh.post('/webhook', sar(st.user, { resourceAttributes: { verb: 'create', namespace: 'dev', version: 'v1', resource: 'pods', name: 'web', subresource: 'exec' } }))
    t.same(exec.body.status, { allowed: false, denied: true, reason: 'denied by the access rules of the application credential: no rule allows POST /api/v1/namespaces/dev/pods/web/exec' })
    t.equal((await review(wh, objectStore)).authenticated, false, 'still nothing for a credential without kubernetes rules')
  })

  t.test('--access-rules-enforce needs --access-rules-service-type', async t => {
    await t.rejects(startWebhook(['--access-rules-enforce']), /needs --access-rules-service-type/)
  })
})
