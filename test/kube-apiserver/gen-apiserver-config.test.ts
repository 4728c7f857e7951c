// `k8s-keystone-auth gen apiserver-config` loaded by a real kube-apiserver: its
// AuthorizationConfiguration (--authorization-config) and the authentication flags it prints
// (--authentication-token-webhook-*, with the generated webhook kubeconfig) are what the API server
// starts with, our webhook behind them with the client certificate the kubeconfigs embed required.
// The API server evaluates the CEL matchConditions itself: the requests they exclude (service
// accounts, nodes, other system: users) never reach our webhook, counted in its metrics; those of
// other users do. Generated with --access-rules-enforce, so the first authorizer (before Node and
// RBAC, only for users with access rules) is shown too; the keystone authorizer is the same as
// without that flag (checked below). test/deploy/gen-apiserver-config.test.ts checks the files
// themselves.
import t from 'tap'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml } from 'yaml'
import { Agent, request } from 'undici'
import { whenKubeApiserver, freePort, run, startKubeApiserver, tokenKubeconfig, until, type KubeApiserver, type RunResult } from '../helpers/kube-apiserver.js'
import { testCerts } from '../helpers/certs.js'
import { loadSeed } from '../helpers/keystone.js'
import { startWebhook, type TestWebhook } from '../helpers/webhook.js'
import { kubectl, sandbox, writeKubeconfig, type Sandbox } from '../plugin/_support.js'
import { ACCESS_RULES_MATCH_CONDITIONS, MATCH_CONDITIONS } from '../../src/config/apiserver-config.js'
import { EXTRA_ACCESS_RULES } from '../../src/identity.js'

const BIN = fileURLToPath(new URL('../../bin/k8s-keystone-auth', import.meta.url))
whenKubeApiserver(tests)

/** Runs gen apiserver-config into a new directory, by default also its --config-dir (the paths in the files are real). */
async function gen (args: string[], configDir?: string): Promise<{ dir: string, flags: string[], authz: any }> {
  const dir = join(mkdtempSync(join(tmpdir(), 'ksa-gen-real-')), 'keystone-auth')
  const r = await run(BIN, ['gen', 'apiserver-config', '--out-dir', dir, '--config-dir', configDir ?? dir, ...args], { env: { PATH: process.env.PATH } })
  if (r.code !== 0) throw new Error(`gen apiserver-config: ${r.stderr}`)
  const flags = r.stdout.split('\n').map(l => l.trim()).filter(l => /^--[a-z-]+=/.test(l))
  return { dir, flags, authz: parseYaml(readFileSync(join(dir, 'authorization-config.yaml'), 'utf8')) }
}

function tests (): void {
  const seed = loadSeed()
  const certs = testCerts()
  let api: KubeApiserver
  let wh: TestWebhook
  let sb: Sandbox
  let generated: Awaited<ReturnType<typeof gen>>
  let plain: Awaited<ReturnType<typeof gen>>

  t.before(async () => {
    const port = await freePort()
    // The webhook's serving pair and kube-apiserver's client pair: the test CA's (the script's PKI
    // is made at its first start; these files exist before it).
    const args = ['--webhook-url', `https://127.0.0.1:${port}/webhook`, '--ca-file', certs.caFile, '--client-cert-file', certs.clientCertFile, '--client-key-file', certs.clientKeyFile]
    generated = await gen([...args, '--access-rules-enforce'])
    plain = await gen(args, generated.dir)
    const authzConfig = generated.flags.find(f => f.startsWith('--authorization-config='))?.split('=')[1]
    if (authzConfig === undefined) throw new Error(`no --authorization-config in ${generated.flags.join(' ')}`)
    const others = generated.flags.filter(f => !f.startsWith('--authorization-config='))
    if (!others.every(f => f.startsWith('--authentication-token-webhook-'))) throw new Error(`unexpected flags: ${others.join(' ')}`)
    // The script passes --authorization-config itself (and then no --authorization-mode); the rest as printed.
    api = await startKubeApiserver(t, 'gen', { env: { KUBE_DEV_AUTHORIZATION_CONFIG: authzConfig, KUBE_DEV_EXTRA: others.join(' ') } })
    const policy = join(mkdtempSync(join(tmpdir(), 'ksa-gen-policy-')), 'policy.json')
    writeFileSync(policy, JSON.stringify([{ resource: { verbs: ['get', 'list', 'watch'], resources: ['pods'], version: '*', namespace: 'default' }, match: [{ type: 'role', values: ['member'] }, { type: 'project', values: ['demo'] }] }]))
    // mtls: --client-ca-file is the test CA, which issued the client pair the kubeconfigs embed.
    wh = await startWebhook(['--listen', `127.0.0.1:${port}`, '--keystone-policy-file', policy, '--access-rules-service-type', 'kubernetes', '--access-rules-enforce'], { mtls: true })
    api.beforeStop(async () => await wh.close())
    if (!await until(async () => (await wh.get('/readyz')).status === 200)) throw new Error(`webhook not ready: ${(await wh.get('/readyz')).text}`)
    sb = sandbox()
    writeKubeconfig(sb.kubeconfig, api, {
      apiVersion: 'client.authentication.k8s.io/v1',
      env: { OS_AUTH_URL: seed.auth_url, OS_USERNAME: 'demo', OS_DOMAIN_NAME: 'Default', OS_PROJECT_NAME: 'demo', OS_PASSWORD: seed.users.demo?.password ?? '' }
    })
  })

  const sars = async (): Promise<number> => await wh.metric('k8s_keystone_auth_reviews_total', { kind: 'SubjectAccessReview' })
  const tokenReviews = async (): Promise<number> => await wh.metric('k8s_keystone_auth_reviews_total', { kind: 'TokenReview' })
  /** The SubjectAccessReviews and TokenReviews that reached our webhook while `fn` ran. */
  const reached = async (fn: () => Promise<RunResult>): Promise<{ r: RunResult, sar: number, tr: number }> => {
    const [s0, t0] = [await sars(), await tokenReviews()]
    const r = await fn()
    return { r, sar: await sars() - s0, tr: await tokenReviews() - t0 }
  }

  t.test('the API server starts with the generated files; the keystone authorizer is the one gen writes without --access-rules-enforce', async t => {
    t.same(generated.authz.authorizers.map((a: any) => a.name), ['keystone-access-rules', 'node', 'rbac', 'keystone'])
    t.same(generated.authz.authorizers.slice(1), plain.authz.authorizers, 'Node, RBAC and the keystone webhook as in the default output')
    t.same(generated.authz.authorizers[3].webhook.matchConditions, MATCH_CONDITIONS)
    t.same(generated.authz.authorizers[0].webhook.matchConditions, ACCESS_RULES_MATCH_CONDITIONS)
  })

  t.test('a Keystone user through the plugin: both webhooks of the generated files are asked (v1, mTLS)', async t => {
    const allowed = await reached(async () => await kubectl(['--request-timeout=60s', '-n', 'default', 'get', 'pods'], sb.env))
    t.equal(allowed.r.code, 0, allowed.r.stderr)
    t.ok(allowed.tr >= 1, `the generated authn kubeconfig reaches our webhook (${allowed.tr} TokenReviews)`)
    t.ok(allowed.sar >= 1, `the keystone authorizer asked our webhook (${allowed.sar} SubjectAccessReviews)`)
    t.ok(await wh.metric('k8s_keystone_auth_reviews_total', { kind: 'TokenReview', version: 'v1', outcome: 'authenticated' }) >= 1, 'TokenReview v1 (--authentication-token-webhook-version=v1)')
    t.ok(await wh.metric('k8s_keystone_auth_reviews_total', { kind: 'SubjectAccessReview', version: 'v1', outcome: 'allowed' }) >= 1, 'SubjectAccessReview v1, allowed by the policy')
    const denied = await reached(async () => await kubectl(['--request-timeout=60s', '-n', 'default', 'get', 'secrets'], sb.env))
    t.match(denied.r.stderr, /Forbidden/)
    t.ok(denied.sar >= 1, 'the denial came from our webhook')
  })

  t.test('matchConditions: service accounts, nodes and system: users never reach the webhook; other users do', async t => {
    t.equal((await api.kubectl(['-n', 'default', 'create', 'serviceaccount', 'robot'])).code, 0)
    const token = (await api.kubectl(['-n', 'default', 'create', 'token', 'robot'])).stdout.trim()
    // Its own kubeconfig: with the admin one, kubectl would present the admin certificate too.
    const kubeconfig = tokenKubeconfig(join(mkdtempSync(join(tmpdir(), 'ksa-gen-sa-')), 'kubeconfig'), api, token)
    const sa = await reached(async () => await api.kubectl(['--kubeconfig', kubeconfig, '-n', 'default', 'get', 'secrets']))
    t.match(sa.r.stderr, /Forbidden.*system:serviceaccount:default:robot/, 'a real service account token: refused by RBAC')
    t.equal(sa.sar, 0, 'service account: no SubjectAccessReview reached our webhook')
    t.equal(sa.tr, 0, 'and no TokenReview: the API server checks its own service-account tokens')

    const excluded: Array<[string, string[]]> = [
      ['an impersonated service account', ['--as', 'system:serviceaccount:kube-system:coredns']],
      ['the service-accounts group without the user prefix', ['--as', 'robot', '--as-group', 'system:serviceaccounts']],
      ['a node', ['--as', 'system:node:cp-1', '--as-group', 'system:nodes']],
      ['the nodes group only', ['--as', 'cp-1', '--as-group', 'system:nodes']],
      ['a system: user', ['--as', 'system:kube-scheduler']],
      ['anonymous', ['--as', 'system:anonymous']]
    ]
    for (const [what, as] of excluded) {
      const x = await reached(async () => await api.kubectl([...as, '-n', 'default', 'get', 'secrets']))
      t.match(x.r.stderr, /Forbidden/, `${what}: refused by Node and RBAC`)
      t.equal(x.sar, 0, `${what}: never reaches the webhook`)
    }
    const included: Array<[string, string[]]> = [
      ['a user without groups', ['--as', 'alice']],
      ['a user in a Keystone group', ['--as', 'bob', '--as-group', 'developers']]
    ]
    for (const [what, as] of included) {
      const x = await reached(async () => await api.kubectl([...as, '-n', 'default', 'get', 'secrets']))
      t.match(x.r.stderr, /Forbidden/, `${what}: denied`)
      t.ok(x.sar >= 1, `${what}: reaches the webhook (${x.sar})`)
    }
    // The API server's own count: the conditions were evaluated (an evaluation error would skip the
    // webhook too, by failurePolicy) and excluded the requests above.
    const metrics = (await api.kubectl(['get', '--raw', '/metrics'])).stdout
    const sum = (re: RegExp): number => metrics.split('\n').filter(l => re.test(l)).reduce((a, l) => a + Number(l.split(' ').pop()), 0)
    t.equal(sum(/^apiserver_authorization_match_condition_evaluation_errors_total\{/), 0, 'no CEL evaluation error')
    t.ok(sum(/^apiserver_authorization_match_condition_exclusions_total\{.*name="keystone"/) >= excluded.length + 1, 'the exclusions are the keystone authorizer\'s matchConditions at work')
  })

  t.test('the access-rules authorizer: asked before RBAC, and only about users with access rules', async t => {
    // kubectl 1.32 has no --as-user-extra: the impersonation headers by hand, as cluster-admin.
    const admin = new Agent({ connect: { ca: api.caPem, cert: readFileSync(api.adminCertFile), key: readFileSync(api.adminKeyFile) } })
    t.teardown(async () => await admin.close())
    const version = async (user: string, rules?: string): Promise<RunResult> => {
      const headers: Record<string, string> = { 'impersonate-user': user }
      // client-go's encoding of an extra key in a header name (the / is not allowed there).
      if (rules !== undefined) headers[`impersonate-extra-${EXTRA_ACCESS_RULES.replaceAll('/', '%2F')}`] = rules
      const res = await request(`${api.url}/version`, { dispatcher: admin, headers })
      const text = await res.body.text()
      return { code: res.statusCode === 200 ? 0 : res.statusCode, stdout: text, stderr: res.statusCode === 200 ? '' : text }
    }
    const none = await reached(async () => await version('carol'))
    t.equal(none.r.code, 0, none.r.stderr)
    t.equal(none.sar, 0, 'no access rules: RBAC allows /version and no webhook is asked')
    const allows = await reached(async () => await version('carol', 'GET /version'))
    t.equal(allows.r.code, 0, allows.r.stderr)
    t.ok(allows.sar >= 1, `with access rules: the first webhook is asked, before RBAC (${allows.sar})`)
    const denies = await reached(async () => await version('dave', 'GET /api/v1/namespaces/default/pods'))
    t.equal(denies.r.code, 403, 'what the rules do not allow is denied, though RBAC would allow it')
    t.match(denies.r.stderr, /forbidden/i)
    t.ok(denies.sar >= 1)
  })
}
