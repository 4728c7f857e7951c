import t from 'tap'
import fc from 'fast-check'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { EXTRA_PROJECT_ID, EXTRA_PROJECT_NAME, EXTRA_ROLES, EXTRA_USER_DOMAIN_NAME } from '../../src/identity.js'
import { PolicyEngine } from '../../src/authz/engine.js'
import type { AccessRequest } from '../../src/authz/types.js'
import { GO_FIXTURES, goAuthorizerCases } from './go-cases.js'

// Random policies and requests, decided by the engine and by a test oracle: a line-by-line
// transcription of the Go authorizer (pkg/identity/keystone/authorizer.go at v1.32.1, commit
// 8045e160: getAllowed, resourcePermissionAllowed, nonResourcePermissionAllowed, resourceMatches,
// nonResourceMatches, match, Authorize), written independently of the compiled matcher, and
// checked itself against Go's own unit-test cases below. With subresourceCompat on and only the
// inputs Go understands (two-part keys, no uid), the two must agree on every request. A review
// without `spec.extra` is Go's nil map ("No auth info found").

type Json = any

function goGetAllowed (def: string, str: string): boolean {
  if (def === str || def === '*' || str === '') return true
  const list = (text: string): string[] | undefined => {
    try {
      const v = JSON.parse(text.split("'").join('"'))
      return Array.isArray(v) && v.every(x => typeof x === 'string') ? v : undefined
    } catch { return undefined }
  }
  if (def.indexOf('!') === 0 && def.indexOf('[') !== 1) {
    return !(def.slice(1) === str || def.slice(1) === '*')
  }
  if (def.indexOf('[') === 0 && def.indexOf(']') === def.length - 1) {
    const items = list(def)
    return items !== undefined && (items.includes('*') || items.includes(str))
  }
  if (def.indexOf('!') === 0 && def.indexOf('[') === 1 && def.indexOf(']') === def.length - 1) {
    const items = list(def.slice(1))
    return items !== undefined && !items.some(v => v === str || v === '*')
  }
  return false
}

function goResourcePermission (perm: Record<string, string[]>, r: Json): boolean {
  for (const key of Object.keys(perm)) {
    const verbs = (perm[key] ?? []).map(v => v.toLowerCase())
    const parts = key.split('/')
    if (parts.length !== 2) continue
    const ns = (parts[0] as string).trim().toLowerCase()
    const res = (parts[1] as string).trim().toLowerCase()
    // "When request without namespace, only policy which nsDef is equal to "*" could be executed."
    if (ns !== '*' && r.namespace === '') continue
    if (!goGetAllowed(ns, r.namespace) || !goGetAllowed(res, r.resource)) continue
    if (verbs.includes('*') || verbs.includes(r.verb)) return true
  }
  return false
}

function goMatch (match: Json[] | null | undefined, req: { user: string, groups: string[], extra: Record<string, string[]> }): boolean {
  const extra = (k: string): string[] => req.extra[k] ?? []
  for (const m of match ?? []) {
    const values: string[] = m.values ?? []
    if (!['group', 'project', 'role', 'user'].includes(m.type)) return false
    if (values.includes('*')) continue
    if (m.type === 'group' && !req.groups.some(g => values.includes(g))) return false
    if (m.type === 'user' && !values.includes(req.user) && !values.includes('')) return false
    if (m.type === 'project' && !extra(EXTRA_PROJECT_ID).some(p => values.includes(p)) && !extra(EXTRA_PROJECT_NAME).some(p => values.includes(p))) return false
    if (m.type === 'role' && !extra(EXTRA_ROLES).some(p => values.includes(p))) return false
  }
  return true
}

/** `req.extra` undefined is Go's nil map: the review had no `spec.extra`. */
function goAuthorize (policy: Json[], req: Omit<AccessRequest, 'extra'> & { extra?: Record<string, string[]> | undefined }): boolean {
  if (req.extra === undefined) return false
  const roles = new Set(req.extra[EXTRA_ROLES] ?? [])
  const projects = new Set([...(req.extra[EXTRA_PROJECT_NAME] ?? []), ...(req.extra[EXTRA_PROJECT_ID] ?? [])])
  for (const p of policy) {
    if (p.users !== undefined && p.users !== null) {
      const pr: string[] = p.users.roles ?? []
      const pp: string[] = p.users.projects ?? []
      if (!pr.every(r => roles.has(r)) || !pp.some(x => projects.has(x))) continue
    }
    if (req.resource !== undefined) {
      const a = req.resource
      if (p.resource_permissions !== undefined && p.resource_permissions !== null) {
        if (goResourcePermission(p.resource_permissions, a)) return true
      } else if (p.resource !== undefined && p.resource !== null) {
        const s = p.resource
        const resources: string[] = s.resources ?? []
        const verbs: string[] = s.verbs ?? []
        if (s.version !== '*' && s.version !== a.group) continue
        if (s.namespace !== '*' && s.namespace !== a.namespace) continue
        if (a.subresource.length > 0) {
          if (!resources.includes('*') && !resources.includes(`${a.resource}/*`) && !resources.includes(`${a.resource}/${a.subresource}`)) continue
        } else if (!resources.includes('*') && !resources.includes(a.resource)) continue
        if (!verbs.includes('*') && !verbs.includes(a.verb)) continue
        if (goMatch(p.match, { ...req, extra: req.extra })) return true
      }
    } else {
      const a = req.nonResource as { path: string, verb: string }
      if (p.nonresource_permissions !== undefined && p.nonresource_permissions !== null) {
        for (const key of Object.keys(p.nonresource_permissions)) {
          const verbs: string[] = p.nonresource_permissions[key]
          if (key === a.path && (verbs.includes('*') || verbs.includes(a.verb))) return true
        }
      } else if (p.nonresource !== undefined && p.nonresource !== null) {
        const s = p.nonresource
        const verbs: string[] = s.verbs ?? []
        if (verbs.includes('')) continue
        if (s.path === undefined || s.path === null) continue
        if (!verbs.includes('*') && !verbs.includes(a.verb)) continue
        const path: string = s.path
        if (path !== '*' && path !== a.path && !(path.endsWith('*') && a.path.startsWith(path.replace(/\*+$/, '')))) continue
        if (goMatch(p.match, { ...req, extra: req.extra })) return true
      }
    }
  }
  return false
}

// Small alphabets, so that random policies and requests actually meet.
const NS = ['default', 'kube-system', 'dev', '']
const RES = ['pods', 'secrets', 'deployments']
const SUB = ['', '', 'log', 'exec']
const API_GROUPS = ['', 'apps']
const VERBS = ['get', 'list', 'create']
const PATHS = ['/healthz', '/api', '/api/v1', '/metrics']
const ROLES = ['member', 'admin']
const PROJECTS = ['demo', 'p-1']

const sub = <T>(xs: readonly T[]): fc.Arbitrary<T[]> => fc.subarray([...xs])
const nsPattern = fc.constantFrom('*', 'default', 'kube-system', '!kube-system', '!*', '!', "['default', 'dev']", "!['kube-system']", "['*']", "!['*']", '[bad', ' Default ')
const resPattern = fc.constantFrom('*', 'pods', 'secrets', '!secrets', "['pods', 'secrets']", "!['secrets', 'deployments']", "['*']", 'PODS', '[pods]')
const permKey = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(nsPattern, resPattern).map(([n, r]) => `${n}/${r}`) },
  { weight: 1, arbitrary: fc.constantFrom('pods', 'a/b/c/d') }
)
const verbList = sub([...VERBS, '*', 'GET', 'LIST'])

const entry = fc.record({
  users: fc.option(fc.record({ roles: sub(ROLES), projects: sub(PROJECTS) }, { requiredKeys: [] }), { nil: undefined }),
  match: fc.option(fc.array(fc.record({ type: fc.constantFrom('user', 'group', 'project', 'role', 'bogus'), values: sub(['alice', 'devs', 'ops', 'demo', 'p-1', 'member', 'admin', '*']) }), { maxLength: 2 }), { nil: undefined }),
  resource: fc.option(fc.record({
    verbs: sub([...VERBS, '*']),
    resources: sub(['pods', 'secrets', 'pods/log', 'pods/*', 'deployments', '*']),
    version: fc.constantFrom('*', '', 'apps'),
    namespace: fc.constantFrom('*', 'default', '', 'kube-system')
  }), { nil: undefined }),
  nonresource: fc.option(fc.record({ verbs: sub(['get', '*', '']), path: fc.constantFrom('/healthz', '/api/*', '/api', '*', '/met*') }, { requiredKeys: ['verbs'] }), { nil: undefined }),
  resource_permissions: fc.option(fc.dictionary(permKey, verbList, { maxKeys: 3 }), { nil: undefined }),
  nonresource_permissions: fc.option(fc.dictionary(fc.constantFrom(...PATHS, '*'), sub(['get', 'GET', '*']), { maxKeys: 2 }), { nil: undefined })
}, { requiredKeys: [] })

type Identity = 'keystone' | 'none' | 'foreign'
interface Generated { req: AccessRequest, identity: Identity }

const request: fc.Arbitrary<Generated> = fc.record({
  identity: fc.constantFrom<Identity>('keystone', 'keystone', 'keystone', 'keystone', 'none', 'foreign'),
  user: fc.constantFrom('alice', 'bob'),
  groups: sub(['devs', 'ops']),
  roles: sub(ROLES),
  projectNames: sub(PROJECTS),
  projectIds: sub(PROJECTS),
  resource: fc.option(fc.record({
    namespace: fc.constantFrom(...NS),
    verb: fc.constantFrom(...VERBS),
    group: fc.constantFrom(...API_GROUPS),
    version: fc.constant('v1'),
    resource: fc.constantFrom(...RES),
    subresource: fc.constantFrom(...SUB),
    name: fc.constant('')
  }), { nil: undefined }),
  path: fc.constantFrom(...PATHS),
  verb: fc.constantFrom(...VERBS)
}).map(r => {
  const extra: Record<string, string[]> = r.identity === 'keystone'
    ? { [EXTRA_USER_DOMAIN_NAME]: ['Default'], [EXTRA_ROLES]: r.roles, [EXTRA_PROJECT_NAME]: r.projectNames, [EXTRA_PROJECT_ID]: r.projectIds }
    : r.identity === 'foreign' ? { 'example.org/team': ['devs'] } : {}
  const req: AccessRequest = { user: r.user, groups: r.groups, extra }
  if (r.resource !== undefined) req.resource = r.resource
  else req.nonResource = { path: r.path, verb: r.verb }
  return { req, identity: r.identity }
})

/** What the Go binary is given for the same review: no `spec.extra` at all for 'none'. */
function goSays (policy: Json[], g: Generated): boolean {
  return goAuthorize(policy, g.identity === 'none' ? { ...g.req, extra: undefined } : g.req)
}

/** Ours must equal Go, except that a review with only foreign extras is denied (stricter). */
function agrees (ours: boolean, policy: Json[], g: Generated): boolean {
  return g.identity === 'foreign' ? !ours : ours === goSays(policy, g)
}

t.test('the engine (subresourceCompat) decides exactly as the Go rules', async t => {
  let allowed = 0
  let total = 0
  fc.assert(fc.property(fc.array(entry, { maxLength: 4 }), fc.array(request, { minLength: 1, maxLength: 10 }), (policy, requests) => {
    const engine = new PolicyEngine({ cacheMax: 0, subresourceCompat: true })
    engine.load(JSON.stringify(policy), 'random')
    for (const g of requests) {
      const ours = engine.authorize(g.req).allowed
      total++
      if (ours) allowed++
      if (!agrees(ours, policy, g)) return false
    }
    return true
  }), { numRuns: 3000, seed: 20261122 })
  // The property is only meaningful if both answers occur often.
  t.ok(allowed > total * 0.05 && allowed < total * 0.95, `a useful mix of decisions (${allowed} allowed of ${total})`)
})

t.test('the default (RBAC-like) subresource mode never allows more than Go', async t => {
  fc.assert(fc.property(fc.array(entry, { maxLength: 4 }), request, (policy, g) => {
    const engine = new PolicyEngine({ cacheMax: 0 })
    engine.load(JSON.stringify(policy), 'random')
    return !engine.authorize(g.req).allowed || goSays(policy, g)
  }), { numRuns: 2000, seed: 7 })
  t.pass('strict mode is a restriction of Go for two-part keys')
})

t.test('the decision cache never changes a decision', async t => {
  fc.assert(fc.property(fc.array(entry, { maxLength: 4 }), fc.array(request, { minLength: 1, maxLength: 20 }), (policy, requests) => {
    const cached = new PolicyEngine({ cacheMax: 8 })
    const uncached = new PolicyEngine({ cacheMax: 0 })
    cached.load(JSON.stringify(policy), 'random')
    uncached.load(JSON.stringify(policy), 'random')
    // Twice, so that the second pass is served from the cache.
    return [...requests, ...requests].every(({ req }) => cached.authorize(req).allowed === uncached.authorize(req).allowed)
  }), { numRuns: 500, seed: 11 })
  t.pass('cached and uncached agree')
})

t.test('the oracle itself gives Go\'s answer to every case of Go\'s authorizer_test.go', async t => {
  const cases = goAuthorizerCases()
  t.ok(cases.length > 50)
  for (const c of cases) {
    const policy = JSON.parse(readFileSync(join(GO_FIXTURES, c.policyFile), 'utf8')) as Json[]
    const req = { user: c.user.name, groups: c.user.groups, extra: c.user.extra, ...c.request }
    t.equal(goAuthorize(policy, req), c.allowed, c.where)
  }
})
