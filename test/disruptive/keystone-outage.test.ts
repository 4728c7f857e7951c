// Stops and restarts the real Keystone. Runs alone, after every other test (scripts/test.sh),
// because every other test needs Keystone up.
import t from 'tap'
import { keystoneScript, loadSeed, passwordToken } from '../helpers/keystone.js'
import { startWebhook, tokenReview } from '../helpers/webhook.js'

const seed = loadSeed()

async function until (what: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await what()) return true
    await new Promise(resolve => setTimeout(resolve, 250))
  }
  return false
}

t.test('Keystone stopped mid-test: 500, not cached, server up, /readyz false, recovery', async t => {
  const wh = await startWebhook(['--keystone-timeout', '3s'])
  t.teardown(async () => {
    keystoneScript('start')
    await wh.close()
  })
  const cachedToken = await passwordToken(seed, 'demo', 'demo')
  const freshToken = await passwordToken(seed, 'demo', 'alt')
  t.equal((await wh.post('/webhook', tokenReview(cachedToken))).body.status.authenticated, true)
  t.ok(await until(async () => (await wh.get('/readyz')).status === 200, 5000), 'ready while Keystone is up')

  keystoneScript('stop')

  const down = await wh.post('/webhook', tokenReview(freshToken))
  t.equal(down.status, 500, 'a token we cannot check is an HTTP 500')
  t.match(down.body.status.error, /Keystone at .* is unreachable/)
  const again = await wh.post('/webhook', tokenReview(freshToken))
  t.equal(again.status, 500, 'the failure was not cached as a negative answer')
  t.equal((await wh.post('/webhook', tokenReview(cachedToken))).body.status.authenticated, true, 'cached identities still answer')
  // Readiness turns false once the last Keystone answer is older than its freshness window.
  t.ok(await until(async () => (await wh.get('/readyz')).status === 503, 45_000), '/readyz says not ready')
  const ready = await wh.get('/readyz')
  t.equal(ready.body.checks.keystone.ok, false)
  t.equal((await wh.get('/healthz')).status, 200, 'the server stays up')

  keystoneScript('start')

  t.ok(await until(async () => (await wh.post('/webhook', tokenReview(freshToken))).status === 200, 30_000), 'reviews recover')
  t.equal((await wh.post('/webhook', tokenReview(freshToken))).body.status.authenticated, true)
  t.ok(await until(async () => (await wh.get('/readyz')).status === 200, 30_000), 'ready again')
})
