import fc from 'fast-check'
import { isDeepStrictEqual } from 'node:util'
import t from 'tap'
import { decisionCacheKey, NO_POLICY_REASON, PolicyEngine } from '../../src/authz/engine.js'
import { accessRequest, type Who } from './helpers.js'
import { EXTRA_PROJECT_ID, EXTRA_PROJECT_NAME, EXTRA_ROLES } from '../../src/identity.js'
import type { AccessRequest } from '../../src/authz/types.js'

const alice: Who = { name: 'alice', groups: ['devs'], projectNames: ['demo'], roles: ['member'] }
const allowPods = JSON.stringify([{ users: { roles: ['member'], projects: ['demo'] }, resource_permissions: { '*/pods': ['get'] } }])
const allowSecrets = JSON.stringify([{ users: { roles: ['member'], projects: ['demo'] }, resource_permissions: { '*/secrets': ['get'] } }])
const getPods = accessRequest(alice, { verb: 'get', namespace: 'default', resource: 'pods' })
const getSecrets = accessRequest(alice, { verb: 'get', namespace: 'default', resource: 'secrets' })

t.test('no policy: deny with no opinion, as Go', async t => {
  const engine = new PolicyEngine()
  t.same(engine.authorize(getPods), { allowed: false, reason: NO_POLICY_REASON })
  t.same(engine.status, { loaded: false, entries: 0, generation: 0, warnings: [] })
})

t.test('load puts a policy in effect; status says which', async t => {
  const reloads: string[] = []
  const engine = new PolicyEngine({ onReload: (r, s) => reloads.push(`${r} ${s}`) })
  t.match(engine.load(allowPods, 'a.json'), { entries: 1, warnings: [{ message: /without their subresources/ }] })
  t.same(engine.authorize(getPods), { allowed: true, reason: 'allowed by policy entry 0 (resource_permissions "*/pods")' })
  t.equal(engine.authorize(getSecrets).allowed, false)
  t.match(engine.status, { loaded: true, source: 'a.json', entries: 1, generation: 1 })
  t.equal(engine.status.lastError, undefined)
  t.same(reloads, ['ok a.json'])
})

t.test('a broken update keeps the last good policy and records why', async t => {
  const reloads: string[] = []
  const engine = new PolicyEngine({ onReload: (r, s) => reloads.push(`${r} ${s}`) })
  engine.load(allowPods, 'p.json')
  t.throws(() => engine.load('[{"resource": {"verbs": "get"}}]', 'p.json'), { code: 'KSA_ERR_CONFIG' })
  t.equal(engine.authorize(getPods).allowed, true, 'old policy still in effect')
  t.match(engine.status, { loaded: true, entries: 1, generation: 1 })
  t.match(engine.status.lastError, /policy entry 0: resource\.verbs: expected an array of strings/)
  t.ok(engine.status.lastErrorAt instanceof Date)
  t.same(reloads, ['ok p.json', 'error p.json'])
  engine.load(allowSecrets, 'p.json')
  t.equal(engine.status.lastError, undefined, 'a good load clears the error')
  t.equal(engine.status.generation, 2)
  t.equal(engine.authorize(getSecrets).allowed, true)
  t.equal(engine.authorize(getPods).allowed, false)
})

t.test('reportError records a failure outside load (unreadable file)', async t => {
  const reloads: string[] = []
  const engine = new PolicyEngine({ onReload: r => reloads.push(r) })
  engine.load(allowPods, 'p.json')
  engine.reportError('cannot read policy file p.json: ENOENT', 'p.json')
  t.equal(engine.status.lastError, 'cannot read policy file p.json: ENOENT')
  t.equal(engine.authorize(getPods).allowed, true)
  t.same(reloads, ['ok', 'error'])
})

t.test('clear: empty policy, deny all', async t => {
  const engine = new PolicyEngine()
  engine.load(allowPods, 'cm')
  engine.clear('cm')
  t.same(engine.authorize(getPods), { allowed: false, reason: NO_POLICY_REASON })
  t.match(engine.status, { loaded: false, entries: 0, generation: 2 })
})

t.test('an empty list is a policy that allows nothing', async t => {
  const engine = new PolicyEngine()
  engine.load('[]', 'empty')
  t.same(engine.authorize(getPods), { allowed: false, reason: 'no policy entry matched' })
  t.equal(engine.status.loaded, true)
})

t.test('decision cache: hits, flush on change, bounded', async t => {
  const engine = new PolicyEngine({ cacheMax: 2 })
  engine.load(allowPods, 'p')
  engine.authorize(getPods)
  engine.authorize(getPods)
  engine.authorize({ ...getPods, resource: { ...getPods.resource!, name: 'another-pod', version: 'v2' } })
  t.same(engine.cacheStats, { hits: 2, misses: 1, size: 1 }, 'name and version are not part of the key')
  engine.authorize(getSecrets)
  engine.authorize(accessRequest(alice, { verb: 'list', namespace: 'default', resource: 'pods' }))
  t.equal(engine.cacheStats.size, 2, 'bounded by cacheMax')
  engine.load(allowSecrets, 'p')
  t.equal(engine.cacheStats.size, 0, 'flushed on change')
  t.equal(engine.authorize(getPods).allowed, false, 'no stale allow after a change')
  t.equal(engine.authorize(getSecrets).allowed, true)
})

t.test('a broken update does not flush the cache of the policy still in effect', async t => {
  const engine = new PolicyEngine()
  engine.load(allowPods, 'p')
  engine.authorize(getPods)
  t.throws(() => engine.load('{', 'p'))
  t.equal(engine.cacheStats.size, 1)
})

t.test('cache key: what decisions depend on, nothing else', async t => {
  const k = decisionCacheKey
  t.not(k(getPods), k({ ...getPods, user: 'bob' }))
  t.not(k(getPods), k({ ...getPods, uid: 'x' }))
  t.not(k(getPods), k({ ...getPods, groups: ['ops'] }))
  t.not(k(getPods), k(accessRequest({ ...alice, roles: ['admin'] }, { verb: 'get', namespace: 'default', resource: 'pods' })))
  t.not(k(getPods), k(accessRequest({ ...alice, projectIds: ['x'] }, { verb: 'get', namespace: 'default', resource: 'pods' })))
  t.not(k(getPods), k(accessRequest({ ...alice, projectNames: ['x'] }, { verb: 'get', namespace: 'default', resource: 'pods' })))
  t.not(k(getPods), k(accessRequest(alice, { verb: 'get', namespace: 'default', resource: 'pods', subresource: 'log' })))
  t.not(k(getPods), k(accessRequest(alice, { verb: 'get', namespace: 'default', resource: 'pods', group: 'x' })))
  t.not(k(getPods), k(accessRequest(alice, { verb: 'get', namespace: 'other', resource: 'pods' })))
  t.not(k(accessRequest(alice, { verb: 'get', path: '/a' })), k(accessRequest(alice, { verb: 'get', path: '/b' })))
  t.equal(k(getPods), k({ ...getPods, extra: { ...getPods.extra, 'other/extra': ['x'] } }), 'unrelated extras do not split the cache')
  // No ambiguity from joining: ["a,b"] vs ["a","b"].
  t.not(k({ ...getPods, groups: ['a,b'] }), k({ ...getPods, groups: ['a', 'b'] }))
})

t.test('property: two requests share a cache key exactly when every part a decision reads is equal', async t => {
  // Tiny alphabets with the characters a naive join would trip on, so collisions are likely.
  const s = fc.string({ unit: fc.constantFrom('a', ':', '1', '[', ',', '"'), maxLength: 4 })
  const l = fc.array(s, { maxLength: 3 })
  const raw = fc.record({
    user: s,
    uid: fc.option(s, { nil: undefined }),
    groups: l,
    roles: l,
    ids: l,
    names: l,
    other: l,
    resource: fc.boolean(),
    verb: s,
    namespace: s,
    group: s,
    res: s,
    sub: s,
    name: s,
    version: s,
    path: s
  })
  type Raw = typeof raw extends fc.Arbitrary<infer R> ? R : never
  const build = (r: Raw): AccessRequest => {
    const extra: Record<string, string[]> = Object.create(null)
    extra[EXTRA_ROLES] = r.roles
    extra[EXTRA_PROJECT_ID] = r.ids
    extra[EXTRA_PROJECT_NAME] = r.names
    extra['other/extra'] = r.other
    const out: AccessRequest = { user: r.user, groups: r.groups, extra }
    if (r.uid !== undefined && r.uid !== '') out.uid = r.uid
    if (r.resource) out.resource = { verb: r.verb, namespace: r.namespace, group: r.group, resource: r.res, subresource: r.sub, name: r.name, version: r.version }
    else out.nonResource = { verb: r.verb, path: r.path }
    return out
  }
  // Pairs that differ in at most one field (often none), so that equal keys are common too.
  const keys = ['user', 'uid', 'groups', 'roles', 'ids', 'names', 'other', 'resource', 'verb', 'namespace', 'group', 'res', 'sub', 'name', 'version', 'path'] as const
  const pair = fc.tuple(raw, raw, fc.option(fc.constantFrom(...keys), { nil: undefined, freq: 4 }))
    .map(([a, c, k]) => [build(a), build(k === undefined ? a : { ...a, [k]: c[k] })] as const)
  const relevant = (r: AccessRequest): unknown => [r.user, r.uid ?? '', r.groups, r.extra[EXTRA_ROLES], r.extra[EXTRA_PROJECT_ID], r.extra[EXTRA_PROJECT_NAME],
    r.resource === undefined ? ['n', r.nonResource?.verb, r.nonResource?.path] : ['r', r.resource.verb, r.resource.namespace, r.resource.group, r.resource.resource, r.resource.subresource]]
  let same = 0
  // Pairs whose parts, written one after the other, read the same: a boundary moved between two
  // neighbouring fields, a list element moved to the next list, an element split in two.
  const strings = [['user', 'uid'], ['uid', 'verb'], ['verb', 'namespace'], ['namespace', 'group'], ['group', 'res'], ['res', 'sub'], ['verb', 'path']] as const
  const lists = [['groups', 'roles'], ['roles', 'ids'], ['ids', 'names']] as const
  const shifted = fc.tuple(raw, fc.nat(20), fc.nat(3)).map(([a, pick, cut]) => {
    const b: Raw = { ...a, groups: [...a.groups], roles: [...a.roles], ids: [...a.ids], names: [...a.names] }
    if (pick < 7) {
      const [x, y] = strings[pick] as readonly [keyof Raw & string, keyof Raw & string]
      const from = String(a[x] ?? '')
      const n = Math.min(cut, from.length)
      ;(b as Record<string, unknown>)[x] = from.slice(0, from.length - n)
      ;(b as Record<string, unknown>)[y] = from.slice(from.length - n) + String(a[y] ?? '')
    } else if (pick < 14) {
      const [x, y] = lists[pick % 3] as readonly ['groups' | 'roles' | 'ids', 'roles' | 'ids' | 'names']
      const moved = b[x].pop()
      if (moved !== undefined) b[y].unshift(moved)
    } else if (pick < 18) {
      const list = b[(['groups', 'roles', 'ids', 'names'] as const)[pick % 4] as 'groups']
      // The boundary between two elements moves: ["a,b", "c"] against ["a", "b,c"].
      if (list.length > 1 && (list[0] as string).length > 0) {
        const first = list[0] as string
        list.splice(0, 2, first.slice(0, -1), first.slice(-1) + (list[1] as string))
      }
    } else {
      const list = b[(['groups', 'roles', 'ids', 'names'] as const)[pick % 4] as 'groups']
      const i = list.findIndex(e => e.length > 1)
      if (i >= 0) { const e = list[i] as string; list.splice(i, 1, e.slice(0, 1), e.slice(1)) } else if (list.length > 1) list.splice(0, 2, (list[0] as string) + (list[1] as string))
    }
    return [build(a), build(b)] as const
  })
  fc.assert(fc.property(fc.oneof(pair, shifted, fc.tuple(raw, raw).map(([a, b]) => [build(a), build(b)] as const)), ([a, b]) => {
    const equalKeys = decisionCacheKey(a) === decisionCacheKey(b)
    if (equalKeys) same++
    return equalKeys === isDeepStrictEqual(relevant(a), relevant(b))
  }), { numRuns: 20000 })
  t.ok(same > 2000, `20000 pairs: keys equal exactly when the decision inputs are (${same} pairs with equal keys)`)
})

t.test('extras are read as own properties only', async t => {
  const engine = new PolicyEngine({ cacheMax: 0 })
  engine.load(JSON.stringify([{ resource: { verbs: ['get'], resources: ['pods'], version: '*', namespace: '*' }, match: [{ type: 'role', values: ['toString'] }] }]), 'p')
  t.equal(engine.authorize({ ...getPods, extra: {} }).allowed, false)
})

t.test('subresourceCompat is an engine option', async t => {
  const policy = JSON.stringify([{ users: { roles: [], projects: ['demo'] }, resource_permissions: { 'default/pods': ['create'] } }])
  const exec = accessRequest(alice, { verb: 'create', namespace: 'default', resource: 'pods', subresource: 'exec' })
  const strict = new PolicyEngine()
  strict.load(policy, 'p')
  const compat = new PolicyEngine({ subresourceCompat: true })
  compat.load(policy, 'p')
  t.equal(strict.authorize(exec).allowed, false)
  t.equal(compat.authorize(exec).allowed, true)
})

t.test('a bad cache size is a ConfigError', async t => {
  t.throws(() => new PolicyEngine({ cacheMax: -1 }), { code: 'KSA_ERR_CONFIG' })
  t.throws(() => new PolicyEngine({ cacheMax: 1.5 }), { code: 'KSA_ERR_CONFIG' })
})
