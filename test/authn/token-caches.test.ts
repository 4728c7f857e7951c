// The Authenticator's two token caches and its bound on Keystone validations, against a counting
// fake Keystone (no timing anywhere: a validation stays open until the test lets it finish).
// The HTTP-level attack (10,000 junk tokens, a burst against a held Keystone) is in
// test/reliability/keystone-flood.test.ts.
import t from 'tap'
import pino from 'pino'
import { Authenticator } from '../../src/authn/authenticator.js'
import { KeystoneBusyError, ValidationLimit } from '../../src/authn/validation-limit.js'
import { KeystoneUnavailableError } from '../../src/errors.js'
import type { KeystoneClient } from '../../src/keystone/client.js'
import type { TokenInfo } from '../../src/keystone/types.js'
import { parseFlags } from '../../src/config/flags.js'
import { SERVER_FLAGS } from '../../src/cli/server-flags.js'
import { serverOptionsFrom } from '../../src/cli/k8s-keystone-auth.js'

const info = (name: string): TokenInfo => ({
  user: { id: `id-${name}`, name },
  userDomain: { id: 'default', name: 'Default' },
  scope: { kind: 'project', project: { id: 'p1', name: 'demo' }, domain: { id: 'default', name: 'Default' } },
  roles: [{ id: 'r1', name: 'member' }],
  methods: ['password'],
  expiresAt: new Date(Date.now() + 3600_000)
})

/** Tokens `good-<name>` are valid; anything else is unknown to Keystone. `hold` keeps answers back. */
function fakeKeystone (): { keystone: KeystoneClient, calls: () => number, running: () => number, peak: () => number, hold: () => void, release: () => void } {
  let calls = 0
  let running = 0
  let peak = 0
  let held: Array<() => void> | undefined
  const keystone = {
    validateToken: async (token: string): Promise<TokenInfo | null> => {
      calls++
      running++
      peak = Math.max(peak, running)
      try {
        if (held !== undefined) await new Promise<void>(resolve => held?.push(resolve))
        return token.startsWith('good-') ? info(token.slice(5)) : null
      } finally {
        running--
      }
    },
    listUserGroups: async () => []
  } as unknown as KeystoneClient
  return {
    keystone,
    calls: () => calls,
    running: () => running,
    peak: () => peak,
    hold: () => { held ??= [] },
    release: () => { const h = held; held = undefined; for (const go of h ?? []) go() }
  }
}

const logger = pino({ level: 'silent' })
const tick = async (): Promise<void> => await new Promise(resolve => setImmediate(resolve))

t.test('rejected tokens have their own LRU: any number of them leaves valid identities cached', async t => {
  const k = fakeKeystone()
  const auth = new Authenticator({ keystone: k.keystone, logger, cacheMax: 2, negativeCacheMax: 3 })
  t.ok((await auth.authenticate('good-alice')).authenticated)
  t.ok((await auth.authenticate('good-bob')).authenticated)
  t.equal(k.calls(), 2)
  for (let i = 0; i < 50; i++) t.notOk((await auth.authenticate(`junk-${i}`)).authenticated)
  t.equal(k.calls(), 52, 'each junk token asked Keystone once')
  const alice = await auth.authenticate('good-alice')
  const bob = await auth.authenticate('good-bob')
  t.ok(alice.authenticated && alice.cached, 'alice still cached')
  t.ok(bob.authenticated && bob.cached, 'bob still cached')
  t.equal(k.calls(), 52, 'no Keystone call for them')
  t.equal(auth.cacheSize, 2 + 3, 'valid entries plus at most negativeCacheMax rejections')
  const recent = await auth.authenticate('junk-49')
  t.ok(!recent.authenticated && recent.cached, 'a recent rejection is answered from its cache')
  t.notOk((await auth.authenticate('junk-0')).cached, 'an old one was pushed out of the small cache')
  t.equal(k.calls(), 53)
  // The valid-token cache is still an LRU of its own size.
  await auth.authenticate('good-carol')
  t.notOk((await auth.authenticate('good-alice')).cached, 'a third valid token evicts the least recently used valid one')
})

t.test('negativeCacheMax 0 remembers no rejection; token-cache-ttl 0 turns both caches off', async t => {
  const k = fakeKeystone()
  const auth = new Authenticator({ keystone: k.keystone, logger, negativeCacheMax: 0 })
  await auth.authenticate('junk')
  await auth.authenticate('junk')
  t.equal(k.calls(), 2)
  t.ok((await auth.authenticate('good-a')).authenticated)
  t.ok((await auth.authenticate('good-a')).cached, 'valid tokens are still cached')
  const k2 = fakeKeystone()
  const off = new Authenticator({ keystone: k2.keystone, logger, cacheTtlMs: 0 })
  for (const tok of ['junk', 'junk', 'good-a', 'good-a']) await off.authenticate(tok)
  t.equal(k2.calls(), 4, 'every review asks Keystone')
  t.equal(off.cacheSize, 0)
})

t.test('maxInflight: at most that many validations at Keystone, as many waiting, the rest refused at once', async t => {
  const k = fakeKeystone()
  let busy = 0
  const auth = new Authenticator({ keystone: k.keystone, logger, maxInflight: 3, onBusy: () => { busy++ } })
  k.hold()
  const results = Array.from({ length: 10 }, async (_, i) => await auth.authenticate(`junk-${i}`).then(r => ({ ok: r }), (err: unknown) => ({ err })))
  await tick()
  t.equal(k.running(), 3, 'three at Keystone')
  t.same(auth.validations, { running: 3, waiting: 3, max: 3 })
  t.equal(busy, 4, 'four refused at once, before Keystone answered anything')
  // The same token as a running one joins it (single flight) and needs no slot.
  const joined = auth.authenticate('junk-0')
  k.release()
  const settled = await Promise.all(results)
  const refused = settled.filter((r): r is { err: unknown } => 'err' in r)
  t.equal(refused.length, 4)
  for (const r of refused) {
    t.ok(r.err instanceof KeystoneBusyError, 'KeystoneBusyError')
    t.ok(r.err instanceof KeystoneUnavailableError, 'a KeystoneUnavailableError: the server answers HTTP 500 with its message')
    t.match((r.err as Error).message, /3 in flight \(--keystone-max-inflight\) and 3 waiting/)
  }
  t.notOk((await joined).authenticated)
  t.equal(k.peak(), 3, 'never more than three at Keystone')
  t.equal(k.calls(), 6, 'Keystone saw the three running and the three that waited')
  t.same(auth.validations, { running: 0, waiting: 0, max: 3 }, 'every slot given back')
  // Refusals are not cached: the token is validated when asked again.
  const again = await auth.authenticate('junk-9')
  t.notOk(again.authenticated)
  t.notOk(again.cached)
  t.equal(k.calls(), 7)
  // Cached answers need no slot: with Keystone held and the bound full, a cached identity is answered.
  t.ok((await auth.authenticate('good-alice')).authenticated)
  k.hold()
  const blocking = Array.from({ length: 6 }, async (_, i) => await auth.authenticate(`other-${i}`).catch(() => undefined))
  await tick()
  const cached = await auth.authenticate('good-alice')
  t.ok(cached.authenticated && cached.cached, 'a cached identity is answered while the bound is full')
  k.release()
  await Promise.all(blocking)
})

t.test('ValidationLimit: first come first served, a slot is given back when the work throws, 0 = no bound', async t => {
  const limit = new ValidationLimit(1, 2)
  const order: number[] = []
  let finish: (() => void) | undefined
  const first = limit.run(async () => { await new Promise<void>(resolve => { finish = resolve }); order.push(0) })
  const second = limit.run(async () => { order.push(1); throw new Error('boom') })
  const third = limit.run(async () => { order.push(2) })
  await t.rejects(limit.run(async () => {}), KeystoneBusyError, 'the queue (2) is full')
  t.same([limit.running, limit.waiting], [1, 2])
  finish?.()
  await first
  await t.rejects(second, /boom/)
  await third
  t.same(order, [0, 1, 2], 'in arrival order')
  t.same([limit.running, limit.waiting], [0, 0], 'the failed one gave its slot back')
  const none = new ValidationLimit(0)
  const many = await Promise.all(Array.from({ length: 100 }, async (_, i) => await none.run(async () => i)))
  t.equal(many.length, 100, 'no bound')
  t.throws(() => new ValidationLimit(-1), RangeError)
  t.throws(() => new ValidationLimit(1.5), RangeError)
})

t.test('server options: defaults 32 validations at once and 1000 rejected tokens; flags and env set them', async t => {
  const base = ['--tls-cert-file', 'c', '--tls-private-key-file', 'k', '--keystone-url', 'https://k:5000/v3']
  const o = serverOptionsFrom(parseFlags(SERVER_FLAGS, base, {}))
  t.equal(o['keystone-max-inflight'], 32)
  t.equal(o['token-cache-negative-size'], 1000)
  t.equal(o['token-cache-size'], 10_000, 'the valid-token cache keeps its size')
  const env = serverOptionsFrom(parseFlags(SERVER_FLAGS, base, { KEYSTONE_MAX_INFLIGHT: '0', KEYSTONE_TOKEN_CACHE_NEGATIVE_SIZE: '50' }))
  t.same([env['keystone-max-inflight'], env['token-cache-negative-size']], [0, 50], '0 = no bound; from env')
  const flags = serverOptionsFrom(parseFlags(SERVER_FLAGS, [...base, '--keystone-max-inflight', '8', '--token-cache-negative-size', '0'], { KEYSTONE_MAX_INFLIGHT: '64' }))
  t.same([flags['keystone-max-inflight'], flags['token-cache-negative-size']], [8, 0], 'a flag wins over its env var')
})
