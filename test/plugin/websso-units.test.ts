// The WebSSO parts that need no Keystone: settings (env, flags, clouds.yaml), ports, URLs, the
// browser command, and the loopback callback and its guards, driven in-process by plain HTTP.
// Callback ports here are free ephemeral ports, never 8250-8259 (websso.test.ts uses those).
import t from 'tap'
import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseFlags } from '../../src/config/flags.js'
import { CREDENTIAL_FLAGS, COMMON_FLAGS } from '../../src/plugin/flags.js'
import { cacheKey, methodOf, missingSettings, resolveSettings, webssoUnscopedKey } from '../../src/plugin/settings.js'
import { loadCloud } from '../../src/plugin/clouds.js'
import { browserCommand, parsePorts, webssoLogin, webssoUrl, type WebssoLoginOptions } from '../../src/plugin/websso.js'
import { getToken } from '../../src/plugin/get-token.js'
import { TokenCache } from '../../src/plugin/cache.js'
import { plugin, sandbox } from './_support.js'

const SPECS = [...CREDENTIAL_FLAGS, ...COMMON_FLAGS]
const settings = (argv: string[], env: NodeJS.ProcessEnv = {}, cloud?: Parameters<typeof resolveSettings>[1]) =>
  resolveSettings(parseFlags(SPECS, argv, env), cloud)

t.test('settings: OS_AUTH_TYPE=v3websso selects WebSSO; protocol required, project optional', async t => {
  const s = settings([], { OS_AUTH_URL: 'http://ks:5000', OS_AUTH_TYPE: 'v3websso', OS_IDENTITY_PROVIDER: 'idp1', OS_PROTOCOL: 'openid', OS_PASSWORD: 'ignored' })
  t.equal(methodOf(s), 'websso', 'the auth type wins over a password in the environment')
  t.same(missingSettings(s), [])
  t.same(missingSettings(settings([], { OS_AUTH_TYPE: 'websso' })).map(m => m.field), ['authUrl', 'protocol'])
  t.equal(methodOf(settings([], { OS_AUTH_TYPE: 'v3applicationcredential', OS_PASSWORD: 'x' })), 'password', 'other auth types keep the old choice')
  t.equal(methodOf(settings(['--auth-type', 'V3WebSSO'])), 'websso')
  // Cache keys: one per project for scoped tokens, one unscoped key (the browser lock) for any project.
  const a = settings([], { OS_AUTH_URL: 'http://ks:5000', OS_AUTH_TYPE: 'v3websso', OS_PROTOCOL: 'openid', OS_PROJECT_NAME: 'a' })
  const b = settings([], { OS_AUTH_URL: 'http://ks:5000/v3', OS_AUTH_TYPE: 'v3websso', OS_PROTOCOL: 'openid', OS_PROJECT_NAME: 'b' })
  t.not(cacheKey(a), cacheKey(b))
  t.equal(webssoUnscopedKey(a), webssoUnscopedKey(b))
  const c = settings([], { OS_AUTH_URL: 'http://ks:5000', OS_AUTH_TYPE: 'v3websso', OS_PROTOCOL: 'saml2', OS_PROJECT_NAME: 'a' })
  t.not(webssoUnscopedKey(a), webssoUnscopedKey(c), 'another protocol is another login')
  t.not(webssoUnscopedKey(a), cacheKey(a))
})

t.test('clouds.yaml: auth_type v3websso with identity_provider and protocol (keystoneauth names)', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'ksa-websso-clouds-'))
  mkdirSync(join(dir, '.config', 'openstack'), { recursive: true })
  writeFileSync(join(dir, '.config', 'openstack', 'clouds.yaml'), [
    'clouds:',
    '  fed:',
    '    auth_type: v3websso',
    '    auth:',
    '      auth_url: https://keystone.example.org:5000',
    '      identity_provider: egi',
    '      protocol: openid',
    '      project_name: research'
  ].join('\n'))
  const cloud = await loadCloud('fed', { HOME: dir })
  const s = settings([], {}, cloud)
  t.equal(methodOf(s), 'websso')
  t.equal(s.identityProvider?.value, 'egi')
  t.equal(s.protocol?.value, 'openid')
  t.equal(s.projectName?.value, 'research')
})

t.test('callback ports and URLs', async t => {
  t.same(parsePorts('8250-8253'), [8250, 8251, 8252, 8253])
  t.same(parsePorts('9000, 8250-8251 9000'), [9000, 8250, 8251])
  for (const bad of ['', 'x', '0', '70000', '8259-8250', '1-5000']) t.throws(() => parsePorts(bad), { name: 'UsageError' }, bad)
  t.equal(webssoUrl('https://ks.example/v3', 'openid', 'my idp', 'http://127.0.0.1:8250/callback'),
    'https://ks.example/v3/auth/OS-FEDERATION/identity_providers/my%20idp/protocols/openid/websso?origin=http%3A%2F%2F127.0.0.1%3A8250%2Fcallback')
  t.equal(webssoUrl('https://ks.example/v3', 'saml2', undefined, 'http://127.0.0.1:8251/callback'),
    'https://ks.example/v3/auth/OS-FEDERATION/websso/saml2?origin=http%3A%2F%2F127.0.0.1%3A8251%2Fcallback')
  t.same(browserCommand(undefined, 'linux'), ['xdg-open'])
  t.same(browserCommand(undefined, 'darwin'), ['open'])
  t.same(browserCommand(undefined, 'win32'), ['cmd', '/c', 'start', '""'])
  t.same(browserCommand('firefox --new-window', 'linux'), ['firefox', '--new-window'])
  t.equal(browserCommand('none', 'linux'), undefined)
})

async function freePort (): Promise<number> {
  const s = createServer()
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', () => resolve()))
  const port = (s.address() as AddressInfo).port
  await new Promise<void>(resolve => s.close(() => resolve()))
  return port
}

interface Sent { status: number, body: string }
async function send (port: number, opts: { method?: string, path?: string, headers?: Record<string, string>, body?: string }): Promise<Sent> {
  return await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: opts.method ?? 'POST', path: opts.path ?? '/callback', headers: opts.headers ?? {}, agent: false }, res => {
      let body = ''
      res.on('data', d => { body += String(d) })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const KEYSTONE = 'http://keystone.test:5000'

function start (port: number, extra: Partial<WebssoLoginOptions> = {}): { result: Promise<string>, logs: string[], listening: Promise<string> } {
  const logs: string[] = []
  let onListening: (cb: string) => void = () => {}
  const listening = new Promise<string>(resolve => { onListening = resolve })
  const result = webssoLogin({
    authUrl: `${KEYSTONE}/v3`,
    protocol: 'openid',
    identityProvider: 'testidp',
    ports: [port],
    timeoutMs: 60_000,
    log: l => logs.push(l),
    onListening: cb => onListening(cb),
    ...extra
  })
  return { result, logs, listening }
}

t.test('the callback accepts one form POST with Keystone\'s Origin and refuses everything else', async t => {
  const port = await freePort()
  const { result, logs, listening } = start(port)
  t.equal(await listening, `http://127.0.0.1:${port}/callback`)
  t.match(logs.join('\n'), `${KEYSTONE}/v3/auth/OS-FEDERATION/identity_providers/testidp/protocols/openid/websso?origin=http%3A%2F%2F127.0.0.1%3A${port}%2Fcallback`)
  const host = { host: `127.0.0.1:${port}` }
  t.equal((await send(port, { headers: { ...FORM, origin: 'http://evil.example' }, body: 'token=planted' })).status, 403, 'another origin')
  t.equal((await send(port, { headers: { ...FORM, origin: 'http://keystone.test:5001' }, body: 'token=planted' })).status, 403, 'another port of the same host')
  t.equal((await send(port, { headers: { ...FORM, origin: 'null' }, body: 'token=planted' })).status, 403, 'an opaque origin')
  t.equal((await send(port, { headers: FORM, body: 'token=planted' })).status, 403, 'no Origin')
  t.equal((await send(port, { headers: { ...FORM, origin: KEYSTONE, host: `localhost:${port}` }, body: 'token=planted' })).status, 403, 'another Host (DNS rebinding)')
  t.equal((await send(port, { method: 'GET', headers: host })).status, 405, 'GET')
  t.equal((await send(port, { path: '/other', headers: { ...FORM, origin: KEYSTONE }, body: 'token=x' })).status, 404)
  t.equal((await send(port, { headers: { 'content-type': 'application/json', origin: KEYSTONE }, body: '{"token":"x"}' })).status, 415)
  t.equal((await send(port, { headers: { ...FORM, origin: KEYSTONE }, body: 'token=' })).status, 400, 'empty token')
  t.equal((await send(port, { headers: { ...FORM, origin: KEYSTONE }, body: `token=${'a'.repeat(70_000)}` })).status, 413)
  const ok = await send(port, { headers: { ...FORM, origin: KEYSTONE }, body: 'token=gAAAA-good_token&x=1' })
  t.equal(ok.status, 200)
  t.match(ok.body, /You can close this tab/)
  t.equal(await result, 'gAAAA-good_token')
  t.ok(logs.some(l => l.includes('refused a WebSSO callback from origin "http://evil.example"')))
  await t.rejects(send(port, { headers: { ...FORM, origin: KEYSTONE }, body: 'token=again' }), 'the port is closed after the one login')
})

t.test('the callback checks each token (accept): a refused one is answered 403 and the wait goes on; a failed check ends the login', async t => {
  const port = await freePort()
  const seen: string[] = []
  const { result, logs, listening } = start(port, { accept: async tok => { seen.push(tok); return tok === 'gAAAA-good' ? undefined : 'a token of user mallory' } })
  await listening
  const planted = await send(port, { headers: { ...FORM, origin: KEYSTONE }, body: 'token=gAAAA-planted' })
  t.equal(planted.status, 403)
  t.match(planted.body, 'refused: a token of user mallory')
  t.ok(logs.some(l => l === 'refused a WebSSO callback: a token of user mallory; still waiting'))
  t.equal((await send(port, { headers: { ...FORM, origin: KEYSTONE }, body: 'token=gAAAA-good' })).status, 200)
  t.equal(await result, 'gAAAA-good')
  t.same(seen, ['gAAAA-planted', 'gAAAA-good'])

  const port2 = await freePort()
  const failing = start(port2, { accept: async () => { throw new Error('Keystone unreachable') } })
  const ended = failing.result.then(() => undefined, (err: Error) => err.message)
  await failing.listening
  t.equal((await send(port2, { headers: { ...FORM, origin: KEYSTONE }, body: 'token=gAAAA-x' })).status, 502)
  t.equal(await ended, 'Keystone unreachable')
})

t.test('the first free configured port is used; none free is a clear error', async t => {
  const busyPort = await freePort()
  const busy: Server = createServer()
  await new Promise<void>(resolve => busy.listen(busyPort, '127.0.0.1', () => resolve()))
  t.teardown(() => { busy.close() })
  const next = await freePort()
  const { result, listening } = start(busyPort, { ports: [busyPort, next] })
  t.equal(await listening, `http://127.0.0.1:${next}/callback`)
  await send(next, { headers: { ...FORM, origin: KEYSTONE }, body: 'token=t1' })
  t.equal(await result, 't1')
  await t.rejects(start(busyPort, { ports: [busyPort] }).result, { code: 'KSA_ERR_WEBSSO_PORTS', message: new RegExp(`tried ${busyPort} \\(EADDRINUSE\\).*--websso-ports`) })
})

t.test('no login within the time: a clear message, and the port is released', async t => {
  const port = await freePort()
  const { result } = start(port, { timeoutMs: 200 })
  await t.rejects(result, { code: 'KSA_ERR_WEBSSO_TIMEOUT', message: /no WebSSO login arrived at http:\/\/127\.0\.0\.1:\d+\/callback within 0 s.*--websso-timeout/ })
  await t.rejects(send(port, { headers: { ...FORM, origin: KEYSTONE }, body: 'token=late' }))
})

t.test('a browser that cannot start is reported; the URL is still printed', async t => {
  const port = await freePort()
  const { result, logs, listening } = start(port, { browser: ['/nonexistent/browser'] })
  await listening
  // The spawn error arrives asynchronously; the login goes on regardless.
  for (let i = 0; i < 100 && !logs.some(l => l.includes('could not start the browser')); i++) await new Promise(resolve => setTimeout(resolve, 20))
  t.ok(logs.some(l => l.includes('could not start the browser (/nonexistent/browser: ENOENT)')), logs.join('\n'))
  await send(port, { headers: { ...FORM, origin: KEYSTONE }, body: 'token=t2' })
  t.equal(await result, 't2')
})

t.test('non-interactive without a cached token: fails before any port is opened', async t => {
  const port = await freePort()
  const s = settings([], { OS_AUTH_URL: `${KEYSTONE}/v3`, OS_AUTH_TYPE: 'v3websso', OS_PROTOCOL: 'openid' })
  const cache = new TokenCache(mkdtempSync(join(tmpdir(), 'ksa-websso-cache-')))
  await t.rejects(getToken({
    settings: s,
    cache,
    marginMs: 0,
    revalidateAfterMs: 60_000,
    timeoutMs: 1000,
    interactive: false,
    ppid: 1,
    websso: { ports: [port], timeoutMs: 60_000, log: () => { throw new Error('no login may start') } }
  }), { code: 'KSA_ERR_WEBSSO_LOGIN_NEEDED', message: /run `client-keystone-auth login`/ })
  await t.rejects(getToken({
    settings: s,
    marginMs: 0,
    revalidateAfterMs: 60_000,
    timeoutMs: 1000,
    interactive: false,
    ppid: 1,
    websso: { ports: [port], timeoutMs: 60_000 }
  }), { code: 'KSA_ERR_WEBSSO_LOGIN_NEEDED', message: /--no-cache/ })
})

t.test('kubeconfig --dry-run: a WebSSO exec stanza without secrets', async t => {
  const sb = sandbox()
  const r = await plugin(['kubeconfig', '--server', 'https://k8s.example:6443', '--cluster-name', 'fedcloud', '--dry-run', '--websso-ports', '8250-8252'], {
    ...sb.env, OS_AUTH_URL: 'https://keystone.example.org:5000', OS_AUTH_TYPE: 'v3websso', OS_IDENTITY_PROVIDER: 'egi', OS_PROTOCOL: 'openid', OS_PROJECT_NAME: 'research'
  })
  t.equal(r.code, 0, r.stderr)
  const YAML = await import('yaml')
  const doc = YAML.parse(r.stdout)
  const user = doc.users[0]
  t.equal(user.name, 'egi@fedcloud')
  t.equal(user.user.exec.interactiveMode, 'IfAvailable')
  t.same(user.user.exec.env, [
    { name: 'OS_AUTH_URL', value: 'https://keystone.example.org:5000/v3' },
    { name: 'OS_AUTH_TYPE', value: 'v3websso' },
    { name: 'OS_IDENTITY_PROVIDER', value: 'egi' },
    { name: 'OS_PROTOCOL', value: 'openid' },
    { name: 'OS_PROJECT_NAME', value: 'research' },
    { name: 'CLIENT_KEYSTONE_AUTH_WEBSSO_PORTS', value: '8250-8252' }
  ])
  const noProto = await plugin(['kubeconfig', '--server', 'https://k8s.example:6443', '--dry-run'], { ...sb.env, OS_AUTH_URL: 'https://ks', OS_AUTH_TYPE: 'v3websso' })
  t.equal(noProto.code, 2)
  t.match(noProto.stderr, /missing federation protocol/)
})
