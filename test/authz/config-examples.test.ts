import t from 'tap'
import { join } from 'node:path'
import { parsePolicy } from '../../src/authz/policy.js'
import { parseSubjectAccessReview } from '../../src/server/http/subject-access-review.js'
import { accessRequest, decideEverywhere, engineWith, readText, repoRoot, type Ask, type Who } from './helpers.js'

// The shipped examples (config/policy.json: the Go docs' v1 examples; config/policy-v2.json)
// must load cleanly and decide as their documentation says.

const v1Text = readText(join(repoRoot, 'config', 'policy.json'))
const v2Text = readText(join(repoRoot, 'config', 'policy-v2.json'))

t.test('the examples have no errors', async t => {
  for (const [name, text] of [['policy.json', v1Text], ['policy-v2.json', v2Text]] as const) {
    const errors = parsePolicy(text).issues.filter(i => i.severity === 'error')
    t.same(errors, [], name)
  }
})

// From the Go docs: the `demo` user of project `demo` with role `member`.
const docsBody = (verb: string, version: 'v1' | 'v1beta1'): unknown => ({
  apiVersion: `authorization.k8s.io/${version}`,
  kind: 'SubjectAccessReview',
  spec: {
    resourceAttributes: { namespace: 'default', verb, groups: '', resource: 'pods', name: 'pod1' },
    user: 'demo',
    [version === 'v1' ? 'groups' : 'group']: ['423d41d3a02f4b77b4a9bbfbc3a1b3c6'],
    extra: {
      'alpha.kubernetes.io/identity/project/id': ['423d41d3a02f4b77b4a9bbfbc3a1b3c6'],
      'alpha.kubernetes.io/identity/project/name': ['demo'],
      'alpha.kubernetes.io/identity/roles': ['load-balancer_member', 'member']
    }
  }
})

t.test('docs v1 example: member of demo may read pods in default, not create them', async t => {
  const engine = engineWith(v1Text)
  for (const version of ['v1', 'v1beta1'] as const) {
    for (const [verb, allowed] of [['get', true], ['list', true], ['watch', true], ['create', false]] as const) {
      const parsed = parseSubjectAccessReview(docsBody(verb, version))
      t.ok(parsed.ok)
      if (parsed.ok) t.equal(engine.authorize(parsed.request).allowed, allowed, `${version} ${verb} pods`)
    }
  }
})

type Case = [string, Who, Ask, boolean]
function run (title: string, text: string, cases: Case[]): void {
  t.test(title, async t => {
    const engine = engineWith(text)
    for (const [name, who, ask, expected] of cases) {
      const d = decideEverywhere(engine, accessRequest(who, ask))
      t.equal(d.direct.allowed, expected, name)
      t.same([d.v1, d.v1beta1], [d.direct, d.direct], `${name} (wire)`)
    }
  })
}

const execer: Who = { name: 'ops', roles: ['utility_exec'] }
run('docs v1 sub-resource and non-resource example (utility_exec)', v1Text, [
  ['exec into a pod in utility', execer, { verb: 'create', namespace: 'utility', resource: 'pods', subresource: 'exec' }, true],
  ['exec in another namespace', execer, { verb: 'create', namespace: 'default', resource: 'pods', subresource: 'exec' }, false],
  ['get pods is not granted by pods/exec', execer, { verb: 'get', namespace: 'utility', resource: 'pods' }, false],
  ['discovery /api', execer, { verb: 'get', path: '/api' }, true],
  ['discovery /api/v1', execer, { verb: 'get', path: '/api/v1' }, true],
  ['discovery /apis', execer, { verb: 'get', path: '/apis' }, true],
  ['discovery /apis/apps/v1', execer, { verb: 'get', path: '/apis/apps/v1' }, true],
  ['other paths', execer, { verb: 'get', path: '/metrics' }, false],
  ['without the role', { name: 'x', roles: ['member'] }, { verb: 'get', path: '/api' }, false]
])

const admin: Who = { name: 'a', projectNames: ['demo'], roles: ['k8s-admin'] }
const dev: Who = { name: 'd', projectNames: ['demo'], roles: ['k8s-developer'] }
const member: Who = { name: 'm', projectNames: ['demo'], roles: ['member'] }
run('config/policy-v2.json', v2Text, [
  ['admin: anything', admin, { verb: 'delete', namespace: 'kube-system', resource: 'secrets' }, true],
  ['admin: subresources too', admin, { verb: 'create', namespace: 'kube-system', resource: 'pods', subresource: 'exec' }, true],
  ['admin: /metrics', admin, { verb: 'get', path: '/metrics' }, true],
  ['admin of another project', { ...admin, projectNames: ['other'] }, { verb: 'get', namespace: 'default', resource: 'pods' }, false],
  ['developer: deployments in default', dev, { verb: 'create', namespace: 'default', resource: 'deployments', group: 'apps' }, true],
  ['developer: not secrets', dev, { verb: 'get', namespace: 'default', resource: 'secrets' }, false],
  ['developer: not kube-system', dev, { verb: 'get', namespace: 'kube-system', resource: 'pods' }, false],
  ['developer: pods/log by the subresource key', dev, { verb: 'get', namespace: 'default', resource: 'pods', subresource: 'log' }, true],
  ['developer: pods/exec', dev, { verb: 'create', namespace: 'default', resource: 'pods', subresource: 'exec' }, true],
  ['developer: not pods/ephemeralcontainers', dev, { verb: 'update', namespace: 'default', resource: 'pods', subresource: 'ephemeralcontainers' }, false],
  ['developer: not /metrics', dev, { verb: 'get', path: '/metrics' }, false],
  ['member: read pods in default', member, { verb: 'list', namespace: 'default', resource: 'pods' }, true],
  ['member: create configmaps in default', member, { verb: 'create', namespace: 'default', resource: 'configmaps' }, true],
  ['member: not create secrets', member, { verb: 'create', namespace: 'default', resource: 'secrets' }, false],
  ['member: not delete pods', member, { verb: 'delete', namespace: 'default', resource: 'pods' }, false],
  ['member: not pods/exec (a plain key does not grant subresources)', member, { verb: 'create', namespace: 'default', resource: 'pods', subresource: 'exec' }, false]
])
