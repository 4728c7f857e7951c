// Hostile input: fast-check bodies through the real HTTPS server (in-process). Every answer must
// be a 4xx with a JSON Status, or a 200 with the right decision:
//  - TokenReview: the (local, fake) Keystone rejects every token, so the right answer is
//    authenticated: false in the version asked;
//  - SubjectAccessReview: decided against a one-entry policy by an oracle written here from the
//    README (not from src/), which also decides independently whether a body is well formed.
// The same bodies are sent twice; the heap (after a real GC) must not grow on the second pass.
import t from 'tap'
import fc from 'fast-check'
import { createServer, type Server } from 'node:http'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { startWebhook, type TestWebhook } from '../helpers/webhook.js'

t.setTimeout(10 * 60_000)

const RUNS = Number(process.env.KSA_HOSTILE_RUNS ?? 10_000)
const SEED = Number(process.env.KSA_HOSTILE_SEED ?? 20261122)
const CONCURRENCY = 32
/** Heap growth allowed between the end of pass 1 and the end of pass 2 (same bodies). */
const HEAP_GROWTH_LIMIT = 16 * 1024 * 1024
const BODY_LIMIT = 256 * 1024

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

// ---------------------------------------------------------------------------------------------
// JSON with control over keys (duplicates, "__proto__", "constructor"): objects are entry lists.

class Obj { constructor (readonly entries: Array<[string, J]>) {} }
type J = null | boolean | number | string | J[] | Obj

function ser (v: J): string {
  if (v instanceof Obj) return '{' + v.entries.map(([k, x]) => JSON.stringify(k) + ':' + ser(x)).join(',') + '}'
  if (Array.isArray(v)) return '[' + v.map(ser).join(',') + ']'
  return JSON.stringify(v)
}

/** The parsed view (last duplicate wins, as JSON.parse), on null-prototype objects. */
function plain (v: J): unknown {
  if (v instanceof Obj) {
    const o = Object.create(null) as Record<string, unknown>
    for (const [k, x] of v.entries) o[k] = plain(x)
    return o
  }
  if (Array.isArray(v)) return v.map(plain)
  return v
}

function hasForbiddenKey (v: J): boolean {
  if (v instanceof Obj) return v.entries.some(([k, x]) => k === '__proto__' || k === 'constructor' || hasForbiddenKey(x))
  if (Array.isArray(v)) return v.some(hasForbiddenKey)
  return false
}

const o = (e: Record<string, J | undefined>): Obj => new Obj(Object.entries(e).filter((x): x is [string, J] => x[1] !== undefined))

// ---------------------------------------------------------------------------------------------
// Oracle (README: "Authorization", "Version 2"): one entry,
//   users: roles [member], projects [demo]; "default/pods": [get, list]; "/healthz": [get].
// A request without a namespace matches only a namespace part of "*" (Go's
// resourcePermissionAllowed), so not this one; an empty resource matches (as Go's name patterns);
// a plain resource key does not grant subresources; nonresource paths and verbs are exact. The
// identity extras the policy needs (role member) are Keystone identity, so that rule holds too.

const POLICY = [{
  users: { roles: ['member'], projects: ['demo'] },
  resource_permissions: { 'default/pods': ['get', 'list'] },
  nonresource_permissions: { '/healthz': ['get'] }
}]
const ROLES = 'alpha.kubernetes.io/identity/roles'
const PNAME = 'alpha.kubernetes.io/identity/project/name'
const PID = 'alpha.kubernetes.io/identity/project/id'
const MAX_STR = 64 * 1024

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const get = (o: Record<string, unknown>, k: string): unknown => Object.hasOwn(o, k) ? o[k] : undefined
const nullishStr = (v: unknown): v is string | null | undefined => v === undefined || v === null || (typeof v === 'string' && v.length <= MAX_STR)
const strList = (v: unknown, max: number): boolean => v === undefined || v === null || (Array.isArray(v) && v.length <= max && v.every(x => typeof x === 'string' && x.length <= MAX_STR))

type Expect = { valid: false } | { valid: true, apiVersion: string, allowed?: boolean }

function oracleSar (body: unknown): Expect {
  if (!isObj(body)) return { valid: false }
  const apiVersion = get(body, 'apiVersion')
  if (apiVersion !== 'authorization.k8s.io/v1' && apiVersion !== 'authorization.k8s.io/v1beta1') return { valid: false }
  if (get(body, 'kind') !== 'SubjectAccessReview') return { valid: false }
  const spec = get(body, 'spec')
  if (!isObj(spec)) return { valid: false }
  const ra = get(spec, 'resourceAttributes')
  const na = get(spec, 'nonResourceAttributes')
  const RA = ['namespace', 'verb', 'group', 'version', 'resource', 'subresource', 'name']
  if (ra !== undefined && ra !== null && (!isObj(ra) || !RA.every(k => nullishStr(get(ra, k))))) return { valid: false }
  if (na !== undefined && na !== null && (!isObj(na) || !['path', 'verb'].every(k => nullishStr(get(na, k))))) return { valid: false }
  if (!nullishStr(get(spec, 'user')) || !nullishStr(get(spec, 'uid'))) return { valid: false }
  if (!strList(get(spec, 'groups'), 1000) || !strList(get(spec, 'group'), 1000)) return { valid: false }
  const extra = get(spec, 'extra')
  const ex = new Map<string, string[]>()
  if (extra !== undefined && extra !== null) {
    if (!isObj(extra)) return { valid: false }
    const keys = Object.keys(extra)
    if (keys.length > 100) return { valid: false }
    for (const k of keys) {
      const v = extra[k]
      if (k.length > MAX_STR || !strList(v, 1000)) return { valid: false }
      ex.set(k, (v ?? []) as string[])
    }
  }
  const s = (v: unknown): string => typeof v === 'string' ? v : ''
  const userOk = (ex.get(ROLES) ?? []).includes('member') && ((ex.get(PNAME) ?? []).includes('demo') || (ex.get(PID) ?? []).includes('demo'))
  if (isObj(ra)) {
    const allowed = userOk && ['get', 'list'].includes(s(ra.verb)) && s(ra.namespace) === 'default' &&
      ['', 'pods'].includes(s(ra.resource)) && s(ra.subresource) === ''
    return { valid: true, apiVersion, allowed }
  }
  if (isObj(na)) return { valid: true, apiVersion, allowed: userOk && s(na.path) === '/healthz' && s(na.verb) === 'get' }
  return { valid: false }
}

function oracleTokenReview (body: unknown): Expect {
  if (!isObj(body)) return { valid: false }
  const apiVersion = get(body, 'apiVersion')
  if (apiVersion !== 'authentication.k8s.io/v1' && apiVersion !== 'authentication.k8s.io/v1beta1') return { valid: false }
  if (get(body, 'kind') !== 'TokenReview') return { valid: false }
  const spec = get(body, 'spec')
  if (!isObj(spec)) return { valid: false }
  const token = get(spec, 'token')
  if (typeof token !== 'string' || token.length < 1 || token.length > 16 * 1024) return { valid: false }
  const aud = get(spec, 'audiences')
  if (aud !== undefined && !(Array.isArray(aud) && aud.length <= 100 && aud.every(a => typeof a === 'string'))) return { valid: false }
  return { valid: true, apiVersion }
}

// ---------------------------------------------------------------------------------------------
// Generators.

const hostileString = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
  // eslint-disable-next-line no-template-curly-in-string -- a log4shell probe, as text
  { weight: 2, arbitrary: fc.constantFrom('', ' ', '\u0000', '\ud800', '\udfff', '\u202e', '\ufeff', 'é', '𝔭𝔬𝔡𝔰', '../../etc/passwd', '${jndi:x}', '\r\nX-Injected: 1', '%00', 'null', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty') },
  { weight: 1, arbitrary: fc.integer({ min: MAX_STR - 2, max: MAX_STR + 2 }).map(n => 'a'.repeat(n)) }
)

/** Any JSON value, with hostile strings and keys. */
const anyJ: fc.Arbitrary<J> = fc.letrec<{ j: J }>(tie => ({
  j: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null), fc.boolean(), fc.double(), fc.integer(), hostileString,
    fc.array(tie('j'), { maxLength: 5 }),
    fc.array(fc.tuple(fc.oneof(hostileString, fc.constantFrom('__proto__', 'constructor', 'kind', 'spec')), tie('j')), { maxLength: 5 }).map(e => new Obj(e))
  )
})).j

/** A value of the wrong shape for wherever it lands. */
const wrong: fc.Arbitrary<J> = fc.oneof(
  fc.constant<J>(null), fc.boolean(), fc.integer(), fc.double(), fc.constant<J>([]), fc.constant<J>(new Obj([])),
  hostileString, anyJ,
  fc.integer({ min: 1001, max: 3000 }).map((n): J => Array.from({ length: n }, (_, i) => `g${i}`)), // huge array
  fc.integer({ min: 50, max: 2000 }).map(depth => { let v: J = 'x'; for (let i = 0; i < depth; i++) v = [v]; return v }), // deep nesting
  fc.integer({ min: 50, max: 2000 }).map(depth => { let v: J = 'x'; for (let i = 0; i < depth; i++) v = new Obj([['a', v]]); return v })
)

const maybe = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(a, { nil: undefined, freq: 3 })
const pick = <T>(...xs: T[]): fc.Arbitrary<T> => fc.constantFrom(...xs)
const nullishOf = (a: fc.Arbitrary<J>): fc.Arbitrary<J | undefined> => fc.oneof({ weight: 6, arbitrary: a }, { weight: 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constant(undefined) })

const validSar: fc.Arbitrary<Obj> = fc.record({
  version: pick('authorization.k8s.io/v1', 'authorization.k8s.io/v1beta1'),
  resource: fc.boolean(),
  ns: nullishOf(pick('default', 'kube-system', '', 'demo')),
  verb: nullishOf(pick('get', 'list', 'create', 'delete', 'watch')),
  res: nullishOf(pick('pods', 'secrets', '', 'services')),
  sub: nullishOf(pick('', 'log', 'exec')),
  group: nullishOf(pick('', 'apps')),
  path: nullishOf(pick('/healthz', '/metrics', '/', '/healthz/x')),
  user: nullishOf(fc.oneof(pick('demo', 'admin'), hostileString)),
  groups: maybe(fc.array(fc.oneof(pick('developers', 'system:authenticated'), hostileString), { maxLength: 5 })),
  groupsKey: pick('groups', 'group'),
  roles: fc.oneof(fc.constant<string[]>(['member']), fc.subarray(['member', 'reader', 'admin'])),
  projects: fc.oneof(fc.constant<string[]>(['demo']), fc.subarray(['demo', 'alt'])),
  projectKey: pick(PNAME, PID),
  extraJunk: fc.array(fc.tuple(hostileString.filter(k => k !== '__proto__' && k !== 'constructor' && k.length <= MAX_STR), fc.array(hostileString.filter(s => s.length <= MAX_STR), { maxLength: 3 })), { maxLength: 3 }),
  nullRoles: fc.boolean()
}).map(r => {
  const extra = new Obj([...r.extraJunk, [ROLES, r.nullRoles && r.roles.length === 0 ? null : r.roles], [r.projectKey, r.projects]])
  const attrs = r.resource
    ? ['resourceAttributes', o({ namespace: r.ns, verb: r.verb, group: r.group, resource: r.res, subresource: r.sub, version: 'v1', name: 'x' })] as const
    : ['nonResourceAttributes', o({ path: r.path, verb: r.verb })] as const
  return o({
    apiVersion: r.version,
    kind: 'SubjectAccessReview',
    spec: o({ [attrs[0]]: attrs[1], user: r.user, [r.groupsKey]: r.groups, extra })
  })
})

const validTokenReview: fc.Arbitrary<Obj> = fc.record({
  version: pick('authentication.k8s.io/v1', 'authentication.k8s.io/v1beta1'),
  token: fc.oneof(
    fc.string({ unit: 'binary', minLength: 1, maxLength: 200 }),
    fc.string({ minLength: 1, maxLength: 200 }),
    pick('gAAAAABnot-a-token', ' ', '\u0000', 'a\r\nb', 'tok\u00e9n', '\ud83d\udd11'),
    fc.integer({ min: 16 * 1024 - 2, max: 16 * 1024 }).map(n => 'k'.repeat(n))
  ),
  audiences: maybe(fc.array(hostileString, { maxLength: 3 }))
}).map(r => o({ apiVersion: r.version, kind: 'TokenReview', spec: o({ token: r.token, audiences: r.audiences }) }))

/** Replaces, removes or adds one member somewhere in the body. */
function mutate (v: J, path: number[], action: 'replace' | 'delete' | 'add', val: J, key: string): J {
  if (!(v instanceof Obj) || path.length === 0 || v.entries.length === 0) {
    if (action === 'replace') return val
    if (v instanceof Obj) return new Obj([...v.entries, [key, val]])
    return val
  }
  const i = (path[0] as number) % v.entries.length
  const entries = [...v.entries]
  const [k, child] = entries[i] as [string, J]
  if (path.length === 1) {
    if (action === 'delete') entries.splice(i, 1)
    else if (action === 'replace') entries[i] = [k, val]
    else entries.push([key, val])
  } else {
    entries[i] = [k, mutate(child, path.slice(1), action, val, key)]
  }
  return new Obj(entries)
}

const mutated: fc.Arbitrary<J> = fc.record({
  base: fc.oneof(validSar, validTokenReview),
  steps: fc.array(fc.record({
    path: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
    action: pick('replace', 'delete', 'add') as fc.Arbitrary<'replace' | 'delete' | 'add'>,
    val: wrong,
    key: fc.oneof(pick('__proto__', 'constructor', 'kind', 'apiVersion', 'spec', 'token', 'extra', 'groups'), hostileString)
  }), { minLength: 1, maxLength: 3 })
}).map(({ base, steps }) => steps.reduce<J>((b, s) => mutate(b, s.path, s.action, s.val, s.key), base))

type Case = { kind: 'json', route: string, body: J } | { kind: 'raw', route: string, text: string, contentType: string }

const route = pick('/webhook', '/webhook', '/webhook', '/authenticate', '/authorize')
const rawText = fc.oneof(
  fc.integer({ min: 1000, max: 200_000 }).map(n => '['.repeat(n) + ']'.repeat(n)),
  fc.integer({ min: 1000, max: 50_000 }).map(n => '{"a":'.repeat(n) + '1' + '}'.repeat(n)),
  fc.integer({ min: 1000, max: 50_000 }).map(n => '{"kind":"SubjectAccessReview","apiVersion":"authorization.k8s.io/v1","spec":{"extra":' + '{"a":'.repeat(n) + '1' + '}'.repeat(n) + '}}'),
  fc.integer({ min: BODY_LIMIT + 1, max: BODY_LIMIT + 4096 }).map(n => JSON.stringify({ kind: 'TokenReview', apiVersion: 'authentication.k8s.io/v1', spec: { token: 't'.repeat(n) } })),
  fc.string({ unit: 'binary', maxLength: 200 }),
  pick('', ' ', 'null', '{', '{"kind":', '[]', '"x"', '{"__proto__":{"admin":true}}', '{"kind":"TokenReview","constructor":{"prototype":{}}}', '\ufeff{}', '{"kind":"TokenReview"}{"kind":"TokenReview"}')
)

const caseArb: fc.Arbitrary<Case> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ route, body: validSar }).map(r => ({ kind: 'json' as const, ...r })) },
  { weight: 2, arbitrary: fc.record({ route, body: validTokenReview }).map(r => ({ kind: 'json' as const, ...r })) },
  { weight: 8, arbitrary: fc.record({ route, body: mutated }).map(r => ({ kind: 'json' as const, ...r })) },
  { weight: 2, arbitrary: fc.record({ route, body: anyJ }).map(r => ({ kind: 'json' as const, ...r })) },
  { weight: 1, arbitrary: fc.record({ route, text: rawText, contentType: fc.constant('application/json') }).map(r => ({ kind: 'raw' as const, ...r })) },
  { weight: 1, arbitrary: fc.record({ route, text: fc.string({ maxLength: 50 }), contentType: pick('text/plain', 'application/x-www-form-urlencoded', 'application/yaml', 'multipart/form-data; boundary=x') }).map(r => ({ kind: 'raw' as const, ...r })) }
)

// ---------------------------------------------------------------------------------------------

interface Verdict { ok: boolean, why: string, category: string }

function judge (c: Case, status: number, body: any): Verdict {
  const statusOk = (): boolean => isObj(body) && body.kind === 'Status' && body.status === 'Failure' && body.code === status && typeof body.message === 'string'
  if (c.kind === 'raw') {
    if (Buffer.byteLength(c.text) > BODY_LIMIT) return { ok: status === 413 && statusOk(), why: 'over the body limit: want 413 Status', category: '413' }
  }
  let parsed: unknown
  let forbidden = false
  if (c.kind === 'raw') {
    try { parsed = JSON.parse(c.text) } catch { return { ok: status === 400 && statusOk(), why: 'not JSON: want 400 Status', category: '400' } }
    forbidden = /"(__proto__|constructor)"\s*:/.test(c.text)
  } else {
    const text = ser(c.body)
    if (Buffer.byteLength(text) > BODY_LIMIT) return { ok: status === 413 && statusOk(), why: 'over the body limit: want 413 Status', category: '413' }
    parsed = plain(c.body)
    forbidden = hasForbiddenKey(c.body)
  }
  if (forbidden) return { ok: status === 400 && statusOk(), why: '__proto__/constructor key: want 400 Status', category: '400' }
  const kind = isObj(parsed) ? get(parsed, 'kind') : undefined
  const routeKind = c.route === '/authenticate' ? 'TokenReview' : c.route === '/authorize' ? 'SubjectAccessReview' : kind
  if (kind !== routeKind || (kind !== 'TokenReview' && kind !== 'SubjectAccessReview')) {
    return { ok: status === 400 && statusOk(), why: `kind ${typeof kind === 'string' ? JSON.stringify(kind.slice(0, 40)) : typeof kind} on ${c.route}: want 400 Status`, category: '400' }
  }
  const e = kind === 'TokenReview' ? oracleTokenReview(parsed) : oracleSar(parsed)
  if (!e.valid) return { ok: status === 400 && statusOk(), why: `malformed ${kind}: want 400 Status`, category: '400' }
  if (status !== 200 || !isObj(body) || body.apiVersion !== e.apiVersion || body.kind !== kind) {
    return { ok: false, why: `well-formed ${kind}: want 200 in ${e.apiVersion}`, category: '200' }
  }
  const st = (body as { status?: { authenticated?: unknown, user?: unknown, allowed?: unknown } }).status
  if (kind === 'TokenReview') {
    return { ok: st?.authenticated === false && st.user === undefined, why: 'Keystone rejects every token: want authenticated false', category: '200-token' }
  }
  return { ok: st?.allowed === e.allowed, why: `policy oracle: want allowed=${String(e.allowed)}`, category: e.allowed === true ? '200-allowed' : '200-denied' }
}

let fakeKeystone: Server
let keystoneCalls = 0
let wh: TestWebhook

t.before(async () => {
  // Every token is refused (self-validation: 401), the version document answers for /readyz.
  fakeKeystone = createServer((req, res) => {
    keystoneCalls++
    req.resume()
    const url = req.url ?? ''
    if (url.startsWith('/v3/auth/tokens')) {
      res.writeHead(401, { 'content-type': 'application/json' })
      res.end('{"error":{"code":401,"title":"Unauthorized","message":"The request you have made requires authentication."}}')
    } else {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{"version":{"id":"v3.14","status":"stable"}}')
    }
  })
  await new Promise<void>(resolve => fakeKeystone.listen(0, '127.0.0.1', resolve))
  const policy = join(tmpdir(), `ksa-hostile-policy-${process.pid}.json`)
  writeFileSync(policy, JSON.stringify(POLICY))
  const port = (fakeKeystone.address() as { port: number }).port
  wh = await startWebhook(['--keystone-url', `http://127.0.0.1:${port}/v3`, '--keystone-policy-file', policy, '--log-level', 'warn'])
})

t.teardown(async () => {
  await wh?.close()
  await new Promise<void>(resolve => fakeKeystone?.close(() => resolve()))
})

async function send (c: Case): Promise<{ status: number, body: any }> {
  if (c.kind === 'raw') return await wh.post(c.route, c.text, { 'content-type': c.contentType })
  return await wh.post(c.route, ser(c.body), { 'content-type': 'application/json' })
}

async function pass (cases: Case[]): Promise<{ failures: string[], categories: Record<string, number> }> {
  const failures: string[] = []
  const categories: Record<string, number> = {}
  for (let i = 0; i < cases.length; i += CONCURRENCY) {
    const batch = cases.slice(i, i + CONCURRENCY)
    const answers = await Promise.all(batch.map(async c => await send(c)))
    batch.forEach((c, j) => {
      const a = answers[j] as { status: number, body: any }
      const v = judge(c, a.status, a.body)
      categories[v.category] = (categories[v.category] ?? 0) + 1
      if (!v.ok && failures.length < 20) {
        const shown = c.kind === 'raw' ? c.text.slice(0, 300) : ser(c.body).slice(0, 300)
        failures.push(`${v.why}; got ${a.status} ${JSON.stringify(a.body)?.slice(0, 300)}; ${c.route} ${shown}`)
      }
    })
  }
  return { failures, categories }
}

function heapAfterGc (): number {
  for (let i = 0; i < 3; i++) gc()
  return process.memoryUsage().heapUsed
}

t.test(`${RUNS} hostile TokenReview and SubjectAccessReview bodies, twice: 4xx Status or the right decision; no heap growth`, async t => {
  const cases = fc.sample(caseArb, { numRuns: RUNS, seed: SEED })
  t.equal(cases.length, RUNS)

  const first = await pass(cases)
  t.same(first.failures, [], 'pass 1: every answer is a 4xx Status or the right decision')
  t.comment(`pass 1 categories: ${JSON.stringify(first.categories)}`)
  for (const cat of ['400', '413', '200-token', '200-allowed', '200-denied']) {
    t.ok((first.categories[cat] ?? 0) > 0, `the sample exercises ${cat} answers`)
  }
  const heap1 = heapAfterGc()

  const second = await pass(cases)
  t.same(second.failures, [], 'pass 2: same answers')
  t.same(second.categories, first.categories, 'pass 2: same categories')
  const heap2 = heapAfterGc()
  const growth = heap2 - heap1
  t.comment(`heapUsed after pass 1: ${(heap1 / 2 ** 20).toFixed(1)} MiB, after pass 2: ${(heap2 / 2 ** 20).toFixed(1)} MiB, growth ${(growth / 2 ** 20).toFixed(1)} MiB (limit ${HEAP_GROWTH_LIMIT / 2 ** 20} MiB); RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`)
  t.ok(growth < HEAP_GROWTH_LIMIT, `the heap does not grow when the same ${RUNS} bodies are sent again (growth ${(growth / 2 ** 20).toFixed(1)} MiB)`)

  t.ok(await wh.metric('k8s_keystone_auth_token_cache_entries') <= 10_000, 'token cache within --token-cache-size')
  t.ok(await wh.metric('k8s_keystone_auth_decision_cache_entries') <= 10_000, 'decision cache within --authz-cache-size')
  t.equal((await wh.get('/healthz')).status, 200, 'still serving')
  t.same(wh.logs.filter(l => /"request failed"/.test(l)), [], 'no 500 "request failed" in the log')
  t.ok(keystoneCalls > 0, 'well-formed TokenReviews reached the (fake) Keystone')
})
