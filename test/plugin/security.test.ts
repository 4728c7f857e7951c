// Attacks from the security review (issue "Security: close what an outside review broke into"),
// each kept as a regression test against the real Keystone (:5000) and the built plugin (bin/,
// which runs dist/: `npm run build` first).
//  - a hostile ./clouds.yaml must not receive the password of ~/.config/openstack/secure.yaml;
//  - the token cache directory must be the user's own and closed to others;
//  - a lastValidatedAt in the future must not mean "never check again".
// The WebSSO attack (another local process posting a token) is in websso-security.test.ts.
import t from 'tap'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { execFile } from 'node:child_process'
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadSeed } from '../helpers/keystone.js'
import { PLUGIN, plugin, pluginNewParent, revokeToken, sandbox, startCountingProxy, tokenStatus, type RunResult } from './_support.js'

const seed = loadSeed()
const demo = seed.users.demo!

/** The plugin run from `cwd` (where a ./clouds.yaml is looked for), stdin closed (not interactive). */
async function pluginIn (cwd: string, args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  return await new Promise(resolve => {
    const child = execFile('env', ['-u', 'NODE_OPTIONS', PLUGIN, ...args], { cwd, env, timeout: 60_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { killed?: boolean, code?: number | string }) | null
      resolve({ code: e === null ? 0 : typeof e.code === 'number' ? e.code : (child.exitCode ?? null), stdout, stderr, killed: e?.killed === true })
    })
    child.stdin?.end()
  })
}

/** A server that answers every request 401 and keeps what it was sent. */
async function startCatcher (): Promise<{ url: string, received: () => string, requests: () => number, close: () => Promise<void> }> {
  const got: string[] = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      got.push(`${req.method ?? ''} ${req.url ?? ''}\n${JSON.stringify(req.headers)}\n${Buffer.concat(chunks).toString('utf8')}`)
      res.writeHead(401, { 'content-type': 'application/json' })
      res.end('{"error":{"code":401,"message":"caught"}}')
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/v3`,
    received: () => got.join('\n'),
    requests: () => got.length,
    close: async () => { server.closeAllConnections(); await new Promise<void>(resolve => server.close(() => resolve())) }
  }
}

const cloud = (authUrl: string): string =>
  `clouds:\n  mycloud:\n    auth:\n      auth_url: ${authUrl}\n      username: demo\n      user_domain_name: Default\n      project_name: demo\n      project_domain_name: Default\n`

t.test('finding 5: a ./clouds.yaml cannot send the password of ~/.config/openstack/secure.yaml elsewhere', async t => {
  const catcher = await startCatcher()
  t.teardown(catcher.close)
  const sb = sandbox()
  const conf = join(sb.home, '.config', 'openstack')
  mkdirSync(conf, { recursive: true })
  writeFileSync(join(conf, 'clouds.yaml'), cloud(seed.auth_url))
  writeFileSync(join(conf, 'secure.yaml'), `clouds:\n  mycloud:\n    auth:\n      password: ${demo.password}\n`, { mode: 0o600 })
  // The attacker's file, in a directory the user happens to run kubectl from (a cloned repository).
  const hostile = join(sb.dir, 'cloned-repo')
  mkdirSync(hostile)
  writeFileSync(join(hostile, 'clouds.yaml'), cloud(catcher.url))
  const env = { ...sb.env, OS_CLOUD: 'mycloud' }

  const r = await pluginIn(hostile, [], env)
  t.notOk(catcher.received().includes(demo.password), 'the catcher never receives the password')
  t.equal(catcher.requests(), 0, 'nothing is sent there: without the password, and no terminal, the plugin stops first')
  t.equal(r.code, 1, r.stderr)
  t.match(r.stderr, /missing password/)
  t.match(r.stderr, new RegExp(`warning: not using ${join(conf, 'secure.yaml')} for cloud mycloud: secrets in a secure.yaml are only combined with the clouds.yaml of the same directory, and the clouds.yaml used is ${join(hostile, 'clouds.yaml')}`))

  // From any other directory the user's own pair works, and --v=1 says which files were read.
  const ok = await pluginIn(sb.dir, ['--v=1'], env)
  t.equal(ok.code, 0, ok.stderr)
  t.equal(JSON.parse(ok.stdout).kind, 'ExecCredential')
  t.match(ok.stderr, `client-keystone-auth: cloud mycloud read from ${join(conf, 'clouds.yaml')} + ${join(conf, 'secure.yaml')}`)
  t.notMatch(ok.stderr, /warning/)
  // The same with the environment variable, and a secure.yaml next to ./clouds.yaml is merged with it.
  writeFileSync(join(hostile, 'secure.yaml'), 'clouds:\n  mycloud:\n    auth:\n      password: planted-next-to-it\n')
  const same = await pluginIn(hostile, [], { ...env, CLIENT_KEYSTONE_AUTH_VERBOSITY: '1' })
  t.match(same.stderr, `cloud mycloud read from ${join(hostile, 'clouds.yaml')} + ${join(hostile, 'secure.yaml')}`)
  t.match(catcher.received(), /planted-next-to-it/, 'the secure.yaml of the same directory is used')
  t.notOk(catcher.received().includes(demo.password))
})

t.test('klog flags of the Go binary in exec args (--vmodule, --log-flush-frequency, ...) are accepted and ignored', async t => {
  const sb = sandbox()
  const env = { ...sb.env, OS_AUTH_URL: seed.auth_url, OS_USERNAME: 'demo', OS_DOMAIN_NAME: 'Default', OS_PROJECT_NAME: 'demo', OS_PASSWORD: demo.password }
  const r = await plugin(['--v=2', '--vmodule=main=4', '--log-flush-frequency=5s', '--logtostderr', '--log_dir=/tmp', '--alsologtostderr=false'], env)
  t.equal(r.code, 0, r.stderr)
  t.equal(JSON.parse(r.stdout).kind, 'ExecCredential')
  t.equal(r.stderr, '', 'nothing on stderr')
  const help = await plugin(['--help'], sb.env)
  t.notMatch(help.stdout, /vmodule/, 'hidden from --help')
})

function demoEnv (authUrl: string): Record<string, string> {
  return { OS_AUTH_URL: authUrl, OS_USERNAME: 'demo', OS_DOMAIN_NAME: 'Default', OS_PROJECT_NAME: 'demo', OS_PASSWORD: demo.password }
}

t.test('finding 7: a cache directory open to others, or not the user\'s, is refused with the fix', async t => {
  const sb = sandbox()
  const dir = join(sb.cacheDir, 'k8s-keystone-auth')
  const env = { ...sb.env, ...demoEnv(seed.auth_url) }
  const first = await plugin([], env)
  t.equal(first.code, 0, first.stderr)
  const files = readdirSync(dir).filter(n => n.endsWith('.json'))
  t.equal(files.length, 1)
  // Another local user planting its token (group-writable directory), or reading ours (0755).
  for (const mode of [0o770, 0o755, 0o701]) {
    chmodSync(dir, mode)
    const r = await plugin([], env)
    t.equal(r.code, 1, `mode ${mode.toString(8)}`)
    t.equal(r.stdout, '', 'no token')
    t.match(r.stderr, `client-keystone-auth: refusing the token cache directory ${dir}: its mode is ${mode.toString(8)}, open to other users`)
    t.match(r.stderr, `chmod 700 ${dir}`)
  }
  chmodSync(dir, 0o700)
  if (process.getuid?.() === 0) {
    // Owned by someone else (as root in the test container: chown to nobody).
    chownSync(dir, 65534, 65534)
    const r = await plugin([], env)
    t.equal(r.code, 1)
    t.match(r.stderr, `refusing the token cache directory ${dir}: it belongs to uid 65534, not to you (uid 0)`)
    t.match(r.stderr, `chown 0 ${dir}`)
    chownSync(dir, 0, 0)
  }
  const again = await plugin([], env)
  t.equal(again.code, 0, again.stderr)
  // --no-cache does not touch the directory at all.
  chmodSync(dir, 0o777)
  const none = await plugin(['--no-cache'], env)
  t.equal(none.code, 0, none.stderr)
  chmodSync(dir, 0o700)
})

t.test('finding 7: a lastValidatedAt in the future does not stop the check with Keystone', async t => {
  const proxy = await startCountingProxy(seed.auth_url)
  t.teardown(proxy.close)
  const sb = sandbox()
  const env = { ...sb.env, ...demoEnv(proxy.url) }
  const first = JSON.parse((await plugin([], env)).stdout).status.token as string
  const dir = join(sb.cacheDir, 'k8s-keystone-auth')
  const file = join(dir, readdirSync(dir).find(n => n.endsWith('.json')) as string)
  const e = JSON.parse(readFileSync(file, 'utf8'))
  e.lastValidatedAt = '2999-01-01T00:00:00.000Z'
  writeFileSync(file, JSON.stringify(e), { mode: 0o600 })
  t.equal(await revokeToken(seed.auth_url, first), 204)
  const validations = proxy.validations()
  // A run of another parent (another kubectl command): not a rerun after a 401, which is always checked.
  const r = await pluginNewParent([], env)
  t.equal(r.code, 0, r.stderr)
  const second = JSON.parse(r.stdout).status.token as string
  t.equal(proxy.validations() - validations, 1, 'the cached token was checked with Keystone')
  t.not(second, first, 'the revoked token is not served again')
  t.equal(await tokenStatus(seed.auth_url, second), 200)
  const after = JSON.parse(readFileSync(file, 'utf8'))
  t.ok(Date.parse(after.lastValidatedAt) <= Date.now(), 'no timestamp in the future is kept')
})
