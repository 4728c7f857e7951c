// The k8s-keystone-auth binary as an operator runs it: flags, env vars, errors, signals.
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Agent, request } from 'undici'
import { parseDuration, parseFlags } from '../../src/config/flags.js'
import { SERVER_FLAGS } from '../../src/cli/server-flags.js'
import { serverOptionsFrom } from '../../src/cli/k8s-keystone-auth.js'
import { testCerts } from '../helpers/certs.js'
import { loadSeed, passwordToken } from '../helpers/keystone.js'

const BIN = fileURLToPath(new URL('../../bin/k8s-keystone-auth', import.meta.url))
// `env -u NODE_OPTIONS`: tap adds its loaders to every child through NODE_OPTIONS; an operator's
// shell has none, and they cannot load the extensionless ESM launcher.
const run = (args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null, stdout: string, stderr: string } => {
  const r = spawnSync('env', ['-u', 'NODE_OPTIONS', BIN, ...args], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8', timeout: 20_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

t.test('Go pflag forms and env fallback', async t => {
  const env = { TLS_CERT_FILE: '/env/cert', TLS_PRIVATE_KEY_FILE: '/env/key', OS_AUTH_URL: 'https://keystone.example:5000/v3', KEYSTONE_POLICY_FILE: '/env/policy.json' }
  const o = serverOptionsFrom(parseFlags(SERVER_FLAGS, ['--tls-cert-file=/flag/cert', '-listen', '127.0.0.1:9443', '--user-agent', 'a/1', '--user-agent=b/2', '--v=4', '--logtostderr'], env))
  t.equal(o['tls-cert-file'], '/flag/cert', 'flag wins over env')
  t.equal(o['tls-private-key-file'], '/env/key', 'env used when no flag')
  t.equal(o['keystone-url'], 'https://keystone.example:5000/v3')
  t.equal(o['keystone-policy-file'], '/env/policy.json')
  t.equal(o.listen, '127.0.0.1:9443')
  t.same(o['user-agent'], ['a/1', 'b/2'])
  t.equal(o.v, 4)
  t.equal(o['configmap-namespace'], 'kube-system')
  t.equal(o['token-cache-ttl'], 60_000)
  t.equal(parseDuration('1m30s'), 90_000)
  t.equal(parseDuration('250ms'), 250)
  t.throws(() => parseDuration('10'), /not a duration/)
})

t.test('--help and --version', async t => {
  const help = run(['--help'])
  t.equal(help.status, 0)
  for (const flag of SERVER_FLAGS.filter(f => f.hidden !== true)) t.match(help.stdout, `--${flag.name}`)
  t.match(help.stdout, /env OS_AUTH_URL/)
  const version = run(['--version'])
  t.equal(version.status, 0)
  t.match(version.stdout, /^k8s-keystone-auth \d+\.\d+\.\d+/)
})

t.test('invalid or missing values: one clear line naming the flag, non-zero exit', async t => {
  const base = ['--tls-cert-file', 'c', '--tls-private-key-file', 'k', '--keystone-url', 'https://k:5000/v3']
  const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
    [['--tls-private-key-file', 'k', '--keystone-url', 'https://k/v3'], {}, /^k8s-keystone-auth: --tls-cert-file: is required \(or TLS_CERT_FILE\)$/],
    [['--tls-cert-file', 'c', '--tls-private-key-file', 'k'], {}, /^k8s-keystone-auth: --keystone-url: is required \(or OS_AUTH_URL\)$/],
    [[...base, '--keystone-url', 'ftp://x'], {}, /--keystone-url: expected an http\(s\) URL/],
    [base, { OS_AUTH_URL: 'not a url' }, /./],
    [[...base.slice(0, 4)], { OS_AUTH_URL: 'not a url' }, /^k8s-keystone-auth: env OS_AUTH_URL: expected an http\(s\) URL/],
    [[...base, '--listen', 'nope'], {}, /--listen: expected <host>:<port>/],
    [[...base, '--keystone-timeout', 'soon'], {}, /invalid value "soon" for --keystone-timeout: not a duration/],
    [[...base, '--token-cache-size', 'many'], {}, /invalid value "many" for --token-cache-size: expected an integer/],
    [[...base, '--keystone-max-inflight', '-1'], {}, /--keystone-max-inflight: /],
    [base, { KEYSTONE_MAX_INFLIGHT: 'lots' }, /KEYSTONE_MAX_INFLIGHT.*expected an integer/],
    [[...base, '--token-cache-negative-size', '-5'], {}, /--token-cache-negative-size: /],
    [[...base, '--allowed-token-scopes', 'galaxy'], {}, /--allowed-token-scopes: each must be one of project, domain, system, unscoped/],
    [[...base, '--username-format', 'email'], {}, /--username-format: must be one of name, domain\/name/],
    [[...base, '--log-level', 'loud'], {}, /--log-level: must be one of/],
    [[...base, '--service-credential-id', 'abc'], {}, /service mode needs both --service-credential-id and its secret/],
    [[...base, '--no-such-flag'], {}, /unknown flag: --no-such-flag/],
    [[...base, '--listen'], {}, /flag needs an argument: --listen/],
    [[...base, 'extra'], {}, /unexpected argument "extra"/]
  ]
  for (const [args, env, want] of cases) {
    if (want.source === '.') continue
    const r = run(args, env)
    t.equal(r.status, 2, `${args.join(' ')}: exit 2`)
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line')
    t.match(r.stderr.trim(), want)
  }
})

t.test('start-up errors exit 1 with the reason', async t => {
  const r = run(['--tls-cert-file', '/nonexistent/cert', '--tls-private-key-file', '/nonexistent/key', '--keystone-url', 'http://127.0.0.1:5000/v3', '--listen', '127.0.0.1:0'])
  t.equal(r.status, 1)
  t.match(r.stderr, /--tls-cert-file: cannot read \/nonexistent\/cert/)
})

t.test('serves over TLS from env-only configuration, stops cleanly on SIGTERM', async t => {
  const certs = testCerts()
  const seed = loadSeed()
  const child = spawn('env', ['-u', 'NODE_OPTIONS', BIN, '--listen', '127.0.0.1:0'], {
    env: { PATH: process.env.PATH, TLS_CERT_FILE: certs.certFile, TLS_PRIVATE_KEY_FILE: certs.keyFile, OS_AUTH_URL: seed.auth_url },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let logs = ''
  child.stderr.on('data', d => { logs += String(d) })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listen line: ${logs}`)), 20_000)
    child.stderr.on('data', () => {
      const m = /"listen":"127\.0\.0\.1:(\d+)"/.exec(logs)
      if (m !== null) { clearTimeout(timer); resolve(Number(m[1])) }
    })
  })
  const agent = new Agent({ connect: { ca: certs.ca } })
  const token = await passwordToken(seed, 'demo', 'demo')
  const res = await request(`https://127.0.0.1:${port}/webhook`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } })
  })
  const body = await res.body.json() as { status: { user: { username: string } } }
  t.equal(res.statusCode, 200)
  t.equal(body.status.user.username, 'demo')
  await agent.close()
  const exit = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  child.kill('SIGTERM')
  t.equal(await exit, 0, 'exit 0 after SIGTERM')
  t.match(logs, /"signal":"SIGTERM".*shutting down/)
  t.notOk(logs.includes(token))
})
