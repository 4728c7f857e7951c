// The server's options without a Keystone: where each default comes from, and how a bad value is
// refused. (server-cli.test.ts runs the binary itself.)
import t from 'tap'
import { parseFlags } from '../../src/config/flags.js'
import { SERVER_FLAGS } from '../../src/cli/server-flags.js'
import { serverOptionsFrom } from '../../src/cli/k8s-keystone-auth.js'

const REQUIRED = ['--tls-cert-file', 'c.pem', '--tls-private-key-file', 'k.pem', '--keystone-url', 'https://keystone.example:5000/v3']

t.test('a flag left out takes the default its --help shows, read as if typed', async t => {
  const defaults = serverOptionsFrom(parseFlags(SERVER_FLAGS, REQUIRED)) as unknown as Record<string, unknown>
  const withDefault = SERVER_FLAGS.filter(f => f.default !== undefined)
  t.ok(withDefault.length >= 15, 'most flags have a default')
  for (const f of withDefault) {
    const typed = serverOptionsFrom(parseFlags(SERVER_FLAGS, [...REQUIRED, `--${f.name}=${f.default ?? ''}`])) as unknown as Record<string, unknown>
    t.same(defaults[f.name], typed[f.name], `--${f.name} (default ${f.default ?? ''})`)
  }
})

t.test('the defaults are those of the Go binary where it has the flag, and safe elsewhere', async t => {
  const o = serverOptionsFrom(parseFlags(SERVER_FLAGS, REQUIRED))
  t.equal(o.listen, '0.0.0.0:8443', 'Go\'s --listen default')
  t.equal(o['keystone-timeout'], 10_000)
  t.equal(o['token-cache-ttl'], 60_000)
  t.equal(o['token-cache-negative-ttl'], 10_000)
  t.same(o['allowed-token-scopes'], ['project'], 'only project-scoped tokens, as Go')
  t.equal(o['username-format'], 'name')
  t.equal(o['authorization-subresource-compat'], false)
  t.equal(o['authorization-loose-namespaces'], false, 'Go\'s namespace matching')
  t.equal(o['max-request-bytes'], 256 * 1024, 'bounded body')
  t.equal(o['max-connections'], 1024, 'bounded connections')
  t.equal(o['log-level'], 'info')
  t.equal(o.workers, 1)
})

t.test('an env var or a flag replaces the default; the flag wins', async t => {
  const env = { KEYSTONE_TIMEOUT: '3s' }
  t.equal(serverOptionsFrom(parseFlags(SERVER_FLAGS, REQUIRED, env))['keystone-timeout'], 3000)
  t.equal(serverOptionsFrom(parseFlags(SERVER_FLAGS, [...REQUIRED, '--keystone-timeout', '2s'], env))['keystone-timeout'], 2000)
})

t.test('a bad value is one line naming where it came from', async t => {
  t.throws(() => serverOptionsFrom(parseFlags(SERVER_FLAGS, [...REQUIRED, '--keystone-timeout', '0s'])), /^--keystone-timeout: must be greater than 0$/)
  t.throws(() => serverOptionsFrom(parseFlags(SERVER_FLAGS, REQUIRED, { KEYSTONE_USERNAME_FORMAT: 'email' })), /env KEYSTONE_USERNAME_FORMAT: must be one of name, domain\/name/)
  t.throws(() => serverOptionsFrom(parseFlags(SERVER_FLAGS, ['--tls-cert-file', 'c.pem', '--tls-private-key-file', 'k.pem'])), /--keystone-url: is required/)
})

t.test('--listen-reuse-port and --metrics-listen: SO_REUSEPORT by default, metrics off unless set, on another port', async t => {
  const o = serverOptionsFrom(parseFlags(SERVER_FLAGS, REQUIRED))
  t.equal(o['listen-reuse-port'], true, 'on by default (where Node has it)')
  t.equal(o['metrics-listen'], undefined, 'no second listener unless asked: drop-in for the Go binary')
  t.equal(serverOptionsFrom(parseFlags(SERVER_FLAGS, [...REQUIRED, '--listen-reuse-port=false']))['listen-reuse-port'], false)
  t.equal(serverOptionsFrom(parseFlags(SERVER_FLAGS, [...REQUIRED, '--metrics-listen', '0.0.0.0:8444']))['metrics-listen'], '0.0.0.0:8444')
  t.throws(() => serverOptionsFrom(parseFlags(SERVER_FLAGS, [...REQUIRED, '--metrics-listen', 'nope'])), /--metrics-listen: expected <host>:<port>/)
  // One port for both would put them in one SO_REUSEPORT group: reviews would reach the metrics listener.
  t.throws(() => serverOptionsFrom(parseFlags(SERVER_FLAGS, [...REQUIRED, '--listen', '127.0.0.1:8443', '--metrics-listen', '0.0.0.0:8443'])), /--metrics-listen: must use another port than --listen/)
  t.doesNotThrow(() => serverOptionsFrom(parseFlags(SERVER_FLAGS, [...REQUIRED, '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'])), 'port 0 twice: two ports')
})
