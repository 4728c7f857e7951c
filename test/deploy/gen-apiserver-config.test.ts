// `k8s-keystone-auth gen apiserver-config`: what it writes is what kube-apiserver loads.
// - The webhook kubeconfigs load with kubectl (client-go's loader, the one kube-apiserver uses for
//   webhook kubeconfigs), contain only kubeconfig v1 fields, never insecure-skip-tls-verify, and
//   their TLS material works: kubectl reaches our real server (client certificate required) with
//   them, and fails with another CA or without the client certificate.
// - The AuthorizationConfiguration is checked against apiserver.config.k8s.io v1/v1beta1 (field
//   names and the validation rules of kube-apiserver's ValidateAuthorizationConfiguration,
//   transcribed below: no maintained JSON schema of this file exists) for every target version.
//   That a real kube-apiserver loads it and that its CEL matchConditions keep service accounts,
//   nodes and system: users away from the webhook is shown by
//   test/kube-apiserver/gen-apiserver-config.test.ts (the apiserver tier).
import t from 'tap'
import { execFile, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { makeCerts, testCerts } from '../helpers/certs.js'
import { parseFlags } from '../../src/config/flags.js'
import { SERVER_FLAGS } from '../../src/cli/server-flags.js'
import { serverOptionsFrom } from '../../src/cli/k8s-keystone-auth.js'
import { createLogger } from '../../src/log.js'
import { startServer } from '../../src/server/start/serve.js'
import { ACCESS_RULES_MATCH_CONDITIONS, MATCH_CONDITIONS } from '../../src/config/apiserver-config.js'

const exec = promisify(execFile)
const BIN = fileURLToPath(new URL('../../bin/k8s-keystone-auth', import.meta.url))
const certs = testCerts()

function gen (args: string[]): { status: number | null, stdout: string, stderr: string, dir: string } {
  const dir = join(mkdtempSync(join(tmpdir(), 'ksa-gen-')), 'out')
  const hasOut = args.includes('--out-dir')
  const r = spawnSync('env', ['-u', 'NODE_OPTIONS', BIN, 'gen', 'apiserver-config', ...(hasOut ? [] : ['--out-dir', dir]), ...args],
    { env: { PATH: process.env.PATH }, encoding: 'utf8', timeout: 20_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, dir }
}

// kubeconfig v1 (k8s.io/client-go/tools/clientcmd/api/v1 types), strict.
const Cluster = z.strictObject({
  server: z.url(),
  'tls-server-name': z.string().optional(),
  'insecure-skip-tls-verify': z.boolean().optional(),
  'certificate-authority': z.string().optional(),
  'certificate-authority-data': z.string().optional(),
  'proxy-url': z.string().optional(),
  'disable-compression': z.boolean().optional()
})
const AuthInfo = z.strictObject({
  'client-certificate': z.string().optional(),
  'client-certificate-data': z.string().optional(),
  'client-key': z.string().optional(),
  'client-key-data': z.string().optional(),
  token: z.string().optional(),
  tokenFile: z.string().optional()
})
const Kubeconfig = z.strictObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Config'),
  preferences: z.strictObject({}).optional(),
  clusters: z.array(z.strictObject({ name: z.string(), cluster: Cluster })).min(1),
  users: z.array(z.strictObject({ name: z.string(), user: AuthInfo })),
  contexts: z.array(z.strictObject({ name: z.string(), context: z.strictObject({ cluster: z.string(), user: z.string(), namespace: z.string().optional() }) })).min(1),
  'current-context': z.string().min(1)
})

// apiserver.config.k8s.io AuthorizationConfiguration, strict, with kube-apiserver's validation.
const goDuration = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/
const durMs = (s: string): number => {
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
  let total = 0
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) total += Number(m[1]) * (units[m[2] as string] as number)
  return total
}
const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
function authorizationConfigSchema (withCacheFields: boolean) {
  const webhook = z.strictObject({
    authorizedTTL: z.string().regex(goDuration).refine(d => durMs(d) > 0, 'authorizedTTL must be > 0'),
    unauthorizedTTL: z.string().regex(goDuration).refine(d => durMs(d) > 0, 'unauthorizedTTL must be > 0'),
    ...(withCacheFields ? { cacheAuthorizedRequests: z.boolean().optional(), cacheUnauthorizedRequests: z.boolean().optional() } : {}),
    timeout: z.string().regex(goDuration).refine(d => durMs(d) > 0 && durMs(d) <= 30_000, 'timeout must be > 0 and <= 30s'),
    subjectAccessReviewVersion: z.enum(['v1', 'v1beta1']),
    matchConditionSubjectAccessReviewVersion: z.enum(['v1']),
    failurePolicy: z.enum(['NoOpinion', 'Deny']),
    connectionInfo: z.strictObject({ type: z.enum(['KubeConfigFile', 'InClusterConfig']), kubeConfigFile: z.string().optional() })
      .refine(c => c.type === 'KubeConfigFile' ? c.kubeConfigFile?.startsWith('/') === true : c.kubeConfigFile === undefined, 'kubeConfigFile: absolute path required for KubeConfigFile, forbidden otherwise'),
    matchConditions: z.array(z.strictObject({ expression: z.string().min(1) })).max(64)
      .refine(a => new Set(a.map(x => x.expression)).size === a.length, 'duplicate matchCondition')
  })
  return z.strictObject({
    apiVersion: z.enum(['apiserver.config.k8s.io/v1', 'apiserver.config.k8s.io/v1beta1']),
    kind: z.literal('AuthorizationConfiguration'),
    authorizers: z.array(z.strictObject({
      type: z.enum(['Node', 'RBAC', 'Webhook', 'ABAC', 'AlwaysAllow', 'AlwaysDeny']),
      name: z.string().max(253).regex(dns1123Subdomain),
      webhook: webhook.optional()
    }).refine(a => (a.type === 'Webhook') === (a.webhook !== undefined), 'webhook is required for type Webhook and forbidden otherwise')).min(1)
      .refine(a => new Set(a.map(x => x.name)).size === a.length, 'authorizer names must be unique')
      .refine(a => ['Node', 'RBAC', 'ABAC', 'AlwaysAllow', 'AlwaysDeny'].every(ty => a.filter(x => x.type === ty).length <= 1), 'non-webhook types at most once')
  })
}

t.test('default run: files, modes, flags, and nothing insecure', async t => {
  const r = gen(['--ca-file', certs.caFile, '--client-cert-file', certs.clientCertFile, '--client-key-file', certs.clientKeyFile])
  t.equal(r.status, 0, r.stderr)
  t.equal(r.stderr, '')
  for (const f of ['authn-webhook.kubeconfig', 'authz-webhook.kubeconfig', 'authorization-config.yaml']) t.ok(existsSync(join(r.dir, f)), `${f} written`)
  t.equal(statSync(r.dir).mode & 0o777, 0o700, 'out dir 0700')
  t.equal(statSync(join(r.dir, 'authn-webhook.kubeconfig')).mode & 0o777, 0o600, 'kubeconfig with a client key is 0600')
  t.equal(statSync(join(r.dir, 'authz-webhook.kubeconfig')).mode & 0o777, 0o600)
  // Every printed flag that names a file names one that was written, under --config-dir.
  const flags = r.stdout.split('\n').map(l => l.trim()).filter(l => l.startsWith('--') && l.includes('='))
  t.ok(flags.includes('--authentication-token-webhook-version=v1'))
  t.ok(flags.includes('--authentication-token-webhook-cache-ttl=10s'))
  t.ok(flags.some(f => f === '--authorization-config=/etc/kubernetes/keystone-auth/authorization-config.yaml'))
  for (const f of flags.filter(x => x.includes('/etc/kubernetes/keystone-auth/'))) {
    t.ok(existsSync(join(r.dir, f.split('/').pop() as string)), `${f} names a written file`)
  }
  t.notOk(flags.some(f => f.startsWith('--authorization-mode=')), '--authorization-mode conflicts with --authorization-config')
  t.match(r.stdout, /remove these if present[\s\S]*--authorization-mode/)
  t.match(r.stdout, /AuthenticationConfiguration/, 'says why authn uses flags')
  t.match(r.stdout, /IP:127\.0\.0\.1 in its subjectAltName/, 'names the SAN the serving certificate needs')
  for (const f of ['authn-webhook.kubeconfig', 'authz-webhook.kubeconfig', 'authorization-config.yaml']) {
    t.notMatch(readFileSync(join(r.dir, f), 'utf8'), /insecure/i, `${f}: no insecure-skip-tls-verify`)
  }
})

t.test('webhook kubeconfigs: kubeconfig v1, loadable by client-go, with the given CA and client certificate', async t => {
  const r = gen(['--ca-file', certs.caFile, '--client-cert-file', certs.clientCertFile, '--client-key-file', certs.clientKeyFile, '--webhook-url', 'https://127.0.0.1:8443/webhook'])
  t.equal(r.status, 0, r.stderr)
  for (const f of ['authn-webhook.kubeconfig', 'authz-webhook.kubeconfig']) {
    const file = join(r.dir, f)
    const kc = Kubeconfig.parse(parseYaml(readFileSync(file, 'utf8')))
    const { stdout } = await exec('kubectl', ['config', 'view', '--kubeconfig', file, '--raw', '-o', 'json'])
    const loaded = JSON.parse(stdout)
    const ctx = loaded.contexts.find((c: any) => c.name === loaded['current-context'])
    t.ok(ctx, `${f}: current-context exists`)
    const cluster = loaded.clusters.find((c: any) => c.name === ctx.context.cluster).cluster
    const user = loaded.users.find((u: any) => u.name === ctx.context.user).user
    t.equal(cluster.server, 'https://127.0.0.1:8443/webhook')
    t.equal(Buffer.from(cluster['certificate-authority-data'], 'base64').toString(), readFileSync(certs.caFile, 'utf8'), 'CA data is the CA file')
    t.equal(Buffer.from(user['client-certificate-data'], 'base64').toString(), readFileSync(certs.clientCertFile, 'utf8'))
    t.equal(Buffer.from(user['client-key-data'], 'base64').toString(), readFileSync(certs.clientKeyFile, 'utf8'))
    t.notOk('insecure-skip-tls-verify' in cluster)
    t.equal(kc.clusters.length, 1)
  }
  const noClient = gen(['--ca-file', certs.caFile])
  t.equal(noClient.status, 0, noClient.stderr)
  const kc = Kubeconfig.parse(parseYaml(readFileSync(join(noClient.dir, 'authn-webhook.kubeconfig'), 'utf8')))
  t.same(kc.users[0]?.user, {}, 'no client certificate: no credentials')
  t.equal(statSync(join(noClient.dir, 'authn-webhook.kubeconfig')).mode & 0o777, 0o644)
  t.match(noClient.stderr, /^warning: no --client-cert-file\/--client-key-file: .*--client-ca-file \(as deploy\/ does\) refuses its reviews \(401\)/, 'without a client pair: a warning says what it means')
  t.match(noClient.stdout, /No client certificate/)
})

t.test('--embed-client-cert=false: the kubeconfigs name the client pair by path, written next to them', async t => {
  const r = gen(['--ca-file', certs.caFile, '--client-cert-file', certs.clientCertFile, '--client-key-file', certs.clientKeyFile, '--embed-client-cert=false', '--config-dir', '/etc/kubernetes/keystone-auth'])
  t.equal(r.status, 0, r.stderr)
  t.equal(r.stderr, '')
  t.equal(readFileSync(join(r.dir, 'apiserver-webhook-client.crt'), 'utf8'), readFileSync(certs.clientCertFile, 'utf8'), 'the certificate, as given')
  t.equal(readFileSync(join(r.dir, 'apiserver-webhook-client.key'), 'utf8'), readFileSync(certs.clientKeyFile, 'utf8'), 'the key, as given')
  t.equal(statSync(join(r.dir, 'apiserver-webhook-client.key')).mode & 0o777, 0o600, 'key 0600')
  for (const f of ['authn-webhook.kubeconfig', 'authz-webhook.kubeconfig']) {
    const text = readFileSync(join(r.dir, f), 'utf8')
    const kc = Kubeconfig.parse(parseYaml(text))
    t.same(kc.users[0]?.user, {
      'client-certificate': '/etc/kubernetes/keystone-auth/apiserver-webhook-client.crt',
      'client-key': '/etc/kubernetes/keystone-auth/apiserver-webhook-client.key'
    }, `${f}: absolute paths under --config-dir`)
    t.notMatch(text, /PRIVATE KEY|client-key-data/, `${f}: no key inside`)
    t.equal(statSync(join(r.dir, f)).mode & 0o777, 0o644, `${f}: 0644 (it holds no secret)`)
  }
  t.match(r.stdout, /apiserver-webhook-client\.crt[\s\S]*apiserver-webhook-client\.key/, 'listed among the files to copy')
  const bad = gen(['--ca-file', certs.caFile, '--embed-client-cert=false'])
  t.equal(bad.status, 2)
  t.match(bad.stderr, /--embed-client-cert=false needs --client-cert-file/)
})

t.test('the kubeconfig\'s TLS material works against the real server (client certificate required)', async t => {
  const opts = serverOptionsFrom(parseFlags(SERVER_FLAGS, ['--listen', '127.0.0.1:0', '--tls-cert-file', certs.certFile,
    '--tls-private-key-file', certs.keyFile, '--keystone-url', 'http://127.0.0.1:9/v3', '--client-ca-file', certs.caFile], {}))
  const server = await startServer(opts, { env: {}, logger: createLogger({ level: 'silent' }) })
  t.teardown(async () => await server.close())
  const body = join(mkdtempSync(join(tmpdir(), 'ksa-tr-')), 'tr.json')
  writeFileSync(body, JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: 'x' } }))
  // kubectl must not block this process's event loop: the server runs in it.
  // stdin closed: on a 401 kubectl would prompt for a user name.
  const post = async (kubeconfig: string): Promise<string> => await new Promise(resolve => {
    const child = spawn('kubectl', ['--kubeconfig', kubeconfig, 'create', '--raw', '/webhook', '-f', body, '--request-timeout=10s'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', d => { out += String(d) })
    child.stderr.on('data', d => { out += String(d) })
    child.on('close', () => resolve(out))
  })
  const good = gen(['--ca-file', certs.caFile, '--client-cert-file', certs.clientCertFile, '--client-key-file', certs.clientKeyFile, '--webhook-url', `${server.url}/webhook`])
  t.equal(good.status, 0, good.stderr)
  const ok = await post(join(good.dir, 'authn-webhook.kubeconfig'))
  // The server answered over TLS with the client certificate (kubectl's raw body is not JSON:
  // an HTTP error from the server still proves the connection, an x509/TLS error would not).
  t.notMatch(ok, /x509|tls|certificate|Unable to connect/i, 'TLS handshake succeeds with the generated kubeconfig')
  t.match(ok, /Error from server|authenticated/, 'the server answered')

  // The pair by path (--embed-client-cert=false), with --config-dir where the files are.
  const byPath = join(mkdtempSync(join(tmpdir(), 'ksa-gen-')), 'etc-keystone-auth')
  const paths = gen(['--ca-file', certs.caFile, '--client-cert-file', certs.clientCertFile, '--client-key-file', certs.clientKeyFile, '--embed-client-cert=false',
    '--out-dir', byPath, '--config-dir', byPath, '--webhook-url', `${server.url}/webhook`])
  t.equal(paths.status, 0, paths.stderr)
  const viaPaths = await post(join(byPath, 'authn-webhook.kubeconfig'))
  t.notMatch(viaPaths, /x509|tls|certificate|Unable to connect|Unauthorized/i, 'the client pair named by path is presented too')
  t.match(viaPaths, /Error from server|authenticated/)

  // The serving certificate comes from the same CA but is not a client certificate (serverAuth
  // only): the operator guide signs both with one CA.
  const servingAsClient = gen(['--ca-file', certs.caFile, '--client-cert-file', certs.certFile, '--client-key-file', certs.keyFile, '--webhook-url', `${server.url}/webhook`])
  t.equal(servingAsClient.status, 0, servingAsClient.stderr)
  t.match(await post(join(servingAsClient.dir, 'authn-webhook.kubeconfig')), /--client-ca-file is required \(INVALID_PURPOSE\)/, 'the serving certificate is refused as a client certificate')

  const noClient = gen(['--ca-file', certs.caFile, '--webhook-url', `${server.url}/webhook`])
  const refused = await post(join(noClient.dir, 'authn-webhook.kubeconfig'))
  t.notMatch(refused, /UnsupportedMediaType/, 'without the client certificate the request is not handled')
  t.match(refused, /Username|Unauthorized|certificate/i, 'without the client certificate the server refuses (401)')

  const other = makeCerts()
  const wrongCa = gen(['--ca-file', other.caFile, '--client-cert-file', certs.clientCertFile, '--client-key-file', certs.clientKeyFile, '--webhook-url', `${server.url}/webhook`])
  t.match(await post(join(wrongCa.dir, 'authn-webhook.kubeconfig')), /x509|certificate signed by unknown authority/i, 'another CA is not trusted')
})

t.test('AuthorizationConfiguration per Kubernetes version', async t => {
  for (const [version, apiVersion, cacheFields] of [['1.30', 'v1beta1', false], ['1.31', 'v1beta1', false], ['1.32', 'v1', false], ['1.33', 'v1', false], ['1.34', 'v1', true]] as const) {
    const r = gen(['--ca-file', certs.caFile, '--kubernetes-version', version, '--failure-policy', 'Deny', '--authz-timeout', '5s'])
    t.equal(r.status, 0, r.stderr)
    const doc = parseYaml(readFileSync(join(r.dir, 'authorization-config.yaml'), 'utf8'))
    const res = authorizationConfigSchema(cacheFields).safeParse(doc)
    t.ok(res.success, `${version}: valid ${JSON.stringify(res.error?.issues ?? '')}`)
    t.equal(doc.apiVersion, `apiserver.config.k8s.io/${apiVersion}`)
    t.same(doc.authorizers.map((a: any) => a.type), ['Node', 'RBAC', 'Webhook'], 'Node and RBAC before the webhook')
    const wh = doc.authorizers[2].webhook
    t.equal(wh.failurePolicy, 'Deny')
    t.equal(wh.timeout, '5s')
    t.equal(wh.subjectAccessReviewVersion, 'v1')
    t.equal(wh.connectionInfo.kubeConfigFile, '/etc/kubernetes/keystone-auth/authz-webhook.kubeconfig')
    t.equal('cacheAuthorizedRequests' in wh, cacheFields, `${version}: cacheAuthorizedRequests only where kube-apiserver knows it (strict decoding)`)
    if (!cacheFields) t.notOk(authorizationConfigSchema(false).safeParse({ ...doc, authorizers: [doc.authorizers[0], doc.authorizers[1], { ...doc.authorizers[2], webhook: { ...wh, cacheAuthorizedRequests: true } }] }).success, 'the schema refuses fields unknown to this version')
  }
  const old = gen(['--ca-file', certs.caFile, '--kubernetes-version', '1.29'])
  t.equal(old.status, 0, old.stderr)
  t.notOk(existsSync(join(old.dir, 'authorization-config.yaml')), '1.29: no structured config')
  t.match(old.stdout, /--authorization-mode=Node,RBAC,Webhook/)
  t.match(old.stdout, /--authorization-webhook-config-file=\/etc\/kubernetes\/keystone-auth\/authz-webhook.kubeconfig/)
  t.match(old.stdout, /--authorization-webhook-version=v1/)
  t.match(old.stdout, /no matchConditions/)

  const none = gen(['--ca-file', certs.caFile, '--authorization', 'none'])
  t.equal(none.status, 0, none.stderr)
  t.notOk(existsSync(join(none.dir, 'authz-webhook.kubeconfig')))
  t.notOk(existsSync(join(none.dir, 'authorization-config.yaml')))
  t.notMatch(none.stdout, /^\s+--authorization-/m, 'authn-only: no authorization flags')
  t.match(none.stdout, /--authentication-token-webhook-config-file=/)

  const custom = gen(['--ca-file', certs.caFile, '--config-dir', '/srv/ksa/', '--authn-cache-ttl', '90s', '--authz-authorized-ttl', '2m', '--authz-unauthorized-ttl', '1500ms'])
  t.equal(custom.status, 0, custom.stderr)
  t.match(custom.stdout, /--authentication-token-webhook-config-file=\/srv\/ksa\/authn-webhook.kubeconfig\n/)
  t.match(custom.stdout, /--authentication-token-webhook-cache-ttl=1m30s/)
  const doc = parseYaml(readFileSync(join(custom.dir, 'authorization-config.yaml'), 'utf8'))
  t.equal(doc.authorizers[2].webhook.authorizedTTL, '2m')
  t.equal(doc.authorizers[2].webhook.unauthorizedTTL, '1500ms')
  t.ok(authorizationConfigSchema(false).safeParse(doc).success)
})

t.test('the file carries the generator\'s matchConditions', async t => {
  const r = gen(['--ca-file', certs.caFile])
  const conds = parseYaml(readFileSync(join(r.dir, 'authorization-config.yaml'), 'utf8')).authorizers[2].webhook.matchConditions
  t.same(conds, MATCH_CONDITIONS, 'what a real kube-apiserver evaluates in test/kube-apiserver/gen-apiserver-config.test.ts')
})

t.test('bad input: one line naming the flag, exit 2, nothing written', async t => {
  const other = makeCerts()
  const cases: Array<[string[], RegExp]> = [
    [[], /--ca-file is required/],
    [['--ca-file', '/nonexistent/ca.crt'], /--ca-file: cannot read/],
    [['--ca-file', certs.clientKeyFile], /--ca-file: no PEM certificate/],
    [['--ca-file', certs.caFile, '--webhook-url', 'http://127.0.0.1:8443/webhook'], /--webhook-url: must be https/],
    [['--ca-file', certs.caFile, '--webhook-url', 'not a url'], /--webhook-url: not a URL/],
    [['--ca-file', certs.caFile, '--client-cert-file', certs.clientCertFile], /go together/],
    [['--ca-file', certs.caFile, '--client-cert-file', certs.clientCertFile, '--client-key-file', other.clientKeyFile], /does not match/],
    [['--ca-file', certs.caFile, '--config-dir', 'relative/dir'], /--config-dir: must be an absolute path/],
    [['--ca-file', certs.caFile, '--kubernetes-version', 'latest'], /--kubernetes-version/],
    [['--ca-file', certs.caFile, '--authorization', 'abac'], /--authorization: expected webhook or none/],
    [['--ca-file', certs.caFile, '--failure-policy', 'Allow'], /--failure-policy/],
    [['--ca-file', certs.caFile, '--authz-timeout', '31s'], /--authz-timeout/],
    [['--ca-file', certs.caFile, '--authz-unauthorized-ttl', '0'], /1\.34/],
    [['--ca-file', certs.caFile, '--bogus'], /unknown flag: --bogus/]
  ]
  for (const [args, re] of cases) {
    const r = gen(args)
    t.equal(r.status, 2, `${args.join(' ')}: exit 2`)
    t.match(r.stderr, re, `${args.join(' ')}: ${re}`)
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line')
    t.notOk(existsSync(r.dir), 'nothing written')
  }
  const help = gen(['--help'])
  t.equal(help.status, 0)
  for (const f of ['--webhook-url', '--ca-file', '--client-cert-file', '--client-key-file', '--embed-client-cert', '--out-dir', '--kubernetes-version', '--authorization', '--failure-policy']) t.match(help.stdout, f)
  const top = spawnSync('env', ['-u', 'NODE_OPTIONS', BIN, 'gen', 'nothing'], { encoding: 'utf8' })
  t.equal(top.status, 2)
  t.match(top.stderr, /unknown target/)
})

t.test('--access-rules-enforce: a first webhook, before Node and RBAC, only for users with access rules, Deny on failure', async t => {
  const r = gen(['--ca-file', certs.caFile, '--client-cert-file', certs.clientCertFile, '--client-key-file', certs.clientKeyFile, '--access-rules-enforce'])
  t.equal(r.status, 0, r.stderr)
  const doc = parseYaml(readFileSync(join(r.dir, 'authorization-config.yaml'), 'utf8'))
  t.ok(authorizationConfigSchema(false).safeParse(doc).success, 'a valid AuthorizationConfiguration')
  t.same(doc.authorizers.map((a: { name: string }) => a.name), ['keystone-access-rules', 'node', 'rbac', 'keystone'])
  const first = doc.authorizers[0].webhook
  t.equal(first.failurePolicy, 'Deny', 'an outage must not lift the restriction')
  t.equal(first.connectionInfo.kubeConfigFile, doc.authorizers[3].webhook.connectionInfo.kubeConfigFile, 'the same webhook')
  t.same(first.matchConditions, ACCESS_RULES_MATCH_CONDITIONS)
  // CEL `'k' in map` is a key test; has() a field test.
  const reaches = (extra?: Record<string, string[]>): boolean => extra !== undefined && Object.hasOwn(extra, 'alpha.kubernetes.io/identity/access-rules')
  t.equal(first.matchConditions[0].expression, "has(request.extra) && 'alpha.kubernetes.io/identity/access-rules' in request.extra")
  t.ok(reaches({ 'alpha.kubernetes.io/identity/access-rules': ['GET /api/v1/pods'] }))
  t.notOk(reaches({ 'alpha.kubernetes.io/identity/roles': ['member'] }))
  t.notOk(reaches(undefined))
  const plain = gen(['--ca-file', certs.caFile, '--client-cert-file', certs.clientCertFile, '--client-key-file', certs.clientKeyFile])
  t.same(parseYaml(readFileSync(join(plain.dir, 'authorization-config.yaml'), 'utf8')).authorizers.map((a: { name: string }) => a.name), ['node', 'rbac', 'keystone'], 'without the flag: unchanged')
  for (const args of [['--kubernetes-version', '1.29'], ['--authorization', 'none']]) {
    const bad = gen(['--ca-file', certs.caFile, '--access-rules-enforce', ...args])
    t.equal(bad.status, 2, args.join(' '))
    t.match(bad.stderr, /--access-rules-enforce needs --authorization webhook and Kubernetes 1\.30\+/)
  }
})
