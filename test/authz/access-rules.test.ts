import t from 'tap'
import { EXTRA_ACCESS_RULES, EXTRA_USER_DOMAIN_NAME } from '../../src/identity.js'
import { accessRulePathRegExp, accessRulesVerdict, httpRequestOfNonResource, httpRequestOfResource } from '../../src/authz/access-rules.js'
import { isUnrestricted, rulesForService } from '../../src/identity.js'
import { PolicyEngine } from '../../src/authz/engine.js'
import type { AccessRequest, ResourceAttributes } from '../../src/authz/types.js'
import { subjectAccessReviewResponse } from '../../src/server/http/subject-access-review.js'

const res = (over: Partial<ResourceAttributes>): ResourceAttributes => ({ namespace: '', verb: 'get', group: '', version: 'v1', resource: 'pods', subresource: '', name: '', ...over })

t.test('a SubjectAccessReview is turned into the HTTP request kube-apiserver served', async t => {
  const cases: Array<[Partial<ResourceAttributes>, string | undefined]> = [
    [{ verb: 'get', namespace: 'dev', name: 'web' }, 'GET /api/v1/namespaces/dev/pods/web'],
    [{ verb: 'list', namespace: 'dev' }, 'GET /api/v1/namespaces/dev/pods'],
    [{ verb: 'watch' }, 'GET /api/v1/pods'],
    [{ verb: 'create', namespace: 'dev', name: 'web', subresource: 'exec' }, 'POST /api/v1/namespaces/dev/pods/web/exec'],
    [{ verb: 'update', group: 'apps', resource: 'deployments', namespace: 'dev', name: 'd', subresource: 'scale' }, 'PUT /apis/apps/v1/namespaces/dev/deployments/d/scale'],
    [{ verb: 'patch', group: 'rbac.authorization.k8s.io', resource: 'clusterroles', name: 'admin' }, 'PATCH /apis/rbac.authorization.k8s.io/v1/clusterroles/admin'],
    [{ verb: 'delete', resource: 'namespaces', namespace: 'dev', name: 'dev' }, 'DELETE /api/v1/namespaces/dev'],
    [{ verb: 'deletecollection', namespace: 'dev' }, 'DELETE /api/v1/namespaces/dev/pods'],
    [{ verb: 'get', resource: 'namespaces' }, 'GET /api/v1/namespaces'],
    [{ verb: 'impersonate', resource: 'users', name: 'admin' }, undefined],
    [{ verb: 'escalate', group: 'rbac.authorization.k8s.io', resource: 'clusterroles' }, undefined]
  ]
  for (const [over, want] of cases) {
    const got = httpRequestOfResource(res(over))
    t.equal(got === undefined ? undefined : `${got.method} ${got.path}`, want, JSON.stringify(over))
  }
  t.same(httpRequestOfNonResource({ verb: 'get', path: '/healthz' }), { method: 'GET', path: '/healthz' })
  t.same(httpRequestOfNonResource({ verb: 'post', path: '/x' }), { method: 'POST', path: '/x' })
})

t.test('paths match as keystonemiddleware matches them: * and {x} one segment, ** anything', async t => {
  const m = (pattern: string, path: string): boolean => accessRulePathRegExp(pattern).test(path)
  t.ok(m('/api/v1/namespaces/*/pods', '/api/v1/namespaces/dev/pods'))
  t.notOk(m('/api/v1/namespaces/*/pods', '/api/v1/namespaces/dev/pods/web'))
  t.ok(m('/api/v1/namespaces/{ns}/pods/*', '/api/v1/namespaces/dev/pods/web'))
  t.ok(m('/api/v1/namespaces/dev/**', '/api/v1/namespaces/dev/pods/web/log'))
  t.notOk(m('/api/v1/namespaces/dev/**', '/api/v1/namespaces/prod/pods'))
  t.ok(m('/**', '/apis/apps/v1/deployments'))
  t.notOk(m('/api/v1.pods', '/api/v1xpods'), 'a dot is literal')
})

t.test('unrestricted means every method on /** for the service type', async t => {
  const all = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].map(method => ({ service: 'k8s', method, path: '/**' }))
  t.ok(isUnrestricted(rulesForService(all, 'k8s')))
  t.notOk(isUnrestricted(rulesForService(all.slice(1), 'k8s')), 'GET missing')
  t.notOk(isUnrestricted(rulesForService(all, 'object-store')), 'other service type')
  t.notOk(isUnrestricted(rulesForService([...all.slice(1), { service: 'k8s', method: 'GET', path: '/api/**' }], 'k8s')))
})

function restricted (rules: string[], resource?: Partial<ResourceAttributes>, path?: string): AccessRequest {
  const req: AccessRequest = { user: 'demo', groups: [], extra: { [EXTRA_USER_DOMAIN_NAME]: ['Default'], [EXTRA_ACCESS_RULES]: rules } }
  if (path !== undefined) req.nonResource = { verb: 'get', path }
  else req.resource = res(resource ?? {})
  return req
}

t.test('a restricted credential: explicit deny for what no rule allows, the policy decides the rest', async t => {
  const rules = ['GET /api/v1/namespaces/dev/pods', 'GET /api/v1/namespaces/dev/pods/*/log']
  t.equal(accessRulesVerdict(restricted(rules, { verb: 'list', namespace: 'dev' })), undefined, 'allowed by a rule: no verdict')
  const d = accessRulesVerdict(restricted(rules, { verb: 'create', namespace: 'dev', name: 'web', subresource: 'exec' }))
  t.same(d, { allowed: false, denied: true, reason: 'denied by the access rules of the application credential: no rule allows POST /api/v1/namespaces/dev/pods/web/exec' })
  t.same(subjectAccessReviewResponse('authorization.k8s.io/v1', d as never), { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', status: { allowed: false, denied: true, reason: (d as { reason: string }).reason } })
  t.match(accessRulesVerdict(restricted(rules, { verb: 'impersonate', resource: 'users' })), { denied: true, reason: /verb "impersonate" has no HTTP method/ })
  t.match(accessRulesVerdict(restricted([], undefined, '/healthz')), { denied: true }, 'no rules at all: everything denied')
  t.equal(accessRulesVerdict({ user: 'x', groups: [], extra: {}, nonResource: { verb: 'get', path: '/' } }), undefined, 'no access-rules extra: no verdict')

  const engine = new PolicyEngine({ cacheMax: 100 })
  t.match(engine.authorize(restricted(rules, { verb: 'delete', namespace: 'dev', name: 'web' })), { denied: true }, 'denied even without a policy')
  engine.load(JSON.stringify([{ users: { roles: [], projects: ['demo'] }, resource_permissions: { '*/*': ['*'] } }]), 'p')
  const allowedByRule = restricted(rules, { verb: 'get', namespace: 'dev', name: 'web', subresource: 'log' })
  t.same(engine.authorize(allowedByRule), { allowed: false, reason: 'no policy entry matched' }, 'a rule allows, the policy does not: no opinion')
  t.match(engine.authorize(restricted(rules, { verb: 'get', namespace: 'dev', name: 'other', subresource: 'exec' })), { denied: true })
  t.match(engine.authorize(restricted(rules, { verb: 'get', namespace: 'dev', name: 'web', subresource: 'log', version: 'v2' })), { denied: true }, 'the version is in the path, and in the cache key')
})
