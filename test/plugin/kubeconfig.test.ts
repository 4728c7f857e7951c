// `client-keystone-auth kubeconfig`: the "download kubeconfig" button as a command. Its output is
// used by the real kubectl against the fake API server, with the real Keystone.
// Needs `npx tsc -p tsconfig.json` first (the binary runs dist/).
import t from 'tap'
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { loadSeed, passwordToken } from '../helpers/keystone.js'
import { PLUGIN, kubectl, plugin, sandbox, usePluginStack } from './_support.js'
import { keystoneFetch } from '../helpers/keystone-fetch.js'

const seed = loadSeed()
const demo = seed.users.demo!
const appCred = seed.application_credentials['kubectl-demo']!
const stack = usePluginStack(t, seed.auth_url)

function envOf (exec: { env: Array<{ name: string, value: string }> }): Record<string, string> {
  return Object.fromEntries(exec.env.map(e => [e.name, e.value]))
}

t.test('--dry-run prints the YAML and hides the secret unless asked', async t => {
  const sb = sandbox()
  const env = { ...sb.env, OS_AUTH_URL: seed.auth_url, OS_APPLICATION_CREDENTIAL_ID: appCred.id, OS_APPLICATION_CREDENTIAL_SECRET: appCred.secret }
  const args = ['kubeconfig', '--server', stack.api.url, '--certificate-authority', stack.api.caFile, '--cluster-name', 'garr', '--dry-run', '--exec-command', PLUGIN]
  const r = await plugin(args, env)
  t.equal(r.code, 0, r.stderr)
  t.notOk(r.stdout.includes(appCred.secret), 'no secret in the output')
  t.notOk(r.stderr.includes(appCred.secret))
  const doc = parse(r.stdout)
  t.equal(doc.kind, 'Config')
  t.equal(doc.clusters[0].name, 'garr')
  t.equal(doc.clusters[0].cluster.server, stack.api.url)
  t.equal(Buffer.from(doc.clusters[0].cluster['certificate-authority-data'], 'base64').toString(), stack.api.caPem)
  const exec = doc.users[0].user.exec
  t.equal(exec.apiVersion, 'client.authentication.k8s.io/v1')
  t.equal(exec.interactiveMode, 'Never')
  t.equal(exec.command, PLUGIN)
  t.equal(envOf(exec).OS_APPLICATION_CREDENTIAL_ID, appCred.id)
  t.equal(envOf(exec).OS_AUTH_URL, seed.auth_url)
  t.equal(doc['current-context'], doc.contexts[0].name)

  const shown = await plugin([...args, '--show-secrets'], env)
  t.equal(shown.code, 0, shown.stderr)
  t.equal(envOf(parse(shown.stdout).users[0].user.exec).OS_APPLICATION_CREDENTIAL_SECRET, appCred.secret)
})

t.test('without --server: a usage error naming it', async t => {
  const r = await plugin(['kubeconfig', '--dry-run'], { ...sandbox().env, OS_AUTH_URL: seed.auth_url })
  t.equal(r.code, 2)
  t.match(r.stderr, /missing --server/)
})

t.test('--create-application-credential: merged into an existing kubeconfig, works with kubectl', async t => {
  const sb = sandbox()
  // An existing kubeconfig with another cluster and context, which must survive the merge.
  writeFileSync(sb.kubeconfig, [
    'apiVersion: v1', 'kind: Config', 'current-context: other',
    'clusters:', '- name: other', '  cluster:', '    server: https://127.0.0.1:1',
    'users:', '- name: other-user', '  user:', '    token: not-a-real-token',
    'contexts:', '- name: other', '  context:', '    cluster: other', '    user: other-user', ''
  ].join('\n'), { mode: 0o644 })
  const env = { ...sb.env, OS_AUTH_URL: stack.proxy.url, OS_USERNAME: 'demo', OS_USER_DOMAIN_NAME: 'Default', OS_PROJECT_NAME: 'demo', OS_PROJECT_DOMAIN_NAME: 'Default', OS_PASSWORD: demo.password }
  const name = `kubectl-test-${process.pid}-${Date.now()}`
  const r = await plugin(['kubeconfig', '--server', stack.api.url, '--certificate-authority', stack.api.caFile, '--cluster-name', 'garr',
    '--create-application-credential', '--new-credential-name', name, '--new-credential-expires', '24h',
    '--new-credential-role', 'reader', '--exec-command', PLUGIN], env)
  t.equal(r.code, 0, r.stderr)
  t.match(r.stderr, new RegExp(`created application credential ${name} \\(id [0-9a-f]+, expires `))
  t.notOk(r.stderr.includes(demo.password))
  t.equal(r.stdout, '', 'nothing on stdout when writing the file')

  t.equal(statSync(sb.kubeconfig).mode & 0o777, 0o600, 'kubeconfig with a secret is 0600')
  const doc = parse(readFileSync(sb.kubeconfig, 'utf8'))
  t.same(doc.clusters.map((c: { name: string }) => c.name).sort(), ['garr', 'other'])
  t.ok(doc.users.some((u: { name: string }) => u.name === 'other-user'), 'the other user survives')
  t.equal(doc['current-context'], 'demo@garr')
  const exec = doc.users.find((u: { name: string }) => u.name === 'demo@garr').user.exec
  const e = envOf(exec)
  t.match(e.OS_APPLICATION_CREDENTIAL_ID, /^[0-9a-f]{32}$/)
  t.ok((e.OS_APPLICATION_CREDENTIAL_SECRET ?? '').length > 20)
  t.equal(e.OS_PASSWORD, undefined, 'no password in the kubeconfig')
  t.equal(exec.interactiveMode, 'Never')

  // Keystone has it, with the role and expiry asked for.
  const token = await passwordToken(seed, 'demo', 'demo')
  const got = await keystoneFetch(`${seed.auth_url}/users/${demo.id}/application_credentials/${e.OS_APPLICATION_CREDENTIAL_ID}`, { headers: { 'x-auth-token': token } })
  t.equal(got.status, 200)
  const ac = (await got.json() as { application_credential: { name: string, roles: Array<{ name: string }>, expires_at: string | null } }).application_credential
  t.equal(ac.name, name)
  t.same(ac.roles.map(x => x.name), ['reader'])
  t.ok(ac.expires_at !== null && Date.parse(ac.expires_at + 'Z') > Date.now() + 23 * 3600_000)

  try {
    const who = await kubectl(['auth', 'whoami', '-o', 'json'], sb.env)
    t.equal(who.code, 0, who.stderr)
    t.equal(JSON.parse(who.stdout).status.userInfo.username, 'demo')
    const other = await kubectl(['config', 'get-contexts', '-o', 'name'], sb.env)
    t.same(other.stdout.trim().split('\n').sort(), ['demo@garr', 'other'])
  } finally {
    await keystoneFetch(`${seed.auth_url}/users/${demo.id}/application_credentials/${e.OS_APPLICATION_CREDENTIAL_ID}`, { method: 'DELETE', headers: { 'x-auth-token': token } })
  }
})

t.test('password settings: the kubeconfig never holds the password, and asks for it only interactively', async t => {
  const sb = sandbox()
  const env = { ...sb.env, OS_AUTH_URL: stack.proxy.url, OS_USERNAME: 'demo', OS_DOMAIN_NAME: 'Default', OS_PROJECT_NAME: 'demo', OS_PASSWORD: demo.password }
  const r = await plugin(['kubeconfig', '--server', stack.api.url, '--certificate-authority', stack.api.caFile, '--exec-command', PLUGIN], env)
  t.equal(r.code, 0, r.stderr)
  const text = readFileSync(sb.kubeconfig, 'utf8')
  t.notOk(text.includes(demo.password))
  const exec = parse(text).users[0].user.exec
  t.equal(exec.interactiveMode, 'IfAvailable')
  t.same(envOf(exec), { OS_AUTH_URL: stack.proxy.url, OS_USERNAME: 'demo', OS_PROJECT_NAME: 'demo', OS_USER_DOMAIN_NAME: 'Default', OS_PROJECT_DOMAIN_NAME: 'Default' })
  // kubectl without a terminal: the plugin must not prompt, and says what is missing.
  const who = await kubectl(['auth', 'whoami'], sb.env)
  t.not(who.code, 0)
  t.match(who.stderr, /missing password/)
})

t.test('with OS_CLOUD the kubeconfig names the cloud, and the password stays in secure.yaml', async t => {
  const sb = sandbox()
  const dir = join(sb.home, '.config', 'openstack')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'clouds.yaml'), `clouds:\n  acme:\n    auth:\n      auth_url: ${seed.auth_url}\n      username: alice\n      user_domain_name: acme\n      project_name: ops\n      project_domain_name: acme\n`)
  writeFileSync(join(dir, 'secure.yaml'), `clouds:\n  acme:\n    auth:\n      password: ${seed.users.alice!.password}\n`, { mode: 0o600 })
  const r = await plugin(['kubeconfig', '--server', stack.api.url, '--certificate-authority', stack.api.caFile, '--exec-command', PLUGIN], { ...sb.env, OS_CLOUD: 'acme' })
  t.equal(r.code, 0, r.stderr)
  const text = readFileSync(sb.kubeconfig, 'utf8')
  t.notOk(text.includes(seed.users.alice!.password), 'no password in the kubeconfig')
  const e = envOf(parse(text).users[0].user.exec)
  t.equal(e.OS_CLOUD, 'acme')
  t.equal(e.OS_USERNAME, 'alice')
  const who = await kubectl(['auth', 'whoami', '-o', 'json'], sb.env)
  t.equal(who.code, 0, who.stderr)
  t.equal(JSON.parse(who.stdout).status.userInfo.username, 'alice')
})
