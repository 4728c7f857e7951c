import t from 'tap'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startFakeKube } from '../helpers/fake-kube.js'
import { inClusterConnection, kubeconfigConnection, resolveConnection } from '../../src/kube/connection.js'
import { createKubeClient } from '../../src/kube/client.js'
import { execCredential, tokenFile } from '../../src/kube/credentials.js'
import { ConfigError } from '../../src/errors.js'

function tmp (t: { teardown: (fn: () => void) => void }): string {
  const d = mkdtempSync(join(tmpdir(), 'ksa-conn-'))
  t.teardown(() => rmSync(d, { recursive: true, force: true }))
  return d
}

t.test('neither kubeconfig nor in-cluster env is a ConfigError that says what is missing', async t => {
  const err = (() => { try { resolveConnection({ env: {} }) } catch (e) { return e } })() as ConfigError
  t.type(err, ConfigError)
  t.match(err.message, /KUBERNETES_SERVICE_HOST/)
  t.match(err.message, /--kubeconfig/)
})

t.test('in-cluster: env host/port (IPv6 bracketed), CA file, token file re-read after it rotates', async t => {
  const d = tmp(t)
  writeFileSync(join(d, 'ca.crt'), 'CA PEM')
  writeFileSync(join(d, 'token'), 'tok-1\n')
  const conn = resolveConnection({ env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, serviceAccountDir: d })
  t.equal(conn.server, 'https://[fd00::1]:443')
  t.equal(conn.ca?.toString(), 'CA PEM')
  t.equal(conn.source, 'in-cluster')
  t.equal(await conn.credentials.authorization(), 'Bearer tok-1')
  writeFileSync(join(d, 'token'), 'tok-2\n')
  conn.credentials.invalidate()
  t.equal(await conn.credentials.authorization(), 'Bearer tok-2', 'a 401 (invalidate) makes it read the rotated file')

  t.throws(() => inClusterConnection({ KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' }, join(d, 'nope')), ConfigError)
  t.throws(() => inClusterConnection({ KUBERNETES_SERVICE_HOST: '10.0.0.1' }, d), /KUBERNETES_SERVICE_PORT/)
})

t.test('token file: re-read once older than maxAge, last token kept while the file is briefly missing', async t => {
  const d = tmp(t)
  const p = join(d, 'token')
  writeFileSync(p, 'a')
  let now = 0
  const src = tokenFile(p, 1000, () => now)
  t.equal(await src.authorization(), 'Bearer a')
  writeFileSync(p, 'b')
  now = 999
  t.equal(await src.authorization(), 'Bearer a', 'cached within maxAge')
  now = 1000
  t.equal(await src.authorization(), 'Bearer b', 're-read after maxAge')
  rmSync(p)
  now = 5000
  t.equal(await src.authorization(), 'Bearer b')
  await t.rejects(tokenFile(join(d, 'never')).authorization(), ConfigError)
})

t.test('kubeconfig: current context, relative file paths, token file, errors name the problem', async t => {
  const d = tmp(t)
  writeFileSync(join(d, 'ca.pem'), 'THE CA')
  writeFileSync(join(d, 'tok'), 'from-file\n')
  const kc = join(d, 'config')
  writeFileSync(kc, `
apiVersion: v1
kind: Config
current-context: b
clusters:
- name: one
  cluster: { server: https://one.example:6443, certificate-authority: ca.pem, tls-server-name: kube.internal }
- name: two
  cluster: { server: https://two.example:6443/, insecure-skip-tls-verify: true }
users:
- name: u1
  user: { tokenFile: tok }
- name: u2
  user: { token: static }
contexts:
- name: a
  context: { cluster: two, user: u2 }
- name: b
  context: { cluster: one, user: u1 }
`)
  const c = kubeconfigConnection(kc)
  t.equal(c.server, 'https://one.example:6443')
  t.equal(c.ca?.toString(), 'THE CA', 'certificate-authority is relative to the kubeconfig directory')
  t.equal(c.tlsServerName, 'kube.internal')
  t.equal(c.insecureSkipTlsVerify, false)
  t.equal(await c.credentials.authorization(), 'Bearer from-file')
  const a = kubeconfigConnection(kc, 'a')
  t.equal(a.server, 'https://two.example:6443')
  t.equal(a.insecureSkipTlsVerify, true)
  t.equal(await a.credentials.authorization(), 'Bearer static')
  t.throws(() => kubeconfigConnection(kc, 'zzz'), /context "zzz" not found/)
  t.throws(() => kubeconfigConnection(join(d, 'missing')), ConfigError)
  writeFileSync(join(d, 'ap'), 'current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: "https://x"}}]\nusers: [{name: u, user: {auth-provider: {name: oidc}}}]\n')
  t.throws(() => kubeconfigConnection(join(d, 'ap')), /auth-provider is not supported/)
})

t.test('kubeconfig exec user: runs the plugin with KUBERNETES_EXEC_INFO, caches until expiry, re-runs after invalidate', async t => {
  const fake = await startFakeKube()
  t.teardown(() => fake.close())
  const d = tmp(t)
  const counter = join(d, 'runs')
  writeFileSync(counter, '')
  const plugin = join(d, 'plugin.sh')
  // The plugin proves it got the exec info and env, and counts its runs.
  writeFileSync(plugin, `#!/bin/sh
echo run >> "${counter}"
case "$KUBERNETES_EXEC_INFO" in *'"interactive":false'*) ;; *) echo "no exec info" >&2; exit 3;; esac
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s","expirationTimestamp":"2999-01-01T00:00:00Z"}}' "$FAKE_TOKEN"
`)
  chmodSync(plugin, 0o755)
  const base = readFileSync(fake.kubeconfigPath, 'utf8')
  const kc = join(d, 'kubeconfig')
  writeFileSync(kc, base.replace(/ {4}token: .*/, `    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: ./plugin.sh\n      env:\n      - name: FAKE_TOKEN\n        value: ${fake.token}`))
  const client = createKubeClient({ kubeconfig: kc })
  t.teardown(() => client.close())
  await Promise.all([client.getNamespace('default'), client.getNamespace('kube-system')])
  t.same(await client.getNamespace('default'), { name: 'default' })
  t.equal(readFileSync(counter, 'utf8').trim().split('\n').length, 1, 'one plugin run serves concurrent and later requests')

  const failing = execCredential({ command: 'sh', args: ['-c', 'echo boom >&2; exit 1'] })
  await t.rejects(failing.authorization(), /exec credential plugin sh failed.*boom/)
  const certOnly = execCredential({ command: 'sh', args: ['-c', 'echo \'{"kind":"ExecCredential","status":{"clientCertificateData":"x"}}\''] })
  await t.rejects(certOnly.authorization(), /client certificates from exec plugins are not supported/)

  let now = 0
  const expiring = execCredential({ command: 'sh', args: ['-c', `echo run >> "${counter}"; echo '{"kind":"ExecCredential","status":{"token":"t","expirationTimestamp":"1970-01-01T00:00:10Z"}}'`] }, () => now)
  await expiring.authorization()
  now = 9_000
  await expiring.authorization()
  t.equal(readFileSync(counter, 'utf8').trim().split('\n').length, 2, 'cached before expirationTimestamp')
  now = 10_000
  await expiring.authorization()
  t.equal(readFileSync(counter, 'utf8').trim().split('\n').length, 3, 'run again at expirationTimestamp')
})
