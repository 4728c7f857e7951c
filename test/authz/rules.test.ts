import t from 'tap'
import { NO_IDENTITY_REASON } from '../../src/authz/compile.js'
import { accessRequest, decideEverywhere, engineWith, type Ask, type Who } from './helpers.js'

// Every matching rule of both policy formats, each with a request that is allowed and one that
// is denied, run directly and through SubjectAccessReview v1 and v1beta1.

type Case = [string, Who, Ask, boolean]

function check (name: string, policy: unknown, cases: Case[], opts: { subresourceCompat?: boolean, looseNamespaces?: boolean } = {}): void {
  t.test(name, async t => {
    const engine = engineWith(JSON.stringify(policy), opts)
    for (const [title, who, ask, expected] of cases) {
      const d = decideEverywhere(engine, accessRequest(who, ask))
      t.equal(d.direct.allowed, expected, title)
      t.same(d.v1, d.direct, `${title} (v1)`)
      t.same(d.v1beta1, d.direct, `${title} (v1beta1)`)
    }
  })
}

const demoMember: Who = { name: 'alice', uid: 'alice-id', groups: ['devs'], projectNames: ['demo'], projectIds: ['p-123'], roles: ['member'] }
const nobody: Who = { name: 'mallory' }

const users = { roles: ['member'], projects: ['demo'] }

// --- v2: the documented examples (docs "Authorization policy definition (version 2)") ---

check('docs v2: "*/*": ["*"]', [{ users, resource_permissions: { '*/*': ['*'] } }], [
  ['any verb, any namespace', demoMember, { verb: 'delete', namespace: 'kube-system', resource: 'secrets' }, true],
  ['cluster-scoped', demoMember, { verb: 'create', resource: 'clusterroles' }, true],
  ['another user', nobody, { verb: 'get', namespace: 'default', resource: 'pods' }, false]
])

check('docs v2: "default/pods": ["get", "list"]', [{ users, resource_permissions: { 'default/pods': ['get', 'list'] } }], [
  ['get pods in default', demoMember, { verb: 'get', namespace: 'default', resource: 'pods' }, true],
  ['list pods in default', demoMember, { verb: 'list', namespace: 'default', resource: 'pods' }, true],
  ['create pods', demoMember, { verb: 'create', namespace: 'default', resource: 'pods' }, false],
  ['pods in another namespace', demoMember, { verb: 'get', namespace: 'other', resource: 'pods' }, false],
  ['services', demoMember, { verb: 'get', namespace: 'default', resource: 'services' }, false],
  // Go (resourcePermissionAllowed): a request without a namespace is matched only by a namespace part of "*".
  ['list pods across all namespaces (Go: only "*/..." keys match it)', demoMember, { verb: 'list', namespace: '', resource: 'pods' }, false]
])

check('docs v2: "default/![\'secrets\', \'clusterroles\']": ["create"]', [{ users, resource_permissions: { "default/!['secrets', 'clusterroles']": ['create'] } }], [
  ['create configmaps', demoMember, { verb: 'create', namespace: 'default', resource: 'configmaps' }, true],
  ['create secrets', demoMember, { verb: 'create', namespace: 'default', resource: 'secrets' }, false],
  ['create clusterroles', demoMember, { verb: 'create', namespace: 'default', resource: 'clusterroles' }, false],
  ['get configmaps', demoMember, { verb: 'get', namespace: 'default', resource: 'configmaps' }, false],
  ['create configmaps elsewhere', demoMember, { verb: 'create', namespace: 'prod', resource: 'configmaps' }, false]
])

check('docs v2: "!kube-system/*": ["*"]', [{ users, resource_permissions: { '!kube-system/*': ['*'] } }], [
  ['anything in default', demoMember, { verb: 'delete', namespace: 'default', resource: 'secrets' }, true],
  ['anything in kube-system', demoMember, { verb: 'get', namespace: 'kube-system', resource: 'pods' }, false],
  ['cluster-scoped (Go: only "*/..." keys match it)', demoMember, { verb: 'create', resource: 'clusterrolebindings' }, false]
])

check('docs v2: "!kube-system/![\'secrets\', \'clusterroles\']": ["*"]', [{ users, resource_permissions: { "!kube-system/!['secrets', 'clusterroles']": ['*'] } }], [
  ['pods in default', demoMember, { verb: 'create', namespace: 'default', resource: 'pods' }, true],
  ['secrets in default', demoMember, { verb: 'get', namespace: 'default', resource: 'secrets' }, false],
  ['pods in kube-system', demoMember, { verb: 'get', namespace: 'kube-system', resource: 'pods' }, false]
])

// --- v2: pattern details and Go quirks ---

check('v2 patterns', [{
  users,
  resource_permissions: {
    "['dev', 'test']/['pods', '*']": ['get'],
    "ns1/['a', 'b']": ['list'],
    '!/x': ['watch'],
    '!*/y': ['*'],
    '![*/z': ['*'],
    'ns2/[pods]': ['*'],
    "ns3/!['*']": ['*'],
    ' NS4 / Pods ': ['GET'],
    'too/many/parts/here': ['*'],
    onepart: ['*']
  }
}], [
  ['list of namespaces, list with * in resources', demoMember, { verb: 'get', namespace: 'test', resource: 'anything' }, true],
  ['namespace not in list', demoMember, { verb: 'get', namespace: 'prod', resource: 'pods' }, false],
  ['resource in list', demoMember, { verb: 'list', namespace: 'ns1', resource: 'b' }, true],
  ['resource not in list', demoMember, { verb: 'list', namespace: 'ns1', resource: 'c' }, false],
  ['"!" alone matches every namespace', demoMember, { verb: 'watch', namespace: 'whatever', resource: 'x' }, true],
  ['"!*" matches no namespace', demoMember, { verb: 'get', namespace: 'default', resource: 'y' }, false],
  ['unclosed list matches nothing', demoMember, { verb: 'get', namespace: 'default', resource: 'z' }, false],
  ['unquoted list does not parse and matches nothing', demoMember, { verb: 'get', namespace: 'ns2', resource: 'pods' }, false],
  ['"![\'*\']" matches nothing', demoMember, { verb: 'get', namespace: 'ns3', resource: 'pods' }, false],
  ['keys are trimmed and lower-cased, verbs lower-cased', demoMember, { verb: 'get', namespace: 'ns4', resource: 'pods' }, true],
  ['a key with four parts is ignored', demoMember, { verb: 'get', namespace: 'too', resource: 'many' }, false],
  ['a key with one part is ignored', demoMember, { verb: 'get', namespace: 'onepart', resource: 'onepart' }, false]
])

check('v2 users: all roles required, any project, by name or id', [
  { users: { roles: ['a', 'b'], projects: ['demo', 'p-999'] }, resource_permissions: { '*/*': ['get'] } },
  { users: { roles: [], projects: ['p-123'] }, resource_permissions: { '*/*': ['list'] } },
  { users: { roles: ['member'] }, resource_permissions: { '*/*': ['watch'] } },
  { users: {}, resource_permissions: { '*/*': ['patch'] } },
  { users: null, resource_permissions: { '*/*': ['delete'] } },
  { resource_permissions: { '*/*': ['update'] } }
], [
  ['both roles', { name: 'u', projectNames: ['demo'], roles: ['a', 'b', 'c'] }, { verb: 'get', namespace: 'x', resource: 'pods' }, true],
  ['only one of the roles', { name: 'u', projectNames: ['demo'], roles: ['a'] }, { verb: 'get', namespace: 'x', resource: 'pods' }, false],
  ['second project, by id', { name: 'u', projectIds: ['p-999'], roles: ['a', 'b'] }, { verb: 'get', namespace: 'x', resource: 'pods' }, true],
  ['no project', { name: 'u', roles: ['a', 'b'] }, { verb: 'get', namespace: 'x', resource: 'pods' }, false],
  ['no roles required, project by id', demoMember, { verb: 'list', namespace: 'x', resource: 'pods' }, true],
  ['users without projects never match (Go)', demoMember, { verb: 'watch', namespace: 'x', resource: 'pods' }, false],
  ['empty users never match (Go)', demoMember, { verb: 'patch', namespace: 'x', resource: 'pods' }, false],
  ['users: null means no user filter (Go)', nobody, { verb: 'delete', namespace: 'x', resource: 'pods' }, true],
  ['no users: the entry applies to everyone (Go)', nobody, { verb: 'update', namespace: 'x', resource: 'pods' }, true]
])

check('v2 nonresource_permissions: exact path, case-sensitive verbs', [{ users, nonresource_permissions: { '/healthz': ['get', 'POST'], '/api/*': ['get'], '/version': ['*'] } }], [
  ['exact path', demoMember, { verb: 'get', path: '/healthz' }, true],
  ['verbs are not lower-cased for non-resource keys (Go)', demoMember, { verb: 'post', path: '/healthz' }, false],
  ['"*" is not a wildcard in v2 keys (Go)', demoMember, { verb: 'get', path: '/api/v1' }, false],
  ['verb *', demoMember, { verb: 'head', path: '/version' }, true],
  ['other path', demoMember, { verb: 'get', path: '/metrics' }, false],
  ['a resource request is not a path', demoMember, { verb: 'get', namespace: 'x', resource: 'healthz' }, false]
])

// --- subresources (a deliberate difference from Go, with a compat flag) ---

const subresourcePolicy = [{
  users,
  resource_permissions: {
    'default/pods': ['get', 'create'],
    'default/deployments/scale': ['update'],
    "default/services/['proxy', 'status']": ['get'],
    'default/configmaps/*': ['get'],
    'other/*': ['get']
  }
}]
const subresourceCases = (compat: boolean): Case[] => [
  ['plain key, plain request', demoMember, { verb: 'get', namespace: 'default', resource: 'pods' }, true],
  ['plain key, subresource request', demoMember, { verb: 'create', namespace: 'default', resource: 'pods', subresource: 'exec' }, compat],
  ['key naming the subresource', demoMember, { verb: 'update', namespace: 'default', resource: 'deployments', subresource: 'scale' }, true],
  ['key naming a subresource does not grant the resource', demoMember, { verb: 'update', namespace: 'default', resource: 'deployments' }, false],
  ['key naming a subresource does not grant another one', demoMember, { verb: 'update', namespace: 'default', resource: 'deployments', subresource: 'status' }, false],
  ['subresource list', demoMember, { verb: 'get', namespace: 'default', resource: 'services', subresource: 'status' }, true],
  ['subresource *', demoMember, { verb: 'get', namespace: 'default', resource: 'configmaps', subresource: 'anything' }, true],
  ['subresource * does not grant the resource', demoMember, { verb: 'get', namespace: 'default', resource: 'configmaps' }, false],
  ['resource * grants subresources (as RBAC)', demoMember, { verb: 'get', namespace: 'other', resource: 'pods', subresource: 'log' }, true]
]
check('v2 subresources, default (RBAC-like)', subresourcePolicy, subresourceCases(false))
check('v2 subresources, subresourceCompat (Go)', subresourcePolicy, subresourceCases(true), { subresourceCompat: true })

// --- cluster-wide requests: Go by default, looseNamespaces opt-in ---

const namespacePolicy = [{
  users,
  resource_permissions: {
    'default/pods': ['list'],
    '!kube-system/nodes': ['get'],
    "['default']/secrets": ['list'],
    '*/namespaces': ['get'],
    "['*']/persistentvolumes": ['get']
  }
}]
const namespaceCases = (loose: boolean): Case[] => [
  ['exact namespace, same namespace', demoMember, { verb: 'list', namespace: 'default', resource: 'pods' }, true],
  ['exact namespace, all namespaces', demoMember, { verb: 'list', resource: 'pods' }, loose],
  ['negated namespace, cluster-scoped', demoMember, { verb: 'get', resource: 'nodes' }, loose],
  ['negated namespace, a namespace', demoMember, { verb: 'get', namespace: 'dev', resource: 'nodes' }, true],
  ['listed namespace, all namespaces', demoMember, { verb: 'list', resource: 'secrets' }, loose],
  ["['*'] namespace, cluster-scoped: a list is not \"*\" (Go compares the text)", demoMember, { verb: 'get', resource: 'persistentvolumes' }, loose],
  ['"*" namespace, cluster-scoped', demoMember, { verb: 'get', resource: 'namespaces' }, true]
]
check('cluster-wide requests, default (Go: only a namespace part of exactly "*" matches them)', namespacePolicy, namespaceCases(false))
check('cluster-wide requests, looseNamespaces (not Go: the empty namespace matches every pattern)', namespacePolicy, namespaceCases(true), { looseNamespaces: true })

// --- v1 ---

check('v1 resource: verbs, resources, version (= API group), namespace', [
  { resource: { verbs: ['get', 'list'], resources: ['pods', 'deployments/scale', 'services/*'], version: 'apps', namespace: 'default' }, match: [{ type: 'user', values: ['alice'] }] },
  { resource: { verbs: ['*'], resources: ['*'], version: '*', namespace: '*' }, match: [{ type: 'user', values: ['root'] }] },
  { resource: { verbs: ['watch'], resources: ['pods'], version: '', namespace: 'default' }, match: [{ type: 'user', values: ['alice'] }] }
], [
  ['all fields match', demoMember, { verb: 'get', namespace: 'default', resource: 'pods', group: 'apps' }, true],
  ['version is compared with the API group', demoMember, { verb: 'get', namespace: 'default', resource: 'pods', group: '' }, false],
  ['verb not listed', demoMember, { verb: 'delete', namespace: 'default', resource: 'pods', group: 'apps' }, false],
  ['namespace differs', demoMember, { verb: 'get', namespace: 'prod', resource: 'pods', group: 'apps' }, false],
  ['v1 namespace does not match the empty namespace', demoMember, { verb: 'get', namespace: '', resource: 'pods', group: 'apps' }, false],
  ['res/sub', demoMember, { verb: 'get', namespace: 'default', resource: 'deployments', subresource: 'scale', group: 'apps' }, true],
  ['res/sub does not grant res', demoMember, { verb: 'get', namespace: 'default', resource: 'deployments', group: 'apps' }, false],
  ['res/*', demoMember, { verb: 'get', namespace: 'default', resource: 'services', subresource: 'proxy', group: 'apps' }, true],
  ['plain resource does not grant its subresources', demoMember, { verb: 'get', namespace: 'default', resource: 'pods', subresource: 'log', group: 'apps' }, false],
  ['"" version is the core group', demoMember, { verb: 'watch', namespace: 'default', resource: 'pods' }, true],
  ['* everything, including subresources and cluster scope', { name: 'root' }, { verb: 'escalate', resource: 'clusterroles', subresource: 'x', group: 'rbac.authorization.k8s.io' }, true]
])

check('v1 nonresource: verbs and path, trailing * is a prefix', [
  { nonresource: { verbs: ['get'], path: '/metrics' }, match: [{ type: 'group', values: ['devs'] }] },
  { nonresource: { verbs: ['*'], path: '/logs*' }, match: [{ type: 'group', values: ['devs'] }] },
  { nonresource: { verbs: ['get'], path: '*' }, match: [{ type: 'user', values: ['root'] }] },
  { nonresource: { verbs: ['get', ''], path: '/blocked' }, match: [{ type: 'group', values: ['devs'] }] },
  { nonresource: { verbs: ['get'] }, match: [{ type: 'group', values: ['devs'] }] }
], [
  ['exact path', demoMember, { verb: 'get', path: '/metrics' }, true],
  ['exact path is not a prefix', demoMember, { verb: 'get', path: '/metrics/x' }, false],
  ['verb not listed', demoMember, { verb: 'post', path: '/metrics' }, false],
  ['prefix without slash', demoMember, { verb: 'post', path: '/logsfoo/bar' }, true],
  ['"*" path', { name: 'root' }, { verb: 'get', path: '/anything' }, true],
  ['an empty verb in the list disables the entry (Go)', demoMember, { verb: 'get', path: '/blocked' }, false],
  ['a resource request does not match a nonresource entry', demoMember, { verb: 'get', namespace: 'x', resource: 'metrics' }, false]
])

check('v1 match: user (name or uid), group, project (id or name), role, *, all required', [
  { nonresource: { verbs: ['get'], path: '/by-name' }, match: [{ type: 'user', values: ['alice'] }] },
  { nonresource: { verbs: ['get'], path: '/by-uid' }, match: [{ type: 'user', values: ['alice-id'] }] },
  { nonresource: { verbs: ['get'], path: '/by-group' }, match: [{ type: 'group', values: ['ops', 'devs'] }] },
  { nonresource: { verbs: ['get'], path: '/by-project-id' }, match: [{ type: 'project', values: ['p-123'] }] },
  { nonresource: { verbs: ['get'], path: '/by-project-name' }, match: [{ type: 'project', values: ['demo'] }] },
  { nonresource: { verbs: ['get'], path: '/by-role' }, match: [{ type: 'role', values: ['member'] }] },
  { nonresource: { verbs: ['get'], path: '/star' }, match: [{ type: 'role', values: ['*'] }] },
  { nonresource: { verbs: ['get'], path: '/all-of' }, match: [{ type: 'role', values: ['member'] }, { type: 'project', values: ['other'] }] },
  { nonresource: { verbs: ['get'], path: '/no-match-list' } },
  { nonresource: { verbs: ['get'], path: '/v1-with-users' }, users: { roles: ['member'], projects: ['demo'] } }
], [
  ['user name', demoMember, { verb: 'get', path: '/by-name' }, true],
  ['user name, other user', nobody, { verb: 'get', path: '/by-name' }, false],
  ['user uid', demoMember, { verb: 'get', path: '/by-uid' }, true],
  ['group, any of the values', demoMember, { verb: 'get', path: '/by-group' }, true],
  ['group, none', nobody, { verb: 'get', path: '/by-group' }, false],
  ['project id', demoMember, { verb: 'get', path: '/by-project-id' }, true],
  ['project name', demoMember, { verb: 'get', path: '/by-project-name' }, true],
  ['project, user without project extras', nobody, { verb: 'get', path: '/by-project-id' }, false],
  ['role', demoMember, { verb: 'get', path: '/by-role' }, true],
  ['role, user without roles', nobody, { verb: 'get', path: '/by-role' }, false],
  ['"*" matches anyone, even without extras', nobody, { verb: 'get', path: '/star' }, true],
  ['every condition is required', demoMember, { verb: 'get', path: '/all-of' }, false],
  ['no match list: everyone (Go)', nobody, { verb: 'get', path: '/no-match-list' }, true],
  ['users also filters v1 entries (Go)', demoMember, { verb: 'get', path: '/v1-with-users' }, true],
  ['users also filters v1 entries, other user', nobody, { verb: 'get', path: '/v1-with-users' }, false]
])

// --- v2 precedence over v1 in one entry, and "any entry allows" ---

check('v2 takes precedence over v1 in the same entry, per kind of request', [
  {
    resource: { verbs: ['*'], resources: ['*'], version: '*', namespace: '*' },
    nonresource: { verbs: ['get'], path: '/v1-path' },
    resource_permissions: { 'default/pods': ['get'] },
    match: [{ type: 'user', values: ['alice'] }]
  },
  { resource: { verbs: ['*'], resources: ['*'], version: '*', namespace: '*' }, resource_permissions: {}, match: [] }
], [
  ['v2 rule applies', demoMember, { verb: 'get', namespace: 'default', resource: 'pods' }, true],
  ['v1 resource rule is shadowed', demoMember, { verb: 'delete', namespace: 'default', resource: 'pods' }, false],
  ['v2 rules ignore match', nobody, { verb: 'get', namespace: 'default', resource: 'pods' }, true],
  ['v1 nonresource still applies without nonresource_permissions', demoMember, { verb: 'get', path: '/v1-path' }, true],
  ['an empty resource_permissions shadows v1 too', nobody, { verb: 'get', namespace: 'x', resource: 'secrets' }, false]
])

check('a request is allowed if any entry allows it', [
  { users, resource_permissions: { 'a/pods': ['get'] } },
  { resource: { verbs: ['get'], resources: ['pods'], version: '*', namespace: 'b' }, match: [{ type: 'role', values: ['member'] }] },
  { users, resource_permissions: { 'c/pods': ['get'] } }
], [
  ['first', demoMember, { verb: 'get', namespace: 'a', resource: 'pods' }, true],
  ['second (v1)', demoMember, { verb: 'get', namespace: 'b', resource: 'pods' }, true],
  ['third', demoMember, { verb: 'get', namespace: 'c', resource: 'pods' }, true],
  ['none', demoMember, { verb: 'get', namespace: 'd', resource: 'pods' }, false]
])

t.test('a request without extras, groups or uid is decided, not crashed on', async t => {
  const engine = engineWith(JSON.stringify([
    { users, resource_permissions: { '*/*': ['*'] } },
    { resource: { verbs: ['get'], resources: ['pods'], version: '*', namespace: '*' }, match: [{ type: 'project', values: ['demo'] }] }
  ]))
  const d = engine.authorize({ user: '', groups: [], extra: {}, resource: { namespace: 'x', verb: 'get', group: '', version: '', resource: 'pods', subresource: '', name: '' } })
  t.same(d, { allowed: false, reason: NO_IDENTITY_REASON })
})

// --- users this webhook did not authenticate ---
// A certificate user or another authenticator's user whose name or groups equal a Keystone
// one must not get that user's rights: the review is denied before any entry is looked at.

const certUser: Who = { name: 'alice', uid: 'alice-id', groups: ['devs'], keystone: false }
const openPolicy = [
  { resource: { verbs: ['*'], resources: ['*'], version: '*', namespace: '*' }, match: [{ type: 'user', values: ['alice'] }] },
  { nonresource: { verbs: ['*'], path: '*' }, match: [{ type: 'group', values: ['devs'] }] },
  { resource: { verbs: ['get'], resources: ['configmaps'], version: '*', namespace: '*' } },
  { resource_permissions: { '*/secrets': ['get'] } }
]
check('no Keystone identity: v1 user and group matches, and entries without match or users, do not apply', openPolicy, [
  ['v1 user match, Keystone user', demoMember, { verb: 'delete', namespace: 'x', resource: 'pods' }, true],
  ['v1 user match, certificate user of the same name', certUser, { verb: 'delete', namespace: 'x', resource: 'pods' }, false],
  ['v1 group match, certificate user in the same group', certUser, { verb: 'get', path: '/metrics' }, false],
  ['v1 entry without match', certUser, { verb: 'get', namespace: 'x', resource: 'configmaps' }, false],
  ['v2 entry without users', certUser, { verb: 'get', namespace: 'x', resource: 'secrets' }, false],
  ['v2 entry without users, Keystone user', nobody, { verb: 'get', namespace: 'x', resource: 'secrets' }, true]
])

t.test('another authenticator\'s extras are not a Keystone identity; ours are, even without a project', async t => {
  const engine = engineWith(JSON.stringify(openPolicy))
  const base = { user: 'alice', groups: ['devs'], nonResource: { path: '/metrics', verb: 'get' } }
  t.same(engine.authorize({ ...base, extra: { 'example.org/team': ['devs'] } }), { allowed: false, reason: NO_IDENTITY_REASON })
  t.same(engine.authorize({ ...base, extra: { 'alpha.kubernetes.io/identity/roles': [] } }), { allowed: false, reason: NO_IDENTITY_REASON }, 'an empty list is no identity')
  t.equal(engine.authorize({ ...base, extra: { 'alpha.kubernetes.io/identity/user/domain/name': ['Default'] } }).allowed, true)
})

t.test('the decision cache keeps identity and no identity apart', async t => {
  const engine = engineWith(JSON.stringify(openPolicy), { cacheMax: 100 })
  const base = { user: 'alice', groups: ['devs'], nonResource: { path: '/metrics', verb: 'get' } }
  t.equal(engine.authorize({ ...base, extra: { 'alpha.kubernetes.io/identity/user/domain/name': ['Default'] } }).allowed, true, 'Keystone user first, cached')
  t.equal(engine.authorize({ ...base, extra: {} }).allowed, false, 'then the same name and groups without identity: not served from the cache')
})
