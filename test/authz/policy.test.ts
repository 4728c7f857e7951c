import t from 'tap'
import { formatIssue, loadPolicy, parsePolicy, PolicyError } from '../../src/authz/policy.js'
import { ConfigError } from '../../src/errors.js'

// Parsing and validation: errors are what Go refuses or crashes on, each naming entry, field and
// line; warnings are what Go silently ignores.

function errorsOf (text: string): string[] {
  return parsePolicy(text).issues.filter(i => i.severity === 'error').map(i => formatIssue(i))
}
function warningsOf (text: string): string[] {
  return parsePolicy(text).issues.filter(i => i.severity === 'warning').map(i => formatIssue(i))
}

t.test('a type error names the entry, the field and the line', async t => {
  const text = `[
  { "nonresource": { "verbs": ["get"], "path": "/x" }, "match": [] },
  { "resource": { "verbs": ["get"], "resources": ["pods"], "version": "*", "namespace": "*" } },
  { "resource": { "verbs": "get", "resources": ["pods"], "version": "*", "namespace": "*" } }
]`
  t.same(errorsOf(text), ['4:28: policy entry 2: resource.verbs: expected an array of strings'])
  let thrown: unknown
  try { loadPolicy(text, 'policy.json') } catch (err) { thrown = err }
  t.ok(thrown instanceof PolicyError && thrown instanceof ConfigError, 'a PolicyError, which is a ConfigError')
  t.equal((thrown as ConfigError).code, 'KSA_ERR_CONFIG')
  t.equal((thrown as ConfigError).message, 'invalid authorization policy: policy.json:4:28: policy entry 2: resource.verbs: expected an array of strings')
  t.equal((thrown as PolicyError).issues.length, parsePolicy(text).issues.length, 'carries every issue')
})

t.test('every error is reported, not only the first', async t => {
  const errors = errorsOf(JSON.stringify([
    { match: 'user' },
    { users: { roles: 'admin', projects: ['a'] } },
    { resource_permissions: { 'a/b': 'get' } },
    { nonresource: { verbs: ['get'], path: 5 } },
    null,
    'text',
    { resource: { verbs: ['get'], resources: ['pods'], version: 1, namespace: '*' } },
    { match: [{ type: 'user', values: 'alice' }] }
  ]))
  t.same(errors.map(e => e.replace(/^\d+:\d+: /, '')), [
    'policy entry 0: match: expected an array of {type, values}',
    'policy entry 1: users.roles: expected an array of strings',
    'policy entry 2: resource_permissions["a/b"]: expected an array of strings',
    'policy entry 3: nonresource.path: expected a string',
    'policy entry 4: entry is null (the Go binary crashes on it)',
    'policy entry 5: expected an object',
    'policy entry 6: resource.version: expected a string',
    'policy entry 7: match[0].values: expected an array of strings'
  ])
})

t.test('a v1 resource without version or namespace is an error (Go crashes on it)', async t => {
  t.same(errorsOf(JSON.stringify([{ resource: { verbs: ['get'], resources: ['pods'] }, match: [] }])).map(e => e.replace(/^\d+:\d+: /, '')), [
    'policy entry 0: resource.version: required (use "*" for any API group; the Go binary crashes on requests that reach an entry without it)',
    'policy entry 0: resource.namespace: required (use "*" for any namespace; the Go binary crashes on requests that reach an entry without it)'
  ])
  // ...unless resource_permissions shadows it, so Go never reads it.
  t.same(errorsOf(JSON.stringify([{ resource: { verbs: ['get'] }, resource_permissions: { '*/*': ['get'] } }])), [])
})

t.test('file-level errors', async t => {
  t.match(errorsOf('')[0], /the policy is empty/)
  t.match(errorsOf('{"resource": {}}')[0], /expected a list of policy entries/)
  // Not JSON (trailing comma) but valid YAML flow style: accepted as YAML.
  t.equal(parsePolicy('[ {"match": [] }, ]').entries.length, 1)
  t.match(errorsOf('[\n  {"match": [] \n  {"users": {}}\n]')[0], /^3:3: invalid JSON/)
  t.match(errorsOf('- resource: [unclosed\n')[0], /invalid YAML/)
  t.same(parsePolicy('null').entries, [])
  t.same(errorsOf('null'), [])
  t.same(errorsOf('[]'), [])
})

t.test('YAML is accepted, with the same meaning and located messages', async t => {
  const yaml = `# comment
- users:
    roles: [member]
    projects: [demo]
  resource_permissions:
    "default/pods": [get, list]
- resource:
    verbs: get
`
  const parsed = parsePolicy(yaml)
  t.same(parsed.issues.filter(i => i.severity === 'error').map(i => formatIssue(i)), ['8:12: policy entry 1: resource.verbs: expected an array of strings'])
  const good = parsePolicy(yaml.split('- resource:')[0] as string)
  t.same(good.entries, [{ index: 0, match: [], users: { roles: ['member'], projects: ['demo'] }, resourcePermissions: [{ key: 'default/pods', verbs: ['get', 'list'] }] }])
})

t.test('field names match case-insensitively, as Go encoding/json does, with a warning', async t => {
  const text = JSON.stringify([{ Resource: { Verbs: ['get'], resources: ['pods'], VERSION: '*', namespace: '*' }, match: [{ Type: 'user', values: ['a'] }] }])
  const parsed = parsePolicy(text)
  t.same(parsed.entries[0]?.resource, { verbs: ['get'], resources: ['pods'], version: '*', namespace: '*' })
  t.equal(parsed.entries[0]?.match[0]?.type, 'user')
  t.equal(warningsOf(text).filter(w => w.includes('case-insensitively')).length, 4)
})

t.test('warnings for what Go accepts but ignores', async t => {
  const text = JSON.stringify([
    { resource_permision: { '*/*': ['*'] } },
    { nonresource: { verbs: ['get'], path: '/x' }, match: [{ type: 'usr', values: ['a'] }] },
    { users: { roles: ['a'], project: ['x'] }, resource_permissions: { 'a/b/c/d': ['get'], "x/['a]": ['get'], 'ns/pods/log': ['get'] } },
    { users: { roles: ['a'], projects: ['p'] }, nonresource_permissions: { '/api/*': ['get'] } },
    { resource: { verbs: ['get'], resources: ['pods'], version: '*', namespace: '*' }, resource_permissions: {} },
    { nonresource: { verbs: ['get'] }, match: [] }
  ])
  const w = warningsOf(text).map(x => x.replace(/^\d+:\d+: /, ''))
  const expectIn = (re: RegExp, title: string): void => { t.ok(w.some(x => re.test(x)), title) }
  expectIn(/^policy entry 0: resource_permision: unknown field/, 'typo in a field name')
  expectIn(/^policy entry 0: entry has none of/, 'entry that allows nothing')
  expectIn(/^policy entry 1: match\[0\]\.type: unknown match type "usr"/, 'unknown match type')
  expectIn(/^policy entry 2: users\.project: unknown key/, 'typo in users')
  expectIn(/^policy entry 2: users\.projects: empty/, 'users without projects')
  expectIn(/^policy entry 2: resource_permissions\["a\/b\/c\/d"\]: key must be/, 'key with too many parts')
  expectIn(/^policy entry 2: resource_permissions\["x\/\['a\]"\]: .*never matches/, 'bad list')
  expectIn(/^policy entry 2: resource_permissions\["ns\/pods\/log"\]: names a subresource/, 'subresource key unknown to Go')
  expectIn(/^policy entry 3: nonresource_permissions\["\/api\/\*"\]: .*not a wildcard/, 'star in a v2 path')
  expectIn(/^policy entry 4: resource: ignored/, 'v1 shadowed by v2')
  expectIn(/^policy entry 5: nonresource\.path: missing/, 'nonresource without path')
  expectIn(/^policy entry 5: match: missing or empty/, 'v1 entry for everyone')
  t.same(errorsOf(text), [], 'none of these is an error: Go loads the file')
})

t.test('entries keep file order and v2 maps keep key order', async t => {
  const parsed = parsePolicy(JSON.stringify([{ users: { projects: ['p'] }, resource_permissions: { 'b/x': ['get'], 'a/x': ['list'] } }]))
  t.same(parsed.entries[0]?.resourcePermissions?.map(r => r.key), ['b/x', 'a/x'])
})
