// Command lines written for the Go binaries (v1.32.1) start ours unchanged:
// - `_` in a flag name is `-` (cli.Run of k8s.io/component-base v0.32 sets
//   cliflag.WordSepNormalizeFunc on the command: cmd/k8s-keystone-auth/main.go and
//   cmd/client-keystone-auth/main.go call cli.Run);
// - klog's flags are accepted: `-v`/`--v`, `--vmodule`, `--log-flush-frequency`, which Go registers
//   (component-base logs.AddFlags), and klog's older ones (`--logtostderr`, `--log_dir`, ...), which
//   old manifests still pass; those that do nothing here say so in one warning line;
// - a leading argument naming the program itself is skipped: Go's example Deployment
//   (examples/webhook/keystone-deployment.yaml) passes `./bin/k8s-keystone-auth` first, which Go's
//   image (CMD, no ENTRYPOINT) runs as the command and our image (ENTRYPOINT) passes as an argument.
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { KLOG_IGNORED_FLAGS, normalizeFlagName, parseFlags } from '../../src/config/flags.js'
import { SERVER_FLAGS } from '../../src/cli/server-flags.js'
import { serverOptionsFrom, withoutProgramName } from '../../src/cli/k8s-keystone-auth.js'
import { CREDENTIAL_FLAGS, COMMON_FLAGS } from '../../src/plugin/flags.js'
import { testCerts } from '../helpers/certs.js'
import { loadSeed } from '../helpers/keystone.js'

const BIN = fileURLToPath(new URL('../../bin/k8s-keystone-auth', import.meta.url))
const run = (args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null, stdout: string, stderr: string } => {
  const r = spawnSync('env', ['-u', 'NODE_OPTIONS', BIN, ...args], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8', timeout: 20_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

t.test('flag names: _ is -, as cliflag.WordSepNormalizeFunc', async t => {
  t.equal(normalizeFlagName('keystone_url'), 'keystone-url')
  t.equal(normalizeFlagName('log_file_max_size'), 'log-file-max-size')
  t.equal(normalizeFlagName('listen'), 'listen')
  const p = parseFlags(SERVER_FLAGS, [
    '--keystone_url', 'https://keystone.example:5000/v3', '--tls_cert_file=/c', '-tls_private_key_file', '/k',
    '--policy_configmap_name', 'k8s-auth-policy', '--sync-config_file', '/s.yaml', '--user_agent', 'a/1', '--token_cache_ttl=30s'
  ])
  const o = serverOptionsFrom(p)
  t.equal(o['keystone-url'], 'https://keystone.example:5000/v3')
  t.equal(o['tls-cert-file'], '/c')
  t.equal(o['tls-private-key-file'], '/k')
  t.equal(o['policy-configmap-name'], 'k8s-auth-policy')
  t.equal(o['sync-config-file'], '/s.yaml', 'any mix of _ and -')
  t.same(o['user-agent'], ['a/1'])
  t.equal(o['token-cache-ttl'], 30_000)
  t.equal(p.sources.get('keystone-url'), '--keystone-url', 'messages name the flag in its - spelling')
  t.throws(() => parseFlags(SERVER_FLAGS, ['--no_such_flag']), /unknown flag: --no_such_flag/, 'an unknown flag is named as typed')
  t.throws(() => parseFlags(SERVER_FLAGS, ['--keystone_url']), /flag needs an argument: --keystone-url/)
  // The value is never touched.
  t.equal(parseFlags(SERVER_FLAGS, ['--listen=a_b:1']).values.get('listen'), 'a_b:1')
  // client-keystone-auth goes through cli.Run too (cmd/client-keystone-auth/main.go).
  const plugin = parseFlags([...CREDENTIAL_FLAGS, ...COMMON_FLAGS], ['--keystone_url', 'https://k/v3', '--application_credential_id=abc'])
  t.equal(plugin.values.get('keystone-url'), 'https://k/v3')
  t.equal(plugin.values.get('application-credential-id'), 'abc')
})

t.test('klog flags: accepted, listed as ignored (all but --v, which sets the level)', async t => {
  const base = ['--tls-cert-file', 'c', '--tls-private-key-file', 'k', '--keystone-url', 'https://k:5000/v3']
  // The spelling of each as Go's klog defines it (klog/v2 v2.130.1 InitFlags; component-base logs).
  const klog = [
    '--vmodule=foo=2', '--log-flush-frequency', '5s', '--log_flush_frequency=1s',
    '--logtostderr', '--alsologtostderr=false', '--log_dir', '/tmp', '--log_file=/tmp/x.log', '--log_file_max_size=1800',
    '--stderrthreshold', 'INFO', '--skip_headers', '--skip_log_headers=true', '--add_dir_header', '--one_output', '--log_backtrace_at=main.go:1'
  ]
  const p = parseFlags(SERVER_FLAGS, [...base, '--v=2', ...klog])
  t.same(p.ignored, [
    '--vmodule', '--log-flush-frequency', '--logtostderr', '--alsologtostderr', '--log-dir', '--log-file', '--log-file-max-size',
    '--stderrthreshold', '--skip-headers', '--skip-log-headers', '--add-dir-header', '--one-output', '--log-backtrace-at'
  ], 'each once, in order, in the - spelling')
  t.same(KLOG_IGNORED_FLAGS.map(f => `--${f.name}`).sort(), [...p.ignored].sort(), 'every klog flag there is')
  t.equal(serverOptionsFrom(p).v, 2)
  t.same(parseFlags(SERVER_FLAGS, [...base, '--v', '4']).ignored, [], '--v is not ignored')
  for (const form of [['-v', '6'], ['-v=6'], ['--v=6'], ['--v', '6']]) {
    t.equal(serverOptionsFrom(parseFlags(SERVER_FLAGS, [...base, ...form])).v, 6, form.join(' '))
  }
  t.throws(() => parseFlags(SERVER_FLAGS, [...base, '--log-flush-frequency=often']), /invalid value "often" for --log-flush-frequency/, 'a bad value is refused, as Go')
  t.throws(() => parseFlags(SERVER_FLAGS, [...base, '--v=loud']), /invalid value "loud" for --v/)
  t.notOk(run(['--help']).stdout.includes('vmodule'), 'not in --help')
})

t.test('a leading argument naming the program is skipped', async t => {
  t.same(withoutProgramName(['./bin/k8s-keystone-auth', '--listen', ':1']), ['--listen', ':1'])
  t.same(withoutProgramName(['/usr/local/bin/k8s-keystone-auth']), [])
  t.same(withoutProgramName(['k8s-keystone-auth', 'policy', 'check', 'f']), ['policy', 'check', 'f'])
  t.same(withoutProgramName(['--listen', ':1', 'k8s-keystone-auth']), ['--listen', ':1', 'k8s-keystone-auth'], 'only first')
  t.same(withoutProgramName(['k8s-keystone-auth-v2', '--help']), ['k8s-keystone-auth-v2', '--help'], 'only that name')
  t.same(withoutProgramName([]), [])

  const start = ['--tls-cert-file', '/nonexistent/cert', '--tls-private-key-file', '/nonexistent/key', '--keystone-url', 'http://127.0.0.1:5000/v3', '--listen', '127.0.0.1:0']
  const r = run(['./bin/k8s-keystone-auth', ...start])
  t.equal(r.status, 1, 'the flags after it are read: the start fails on the certificate, not on an argument')
  t.match(r.stderr, /--tls-cert-file: cannot read \/nonexistent\/cert/)
  t.notMatch(r.stderr, /unexpected argument/)
  const other = run(['./bin/other-program', ...start])
  t.equal(other.status, 2, 'another leading argument is still refused')
  t.match(other.stderr, /unexpected argument "\.\/bin\/other-program"/)
  t.equal(run(['/app/bin/k8s-keystone-auth', '--version']).status, 0)
})

t.test('the real binary: klog flags given, one warning line naming those that do nothing', async t => {
  const certs = testCerts()
  const child = spawn('env', ['-u', 'NODE_OPTIONS', BIN, '--listen', '127.0.0.1:0', '--logtostderr', '--v=2', '--vmodule=x=1', '--log_dir=/tmp', '--one_output'], {
    env: { PATH: process.env.PATH, TLS_CERT_FILE: certs.certFile, TLS_PRIVATE_KEY_FILE: certs.keyFile, OS_AUTH_URL: loadSeed().auth_url },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let logs = ''
  child.stderr.on('data', d => { logs += String(d) })
  const listening = await new Promise<boolean>(resolve => {
    const timer = setTimeout(() => resolve(false), 20_000)
    child.stderr.on('data', () => { if (/"listen":"127\.0\.0\.1:\d+"/.test(logs)) { clearTimeout(timer); resolve(true) } })
    child.on('exit', () => { clearTimeout(timer); resolve(false) })
  })
  t.ok(listening, `serves (${logs.slice(0, 500)})`)
  const warnings = logs.split('\n').filter(l => l.includes('klog flags'))
  t.equal(warnings.length, 1, 'one line')
  const w = JSON.parse(warnings[0] ?? '{}') as { level: number, flags: string[], msg: string }
  t.equal(w.level, 40, 'a warning')
  t.same(w.flags, ['--logtostderr', '--vmodule', '--log-dir', '--one-output'])
  t.match(w.msg, /--logtostderr --vmodule --log-dir --one-output/)
  const exit = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  child.kill('SIGTERM')
  t.equal(await exit, 0)
})
