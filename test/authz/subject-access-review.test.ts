import t from 'tap'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { EXTRA_ROLES } from '../../src/identity.js'
import { parseSubjectAccessReview, SAR_LIMITS, subjectAccessReviewAnswer, subjectAccessReviewResponse } from '../../src/server/http/subject-access-review.js'
import { engineWith, readText, repoRoot } from './helpers.js'

const fixturesDir = join(repoRoot, 'test', 'fixtures', 'kube-apiserver-1.32')
const fixture = (name: string): Record<string, any> => JSON.parse(readText(fixturesDir, name)).body

function base (version: 'v1' | 'v1beta1' = 'v1'): Record<string, any> {
  return {
    apiVersion: `authorization.k8s.io/${version}`,
    kind: 'SubjectAccessReview',
    spec: { resourceAttributes: { namespace: 'default', verb: 'get', resource: 'pods' }, user: 'alice' }
  }
}

t.test('v1 reads spec.groups, v1beta1 reads spec.group', async t => {
  const v1 = parseSubjectAccessReview(fixture('sar-v1-list-pods-ns.json'))
  t.same(v1, {
    ok: true,
    apiVersion: 'authorization.k8s.io/v1',
    request: {
      user: 'alice',
      uid: 'alice-uid-1',
      groups: ['keystone-project-demo', 'devs', 'system:authenticated'],
      extra: { 'alpha.kubernetes.io/identity/project/id': ['p-123'], 'alpha.kubernetes.io/identity/roles': ['member', 'reader'] },
      resource: { namespace: 'default', verb: 'list', group: '', version: 'v1', resource: 'pods', subresource: '', name: '' }
    }
  })
  const beta = parseSubjectAccessReview(fixture('sar-v1beta1-nonresource-get_metrics.json'))
  t.ok(beta.ok)
  if (beta.ok) {
    t.equal(beta.apiVersion, 'authorization.k8s.io/v1beta1')
    t.same(beta.request.groups, ['keystone-project-demo', 'devs', 'system:authenticated'])
    t.same(beta.request.nonResource, { path: '/metrics', verb: 'get' })
    t.equal(beta.request.resource, undefined)
  }
})

t.test('malformed reviews are not ok, with a reason that does not quote values', async t => {
  const bad: Array<[string, unknown, RegExp]> = [
    ['not an object', 'x', /invalid SubjectAccessReview/],
    ['wrong kind', { ...base(), kind: 'TokenReview' }, /kind must be SubjectAccessReview/],
    ['wrong apiVersion', { ...base(), apiVersion: 'authorization.k8s.io/v2' }, /apiVersion must be one of/],
    ['missing spec', { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview' }, /spec: must be an object/],
    ['neither attributes', { ...base(), spec: { user: 'alice' } }, /needs resourceAttributes or nonResourceAttributes/],
    ['user not a string', { ...base(), spec: { ...base().spec, user: 42 } }, /spec\.user: must be a string/],
    ['groups not strings', { ...base(), spec: { ...base().spec, groups: [1] } }, /spec\.groups\.0: must be a string/],
    ['too many groups', { ...base(), spec: { ...base().spec, groups: Array.from({ length: SAR_LIMITS.maxGroups + 1 }, (_, i) => `g${i}`) } }, /more than 1000 entries/],
    ['huge string', { ...base(), spec: { ...base().spec, user: 'u'.repeat(SAR_LIMITS.maxString + 1) } }, /longer than/],
    ['extra not an object', { ...base(), spec: { ...base().spec, extra: ['SECRETVALUE'] } }, /spec\.extra: must be an object/],
    ['extra value not a list', { ...base(), spec: { ...base().spec, extra: { k: 'SECRETVALUE' } } }, /spec\.extra\["k"\]: must be an array of strings/],
    ['too many extra keys', { ...base(), spec: { ...base().spec, extra: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`k${i}`, []])) } }, /more than 100 keys/],
    ['attributes not an object', { ...base(), spec: { user: 'a', resourceAttributes: 'pods' } }, /spec\.resourceAttributes: must be an object/]
  ]
  for (const [title, body, reason] of bad) {
    const r = parseSubjectAccessReview(body)
    t.equal(r.ok, false, title)
    if (!r.ok) {
      t.match(r.reason, reason, `${title}: reason`)
      t.notMatch(r.reason, /SECRETVALUE/, `${title}: does not echo values`)
    }
  }
})

t.test('every optional field may be missing or null', async t => {
  const minimal = parseSubjectAccessReview({ apiVersion: 'authorization.k8s.io/v1beta1', kind: 'SubjectAccessReview', spec: { nonResourceAttributes: {} } })
  t.same(minimal, { ok: true, apiVersion: 'authorization.k8s.io/v1beta1', request: { user: '', groups: [], extra: {}, nonResource: { path: '', verb: '' } } })
  const nulls = parseSubjectAccessReview({ ...base(), spec: { resourceAttributes: { namespace: null, verb: 'get', resource: 'pods', name: null }, user: null, uid: null, groups: null, group: null, extra: null, nonResourceAttributes: null } })
  t.ok(nulls.ok)
  if (nulls.ok) t.same(nulls.request.resource, { namespace: '', verb: 'get', group: '', version: '', resource: 'pods', subresource: '', name: '' })
  const extras = parseSubjectAccessReview({ ...base(), spec: { ...base().spec, extra: { a: null } } })
  t.ok(extras.ok && extras.request.extra.a?.length === 0, 'null extra values are empty lists')
})

t.test('unknown fields, uid, name and selectors are tolerated', async t => {
  const r = parseSubjectAccessReview({
    ...base(),
    metadata: { creationTimestamp: null, name: 'x' },
    status: { allowed: false },
    spec: {
      user: 'alice',
      uid: 'u-1',
      futureField: true,
      resourceAttributes: {
        namespace: 'default',
        verb: 'list',
        resource: 'pods',
        name: 'p',
        groups: '',
        fieldSelector: { requirements: [{ key: 'spec.nodeName', operator: 'In', values: ['n1'] }], rawSelector: 'spec.nodeName=n1' },
        labelSelector: { rawSelector: 'app=x' }
      }
    }
  })
  t.ok(r.ok)
  if (r.ok) {
    t.equal(r.request.uid, 'u-1')
    t.equal(r.request.resource?.name, 'p')
  }
})

t.test('resourceAttributes wins when both are present, as in Go', async t => {
  const r = parseSubjectAccessReview({ ...base(), spec: { ...base().spec, nonResourceAttributes: { path: '/x', verb: 'get' } } })
  t.ok(r.ok && r.request.resource !== undefined && r.request.nonResource === undefined)
})

t.test('the other version\'s group field is a fallback', async t => {
  const r = parseSubjectAccessReview({ ...base('v1'), spec: { ...base().spec, group: ['g'] } })
  t.ok(r.ok && r.request.groups[0] === 'g')
  const both = parseSubjectAccessReview({ ...base('v1beta1'), spec: { ...base().spec, group: ['beta'], groups: ['v1'] } })
  t.ok(both.ok && both.request.groups[0] === 'beta', 'v1beta1 prefers spec.group')
})

t.test('"__proto__" and friends in extra are plain data', async t => {
  const body = JSON.parse(`{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"a","nonResourceAttributes":{"path":"/x","verb":"get"},"extra":{"__proto__":["polluted"],"constructor":["c"],"${EXTRA_ROLES}":["member"]}}}`)
  const r = parseSubjectAccessReview(body)
  t.ok(r.ok)
  if (!r.ok) return
  t.equal(Object.getPrototypeOf(r.request.extra), null)
  t.same(Object.keys(r.request.extra).sort(), ['__proto__', EXTRA_ROLES, 'constructor'].sort())
  t.same(Object.getOwnPropertyDescriptor(r.request.extra, '__proto__')?.value, ['polluted'], 'a key like any other on a null-prototype object')
  t.equal(({} as Record<string, unknown>).polluted, undefined)
  const engine = engineWith(JSON.stringify([{ nonresource: { verbs: ['get'], path: '/x' }, match: [{ type: 'role', values: ['member'] }] }]))
  t.equal(engine.authorize(r.request).allowed, true)
})

t.test('the answer: version asked, kind, status with reason, no denied, no spec', async t => {
  t.same(subjectAccessReviewResponse('authorization.k8s.io/v1beta1', { allowed: false, reason: 'no policy entry matched' }),
    { apiVersion: 'authorization.k8s.io/v1beta1', kind: 'SubjectAccessReview', status: { allowed: false, reason: 'no policy entry matched' } })
  const yes = subjectAccessReviewResponse('authorization.k8s.io/v1', { allowed: true, reason: 'allowed by policy entry 0 (resource "pods")' }) as Record<string, any>
  t.same(Object.keys(yes).sort(), ['apiVersion', 'kind', 'status'])
  t.same(Object.keys(yes.status).sort(), ['allowed', 'reason'])
})

t.test('the answer text is the answer object as JSON, per version, also for a decision asked again', async t => {
  const decision = { allowed: true, reason: 'allowed by policy entry 0 (resource "pods")' }
  for (const v of ['authorization.k8s.io/v1', 'authorization.k8s.io/v1beta1', 'authorization.k8s.io/v1'] as const) {
    t.equal(subjectAccessReviewAnswer(v, decision), JSON.stringify(subjectAccessReviewResponse(v, decision)), v)
  }
  const other = { allowed: false, reason: 'no policy entry matched' }
  t.equal(JSON.parse(subjectAccessReviewAnswer('authorization.k8s.io/v1beta1', other)).status.allowed, false, 'kept per decision')
})

t.test('replay of the captured kube-apiserver 1.32 requests', async t => {
  // alice: project id p-123, roles member + reader, group devs.
  const engine = engineWith(JSON.stringify([
    { users: { roles: ['member'], projects: ['p-123'] }, resource_permissions: { "default/['pods', 'configmaps', 'services']": ['get', 'list', 'watch'] }, nonresource_permissions: { '/metrics': ['get'] } },
    { resource: { verbs: ['list'], resources: ['deployments'], version: 'apps', namespace: 'kube-system' }, match: [{ type: 'group', values: ['devs'] }, { type: 'role', values: ['reader'] }] }
  ]))
  const expected: Record<string, boolean> = {
    'sar-v1-get-namespaces-ns.json': false,
    'sar-v1-get-secrets-ns.json': false,
    'sar-v1-list-configmaps-ns.json': true,
    'sar-v1-list-deployments-ns.json': true,
    'sar-v1-list-namespaces-cluster.json': false,
    'sar-v1-list-pods-ns.json': true,
    'sar-v1-list-services-ns.json': true,
    'sar-v1-nonresource-get_metrics.json': true,
    'sar-v1beta1-list-namespaces-cluster.json': false,
    'sar-v1beta1-list-secrets-ns.json': false,
    'sar-v1beta1-nonresource-get_metrics.json': true
  }
  const files = readdirSync(fixturesDir).filter(f => f.startsWith('sar-')).sort()
  t.same(files, Object.keys(expected).sort(), 'every captured SubjectAccessReview has an expectation')
  for (const file of files) {
    const body = fixture(file)
    const parsed = parseSubjectAccessReview(body)
    t.ok(parsed.ok, `${file} parses`)
    if (!parsed.ok) continue
    t.equal(parsed.apiVersion, body.apiVersion, `${file}: answered in the version asked`)
    const decision = engine.authorize(parsed.request)
    t.equal(decision.allowed, expected[file], `${file}: ${decision.reason}`)
    const answer = subjectAccessReviewResponse(parsed.apiVersion, decision) as Record<string, any>
    t.equal(answer.apiVersion, body.apiVersion)
    t.equal(answer.status.denied, undefined)
  }
})
