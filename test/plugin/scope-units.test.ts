// Units of the scope and domain settings (no Keystone): which login request each combination of
// OS_DOMAIN_ID, OS_DOMAIN_NAME, OS_DEFAULT_DOMAIN*, OS_SYSTEM_SCOPE, OS_TRUST_ID, OS_AUTH_TOKEN
// gives, what is missing, the cache key, clouds.yaml's keys, and the kubeconfig's exec env.
import t from 'tap'
import { createHash } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseFlags } from '../../src/config/flags.js'
import { CREDENTIAL_FLAGS, COMMON_FLAGS } from '../../src/plugin/flags.js'
import { cacheKey, describeProject, loginRequest, missingSettings, resolveSettings } from '../../src/plugin/settings.js'
import { loadCloud } from '../../src/plugin/clouds.js'
import { authRequestBody } from '../../src/keystone/auth-request.js'
import { plugin } from './_support.js'

const SPECS = [...CREDENTIAL_FLAGS, ...COMMON_FLAGS]
const settings = (argv: string[], env: NodeJS.ProcessEnv = {}, cloud?: Parameters<typeof resolveSettings>[1]) =>
  resolveSettings(parseFlags(SPECS, argv, env), cloud)
const base = { OS_AUTH_URL: 'http://k/v3', OS_USERNAME: 'u', OS_PASSWORD: 'p' }

t.test('the scope: trust, else project, else system, else the domain of OS_DOMAIN_ID/OS_DOMAIN_NAME', async t => {
  const scope = (env: NodeJS.ProcessEnv): unknown => loginRequest(settings([], { ...base, ...env })).scope
  t.same(scope({ OS_DOMAIN_ID: 'd1' }), { domain: { id: 'd1' } })
  t.same(scope({ OS_DOMAIN_NAME: 'acme' }), { domain: { name: 'acme' } })
  t.same(scope({ OS_DOMAIN_ID: 'd1', OS_DOMAIN_NAME: 'acme' }), { domain: { id: 'd1' } }, 'the id wins')
  t.same(settings(['--domain-name', 'flagdom'], { ...base, OS_DOMAIN_ID: 'd1' }).domainScope?.sel, { name: 'flagdom' }, 'a flag wins over the environment')
  t.same(scope({ OS_SYSTEM_SCOPE: 'all', OS_DOMAIN_NAME: 'acme' }), { system: true })
  t.same(scope({ OS_SYSTEM_SCOPE: 'all', OS_PROJECT_NAME: 'demo', OS_DOMAIN_NAME: 'Default' }), { project: { name: 'demo', domain: { name: 'Default' } } })
  t.same(scope({ OS_TRUST_ID: 'tr1', OS_PROJECT_ID: 'p1', OS_SYSTEM_SCOPE: 'all' }), { trust: { id: 'tr1' } })
  t.same(missingSettings(settings([], { ...base, OS_DEFAULT_DOMAIN: 'd9' })).map(m => m.field), ['projectName'], 'a default domain is never a scope')
  t.same(missingSettings(settings([], { ...base, OS_DOMAIN_NAME: 'acme' })), [], 'a domain scope needs no project')
  t.same(missingSettings(settings([], { ...base, OS_USER_DOMAIN_NAME: 'acme', OS_SYSTEM_SCOPE: 'all' })), [])
  t.same(missingSettings(settings([], { ...base, OS_USER_DOMAIN_NAME: 'acme', OS_TRUST_ID: 'tr1' })), [])
  t.same(missingSettings(settings([], { ...base, OS_SYSTEM_SCOPE: 'all' })).map(m => m.field), ['userDomain'], 'the user still needs a domain')
  t.same(authRequestBody({ method: 'password', user: { id: 'u1' }, password: 'p' }, { trust: { id: 'tr1' } }), {
    auth: { identity: { methods: ['password'], password: { user: { id: 'u1', password: 'p' } } }, scope: { 'OS-TRUST:trust': { id: 'tr1' } } }
  })
  t.equal(describeProject(settings([], { ...base, OS_TRUST_ID: 'tr1' })), 'trust tr1')
  t.equal(describeProject(settings([], { ...base, OS_SYSTEM_SCOPE: 'all' })), 'the system scope')
  t.equal(describeProject(settings([], { ...base, OS_DOMAIN_NAME: 'acme' })), 'domain acme')
})

t.test('domains: specific, then OS_DOMAIN_ID/OS_DOMAIN_NAME, then OS_DEFAULT_DOMAIN_ID/OS_DEFAULT_DOMAIN/OS_DEFAULT_DOMAIN_NAME', async t => {
  const doms = (env: NodeJS.ProcessEnv): unknown => {
    const s = settings([], { ...base, OS_PROJECT_NAME: 'x', ...env })
    return [s.userDomain?.sel, s.projectDomain?.sel]
  }
  t.same(doms({ OS_DEFAULT_DOMAIN: 'dd' }), [{ id: 'dd' }, { id: 'dd' }], 'OS_DEFAULT_DOMAIN is an id (gophercloud: UserDomainID, ProjectDomainID)')
  t.same(doms({ OS_DEFAULT_DOMAIN_ID: 'di', OS_DEFAULT_DOMAIN: 'dd' }), [{ id: 'di' }, { id: 'di' }])
  t.same(doms({ OS_DEFAULT_DOMAIN_NAME: 'dn' }), [{ name: 'dn' }, { name: 'dn' }])
  t.same(doms({ OS_DEFAULT_DOMAIN_NAME: 'dn', OS_DEFAULT_DOMAIN: 'dd' }), [{ id: 'dd' }, { id: 'dd' }], 'an id before a name')
  t.same(doms({ OS_DEFAULT_DOMAIN: 'dd', OS_DOMAIN_NAME: 'g' }), [{ name: 'g' }, { name: 'g' }])
  t.same(doms({ OS_DEFAULT_DOMAIN: 'dd', OS_DOMAIN_ID: 'gi', OS_DOMAIN_NAME: 'g' }), [{ id: 'gi' }, { id: 'gi' }])
  t.same(doms({ OS_DEFAULT_DOMAIN: 'dd', OS_USER_DOMAIN_NAME: 'u' }), [{ name: 'u' }, { id: 'dd' }], 'as setDomainIfNeeded: each domain falls back on its own')
  t.same(doms({ OS_USER_DOMAIN_NAME: 'u' }), [{ name: 'u' }, undefined], 'no default: the project takes the user\'s domain in the request, as before')
  t.same(loginRequest(settings([], { ...base, OS_PROJECT_NAME: 'x', OS_USER_DOMAIN_NAME: 'u' })).scope, { project: { name: 'x', domain: { name: 'u' } } })
})

t.test('OS_AUTH_TOKEN: the token, over OS_TOKEN; a password still wins over both', async t => {
  const s = settings([], { OS_AUTH_URL: 'http://k', OS_AUTH_TOKEN: 'a', OS_TOKEN: 'b', OS_PROJECT_ID: 'p' })
  t.same(loginRequest(s).auth, { method: 'token', token: 'a' })
  t.equal(s.token?.source, 'env OS_AUTH_TOKEN')
  t.equal(loginRequest(settings([], { ...base, OS_DOMAIN_NAME: 'D', OS_AUTH_TOKEN: 'a', OS_PROJECT_ID: 'p' })).auth.method, 'password')
})

t.test('cache key: one per scope; a project login keeps the key it had', async t => {
  const env = { ...base, OS_USER_DOMAIN_NAME: 'D' }
  const keys = new Set([
    cacheKey(settings([], { ...env, OS_PROJECT_NAME: 'x' })),
    cacheKey(settings([], { ...env, OS_DOMAIN_NAME: 'x' })),
    cacheKey(settings([], { ...env, OS_DOMAIN_ID: 'x' })),
    cacheKey(settings([], { ...env, OS_SYSTEM_SCOPE: 'all' })),
    cacheKey(settings([], { ...env, OS_TRUST_ID: 'x' })),
    cacheKey(settings([], { ...env, OS_TRUST_ID: 'y' }))
  ])
  t.equal(keys.size, 6)
  const old = createHash('sha256').update(JSON.stringify([1, 'http://k/v3', 'password', { name: 'u', domain: { name: 'D' } }, { name: 'x', domain: { name: 'D' } }, { cacert: '', cert: '', key: '' }])).digest('hex')
  t.equal(cacheKey(settings([], { ...env, OS_PROJECT_NAME: 'x' })), old, 'the same file as before this change')
  t.equal(cacheKey(settings([], { ...env, OS_PROJECT_NAME: 'x', OS_AUTH_URL: 'http://k/v2.0' })), old, '/v2.0 is the same Keystone')
})

t.test('clouds.yaml: domain_id, default_domain, default_domain_id/_name, system_scope, trust_id', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'ksa-clouds-'))
  const file = join(dir, 'clouds.yaml')
  writeFileSync(file, [
    'clouds:',
    '  sys:',
    '    auth: { auth_url: "http://k/v3", username: u, password: p, user_domain_name: D, system_scope: all }',
    '  trust:',
    '    auth: { auth_url: "http://k/v3", username: u, password: p, default_domain: dd, trust_id: tr1 }',
    '  dom:',
    '    auth: { auth_url: "http://k/v3", username: u, password: p, domain_id: d1, default_domain_name: dn }'
  ].join('\n'))
  const env = { OS_CLIENT_CONFIG_FILE: file, HOME: dir }
  const sys = settings([], {}, await loadCloud('sys', env))
  t.same(loginRequest(sys).scope, { system: true })
  const trust = settings([], {}, await loadCloud('trust', env))
  t.same(loginRequest(trust), { auth: { method: 'password', user: { name: 'u', domain: { id: 'dd' } }, password: 'p' }, scope: { trust: { id: 'tr1' } } })
  const dom = settings([], {}, await loadCloud('dom', env))
  t.same(loginRequest(dom), { auth: { method: 'password', user: { name: 'u', domain: { id: 'd1' } }, password: 'p' }, scope: { domain: { id: 'd1' } } })
  t.same(settings([], { OS_SYSTEM_SCOPE: 'all' }, await loadCloud('dom', env)).systemScope?.source, 'env OS_SYSTEM_SCOPE', 'the environment wins over clouds.yaml')
})

t.test('kubeconfig: the exec env carries the scope', async t => {
  const dry = async (env: Record<string, string>): Promise<Record<string, string>> => {
    const r = await plugin(['kubeconfig', '--server', 'https://k8s:6443', '--dry-run'], { PATH: process.env.PATH, HOME: mkdtempSync(join(tmpdir(), 'ksa-kc-')), ...base, ...env })
    if (r.code !== 0) throw new Error(r.stderr)
    const YAML = await import('yaml')
    const doc = YAML.parse(r.stdout)
    const pairs = doc.users[0].user.exec.env as Array<{ name: string, value: string }>
    return Object.fromEntries(pairs.map(p => [p.name, p.value]))
  }
  const sys = await dry({ OS_USER_DOMAIN_NAME: 'D', OS_SYSTEM_SCOPE: 'yes' })
  t.equal(sys.OS_SYSTEM_SCOPE, 'all')
  t.equal(sys.OS_USER_DOMAIN_NAME, 'D')
  t.equal(sys.OS_PROJECT_DOMAIN_NAME, undefined, 'no project, no project domain')
  const trust = await dry({ OS_USER_DOMAIN_NAME: 'D', OS_TRUST_ID: 'tr1', OS_PROJECT_NAME: 'ignored' })
  t.equal(trust.OS_TRUST_ID, 'tr1')
  t.equal(trust.OS_PROJECT_NAME, undefined)
  const dom = await dry({ OS_DOMAIN_ID: 'd1' })
  t.equal(dom.OS_DOMAIN_ID, 'd1')
  t.equal(dom.OS_USER_DOMAIN_ID, 'd1')
  t.equal(dom.OS_PASSWORD, undefined, 'never the password')
})
