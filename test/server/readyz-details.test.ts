// Security review, finding 9 (first half): /readyz showed anyone who could reach the port
// Keystone's URL and error text and the policy's source (its file path, the reason an update was
// refused). Now a client without a certificate signed by --client-ca-file gets the ready bit and
// each check's name and ok, and the details only at --log-level debug or trace (so, without a
// --client-ca-file, only then). kubelet probes read only the status code, which is unchanged.
import t, { type Test } from 'tap'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { makeCerts, testCerts } from '../helpers/certs.js'
import { startWebhook } from '../helpers/webhook.js'

const DOWN = 'http://127.0.0.1:9/v3' // nothing listens: Keystone's error names its URL and ECONNREFUSED

function policyFile (): string {
  const file = join(mkdtempSync(join(tmpdir(), 'ksa-readyz-')), 'secret-policy-path.json')
  writeFileSync(file, JSON.stringify([{ users: { roles: ['member'], projects: ['demo'] }, resource_permissions: { '*/pods': ['list'] } }]))
  return file
}

/** GET over a fresh connection with the given TLS client settings. */
async function get (url: string, connect: Record<string, unknown>): Promise<{ status: number, text: string, body: any }> {
  const agent = new Agent({ connect: { ca: testCerts().ca, ...connect } })
  try {
    const res = await request(url, { dispatcher: agent })
    const text = await res.body.text()
    let body: unknown
    try { body = JSON.parse(text) } catch { body = undefined }
    return { status: res.statusCode, text, body }
  } finally {
    await agent.close()
  }
}

async function until (cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await cond()) return true
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  return await cond()
}

function hidesDetails (t: Test, r: { status: number, text: string, body: any }, policy: string, what: string): void {
  t.equal(r.status, 503, `${what}: the status code still says not ready`)
  t.same(r.body, { ready: false, checks: { policy: { ok: true }, keystone: { ok: false } } }, `${what}: the ready bit and the checks' names and ok, nothing else`)
  for (const secret of ['127.0.0.1:9', 'ECONNREFUSED', 'no answer', policy, 'detail']) t.notOk(r.text.includes(secret), `${what}: no ${JSON.stringify(secret)}`)
}

t.test('/readyz without --client-ca-file, at the default log level: no details', async t => {
  const policy = policyFile()
  const wh = await startWebhook(['--keystone-url', DOWN, '--keystone-timeout', '2s', '--keystone-policy-file', policy])
  t.teardown(wh.close)
  hidesDetails(t, await wh.get('/readyz'), policy, 'no client CA')
})

t.test('/readyz with --client-ca-file: details only with a certificate signed by it', async t => {
  const policy = policyFile()
  const certs = testCerts()
  const wh = await startWebhook(['--keystone-url', DOWN, '--keystone-timeout', '2s', '--keystone-policy-file', policy, '--client-ca-file', certs.caFile])
  t.teardown(wh.close)
  const url = `${wh.url}/readyz`
  hidesDetails(t, await get(url, {}), policy, 'no certificate (a kubelet probe)')
  const other = makeCerts()
  hidesDetails(t, await get(url, { cert: readFileSync(other.clientCertFile), key: readFileSync(other.clientKeyFile) }), policy, 'a certificate of another CA')
  const mine = { cert: readFileSync(certs.clientCertFile), key: readFileSync(certs.clientKeyFile) }
  t.ok(await until(async () => /ECONNREFUSED/.test((await get(url, mine)).body.checks.keystone.detail), 10_000), 'with the client certificate: Keystone\'s error')
  const r = await get(url, mine)
  t.equal(r.status, 503)
  t.match(r.body.checks.keystone.detail, 'Keystone at http://127.0.0.1:9/v3 is unreachable')
  t.match(r.body.checks.policy.detail, policy, 'and the policy\'s source')
})

t.test('/readyz at --log-level debug or trace shows the details to anyone', async t => {
  // (--v 4 and --v 6 become debug and trace in the binary's main, which this helper skips.)
  for (const flags of [['--log-level', 'debug'], ['--log-level', 'trace']]) {
    const policy = policyFile()
    const wh = await startWebhook(['--keystone-url', DOWN, '--keystone-timeout', '2s', '--keystone-policy-file', policy, ...flags])
    t.teardown(wh.close)
    const r = await wh.get('/readyz')
    t.equal(r.status, 503)
    t.type(r.body.checks.keystone.detail, 'string', `${flags.join(' ')}: Keystone's detail`)
    t.match(r.body.checks.policy.detail, policy, `${flags.join(' ')}: the policy's source`)
  }
})
