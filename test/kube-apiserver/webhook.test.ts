// Our webhook as a real kube-apiserver's authenticator and authorizer (v1beta1 reviews, the API
// server's default, as the Go binary is deployed), with mTLS: it serves the script's pki/webhook
// pair and requires the API server's client certificate (--client-ca-file). kubectl reaches the
// API server through our credential plugin with a seeded Keystone user. The policy comes from the
// ConfigMap of deploy/configmaps.yaml in that API server, read with the service account and RBAC of
// deploy/rbac.yaml, through a real list+watch: an applied edit changes the decisions, a broken
// edit keeps the last good policy.
import t from 'tap'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Agent, request } from 'undici'
import { whenKubeApiserver, freePort, startKubeApiserver, tokenKubeconfig, until, type KubeApiserver } from '../helpers/kube-apiserver.js'
import { loadSeed, passwordToken } from '../helpers/keystone.js'
import { startWebhook, tokenReview, type TestWebhook } from '../helpers/webhook.js'
import { kubectl, sandbox, writeKubeconfig, type Sandbox } from '../plugin/_support.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
whenKubeApiserver(tests)

function tests (): void {
  const seed = loadSeed()
  const demo = seed.users.demo as NonNullable<typeof seed.users.demo>
  let api: KubeApiserver
  let wh: TestWebhook
  let sb: Sandbox

  t.before(async () => {
    const port = await freePort()
    const url = `https://127.0.0.1:${port}/webhook`
    // Short API-server caches, so that a policy edit shows in the next few requests.
    api = await startKubeApiserver(t, 'webhook', {
      env: { KUBE_DEV_AUTHN_WEBHOOK: url, KUBE_DEV_AUTHZ_WEBHOOK: url, KUBE_DEV_WEBHOOK_VERSION: 'v1beta1', KUBE_DEV_AUTHN_CACHE_TTL: '1s', KUBE_DEV_AUTHZ_CACHE_TTLS: '1s 1s' }
    })
    const applied = await api.kubectl(['apply', '-f', join(ROOT, 'deploy/rbac.yaml'), '-f', join(ROOT, 'deploy/configmaps.yaml')])
    if (applied.code !== 0) throw new Error(`kubectl apply: ${applied.stderr}`)
    const token = await api.kubectl(['-n', 'kube-system', 'create', 'token', 'k8s-keystone-auth', '--duration=1h'])
    if (token.code !== 0) throw new Error(`kubectl create token: ${token.stderr}`)
    const kubeconfig = tokenKubeconfig(join(mkdtempSync(join(tmpdir(), 'ksa-sa-')), 'kubeconfig'), api, token.stdout.trim())
    wh = await startWebhook(['--listen', `127.0.0.1:${port}`, '--kubeconfig', kubeconfig, '--policy-configmap-name', 'k8s-auth-policy'], {
      mtls: true,
      tls: { certFile: api.webhookCertFile, keyFile: api.webhookKeyFile, caFile: api.caFile, clientCertFile: api.webhookClientCertFile, clientKeyFile: api.webhookClientKeyFile }
    })
    api.beforeStop(async () => await wh.close())
    if (!await until(async () => (await wh.get('/readyz')).status === 200)) throw new Error(`webhook not ready: ${(await wh.get('/readyz')).text}`)
    sb = sandbox()
    writeKubeconfig(sb.kubeconfig, api, {
      apiVersion: 'client.authentication.k8s.io/v1',
      env: { OS_AUTH_URL: seed.auth_url, OS_USERNAME: 'demo', OS_DOMAIN_NAME: 'Default', OS_PROJECT_NAME: 'demo', OS_PASSWORD: demo.password }
    })
  })

  const reviews = async (kind: string): Promise<number> => await wh.metric('k8s_keystone_auth_reviews_total', { kind })
  const asDemo = async (...args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> => await kubectl(['--request-timeout=60s', ...args], sb.env)

  t.test('kubectl through the plugin: the API server asks our webhook, and whoami is what it answered', async t => {
    const tokenReviews = await reviews('TokenReview')
    const r = await asDemo('auth', 'whoami', '-o', 'json')
    t.equal(r.code, 0, r.stderr)
    const seen = JSON.parse(r.stdout).status.userInfo
    t.ok(await reviews('TokenReview') > tokenReviews, 'the API server sent a TokenReview to our webhook')
    t.ok(await wh.metric('k8s_keystone_auth_reviews_total', { kind: 'TokenReview', version: 'v1beta1', outcome: 'authenticated' }) >= 1, 'in v1beta1, answered authenticated')
    // What our webhook answers for the same user and project, asked directly.
    const ours = (await wh.post('/webhook', tokenReview(await passwordToken(seed, 'demo', 'demo'), 'v1beta1'))).body.status.user
    t.equal(seen.username, 'demo')
    t.equal(seen.username, ours.username)
    t.equal(seen.uid, demo.id)
    t.equal(seen.uid, ours.uid)
    t.same(seen.groups, [...ours.groups, 'system:authenticated'], 'our groups (Keystone groups, project id), then the one the API server adds')
    t.ok(ours.groups.includes(seed.projects.demo?.id), 'the project id is among them')
    t.same(seen.extra, ours.extra, 'the extras (roles, project, domain) as we answered them')
    t.same(seen.extra['alpha.kubernetes.io/identity/project/name'], ['demo'])
    t.ok(seen.extra['alpha.kubernetes.io/identity/roles'].includes('member'))
  })

  t.test('what the policy allows succeeds; what it does not is Forbidden', async t => {
    const sars = await reviews('SubjectAccessReview')
    const pods = await asDemo('-n', 'default', 'get', 'pods')
    t.equal(pods.code, 0, `get pods: ${pods.stderr}`)
    const secrets = await asDemo('-n', 'default', 'get', 'secrets')
    t.not(secrets.code, 0)
    t.match(secrets.stderr, /Error from server \(Forbidden\): secrets is forbidden: User "demo" cannot list resource "secrets"/)
    t.ok(await reviews('SubjectAccessReview') >= sars + 2, 'both decisions came from our webhook (RBAC has no opinion on demo)')
    t.ok(await wh.metric('k8s_keystone_auth_reviews_total', { kind: 'SubjectAccessReview', version: 'v1beta1', outcome: 'denied' }) >= 1)
    const other = await asDemo('-n', 'kube-system', 'get', 'pods')
    t.match(other.stderr, /Forbidden/, 'the policy allows pods in default only')
  })

  t.test('mTLS: our webhook refuses a client without the API server\'s client certificate', async t => {
    const body = JSON.stringify(tokenReview('not-a-token', 'v1beta1'))
    const bare = new Agent({ connect: { ca: api.caPem } })
    const other = new Agent({ connect: { ca: api.caPem, cert: readFileSync(api.webhookCertFile), key: readFileSync(api.webhookKeyFile) } })
    t.teardown(async () => { await bare.close(); await other.close() })
    const res = await request(wh.url + '/webhook', { method: 'POST', dispatcher: bare, headers: { 'content-type': 'application/json' }, body })
    t.equal(res.statusCode, 401, 'no client certificate: 401')
    t.match(await res.body.text(), /client certificate signed by --client-ca-file is required/)
    // The serving certificate is from the same CA, but not for client auth.
    const serving = await request(wh.url + '/webhook', { method: 'POST', dispatcher: other, headers: { 'content-type': 'application/json' }, body })
    t.equal(serving.statusCode, 401, 'a serverAuth-only certificate of the same CA: 401')
    await serving.body.text()
    const withCert = await wh.post('/webhook', tokenReview('not-a-token', 'v1beta1'))
    t.equal(withCert.status, 200, 'with the API server\'s client certificate: answered')
    t.equal(withCert.body.status.authenticated, false)
  })

  t.test('the policy ConfigMap through a real watch: an applied edit changes the decision, a broken one keeps the last good', async t => {
    const cm = (policies: string): string => JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'k8s-auth-policy', namespace: 'kube-system' }, data: { policies } })
    const apply = async (policies: string): Promise<void> => {
      const r = await api.kubectl(['apply', '-f', '-'], { input: cm(policies) })
      t.equal(r.code, 0, `kubectl apply ${r.stderr}`.trim())
    }
    const allowed = async (resource: string): Promise<boolean> => (await asDemo('-n', 'default', 'get', resource)).code === 0
    const rule = (resources: string[]): object => ({ resource: { verbs: ['get', 'list', 'watch'], resources, version: '*', namespace: 'default' }, match: [{ type: 'role', values: ['member'] }, { type: 'project', values: ['demo'] }] })
    const reloads = async (result: string): Promise<number> => await wh.metric('k8s_keystone_auth_config_reloads_total', { config: 'policy', result })

    t.equal(await allowed('services'), false, 'deploy/configmaps.yaml\'s policy: no services')
    const ok0 = await reloads('ok')
    await apply(JSON.stringify([rule(['pods', 'services'])]))
    t.ok(await until(async () => await allowed('services')), 'after kubectl apply, services are allowed (polled)')
    t.ok(await reloads('ok') > ok0, 'the edit came through the watch')

    await apply('[{"resource": {"verbs": ["list"]}, "match": [')
    t.ok(await until(async () => await reloads('error') >= 1), 'the broken edit is seen and refused')
    t.match((await wh.get('/readyz')).body.checks['policy-configmap'].detail, /refused edit/, 'readiness detail names the refused edit')
    t.equal(await allowed('services'), true, 'the last good policy stays in effect')
    t.equal(await allowed('pods'), true)
    t.equal(await allowed('secrets'), false)

    await apply(JSON.stringify([rule(['pods'])]))
    t.ok(await until(async () => !await allowed('services')), 'a later good edit applies again: services forbidden once more')
    t.equal(await allowed('pods'), true)
    t.equal(await wh.metric('k8s_keystone_auth_kubernetes_requests_total', { status: '403' }), 0, 'deploy/rbac.yaml lets the service account list and watch the ConfigMap')
    t.ok(await wh.metric('k8s_keystone_auth_kubernetes_requests_total', { verb: 'watch', resource: 'configmaps', status: '200' }) >= 1, 'a watch was open')
  })
}
