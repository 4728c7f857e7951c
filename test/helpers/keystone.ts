// Access to the real Keystone that scripts/test.sh starts (test/keystone/keystone-dev.sh) and the
// objects its `seed` created. Tests that need Keystone call requireKeystone(t) first.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { keystoneFetch } from './keystone-fetch.js'

export const KEYSTONE_DEV_DIR = process.env.KEYSTONE_DEV_DIR ?? '/tmp/keystone-dev'
export const KEYSTONE_SCRIPT = fileURLToPath(new URL('../keystone/keystone-dev.sh', import.meta.url))

interface Ref { id: string, name: string }
export interface Seed {
  auth_url: string
  domains: Record<string, Ref>
  projects: Record<string, Ref & { domain_id: string }>
  roles: Record<string, Ref>
  users: Record<string, Ref & { password: string, domain_id: string, domain_name: string }>
  groups: Record<string, Ref & { domain_id: string }>
  application_credentials: Record<string, Ref & { secret: string, user_id: string, project_id: string }>
}

export function loadSeed (): Seed {
  return JSON.parse(readFileSync(join(KEYSTONE_DEV_DIR, 'seed.json'), 'utf8')) as Seed
}

export function keystoneScript (...args: string[]): string {
  return execFileSync('bash', [KEYSTONE_SCRIPT, ...args], { env: { ...process.env, KEYSTONE_DEV_DIR }, encoding: 'utf8' })
}

/** Logs in with a password through Keystone's API and returns the token (no code of ours involved). */
export async function passwordToken (seed: Seed, user: string, project?: string | 'unscoped'): Promise<string> {
  const u = seed.users[user]
  if (u === undefined) throw new Error(`no seeded user ${user}`)
  const auth: Record<string, unknown> = {
    identity: { methods: ['password'], password: { user: { id: u.id, password: u.password } } }
  }
  if (project === 'unscoped') auth.scope = 'unscoped'
  else if (project !== undefined) {
    const p = seed.projects[project]
    if (p === undefined) throw new Error(`no seeded project ${project}`)
    auth.scope = { project: { id: p.id } }
  }
  return await issue(seed.auth_url, { auth })
}

export async function appCredToken (seed: Seed, name = 'kubectl-demo'): Promise<string> {
  const ac = seed.application_credentials[name]
  if (ac === undefined) throw new Error(`no seeded application credential ${name}`)
  return await issue(seed.auth_url, {
    auth: { identity: { methods: ['application_credential'], application_credential: { id: ac.id, secret: ac.secret } } }
  })
}

export async function adminToken (seed: Seed): Promise<string> {
  const a = seed.users.admin
  if (a === undefined) throw new Error('no admin in seed')
  return await issue(seed.auth_url, {
    auth: {
      identity: { methods: ['password'], password: { user: { id: a.id, password: a.password } } },
      scope: { project: { id: seed.projects.admin?.id } }
    }
  })
}

async function issue (authUrl: string, body: unknown): Promise<string> {
  const res = await keystoneFetch(`${authUrl}/auth/tokens?nocatalog`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body)
  })
  if (res.status !== 201) throw new Error(`Keystone login failed: ${res.status} ${await res.text()}`)
  return res.headers.get('x-subject-token') as string
}

/** Direct Keystone admin API call (test set-up only). */
export async function keystoneApi (seed: Seed, token: string, method: string, path: string, body?: unknown): Promise<{ status: number, body: any }> {
  const init: { method: string, headers: Record<string, string>, body?: string } = { method, headers: { 'x-auth-token': token, 'content-type': 'application/json' } }
  if (body !== undefined) init.body = JSON.stringify(body)
  const res = await keystoneFetch(`${seed.auth_url}${path}`, init)
  const text = await res.text()
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) }
}
