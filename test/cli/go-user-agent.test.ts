// Go's own test of --user-agent, replayed against ours: every row of TestUserAgentFlag in
// pkg/identity/keystone/keystone_test.go (v1.32.1, commit 8045e160), read from the verbatim copy in
// test/fixtures/go-v1.32.1/pkg/identity/keystone/ (see test/helpers/go-keystone-tests.ts). Go
// registers the flag as a pflag StringArray (AddExtraFlags, keystone.go): repeatable, each value
// whole (no comma splitting), a value required.
//
// Two documented differences show up here:
//  - `--user-agent=a b` as two arguments: pflag takes "a" and leaves "b" as an argument, which
//    Go's cobra root command ignores; ours refuses a stray argument (exit 2): the "positional
//    arguments" row of docs/differences-from-go.md.
//  - The header: Go prepends each value to gophercloud's (keystone.go, createKeystoneClient:
//    userAgent.Prepend for k8s-keystone-auth/<version> then for each value; gophercloud v2.5.0
//    UserAgent.Join appends gophercloud/v2.5.0), so `--user-agent a/b --user-agent c/d` sends
//    `c/d a/b k8s-keystone-auth/<v> gophercloud/v2.5.0`; ours sends `k8s-keystone-auth/<v> a/b c/d`
//    (README, --user-agent: "extra product appended to User-Agent: k8s-keystone-auth/<version>").
//    The values reach Keystone either way; only their order differs.
import t from 'tap'
import { MockAgent } from 'undici'
import { parseFlags } from '../../src/config/flags.js'
import { SERVER_FLAGS } from '../../src/cli/server-flags.js'
import { main, serverOptionsFrom } from '../../src/cli/k8s-keystone-auth.js'
import { KeystoneClient } from '../../src/keystone/client.js'
import { USER_AGENT } from '../../src/version.js'
import { goFile, goUserAgentCases } from '../helpers/go-keystone-tests.js'

const cases = goUserAgentCases()
// What our start needs besides (Go's test parses a flag set with AddExtraFlags only).
const BASE = ['--keystone-url', 'https://keystone.example/v3', '--tls-cert-file', '/c', '--tls-private-key-file', '/k']

t.test('TestUserAgentFlag: every row of Go\'s table parses (or not) to Go\'s values', async t => {
  const text = goFile('keystone_test.go')
  const fn = text.slice(text.indexOf('func TestUserAgentFlag'))
  t.equal(cases.length, fn.slice(0, fn.indexOf('\n\t}\n')).match(/^\t\t\{"/gm)?.length, 'every row of the table was read')
  t.equal(cases.length, 6)
  for (const c of cases) {
    const where = `${c.name} (keystone_test.go:${c.line}) ${JSON.stringify(c.flags)}`
    if (!c.shouldParse) {
      t.throws(() => parseFlags(SERVER_FLAGS, [...BASE, ...c.flags]), /flag needs an argument: --user-agent/, `${where}: refused`)
      continue
    }
    const parsed = parseFlags(SERVER_FLAGS, [...BASE, ...c.flags])
    // Go's nil (no flag) is our empty list: no extra product either way.
    t.same(serverOptionsFrom(parsed)['user-agent'], c.expected ?? [], `${where}: values`)
    if (parsed.positionals.length === 0) continue
    // Documented difference: Go ignores the stray argument, ours refuses it.
    const err: string[] = []
    const code = await main([...BASE, ...c.flags], {}, { stdout: () => {}, stderr: s => { err.push(s) } })
    t.equal(code, 2, `${where}: ours exits 2 on the stray argument ${JSON.stringify(parsed.positionals[0])} (Go ignores it)`)
    t.match(err.join(''), /unexpected argument "b"/, `${where}: and says which`)
  }
})

t.test('the values reach Keystone in the User-Agent header (ours: after k8s-keystone-auth/<version>)', async t => {
  for (const c of cases.filter(c => c.shouldParse && c.expected !== null)) {
    const mock = new MockAgent()
    mock.disableNetConnect()
    t.teardown(async () => { await mock.close() })
    let seen: unknown
    mock.get('http://keystone.test').intercept({ path: '/v3/auth/tokens?nocatalog', method: 'GET' }).reply(404, opts => {
      seen = (opts.headers as Record<string, string>)['user-agent']
      return {}
    })
    const values = serverOptionsFrom(parseFlags(SERVER_FLAGS, [...BASE, ...c.flags]))['user-agent']
    const keystone = new KeystoneClient({ url: 'http://keystone.test/v3', dispatcher: mock, userAgent: values })
    t.equal(await keystone.validateToken('tok'), null)
    t.equal(seen, [USER_AGENT, ...(c.expected ?? [])].join(' '), `${c.name} (keystone_test.go:${c.line})`)
  }
})
