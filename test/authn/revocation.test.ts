// Keystone's revocation semantics (keystone/revoke/backends/sql.py picks the events, then
// keystone/models/revoke_model.py `matches`), the authenticator's eviction, and the poller, with
// Keystone stood in for. The real Keystone: revocation-events.test.ts.
import t from 'tap'
import pino from 'pino'
import { Authenticator } from '../../src/authn/authenticator.js'
import { RevocationPoller } from '../../src/authn/revocation-poller.js'
import { revokes, tokenValues } from '../../src/authn/revocation.js'
import { KeystoneRejectedError, KeystoneUnavailableError } from '../../src/errors.js'
import type { KeystoneClient } from '../../src/keystone/client.js'
import { revocationEventFrom } from '../../src/keystone/client.js'
import type { RevocationEvent, TokenInfo } from '../../src/keystone/types.js'

const HOUR = 3600_000
const NOW = Date.parse('2026-12-02T12:00:00Z')

function info (over: Partial<TokenInfo> = {}): TokenInfo {
  return {
    user: { id: 'u1', name: 'alice' },
    userDomain: { id: 'd-user', name: 'users' },
    scope: { kind: 'project', project: { id: 'p1', name: 'demo' }, domain: { id: 'd-proj', name: 'projects' } },
    roles: [{ id: 'r-member', name: 'member' }],
    methods: ['password'],
    expiresAt: new Date(NOW + HOUR),
    auditIds: ['audit-1'],
    issuedAt: new Date(NOW - 60_000),
    ...over
  }
}

const event = (over: Partial<RevocationEvent>): RevocationEvent =>
  ({ issuedBefore: NOW, revokedAt: '2026-12-02T12:00:00.000000Z', revokedAtMs: NOW, ...over })

t.test('each field an event sets must match the token', async t => {
  const v = tokenValues(info())
  const expiry = Math.floor((NOW + HOUR) / 1000)
  // [what, field, the token's value, another value]
  const fields: Array<[string, keyof RevocationEvent, string | number, string | number]> = [
    ['audit id (one token revoked)', 'auditId', 'audit-1', 'audit-2'],
    ['user (disabled, deleted, new password)', 'userId', 'u1', 'u2'],
    ['project (deleted)', 'projectId', 'p1', 'p2'],
    ['role', 'roleId', 'r-member', 'r-admin'],
    ['expiry, to the second', 'expiresAt', expiry, expiry + 1]
  ]
  for (const [what, field, mine, other] of fields) {
    t.equal(revokes(event({ [field]: mine }), v), true, `its ${what}`)
    t.equal(revokes(event({ [field]: other }), v), false, `another ${what}`)
  }
  t.ok(revokes(event({ domainId: 'd-user' }), v) && revokes(event({ domainId: 'd-proj' }), v), 'domain_id: the user\'s domain or the project\'s')
  t.notOk(revokes(event({ domainId: 'd-other' }), v), 'another domain')
  t.ok(revokes(event({ domainScopeId: 'd-proj' }), v), 'domain_scope_id: the project\'s domain')
  t.notOk(revokes(event({ domainScopeId: 'd-user' }), v), 'domain_scope_id is never the user\'s domain')
  t.notOk(revokes(event({ trustId: 'trust-1' }), v), 'a trust it is not scoped to')
  t.notOk(revokes(event({ consumerId: 'c1' }), v), 'an OAuth1 consumer (none of ours)')
  t.notOk(revokes(event({ auditChainId: 'audit-0' }), v), 'an audit chain it is not in')
  t.ok(revokes(event({ userId: 'u1', projectId: 'p1' }), v), 'user and project both right')
  t.notOk(revokes(event({ userId: 'u1', projectId: 'p2' }), v), 'user right, project wrong: every field must match')
})

t.test('only tokens issued at or before issued_before: a login after the change is not revoked', async t => {
  const ev = event({ userId: 'u1', issuedBefore: NOW - 30_000 })
  t.equal(revokes(ev, tokenValues(info({ issuedAt: new Date(NOW - 60_000) }))), true, 'issued before the event')
  t.equal(revokes(ev, tokenValues(info({ issuedAt: new Date(NOW - 30_000) }))), true, 'issued at the same instant')
  t.equal(revokes(ev, tokenValues(info({ issuedAt: new Date(NOW - 10_000) }))), false, 'issued after (a new password\'s new token)')
  const { issuedAt, ...unknown } = info()
  void issuedAt
  t.equal(revokes(ev, tokenValues(unknown)), true, 'issued_at unknown: counted as before (one more validation, never an open door)')
  // Keystone cuts the event's time to the second; a token of the same second has a fraction.
  const cut = event({ userId: 'u1', issuedBefore: NOW })
  const sameSecond = tokenValues(info({ issuedAt: new Date(NOW + 400) }))
  t.equal(revokes(cut, sameSecond), false, 'exactly as Keystone: issued 0.4 s after the cut time, not revoked by the event')
  t.equal(revokes(cut, sameSecond, 1000), true, 'with the eviction\'s 1 s slack it is dropped from the cache (Keystone refuses it by other means)')
  t.equal(revokes(cut, tokenValues(info({ issuedAt: new Date(NOW + 1500) })), 1000), false, 'a token of the next second stays')
})

t.test('trusts: the trustor and the trustee are users of the token; the trust id must match', async t => {
  const v = tokenValues(info({ user: { id: 'trustee', name: 'svc' }, trust: { id: 'trust-1', trustorId: 'trustor', trusteeId: 'trustee' } }))
  t.equal(revokes(event({ userId: 'trustor' }), v), true, 'the trustor disabled')
  t.equal(revokes(event({ userId: 'trustee' }), v), true, 'the trustee disabled')
  t.equal(revokes(event({ trustId: 'trust-1' }), v), true, 'the trust deleted')
  t.equal(revokes(event({ trustId: 'trust-2' }), v), false)
})

t.test('an audit chain event revokes the tokens made from that token', async t => {
  const v = tokenValues(info({ auditIds: ['audit-child', 'audit-root'] }))
  t.equal(revokes(event({ auditChainId: 'audit-root' }), v), true)
  t.equal(revokes(event({ auditId: 'audit-root' }), v), false, 'an audit id event is the one token only')
})

t.test('domain-scoped tokens match their domain as the assignment domain', async t => {
  const v = tokenValues(info({ scope: { kind: 'domain', domain: { id: 'd-scope', name: 'x' } } }))
  t.equal(revokes(event({ domainScopeId: 'd-scope' }), v), true)
  t.equal(revokes(event({ projectId: 'p1' }), v), false, 'no project')
})

t.test('the wire form: Keystone\'s times without a zone are UTC; microseconds are kept for `since`', async t => {
  const e = revocationEventFrom({ user_id: 'u1', issued_before: '2026-12-02T12:00:00.123456Z', revoked_at: '2026-12-02T12:00:00.123456Z', expires_at: '2026-12-02T13:00:00' })
  t.same(e, { userId: 'u1', issuedBefore: NOW + 123, revokedAt: '2026-12-02T12:00:00.123456Z', revokedAtMs: NOW + 123, expiresAt: (NOW + HOUR) / 1000 })
  t.same(revocationEventFrom({ 'OS-TRUST:trust_id': 't1', issued_before: '2026-12-02T12:00:00Z', revoked_at: '2026-12-02T12:00:00Z' }).trustId, 't1')
  t.throws(() => revocationEventFrom({ issued_before: 'yesterday', revoked_at: 'now' }), KeystoneUnavailableError)
})

// The authenticator, with a Keystone that knows tokens `good-<user>` (issued a minute ago).
function standIn (hold?: Promise<void>): { keystone: KeystoneClient, validations: () => number } {
  let n = 0
  const keystone = {
    validateToken: async (token: string): Promise<TokenInfo | null> => {
      n++
      if (hold !== undefined) await hold
      if (!token.startsWith('good-')) return null
      const user = token.slice(5)
      return info({ user: { id: `id-${user}`, name: user }, auditIds: [`audit-${user}`], issuedAt: new Date(Date.now() - 60_000), expiresAt: new Date(Date.now() + HOUR) })
    },
    listUserGroups: async () => []
  } as unknown as KeystoneClient
  return { keystone, validations: () => n }
}
const logger = pino({ level: 'silent' })
const now = (over: Partial<RevocationEvent>): RevocationEvent => event({ issuedBefore: Date.now(), revokedAtMs: Date.now(), ...over })

t.test('applyRevocations drops exactly the cached tokens the events revoke', async t => {
  const k = standIn()
  const auth = new Authenticator({ keystone: k.keystone, logger })
  t.equal((await auth.authenticate('good-alice')).authenticated, true)
  t.equal((await auth.authenticate('good-bob')).authenticated, true)
  t.equal(k.validations(), 2)
  t.equal(auth.applyRevocations([now({ userId: 'id-alice' })]), 1, 'one token dropped')
  await auth.authenticate('good-bob')
  t.equal(k.validations(), 2, 'bob still from the cache')
  await auth.authenticate('good-alice')
  t.equal(k.validations(), 3, 'alice asked of Keystone again')
  t.equal(auth.applyRevocations([now({ userId: 'id-carol' })]), 0, 'an event for nobody cached drops nothing')
  t.equal(auth.applyRevocations([]), 0)
})

t.test('a validation under way when an event arrives does not put the revoked token back', async t => {
  let release!: () => void
  const k = standIn(new Promise<void>(resolve => { release = resolve }))
  const auth = new Authenticator({ keystone: k.keystone, logger })
  const pending = auth.authenticate('good-alice')
  await new Promise(resolve => setImmediate(resolve))
  auth.applyRevocations([now({ auditId: 'audit-alice' })])
  release()
  const r = await pending
  t.equal(r.authenticated, false, 'Keystone said valid just before the revocation: refused')
  t.match(r, { reason: /revoked the token while it was being validated/ })
  t.equal((await auth.authenticate('good-bob')).authenticated, true, 'others are unaffected')
})

t.test('the poller: asks with the service token, moves `since` to the last event, retries once on 401', async t => {
  const asked: Array<{ token: string, since: string }> = []
  let answers: Array<RevocationEvent[] | Error> = []
  const keystone = {
    revocationEvents: async (token: string, since: string): Promise<RevocationEvent[]> => {
      asked.push({ token, since })
      const a = answers.shift() ?? []
      if (a instanceof Error) throw a
      return a
    }
  }
  let logins = 0
  const serviceToken = { get: async () => `svc-${logins}`, invalidate: () => { logins++ } }
  const applied: RevocationEvent[][] = []
  const polls: string[] = []
  const p = new RevocationPoller({ keystone, serviceToken, apply: e => { applied.push([...e]); return e.length }, intervalMs: 10_000, lookBackMs: 120_000, logger, onPoll: r => polls.push(r), now: () => NOW })
  t.equal(p.check().detail, 'revocation events: polled every 10 s, not yet answered')
  answers = [[event({ userId: 'u1', revokedAt: '2026-12-02T12:00:01.000001Z' }), event({ auditId: 'a', revokedAt: '2026-12-02T12:00:02.000002Z' })]]
  await p.poll()
  t.same(asked[0], { token: 'svc-0', since: new Date(NOW - 120_000).toISOString() }, 'the first poll looks back')
  t.equal(applied[0]?.length, 2)
  await p.poll()
  t.equal(asked[1]?.since, '2026-12-02T12:00:02.000002Z', 'then from the last event, as Keystone wrote it')
  answers = [new KeystoneRejectedError(401, 'token expired'), []]
  await p.poll()
  t.same(asked.slice(2).map(a => a.token), ['svc-0', 'svc-1'], 'a 401: log in again, once')
  t.same(polls, ['ok', 'ok', 'ok'])
  answers = [new KeystoneUnavailableError('connection refused')]
  await p.poll()
  t.same(polls.at(-1), 'error')
  t.match(p.check(), { ok: true, detail: /last poll failed \(connection refused\)/ }, 'a failed poll is a detail, never "not ready"')
  t.equal(applied.length, 1, 'nothing applied from a failed poll')
  answers = [[]]
  await p.poll()
  t.match(p.check().detail, /last answered 2026-12-02T12:00:00.000Z/)
})

t.test('re-validation: a cached token used after revalidateAfterMs is served, and checked again in the background', async t => {
  let valid = true
  let roles = [{ id: 'r-member', name: 'member' }]
  let fail = false
  let calls = 0
  const keystone = {
    validateToken: async (): Promise<TokenInfo | null> => {
      calls++
      if (fail) throw new KeystoneUnavailableError('Keystone down')
      return valid ? info({ roles, issuedAt: new Date(), expiresAt: new Date(Date.now() + HOUR) }) : null
    },
    listUserGroups: async () => []
  } as unknown as KeystoneClient
  const results: string[] = []
  // a clock of the test's own: a loaded machine may take longer than any interval between two calls
  let clock = 1_000_000
  const auth = new Authenticator({ keystone, logger, revalidateAfterMs: 40, onRevalidate: r => results.push(r), now: () => clock })
  const settle = async (n: number): Promise<void> => {
    for (let i = 0; i < 10_000 && results.length < n; i++) await new Promise(resolve => setImmediate(resolve))
  }
  t.equal((await auth.authenticate('tok')).authenticated, true)
  clock += 39
  t.equal((await auth.authenticate('tok')).authenticated, true)
  t.equal(calls, 1, 'within the interval: from the cache, no Keystone call')

  clock += 1
  roles = [{ id: 'r-reader', name: 'reader' }]
  const served = await auth.authenticate('tok')
  t.match(served, { authenticated: true, cached: true }, 'after the interval: still served from the cache at once')
  await settle(1)
  t.equal(calls, 2, 'and Keystone asked again in the background')
  t.same(results, ['ok'])
  clock += 39
  const fresh = await auth.authenticate('tok')
  t.same(fresh.authenticated && fresh.user.extra['alpha.kubernetes.io/identity/roles'], ['reader'], 'the answer follows the roles Keystone has now')
  t.equal(calls, 2, 'one re-validation per interval, not one per review')

  clock += 40
  fail = true
  await auth.authenticate('tok')
  await settle(2)
  t.same(results, ['ok', 'error'])
  t.equal((await auth.authenticate('tok')).authenticated, true, 'Keystone unreachable: the cached answer stays (no valid token refused)')

  clock += 40
  fail = false
  valid = false
  t.equal((await auth.authenticate('tok')).authenticated, true, 'served once more while Keystone is asked')
  await settle(3)
  t.same(results, ['ok', 'error', 'revoked'])
  t.equal((await auth.authenticate('tok')).authenticated, false, 'Keystone refuses it now: dropped, and refused')
})

t.test('re-validation off (0): a cached token lives out the cache TTL untouched', async t => {
  let calls = 0
  const keystone = { validateToken: async () => { calls++; return info({ issuedAt: new Date(), expiresAt: new Date(Date.now() + HOUR) }) }, listUserGroups: async () => [] } as unknown as KeystoneClient
  const auth = new Authenticator({ keystone, logger })
  await auth.authenticate('tok')
  await new Promise(resolve => setTimeout(resolve, 30))
  await auth.authenticate('tok')
  await new Promise(resolve => setImmediate(resolve))
  t.equal(calls, 1)
})

t.test('1,000 cached tokens: one Keystone request per poll, and an event drops exactly its user\'s tokens', async t => {
  const k = standIn()
  const auth = new Authenticator({ keystone: k.keystone, logger })
  for (let i = 0; i < 1000; i++) await auth.authenticate(`good-user${i % 100}-${i}`)
  t.equal(auth.cacheSize, 1000)
  let requests = 0
  const poller = new RevocationPoller({
    keystone: { revocationEvents: async () => { requests++; return requests === 1 ? [now({ userId: 'id-user7-7' })] : [] } },
    serviceToken: { get: async () => 'svc', invalidate: () => {} },
    apply: e => auth.applyRevocations(e),
    intervalMs: 10_000,
    lookBackMs: 0,
    logger
  })
  await poller.poll()
  await poller.poll()
  t.equal(requests, 2, 'one request per poll, whatever the cache holds')
  t.equal(auth.cacheSize, 999, 'the one token of that user went; 999 stay')
})

t.test('re-validation takes no queue place from a review: with every --keystone-max-inflight slot busy it waits for a later use', async t => {
  let release!: () => void
  const held = new Promise<void>(resolve => { release = resolve })
  let calls = 0
  const keystone = {
    validateToken: async (token: string): Promise<TokenInfo | null> => {
      calls++
      if (token === 'slow') await held
      return info({ issuedAt: new Date(), expiresAt: new Date(Date.now() + HOUR) })
    },
    listUserGroups: async () => []
  } as unknown as KeystoneClient
  const auth = new Authenticator({ keystone, logger, maxInflight: 1, revalidateAfterMs: 20 })
  await auth.authenticate('tok')
  await new Promise(resolve => setTimeout(resolve, 30))
  const slow = auth.authenticate('slow')
  await new Promise(resolve => setImmediate(resolve))
  t.equal(auth.validations.running, 1, 'the one slot is busy with a review')
  t.equal((await auth.authenticate('tok')).authenticated, true, 'the cached token is served')
  t.equal(auth.validations.waiting, 0, 'and no re-validation waits for the slot')
  t.equal(calls, 2)
  release()
  await slow
  await auth.authenticate('tok')
  await new Promise(resolve => setImmediate(resolve))
  t.equal(calls, 3, 'with the slot free, the next use re-validates')
})
