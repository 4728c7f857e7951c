import t from 'tap'
import { join } from 'node:path'
import { accessRequest, decideEverywhere, engineWith, here, readText, type Ask, type Who } from './helpers.js'

// The cases of the Go authorizer_test.go (TestAuthorizer, TestAuthorizerVersion2), as data.
// Each runs directly and as SubjectAccessReview v1 and v1beta1; all three must equal Go's answer.

const user1: Who = { name: 'user1', groups: ['group1'], projectNames: ['project1'], roles: ['role1'] }
const user2: Who = { name: 'user2', groups: ['group2'], projectNames: ['project2'], roles: ['role2'] }

type Case = [string, Who, Ask, boolean]

const v1Cases: Case[] = [
  ['resource user match', user1, { verb: 'get', resource: 'user_resource1' }, true],
  ['resource user match, second resource and verb', user1, { verb: 'list', resource: 'user_resource2' }, true],
  ['resource user match, verb not listed', user1, { verb: 'patch', resource: 'user_resource1' }, false],
  ['resource user match, other user', user2, { verb: 'get', resource: 'user_resource1' }, false],
  ['resource group match', user1, { verb: 'get', resource: 'group_resource' }, true],
  ['resource group match, verb not listed', user1, { verb: 'patch', resource: 'group_resource' }, false],
  ['resource group match, other group', user2, { verb: 'get', resource: 'group_resource' }, false],
  ['resource group and role: both required', user1, { verb: 'get', resource: 'group_role_resource' }, false],
  ['resource project match', user1, { verb: 'get', resource: 'project_resource' }, true],
  ['resource project match, verb not listed', user1, { verb: 'patch', resource: 'project_resource' }, false],
  ['resource project match, other project', user2, { verb: 'get', resource: 'project_resource' }, false],
  ['resource role match', user1, { verb: 'get', resource: 'role_resource' }, true],
  ['resource role match, verb not listed', user1, { verb: 'patch', resource: 'role_resource' }, false],
  ['resource role match, other role', user2, { verb: 'get', resource: 'role_resource' }, false],
  ['core API group', user1, { verb: 'get', resource: 'core_resource' }, true],
  ['"version" is compared with the API group', user1, { verb: 'get', resource: 'core_resource', group: 'NonCoreAPIGroup' }, false],
  ['nonresource user match', user1, { verb: 'get', path: '/user' }, true],
  ['nonresource user match, verb not listed', user1, { verb: 'patch', path: '/user' }, false],
  ['nonresource user match, other user', user2, { verb: 'get', path: '/user' }, false],
  ['nonresource group match', user1, { verb: 'get', path: '/group' }, true],
  ['nonresource group match, verb not listed', user1, { verb: 'patch', path: '/group' }, false],
  ['nonresource group match, other group', user2, { verb: 'get', path: '/group' }, false],
  ['nonresource project match', user1, { verb: 'get', path: '/project' }, true],
  ['nonresource project match, verb not listed', user1, { verb: 'patch', path: '/project' }, false],
  ['nonresource project match, other project', user2, { verb: 'get', path: '/project' }, false],
  ['nonresource role match', user1, { verb: 'get', path: '/role' }, true],
  ['nonresource role match, verb not listed', user1, { verb: 'patch', path: '/role' }, false],
  ['nonresource role match, other role', user2, { verb: 'get', path: '/role' }, false],
  ['unknown match type never matches', user1, { verb: 'get', resource: 'unknown_type_resource' }, false],
  ['subresource named in resources', user1, { verb: 'get', resource: 'user_resource1', subresource: 'subresource1' }, true],
  ['subresource not named; the plain resource does not grant it', user1, { verb: 'get', resource: 'user_resource1', subresource: 'subresource2' }, false],
  ['res/* grants every subresource', user1, { verb: 'get', resource: 'user_resource3', subresource: 'wildcard_resource' }, true],
  ['nonresource exact path', user1, { verb: 'get', path: '/api' }, true],
  ['nonresource path not in policy', user1, { verb: 'get', path: '/imaginary_api/path/none' }, false],
  ['nonresource trailing * is a prefix match', user1, { verb: 'get', path: '/api/represents/wildcard' }, true]
]

const developer: Who = { name: 'developer', groups: ['group1'], projectNames: ['demo'], roles: ['developer'] }
const viewer: Who = { name: 'viewer', groups: ['group2'], projectNames: ['demo'], projectIds: ['ff9db8980cf24a74bc9dd796b6ce811f'], roles: ['viewer'] }
const anotherviewer: Who = { name: 'anotherviewer', groups: ['group'], projectNames: ['alt_demo'], projectIds: ['cd08a539b7c845ddb92c5d08752101d1'], roles: ['viewer'] }
const clusteradmin: Who = { name: 'clusteradmin', groups: ['group2'], projectNames: ['demo'], roles: ['clusteradmin'] }

const v2Cases: Case[] = [
  ['developer gets pods', developer, { verb: 'get', namespace: 'default', resource: 'pods' }, true],
  ['developer gets clusterroles in a namespace', developer, { verb: 'get', namespace: 'default', resource: 'clusterroles' }, true],
  ['developer gets clusterroles, cluster-scoped', developer, { verb: 'get', namespace: '', resource: 'clusterroles' }, true],
  ['developer cannot create clusterrolebindings', developer, { verb: 'create', namespace: '', resource: 'clusterrolebindings' }, false],
  ['list entries are lower-cased like the request', developer, { verb: 'get', namespace: '', resource: 'podsecuritypolicies' }, true],
  ['viewer gets deployments in default', viewer, { verb: 'get', namespace: 'default', resource: 'deployments' }, true],
  ['viewer cannot get services in kube-system', viewer, { verb: 'get', namespace: 'kube-system', resource: 'services' }, false],
  ['viewer cannot create pods', viewer, { verb: 'create', namespace: 'default', resource: 'pods' }, false],
  ['project matched by id', anotherviewer, { verb: 'get', namespace: 'default', resource: 'deployments' }, true],
  ['project by id, other namespace', anotherviewer, { verb: 'get', namespace: 'kube-system', resource: 'services' }, false],
  ['project by id, verb not listed', anotherviewer, { verb: 'create', namespace: 'default', resource: 'pods' }, false],
  ['clusteradmin creates clusterroles', clusteradmin, { verb: 'create', namespace: '', resource: 'clusterroles' }, true],
  ['clusteradmin gets secrets in kube-system', clusteradmin, { verb: 'get', namespace: 'kube-system', resource: 'secrets' }, true],
  ['developer has no nonresource permission', developer, { verb: 'get', path: '/healthz' }, false],
  ['viewer has no nonresource permission', viewer, { verb: 'get', path: '/healthz' }, false],
  ['clusteradmin gets /healthz', clusteradmin, { verb: 'get', path: '/healthz' }, true]
]

function runCases (name: string, policyFile: string, cases: Case[]): void {
  t.test(name, async t => {
    const engine = engineWith(readText(here, 'fixtures', policyFile))
    for (const [title, who, ask, expected] of cases) {
      const d = decideEverywhere(engine, accessRequest(who, ask))
      t.equal(d.direct.allowed, expected, title)
      t.same(d.v1, d.direct, `${title} (v1 wire)`)
      t.same(d.v1beta1, d.direct, `${title} (v1beta1 wire)`)
      if (expected) t.match(d.direct.reason, /^allowed by policy entry \d+ \(/, `${title}: reason names the entry`)
      else t.equal(d.direct.reason, 'no policy entry matched', `${title}: reason`)
    }
  })
}

runCases('Go TestAuthorizer (v1 policy)', 'go-v1-policy.json', v1Cases)
runCases('Go TestAuthorizerVersion2 (v2 policy)', 'go-v2-policy.json', v2Cases)

t.test('reasons name the entry and the rule that allowed', async t => {
  const v2 = engineWith(readText(here, 'fixtures', 'go-v2-policy.json'))
  t.equal(v2.authorize(accessRequest(clusteradmin, { verb: 'get', namespace: 'x', resource: 'pods' })).reason,
    'allowed by policy entry 2 (resource_permissions "*/*")')
  t.equal(v2.authorize(accessRequest(clusteradmin, { verb: 'post', path: '/healthz' })).reason,
    'allowed by policy entry 2 (nonresource_permissions "/healthz")')
  const v1 = engineWith(readText(here, 'fixtures', 'go-v1-policy.json'))
  t.equal(v1.authorize(accessRequest(user1, { verb: 'get', path: '/api/v1' })).reason, 'allowed by policy entry 18 (nonresource "/api/*")')
  t.equal(v1.authorize(accessRequest(user1, { verb: 'get', resource: 'user_resource3', subresource: 's' })).reason, 'allowed by policy entry 16 (resource "user_resource3/*")')
})

t.test('the fixture files are the ones the cases were written for', async t => {
  // Guards against someone editing a fixture so that cases pass for the wrong reason.
  t.equal(JSON.parse(readText(join(here, 'fixtures', 'go-v1-policy.json'))).length, 19)
  t.equal(JSON.parse(readText(join(here, 'fixtures', 'go-v2-policy.json'))).length, 3)
})
