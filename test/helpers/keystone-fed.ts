// The federated test Keystone (WebSSO) on 127.0.0.1:5001, apart from the main test Keystone on
// :5000: test/keystone/keystone-federation.sh turns its own keystone-dev.sh instance (state in
// /tmp/keystone-fed) into a federated one, with websso-idp.py standing in for Apache +
// mod_auth_openidc. ensureFederatedKeystone() starts it when it is not running (first start about
// a minute; afterwards it only reads seed.json and federation.json).
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Seed } from './keystone.js'
import { keystoneFetch } from './keystone-fetch.js'

export const FED_DIR = process.env.KEYSTONE_FED_DIR ?? '/tmp/keystone-fed'
export const FED_PORT = process.env.KEYSTONE_FED_PORT ?? '5001'
export const FED_SCRIPT = fileURLToPath(new URL('../keystone/keystone-federation.sh', import.meta.url))
export const BROWSER_DRIVER = fileURLToPath(new URL('./websso-browser.mjs', import.meta.url))

interface Ref { id: string, name: string }
export interface Federation {
  auth_url: string
  federated_auth_url: string
  groups: Record<string, Ref & { domain_id: string }>
  identity_provider: { id: string, domain_id: string, domain_name: string }
  protocol: { id: string }
  trusted_dashboards: string[]
  websso_url: string
}

export interface FederatedKeystone { seed: Seed, fed: Federation, authUrl: string }

async function script (...args: string[]): Promise<{ code: number, out: string }> {
  return await new Promise(resolve => {
    execFile('bash', [FED_SCRIPT, ...args], {
      env: { ...process.env, KEYSTONE_DEV_DIR: FED_DIR, KEYSTONE_DEV_PORT: FED_PORT },
      timeout: 300_000,
      encoding: 'utf8'
    }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1
      resolve({ code, out: `${stdout}${stderr}` })
    })
  })
}

let started: Promise<FederatedKeystone> | undefined

/** The running federated Keystone, started (and seeded, and federated) when it is not. */
export async function ensureFederatedKeystone (): Promise<FederatedKeystone> {
  started ??= (async () => {
    const ready = existsSync(join(FED_DIR, 'federation.json')) && (await script('status')).code === 0
    if (!ready) {
      const r = await script('enable')
      if (r.code !== 0) throw new Error(`cannot start the federated Keystone (${FED_SCRIPT} enable, state in ${FED_DIR}):\n${r.out.slice(-2000)}`)
    }
    const seed = JSON.parse(readFileSync(join(FED_DIR, 'seed.json'), 'utf8')) as Seed
    const fed = JSON.parse(readFileSync(join(FED_DIR, 'federation.json'), 'utf8')) as Federation
    return { seed, fed, authUrl: fed.auth_url }
  })()
  return await started
}

/**
 * A federated token without a browser: the test IdP's bearer token for `username` with `groups`,
 * then Keystone's federated auth endpoint (unscoped), then the token method (scoped to projectId).
 */
export async function federatedToken (k: FederatedKeystone, username: string, groups: string[], projectId?: string): Promise<string> {
  const base = new URL(k.authUrl).origin
  const q = new URLSearchParams({ username, groups: groups.join(';'), response: 'token' })
  const idp = await keystoneFetch(`${base}/idp/login?${q.toString()}`)
  if (idp.status !== 200) throw new Error(`test IdP answered ${idp.status}`)
  const bearer = ((await idp.json()) as { access_token: string }).access_token
  // The test Keystone's SQLite lets two concurrent first logins (which create the shadow user)
  // collide: one gets "database is locked" and uWSGI closes the socket without an answer. That is
  // the test bed's limit, not the code under test's: try again a few times.
  let fedRes: Response | undefined
  for (let attempt = 1; fedRes === undefined; attempt++) {
    try {
      const r = await keystoneFetch(k.fed.federated_auth_url, { method: 'POST', headers: { authorization: `Bearer ${bearer}` } })
      if (r.status >= 500 && attempt < 4) { await r.body?.cancel(); await new Promise(resolve => setTimeout(resolve, 200 * attempt)); continue }
      fedRes = r
    } catch (err) {
      if (attempt >= 4) throw err
      await new Promise(resolve => setTimeout(resolve, 200 * attempt))
    }
  }
  if (fedRes.status !== 201) throw new Error(`federated auth answered ${fedRes.status}: ${(await fedRes.text()).slice(0, 300)}`)
  const unscoped = fedRes.headers.get('x-subject-token') as string
  if (projectId === undefined) return unscoped
  const scoped = await keystoneFetch(`${k.authUrl}/auth/tokens?nocatalog`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ auth: { identity: { methods: ['token'], token: { id: unscoped } }, scope: { project: { id: projectId } } } })
  })
  if (scoped.status !== 201) throw new Error(`scoping the federated token answered ${scoped.status}: ${(await scoped.text()).slice(0, 300)}`)
  return scoped.headers.get('x-subject-token') as string
}
