// SubjectAccessReview through the HTTPS webhook: policy file, captured apiserver requests,
// live reload, broken updates.
import t from 'tap'
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startWebhook } from '../helpers/webhook.js'

const FIXTURES = new URL('../fixtures/kube-apiserver-1.32/', import.meta.url)
const sar = (version: 'v1' | 'v1beta1', user: string, groups: string[], extra: Record<string, string[]>, attrs: object): object => ({
  apiVersion: `authorization.k8s.io/${version}`,
  kind: 'SubjectAccessReview',
  spec: { user, [version === 'v1' ? 'groups' : 'group']: groups, extra, ...attrs }
})

t.test('no policy: every well-formed review is 200, allowed false, never denied', async t => {
  const wh = await startWebhook()
  t.teardown(wh.close)
  for (const file of readdirSync(FIXTURES).filter(f => f.startsWith('sar-'))) {
    const captured = JSON.parse(readFileSync(new URL(file, FIXTURES), 'utf8'))
    for (const path of ['/webhook', '/authorize']) {
      const res = await wh.post(path, captured.body, captured.headers)
      t.equal(res.status, 200, `${file} on ${path}`)
      t.equal(res.body.apiVersion, captured.body.apiVersion)
      t.equal(res.body.kind, 'SubjectAccessReview')
      t.equal(res.body.status.allowed, false)
      t.notOk('denied' in res.body.status)
      t.notOk('spec' in res.body)
    }
  }
  const tr = await wh.post('/authorize', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: 'x' } })
  t.equal(tr.status, 400)
  t.match(tr.body.message, /only kind SubjectAccessReview/)
})

t.test('captured requests decided by a policy, v1 and v1beta1, reason given', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'ksa-policy-'))
  const policy = join(dir, 'policy.json')
  writeFileSync(policy, JSON.stringify([
    { users: { roles: ['member'], projects: ['p-123'] }, resource_permissions: { '*/pods': ['get', 'list', 'watch'], 'default/namespaces': ['get'] }, nonresource_permissions: { '/metrics': ['get'] } }
  ]))
  const wh = await startWebhook(['--keystone-policy-file', policy])
  t.teardown(wh.close)
  const want: Record<string, boolean> = {
    'sar-v1-list-pods-ns.json': true,
    'sar-v1-get-namespaces-ns.json': true,
    'sar-v1-get-secrets-ns.json': false,
    'sar-v1-list-configmaps-ns.json': false,
    'sar-v1-list-deployments-ns.json': false,
    'sar-v1-list-namespaces-cluster.json': false,
    'sar-v1-list-services-ns.json': false,
    'sar-v1-nonresource-get_metrics.json': true,
    'sar-v1beta1-list-namespaces-cluster.json': false,
    'sar-v1beta1-list-secrets-ns.json': false,
    'sar-v1beta1-nonresource-get_metrics.json': true
  }
  for (const [file, allowed] of Object.entries(want)) {
    const captured = JSON.parse(readFileSync(new URL(file, FIXTURES), 'utf8'))
    const res = await wh.post('/webhook', captured.body, captured.headers)
    t.equal(res.status, 200)
    t.equal(res.body.apiVersion, captured.body.apiVersion)
    t.equal(res.body.status.allowed, allowed, file)
    t.match(res.body.status.reason, allowed ? /^allowed by policy entry 0 \((resource|nonresource)_permissions "/ : /no policy entry matched/)
  }
  // Second round is served from the decision cache, with the same answers.
  const captured = JSON.parse(readFileSync(new URL('sar-v1-list-pods-ns.json', FIXTURES), 'utf8'))
  const again = await wh.post('/webhook', captured.body)
  t.equal(again.body.status.allowed, true)
  t.equal(again.headers['content-type'], 'application/json; charset=utf-8')
  // The cached decision is shared by both API versions; each answer keeps the version asked.
  const beta = { ...captured.body, apiVersion: 'authorization.k8s.io/v1beta1', spec: { ...captured.body.spec, group: captured.body.spec.groups, groups: undefined } }
  for (const body of [beta, captured.body, beta]) {
    const res = await wh.post('/webhook', body)
    t.same(res.body, { apiVersion: body.apiVersion, kind: 'SubjectAccessReview', status: { allowed: true, reason: 'allowed by policy entry 0 (resource_permissions "*/pods")' } })
  }
  t.ok(await wh.metric('k8s_keystone_auth_decision_cache_requests_total', { result: 'hit' }) >= 1)
  const metrics = await wh.get('/metrics')
  t.match(metrics.text, /k8s_keystone_auth_reviews_total\{kind="SubjectAccessReview",version="v1beta1",outcome="allowed"\} 3/)
})

t.test('policy file: live reload, broken update keeps the last good policy and says why', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'ksa-policy-'))
  const policy = join(dir, 'policy.json')
  const allowPods = [{ users: { roles: ['member'], projects: ['demo'] }, resource_permissions: { '*/pods': ['list'] } }]
  writeFileSync(policy, JSON.stringify(allowPods))
  // With the client CA and certificate: /readyz shows the policy check's detail to such a client.
  const wh = await startWebhook(['--keystone-policy-file', policy], { mtls: true })
  t.teardown(wh.close)
  const ask = async (resource: string): Promise<boolean> =>
    (await wh.post('/webhook', sar('v1', 'demo', ['g'], { 'alpha.kubernetes.io/identity/roles': ['member'], 'alpha.kubernetes.io/identity/project/name': ['demo'] }, { resourceAttributes: { namespace: 'demo', verb: 'list', resource, version: 'v1' } }))).body.status.allowed
  t.equal(await ask('pods'), true)
  t.equal(await ask('secrets'), false)

  writeFileSync(policy, JSON.stringify([{ users: { roles: ['member'], projects: ['demo'] }, resource_permissions: { '*/secrets': ['list'] } }]))
  const until = async (cond: () => Promise<boolean>): Promise<boolean> => {
    const deadline = Date.now() + 5000
    while (Date.now() < deadline) { if (await cond()) return true; await new Promise(resolve => setTimeout(resolve, 100)) }
    return false
  }
  t.ok(await until(async () => await ask('secrets')), 'the new policy applies without restart')
  t.equal(await ask('pods'), false, 'and the decision cache was flushed')

  writeFileSync(policy, '[{"users": {"roles": "member", "projects": ["demo"]}, "resource_permissions": {"*/pods": ["list"]}}]')
  t.ok(await until(async () => (await wh.get('/readyz')).body.checks.policy.detail.includes('last update rejected')), 'readiness detail says why')
  const ready = await wh.get('/readyz')
  t.equal(ready.status, 200, 'still ready: the last good policy is in effect')
  t.match(ready.body.checks.policy.detail, /policy entry 0: users\.roles/)
  t.equal(await ask('secrets'), true, 'last good policy still decides')
  t.equal(await wh.metric('k8s_keystone_auth_config_reloads_total', { config: 'policy', result: 'error' }), 1)
  t.equal(await wh.metric('k8s_keystone_auth_config_last_reload_successful', { config: 'policy' }), 0)
  t.ok(wh.logs.some(l => l.includes('"level":40') && /policy entry 0: users\.roles/.test(l)), 'a warning in the log names the entry')
})

t.test('a broken policy file at start-up stops the server with entry and field', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'ksa-policy-'))
  const policy = join(dir, 'policy.json')
  writeFileSync(policy, JSON.stringify([{ resource: { verbs: ['get'], resources: 'pods' }, match: [{ type: 'role', values: ['member'] }] }]))
  await t.rejects(startWebhook(['--keystone-policy-file', policy]), /policy entry 0: resource\.resources/)
})

t.test('malformed SubjectAccessReviews get 400 with a reason', async t => {
  const wh = await startWebhook()
  t.teardown(wh.close)
  const bad: Array<[object, RegExp]> = [
    [{ apiVersion: 'authorization.k8s.io/v2', kind: 'SubjectAccessReview', spec: {} }, /apiVersion/],
    [{ apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview' }, /spec/],
    [{ apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: { user: 'u' } }, /resourceAttributes or nonResourceAttributes/],
    [{ apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: { user: 'u', groups: 'g', resourceAttributes: {} } }, /groups/]
  ]
  for (const [body, reason] of bad) {
    const res = await wh.post('/webhook', body)
    t.equal(res.status, 400)
    t.match(res.body.message, reason)
  }
})

t.test('Go\'s doc example "!kube-system/*" does not reach cluster-scoped objects, nor users without a Keystone identity', async t => {
  // Attack kept as a regression test: before, a member of demo could create ClusterRoleBindings
  // (and so make itself cluster-admin) through this example of Go's own documentation, and a
  // certificate user named "alice" got alice's rights through a v1 user match.
  const dir = mkdtempSync(join(tmpdir(), 'ksa-policy-'))
  const policy = join(dir, 'policy.json')
  writeFileSync(policy, JSON.stringify([
    { users: { roles: ['member'], projects: ['demo'] }, resource_permissions: { '!kube-system/*': ['*'] } },
    { resource: { verbs: ['*'], resources: ['*'], version: '*', namespace: '*' }, match: [{ type: 'user', values: ['alice'] }] }
  ]))
  const wh = await startWebhook(['--keystone-policy-file', policy])
  t.teardown(wh.close)
  const member = { 'alpha.kubernetes.io/identity/project/name': ['demo'], 'alpha.kubernetes.io/identity/roles': ['member'], 'alpha.kubernetes.io/identity/user/domain/name': ['Default'] }
  const crb = { resourceAttributes: { verb: 'create', group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'clusterrolebindings' } }
  for (const version of ['v1', 'v1beta1'] as const) {
    const inNs = await wh.post('/webhook', sar(version, 'demo', [], member, { resourceAttributes: { verb: 'create', namespace: 'dev', version: 'v1', resource: 'rolebindings', group: 'rbac.authorization.k8s.io' } }))
    t.equal(inNs.body.status.allowed, true, `${version}: a namespace other than kube-system`)
    const res = await wh.post('/webhook', sar(version, 'demo', [], member, crb))
    t.equal(res.body.status.allowed, false, `${version}: create clusterrolebindings`)
    t.equal(res.body.status.reason, 'no policy entry matched')
    const cert = await wh.post('/webhook', { apiVersion: `authorization.k8s.io/${version}`, kind: 'SubjectAccessReview', spec: { user: 'alice', [version === 'v1' ? 'groups' : 'group']: ['system:authenticated'], ...crb } })
    t.equal(cert.status, 200)
    t.equal(cert.body.status.allowed, false, `${version}: a certificate user named alice`)
    t.match(cert.body.status.reason, /no Keystone identity/)
    const keystoneAlice = await wh.post('/webhook', sar(version, 'alice', [], { 'alpha.kubernetes.io/identity/user/domain/name': ['Default'] }, crb))
    t.equal(keystoneAlice.body.status.allowed, true, `${version}: the Keystone user alice, by the v1 user match`)
  }
  const loose = await startWebhook(['--keystone-policy-file', policy, '--authorization-loose-namespaces'])
  t.teardown(loose.close)
  t.equal((await loose.post('/webhook', sar('v1', 'demo', [], member, crb))).body.status.allowed, true, 'the opt-in loose mode keeps the old behaviour')
  t.ok(loose.logs.some(l => l.includes('grants more than the Go binary')), 'and says so at start')
})
