// Our binary started exactly as Go's example Deployment starts the Go one, and tested exactly as
// Go's documentation tests it (kubernetes/cloud-provider-openstack v1.32.1, commit
// 8045e16064e73d9ee965ecedd40490cba640720e; the copies and their provenance are in
// test/fixtures/go-v1.32.1/README.md).
//
// - The container's `args` of examples/webhook/keystone-deployment.yaml, unchanged, after our
//   image's ENTRYPOINT (bin/k8s-keystone-auth): the first is `./bin/k8s-keystone-auth` (Go's image
//   has no ENTRYPOINT, so there it is the command). Its `{{ keystone_server_url }}` becomes the test
//   Keystone, as the document asks ("needs to be changed according to your environment"); the
//   Secret it mounts at /etc/pki is a directory holding tls.crt and tls.key, so paths under the
//   mountPath point there. No --listen: Go's default 0.0.0.0:8443, which the test uses.
// - The same args again with `_` spellings (`--tls_cert_file`, as Go's pflag normalisation reads
//   them) and klog flags.
// - "Test k8s-keystone-auth service": the document's curl arguments, run by bash as written
//   (`'$token'` splices the token in), with curl's default Content-Type for -d
//   (application/x-www-form-urlencoded) and -k; `--resolve` sends the Service name to 127.0.0.1.
// The Kubernetes API (the policy ConfigMap, Go's example one) is a fake one, reached through
// KEYSTONE_KUBECONFIG_FILE where the pod would use its in-cluster config.
import t, { type Test } from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml } from 'yaml'
import { testCerts } from '../helpers/certs.js'
import { startFakeKube } from '../helpers/fake-kube.js'
import { loadSeed, passwordToken } from '../helpers/keystone.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const BIN = join(ROOT, 'bin/k8s-keystone-auth')
const FIXTURES = join(ROOT, 'test/fixtures/go-v1.32.1')
const SERVICE = 'k8s-keystone-auth-service.kube-system:8443'

interface Container { args: string[], volumeMounts: Array<{ mountPath: string, name: string }> }

function exampleContainer (keystoneUrl: string): Container {
  const text = readFileSync(join(FIXTURES, 'examples/webhook/keystone-deployment.yaml'), 'utf8')
  const deployment = parseYaml(text.replace('{{ keystone_server_url }}', keystoneUrl)) as { spec: { template: { spec: { containers: Container[] } } } }
  return deployment.spec.template.spec.containers[0] as Container
}

function examplePolicies (): string {
  const cm = parseYaml(readFileSync(join(FIXTURES, 'examples/webhook/keystone-policy-configmap.yaml'), 'utf8')) as { metadata: { name: string, namespace: string }, data: { policies: string } }
  return cm.data.policies
}

/** Runs the document's curl arguments with bash; returns curl's -v trace, the body and the HTTP status. */
function docCurl (file: string, token: string): { status: number, body: any, trace: string } {
  const args = readFileSync(join(FIXTURES, 'docs', file), 'utf8')
  const script = `exec curl --resolve ${SERVICE}:127.0.0.1 --silent --show-error -v --max-time 15 --write-out '\\n%{http_code}' ${args}`
  const r = spawnSync('bash', ['-c', script], { env: { PATH: process.env.PATH, token }, encoding: 'utf8', timeout: 20_000 })
  const out = r.stdout ?? ''
  const cut = out.lastIndexOf('\n')
  let body: unknown
  try { body = JSON.parse(out.slice(0, cut)) } catch { body = out.slice(0, cut) }
  return { status: Number(out.slice(cut + 1)), body, trace: r.stderr ?? '' }
}

async function serve (t: Test, args: string[], env: NodeJS.ProcessEnv): Promise<{ logs: () => string, stop: () => Promise<number | null> }> {
  const child = spawn('env', ['-u', 'NODE_OPTIONS', BIN, ...args], { cwd: ROOT, env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let logs = ''
  child.stdout.on('data', d => { logs += String(d) })
  child.stderr.on('data', d => { logs += String(d) })
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  const listening = await new Promise<boolean>(resolve => {
    const timer = setTimeout(() => resolve(false), 20_000)
    child.stderr.on('data', () => { if (/"listen":"0\.0\.0\.0:8443"/.test(logs)) { clearTimeout(timer); resolve(true) } })
    void exited.then(() => { clearTimeout(timer); resolve(false) })
  })
  t.ok(listening, `listens on Go's default 0.0.0.0:8443 (${listening ? 'ok' : logs.slice(0, 2000)})`)
  // Ready once the policy ConfigMap is listed (as Go waits for its informer before serving).
  if (listening) {
    for (let i = 0; i < 100; i++) {
      const r = spawnSync('curl', ['-k', '--silent', '--output', '/dev/null', '--write-out', '%{http_code}', 'https://localhost:8443/readyz'], { encoding: 'utf8', timeout: 5000 })
      if (r.stdout === '200') break
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  }
  return {
    logs: () => logs,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM')
      return await exited
    }
  }
}

t.test('Go\'s example Deployment args and Go\'s documented curl tests', async t => {
  const seed = loadSeed()
  const container = exampleContainer(seed.auth_url)
  t.equal(container.args[0], './bin/k8s-keystone-auth', 'premise: the example passes the program as its first argument')
  t.notOk(container.args.includes('--listen'), 'premise: no --listen, Go\'s default 0.0.0.0:8443')

  // The Secret keystone-auth-certs, as the pod mounts it.
  const certs = testCerts()
  const secretDir = mkdtempSync(join(tmpdir(), 'ksa-go-example-'))
  t.teardown(() => rmSync(secretDir, { recursive: true, force: true }))
  copyFileSync(certs.certFile, join(secretDir, 'tls.crt'))
  copyFileSync(certs.keyFile, join(secretDir, 'tls.key'))
  const mount = container.volumeMounts[0]?.mountPath as string
  t.equal(mount, '/etc/pki')
  const args = container.args.map(a => a.startsWith(`${mount}/`) ? join(secretDir, a.slice(mount.length + 1)) : a)

  const fake = await startFakeKube()
  t.teardown(async () => { await fake.close() })
  fake.setConfigMap('kube-system', 'k8s-auth-policy', { policies: examplePolicies() })
  const env = { KEYSTONE_KUBECONFIG_FILE: fake.kubeconfigPath }

  const token = await passwordToken(seed, 'demo', 'demo')
  const underscored = [
    ...args.map(a => a.startsWith('--') ? a.replaceAll('-', '_').replace(/^__/, '--') : a),
    '--v=2', '--vmodule=keystone*=4', '--log_flush_frequency=5s', '--logtostderr', '--alsologtostderr=false'
  ]
  t.ok(underscored.includes('--tls_cert_file') && underscored.includes('--policy_configmap_name'), 'the _ spellings')

  for (const [name, argv] of [['the example\'s args, unchanged', args], ['with _ spellings and klog flags', underscored]] as const) {
    await t.test(name, async t => {
      const server = await serve(t, argv, env)
      try {
        // Authentication, a real token of user demo in project demo.
        const good = docCurl('test-authentication.curl-args', token)
        t.match(good.trace, /> Content-Type: application\/x-www-form-urlencoded/, 'curl sent its default Content-Type for -d')
        t.match(good.trace, /> POST \/webhook /)
        t.equal(good.status, 200, 'answered')
        t.equal(good.body?.apiVersion, 'authentication.k8s.io/v1')
        t.equal(good.body?.kind, 'TokenReview')
        t.equal(good.body?.status?.authenticated, true)
        t.equal(good.body?.status?.user?.username, 'demo')
        t.same(good.body?.status?.user?.extra?.['alpha.kubernetes.io/identity/project/name'], ['demo'])
        t.ok(good.body?.status?.user?.groups?.includes(seed.projects.demo?.id), 'the project id is a group, as the document shows')

        // A bad token.
        const bad = docCurl('test-authentication.curl-args', 'not-a-keystone-token')
        t.equal(bad.status, 200)
        t.same(bad.body, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', status: { authenticated: false } })

        // Authorization with Go's example policy ConfigMap.
        const get = docCurl('test-authorization-get.curl-args', token)
        t.equal(get.status, 200)
        t.equal(get.body?.kind, 'SubjectAccessReview')
        t.equal(get.body?.status?.allowed, true, 'get pods: allowed, as the document answers')
        const create = docCurl('test-authorization-create.curl-args', token)
        t.equal(create.status, 200)
        t.equal(create.body?.status?.allowed, false, 'create pods: not allowed, as the document answers')
      } finally {
        t.equal(await server.stop(), 0, 'stops cleanly on SIGTERM')
      }
      const logs = server.logs()
      t.notOk(logs.includes(token), 'the token is never logged')
      const klogWarning = logs.split('\n').filter(l => l.includes('klog flags accepted and ignored'))
      if (argv === underscored) {
        t.equal(klogWarning.length, 1, 'one warning line for the klog flags that do nothing')
        t.match(klogWarning[0], /--vmodule --log-flush-frequency --logtostderr --alsologtostderr/)
      } else {
        t.equal(klogWarning.length, 0)
      }
    })
  }
})
