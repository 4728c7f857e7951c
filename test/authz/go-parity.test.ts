import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { PolicyEngine, type PolicyEngineOptions } from '../../src/authz/engine.js'
import type { AccessRequest } from '../../src/authz/types.js'
import { parseSubjectAccessReview } from '../../src/server/http/subject-access-review.js'
import { GO_PEER_COMMIT, goPeerUnavailable, startGoWebhook } from '../helpers/go-peer.js'
import { here } from './helpers.js'
import { GO_FIXTURES, goAuthorizerCases, goDocPolicies, type GoUser } from './go-cases.js'

// Go's own authorization cases (authorizer_test.go, v1.32.1 commit 8045e160), read from the
// verbatim Go file, and every policy example of Go's docs and examples/webhook, tried on a matrix
// of users and requests. Every request goes through our SubjectAccessReview parser in v1beta1 (the
// body the Go binary is sent) and v1. Where the Go binary is at hand (KSA_GO_PEER_DIR), the same
// v1beta1 bodies are sent to it too, so the expected answers are Go's and not our reading of Go.

type Request = Omit<AccessRequest, 'user' | 'groups' | 'extra'>

/** A SubjectAccessReview as kube-apiserver sends it; empty attributes are omitted (omitempty). */
function sar (version: 'v1' | 'v1beta1', user: GoUser, req: Request): Record<string, unknown> {
  const spec: Record<string, unknown> = { user: user.name, [version === 'v1' ? 'groups' : 'group']: user.groups }
  if (user.extra !== undefined) spec.extra = user.extra
  const attrs = req.resource ?? req.nonResource
  const key = req.resource !== undefined ? 'resourceAttributes' : 'nonResourceAttributes'
  spec[key] = Object.fromEntries(Object.entries(attrs as object).filter(([, v]) => v !== ''))
  return { apiVersion: `authorization.k8s.io/${version}`, kind: 'SubjectAccessReview', spec }
}

function oursFor (engine: PolicyEngine, user: GoUser, req: Request): { v1beta1: boolean, v1: boolean, reason: string } {
  const decide = (version: 'v1' | 'v1beta1'): { allowed: boolean, reason: string } => {
    const parsed = parseSubjectAccessReview(sar(version, user, req))
    if (!parsed.ok) throw new Error(`did not parse: ${parsed.reason}`)
    return engine.authorize(parsed.request)
  }
  const b = decide('v1beta1')
  return { v1beta1: b.allowed, v1: decide('v1').allowed, reason: b.reason }
}

function engineFor (policy: string, opts: PolicyEngineOptions = {}): PolicyEngine {
  const engine = new PolicyEngine({ cacheMax: 0, ...opts })
  engine.load(policy, 'go fixture')
  return engine
}

const goWhy = goPeerUnavailable()
const cases = goAuthorizerCases()

t.test('every case of Go\'s authorizer_test.go gives Go\'s decision, by default', async t => {
  // 35 in TestAuthorizer and 21 in TestAuthorizerVersion2 at v1.32.1: a parser that loses a
  // case fails here rather than passing with fewer.
  t.equal(cases.length, 56, 'all AttributesRecord cases of the Go file were read')
  t.equal(cases.filter(c => c.allowed).length, 25, 'allow cases (grep -c DecisionAllow)')
  for (const c of cases) {
    const engine = engineFor(readFileSync(join(GO_FIXTURES, c.policyFile), 'utf8'))
    const ours = oursFor(engine, c.user, c.request)
    t.equal(ours.v1beta1, c.allowed, `${c.where} (v1beta1)`)
    t.equal(ours.v1, c.allowed, `${c.where} (v1)`)
  }
})

t.test('the Go binary answers the same v1beta1 bodies as its unit test says', { skip: goWhy ?? false }, async t => {
  for (const file of [...new Set(cases.map(c => c.policyFile))]) {
    const go = await startGoWebhook(['--keystone-policy-file', join(GO_FIXTURES, file)])
    try {
      for (const c of cases.filter(c => c.policyFile === file)) {
        const res = await go.post(sar('v1beta1', c.user, c.request))
        t.equal(res.body?.status?.allowed, c.allowed, `Go binary, ${c.where}`)
      }
    } finally { await go.close() }
  }
})

t.test('a review without a Keystone identity is denied, with the reason (Go: "No auth info found")', async t => {
  const noExtra = cases.filter(c => c.user.extra === undefined)
  t.ok(noExtra.length >= 2, 'Go\'s test has users without extras')
  const engine = engineFor(readFileSync(join(GO_FIXTURES, 'authorizer_test_policy_version2.json'), 'utf8'))
  for (const c of noExtra) t.match(oursFor(engine, c.user, c.request).reason, /no Keystone identity/, c.where)
})

// --- Go's documented policies on a matrix of users and requests ---

const DOMAIN = { 'alpha.kubernetes.io/identity/user/domain/id': ['default'], 'alpha.kubernetes.io/identity/user/domain/name': ['Default'] }
const MATRIX_USERS: Array<GoUser & { label: string, keystone: boolean }> = [
  { label: 'member of demo', keystone: true, name: 'demo', groups: ['developers'], extra: { 'alpha.kubernetes.io/identity/project/id': ['c1f7910086964990847dc6c8b128f63c'], 'alpha.kubernetes.io/identity/project/name': ['demo'], 'alpha.kubernetes.io/identity/roles': ['member', 'reader', 'k8s-viewer'], ...DOMAIN } },
  { label: 'utility_exec in ops', keystone: true, name: 'ops', groups: ['ops-team'], extra: { 'alpha.kubernetes.io/identity/project/id': ['0a0b0c0d0e0f40718293a4b5c6d7e8f9'], 'alpha.kubernetes.io/identity/project/name': ['ops'], 'alpha.kubernetes.io/identity/roles': ['utility_exec'], ...DOMAIN } },
  { label: 'reader of alt', keystone: true, name: 'bob', groups: [], extra: { 'alpha.kubernetes.io/identity/project/id': ['ffffffffffffffffffffffffffffffff'], 'alpha.kubernetes.io/identity/project/name': ['alt'], 'alpha.kubernetes.io/identity/roles': ['reader'], ...DOMAIN } },
  { label: 'certificate user named like a Keystone user (no extra)', keystone: false, name: 'demo', groups: ['developers', 'system:authenticated'] },
  { label: 'another authenticator\'s user (foreign extras only)', keystone: false, name: 'demo', groups: ['developers'], extra: { 'example.org/team': ['demo'] } }
]

function matrix (): Request[] {
  const out: Request[] = []
  for (const namespace of ['', 'default', 'kube-system', 'utility']) {
    for (const resource of ['pods', 'secrets', 'clusterroles', 'clusterrolebindings', 'deployments', 'namespaces']) {
      for (const subresource of ['', 'exec', 'log']) {
        for (const verb of ['get', 'list', 'create', 'delete']) {
          out.push({ resource: { namespace, verb, group: resource === 'deployments' ? 'apps' : '', version: 'v1', resource, subresource, name: '' } })
        }
      }
    }
  }
  for (const path of ['/api', '/api/v1', '/apis', '/apis/apps/v1', '/healthz', '/version', '/metrics']) {
    for (const verb of ['get', 'post']) out.push({ nonResource: { path, verb } })
  }
  return out
}

const RECORD = join(here, 'fixtures', 'go-decisions.json')
interface GoRecord { go: string, commit: string, how: string, decisions: Record<string, string> }
const requests = matrix()
const policies = goDocPolicies()

t.test('Go\'s docs and examples hold every policy the tests expect', async t => {
  t.equal(policies.length, 10)
  t.ok(policies.some(p => JSON.stringify(p.policy).includes('!kube-system/*')), 'the "!kube-system/*" example is among them')
})

t.test('Go\'s documented policies: ours decides as the Go binary did (recorded)', async t => {
  const record = JSON.parse(readFileSync(RECORD, 'utf8')) as GoRecord
  t.equal(record.commit, GO_PEER_COMMIT)
  for (const p of policies) {
    const go = record.decisions[p.name]
    if (go === undefined) { t.fail(`no recorded Go decisions for ${p.name}`); continue }
    t.equal(go.length, requests.length * MATRIX_USERS.length, `${p.name}: one recorded decision per request`)
    const strict = engineFor(JSON.stringify(p.policy))
    const compat = engineFor(JSON.stringify(p.policy), { subresourceCompat: true })
    let i = 0
    let differ = 0
    let goAllowed = 0
    for (const user of MATRIX_USERS) {
      for (const req of requests) {
        const goSays = go[i++] === '1'
        if (goSays) goAllowed++
        const ours = oursFor(strict, user, req)
        const oursCompat = oursFor(compat, user, req).v1beta1
        const what = `${p.name}: ${user.label}, ${JSON.stringify(req.resource ?? req.nonResource)}`
        if (ours.v1 !== ours.v1beta1) t.fail(`${what}: v1 and v1beta1 differ`)
        const sub = req.resource !== undefined && req.resource.subresource !== ''
        if (!user.keystone && user.extra !== undefined) {
          // Deliberately stricter than Go (docs/differences-from-go.md): denied before the policy.
          if (ours.v1beta1) t.fail(`${what}: allowed without a Keystone identity`)
        } else if (sub) {
          // Deliberately stricter by default: a plain resource key does not grant subresources.
          if (ours.v1beta1 && !goSays) t.fail(`${what}: we allow, Go denies`)
          if (oursCompat !== goSays) t.fail(`${what}: with --authorization-subresource-compat we say ${oursCompat}, Go ${goSays}`)
        } else if (ours.v1beta1 !== goSays) {
          differ++
          t.fail(`${what}: we say ${ours.v1beta1}, Go says ${goSays}`)
        }
      }
    }
    t.equal(differ, 0, `${p.name} (${p.source}): same decisions as Go (Go allowed ${goAllowed})`)
  }
})

t.test('Go\'s documented policies: the Go binary still answers as recorded', { skip: goWhy ?? false }, async t => {
  const recording = process.env.KSA_RECORD_GO === '1'
  const record: GoRecord = recording
    ? { go: 'v1.32.1', commit: GO_PEER_COMMIT, how: 'KSA_RECORD_GO=1 KSA_GO_PEER_DIR=../shared/go-peer npx tap test/authz/go-parity.test.ts', decisions: {} }
    : JSON.parse(readFileSync(RECORD, 'utf8')) as GoRecord
  const dir = (await import('node:fs')).mkdtempSync(join((await import('node:os')).tmpdir(), 'ksa-go-policy-'))
  for (const p of policies) {
    const file = join(dir, 'policy.json')
    writeFileSync(file, JSON.stringify(p.policy))
    const go = await startGoWebhook(['--keystone-policy-file', file])
    let answers = ''
    try {
      for (const user of MATRIX_USERS) {
        // In batches: the Go server answers in parallel, the order of the string is kept.
        for (let i = 0; i < requests.length; i += 32) {
          const batch = await Promise.all(requests.slice(i, i + 32).map(async r => await go.post(sar('v1beta1', user, r))))
          for (const res of batch) {
            if (res.status !== 200) throw new Error(`Go answered ${res.status}: ${res.text}`)
            answers += res.body.status.allowed === true ? '1' : '0'
          }
        }
      }
    } finally { await go.close() }
    if (recording) record.decisions[p.name] = answers
    else t.equal(answers, record.decisions[p.name], `${p.name}: the Go binary answers as recorded`)
  }
  if (recording) writeFileSync(RECORD, JSON.stringify(record, null, 1) + '\n')
})
