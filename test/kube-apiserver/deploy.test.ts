// deploy/ against a real kube-apiserver:
// - deploy/rbac.yaml and deploy/configmaps.yaml applied, and our server run with that service
//   account's token (as the DaemonSet runs it, in service mode, with both ConfigMaps): a first
//   login creates the project's namespace and RoleBindings in the real API server, the RoleBindings
//   work in real RBAC, and the reconcile removes the binding of a role taken away in Keystone and
//   labels the namespace of a deleted project. Every call sync, reconcile and the ConfigMap watch
//   make is allowed by deploy/rbac.yaml: no 403, each verb seen with a success.
// - Every manifest of deploy/ (the kustomize base, each component, the static pod) passes
//   `kubectl apply --dry-run=server` (strict field validation, admission). The cert-manager.io
//   objects are left out: this API server has no cert-manager CRDs (test/deploy/manifests.test.ts
//   holds them to a strict list of the fields used).
import t from 'tap'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'
import { whenKubeApiserver, run, startKubeApiserver, tokenKubeconfig, until, type KubeApiserver } from '../helpers/kube-apiserver.js'
import { adminToken, keystoneApi, loadSeed } from '../helpers/keystone.js'
import { keystoneFetch } from '../helpers/keystone-fetch.js'
import { startWebhook, tokenReview, type TestWebhook } from '../helpers/webhook.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const DEPLOY = join(ROOT, 'deploy')
whenKubeApiserver(tests)

function tests (): void {
  const seed = loadSeed()
  let api: KubeApiserver
  let wh: TestWebhook
  let admin: string

  t.before(async () => {
    admin = await adminToken(seed)
    api = await startKubeApiserver(t, 'deploy')
    const applied = await api.kubectl(['apply', '-f', join(DEPLOY, 'rbac.yaml'), '-f', join(DEPLOY, 'configmaps.yaml')])
    if (applied.code !== 0) throw new Error(`kubectl apply: ${applied.stderr}`)
    // A ClusterRole for a Keystone role, as an operator makes them (deploy/rbac.yaml's comment).
    const role = await api.kubectl(['create', 'clusterrole', 'k8s-viewer', '--verb=get,list', '--resource=pods'])
    if (role.code !== 0) throw new Error(`kubectl create clusterrole: ${role.stderr}`)
    const token = await api.kubectl(['-n', 'kube-system', 'create', 'token', 'k8s-keystone-auth', '--duration=1h'])
    if (token.code !== 0) throw new Error(`kubectl create token: ${token.stderr}`)
    const dir = mkdtempSync(join(tmpdir(), 'ksa-deploy-'))
    const kubeconfig = tokenKubeconfig(join(dir, 'kubeconfig'), api, token.stdout.trim())
    // Service mode (the reconcile needs it): an application credential of the admin user, as in test/sync/reconcile.test.ts.
    const adminId = seed.users.admin?.id as string
    const cred = (await keystoneApi(seed, admin, 'POST', `/users/${adminId}/application_credentials`, { application_credential: { name: `ksa-kas-${process.pid}-${Date.now()}` } })).body.application_credential
    t.teardown(async () => { await keystoneApi(seed, admin, 'DELETE', `/users/${adminId}/application_credentials/${cred.id as string}`) })
    writeFileSync(join(dir, 'secret'), cred.secret)
    wh = await startWebhook(['--kubeconfig', kubeconfig, '--policy-configmap-name', 'k8s-auth-policy', '--sync-configmap-name', 'keystone-sync-policy',
      '--service-credential-id', cred.id, '--service-credential-secret-file', join(dir, 'secret'), '--sync-reconcile-interval', '1s'])
    api.beforeStop(async () => await wh.close())
    if (!await until(async () => (await wh.get('/readyz')).status === 200)) throw new Error(`webhook not ready: ${(await wh.get('/readyz')).text}`)
  })

  /** A new Keystone user with `roles` on a new project, and a login to it. */
  const member = async (t: Tap, tag: string, roles: string[]): Promise<{ userId: string, userName: string, projectId: string, namespace: string, login: () => Promise<string> }> => {
    const name = `kas-${tag}-${process.pid}-${Date.now() % 100_000}`
    const project = (await keystoneApi(seed, admin, 'POST', '/projects', { project: { name, domain_id: 'default' } })).body.project
    const user = (await keystoneApi(seed, admin, 'POST', '/users', { user: { name, domain_id: 'default', password: `${name}-pw` } })).body.user
    for (const r of roles) t.equal((await keystoneApi(seed, admin, 'PUT', `/projects/${project.id as string}/users/${user.id as string}/roles/${seed.roles[r]?.id ?? ''}`)).status, 204, `${r} on ${name}`)
    t.teardown(async () => {
      await keystoneApi(seed, admin, 'DELETE', `/users/${user.id as string}`)
      await keystoneApi(seed, admin, 'PATCH', `/projects/${project.id as string}`, { project: { enabled: false } })
      await keystoneApi(seed, admin, 'DELETE', `/projects/${project.id as string}`)
    })
    const login = async (): Promise<string> => {
      const res = await keystoneFetch(`${seed.auth_url}/auth/tokens?nocatalog`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { id: user.id, password: `${name}-pw` } } }, scope: { project: { id: project.id } } } }) })
      if (res.status !== 201) throw new Error(`login of ${name}: ${res.status}`)
      return res.headers.get('x-subject-token') as string
    }
    // deploy/configmaps.yaml's sync config: namespace-format "%n-%i".
    return { userId: user.id, userName: name, projectId: project.id, namespace: `${name}-${project.id as string}`, login }
  }
  type Tap = Pick<typeof t, 'teardown' | 'equal'>

  const getJson = async (...args: string[]): Promise<any> => {
    const r = await api.kubectl(['get', ...args, '-o', 'json'])
    return r.code === 0 ? JSON.parse(r.stdout) : undefined
  }
  const bindings = async (ns: string): Promise<string[]> => ((await getJson('-n', ns, 'rolebindings'))?.items ?? []).map((b: any) => b.metadata.name).sort()

  t.test('sync with the service account of deploy/rbac.yaml: a first login makes the namespace and RoleBindings in the real API server', async t => {
    const u = await member(t, 'sync', ['member', 'k8s-viewer'])
    const res = await wh.post('/webhook', tokenReview(await u.login()))
    t.equal(res.body.status.authenticated, true)
    t.ok(res.body.status.user.groups.includes('keystone-k8s-viewers'), 'the role mapping of the sync ConfigMap (read through the watch) applies')
    // Sync finishes before the review is answered: no polling.
    const ns = await getJson('namespace', u.namespace)
    t.ok(ns, `namespace ${u.namespace} exists`)
    t.equal(ns?.metadata.labels['app.kubernetes.io/managed-by'], 'k8s-keystone-auth')
    t.same(await bindings(u.namespace), [`${u.userId}_k8s-viewer`, `${u.userId}_member`, `${u.userId}_reader`].sort(), 'one RoleBinding per Keystone role (reader implied by member)')
    const rb = await getJson('-n', u.namespace, 'rolebinding', `${u.userId}_k8s-viewer`)
    t.same(rb.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'k8s-viewer' })
    t.same(rb.subjects, [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: u.userName }])
    t.equal(rb.metadata.annotations['k8s-keystone-auth/project-id'], u.projectId)
    // Real RBAC reads the binding: the user may now list pods in its namespace, and only there.
    const can = await api.kubectl(['auth', 'can-i', 'list', 'pods', '-n', u.namespace, '--as', u.userName])
    t.match(can.stdout, /^yes\b/, 'RBAC allows what the bound ClusterRole grants')
    const elsewhere = await api.kubectl(['auth', 'can-i', 'list', 'pods', '-n', 'default', '--as', u.userName])
    t.match(elsewhere.stdout, /^no\b/, 'and only in the project\'s namespace')

    // The reconcile (every 1 s, service mode): the role taken away in Keystone loses its binding.
    t.equal((await keystoneApi(seed, admin, 'DELETE', `/projects/${u.projectId}/users/${u.userId}/roles/${seed.roles['k8s-viewer']?.id ?? ''}`)).status, 204)
    t.ok(await until(async () => !(await bindings(u.namespace)).includes(`${u.userId}_k8s-viewer`)), 'the reconcile deletes the binding of the removed role (polled)')
    t.same(await bindings(u.namespace), [`${u.userId}_member`, `${u.userId}_reader`].sort(), 'the bindings of the roles still held stay')
    t.ok(await until(async () => ((await getJson('-n', u.namespace, 'events'))?.items ?? []).some((e: any) => e.reason === 'KeystoneRoleRevoked')), 'an Event says why')
    t.ok(await until(async () => /^no\b/.test((await api.kubectl(['auth', 'can-i', 'list', 'pods', '-n', u.namespace, '--as', u.userName])).stdout)), 'and RBAC no longer allows it')
  })

  t.test('reconcile: a deleted project\'s bindings go and its namespace is labelled orphaned, not deleted', async t => {
    const u = await member(t, 'gone', ['member'])
    t.equal((await wh.post('/webhook', tokenReview(await u.login()))).body.status.authenticated, true)
    t.same(await bindings(u.namespace), [`${u.userId}_member`, `${u.userId}_reader`].sort())
    // Deleted while enabled (Keystone allows it for projects): disabled first, a reconcile pass in
    // between would remove the bindings as project_disabled, and the namespace would never be
    // labelled (docs/kubernetes/sync.md says so).
    t.equal((await keystoneApi(seed, admin, 'DELETE', `/projects/${u.projectId}`)).status, 204)
    t.ok(await until(async () => (await getJson('namespace', u.namespace))?.metadata.labels['k8s-keystone-auth/orphaned'] === 'true'), 'the namespace is labelled orphaned (polled)')
    t.same(await bindings(u.namespace), [], 'its bindings are gone')
    // About a cluster-scoped object (the Namespace), so in `default`: kube-apiserver refuses it in the namespace itself (422).
    t.ok(await until(async () => ((await getJson('-n', 'default', 'events'))?.items ?? []).some((e: any) => e.reason === 'KeystoneProjectDeleted' && e.involvedObject.name === u.namespace)), 'an Event about the Namespace says why')
  })

  t.test('deploy/rbac.yaml allows every call sync, the reconcile and the ConfigMap watch made', async t => {
    const calls = await wh.server.metrics.registry.getSingleMetric('k8s_keystone_auth_kubernetes_requests_total')?.get()
    const seen = (calls?.values ?? []).filter(v => v.value > 0).map(v => `${String(v.labels.verb)} ${String(v.labels.resource)} ${String(v.labels.status)}`).sort()
    t.comment(`Kubernetes calls: ${seen.join(', ')}`)
    t.same(seen.filter(s => / (401|403)$/.test(s)), [], 'no call was refused (401/403)')
    t.same(seen.filter(s => !/ (2\d\d|404)$/.test(s)), [], 'every call succeeded (a 404 is the answer of a get for a namespace not made yet)')
    for (const call of ['list configmaps', 'watch configmaps', 'get namespaces', 'create namespaces', 'patch namespaces', 'list rolebindings', 'create rolebindings', 'delete rolebindings', 'create events']) {
      t.ok(seen.some(s => s.startsWith(`${call} `)), `${call}: made`)
    }
    t.same(wh.logs.filter(l => /forbidden|"status":403/i.test(l)), [], 'no Forbidden in the server\'s log')
  })

  t.test('every manifest of deploy/ passes kubectl apply --dry-run=server', async t => {
    const dryRun = async (what: string, yaml: string): Promise<void> => {
      const r = await api.kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', '-'], { input: yaml })
      t.equal(r.code, 0, `${what}: ${r.stderr.trim() || r.stdout.trim().split('\n').join('; ')}`)
    }
    const kustomize = async (dir: string): Promise<string> => {
      const r = await run('kubectl', ['kustomize', dir])
      if (r.code !== 0) throw new Error(`kubectl kustomize ${dir}: ${r.stderr}`)
      return r.stdout
    }
    /** The objects of a build but the cert-manager.io ones (no CRDs here), and how many were left out. */
    const withoutCertManager = (yaml: string): { yaml: string, left: number } => {
      const docs = parseAllDocuments(yaml).map(d => d.toJS()).filter(d => d !== null)
      const kept = docs.filter(d => !String(d.apiVersion).startsWith('cert-manager.io/'))
      return { yaml: kept.map(d => JSON.stringify(d)).join('\n'), left: docs.length - kept.length }
    }
    const overlay = async (components: string[]): Promise<string> => {
      const dir = mkdtempSync(join(tmpdir(), 'ksa-dry-'))
      cpSync(DEPLOY, join(dir, 'deploy'), { recursive: true })
      mkdirSync(join(dir, 'o'))
      writeFileSync(join(dir, 'o/kustomization.yaml'), ['apiVersion: kustomize.config.k8s.io/v1beta1', 'kind: Kustomization', 'resources:', '- ../deploy',
        'components:', ...components.map(c => `- ../deploy/${c}`), ''].join('\n'))
      return await kustomize(join(dir, 'o'))
    }
    await dryRun('deploy/ (kustomize base)', await kustomize(DEPLOY))
    for (const components of [['service'], ['cert-manager'], ['cert-manager', 'service']]) {
      const { yaml, left } = withoutCertManager(await overlay(components))
      if (left > 0) t.comment(`deploy/ + ${components.join(' + ')}: ${left} cert-manager.io objects not sent (no cert-manager CRDs in this API server)`)
      await dryRun(`deploy/ + ${components.join(' + ')}`, yaml)
    }
    // A static pod's mirror pod names the default service account, which kube-controller-manager
    // creates in a real cluster; this API server runs without one.
    t.equal((await api.kubectl(['-n', 'kube-system', 'create', 'serviceaccount', 'default'])).code, 0)
    await dryRun('deploy/static-pod/k8s-keystone-auth.yaml', readFileSync(join(DEPLOY, 'static-pod/k8s-keystone-auth.yaml'), 'utf8'))
    // The check can fail: a field kube-apiserver does not know is refused.
    const typo = (await kustomize(DEPLOY)).replace('readOnlyRootFilesystem', 'readOnlyRootFileSystem')
    const refused = await api.kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', '-'], { input: typo })
    t.not(refused.code, 0, 'a misspelt field is refused')
    t.match(refused.stderr, /strict decoding error: unknown field "spec\.template\.spec\.containers\[0\]\.securityContext\.readOnlyRootFileSystem"/)
  })
}
