// A second, disposable Keystone (state in /tmp/keystone-faults, port 5002) for the tests that
// kill and restart Keystone; the main test Keystone on :5000 is never touched. Started and
// seeded on first use (20-60 s), then reused by later runs.
import { existsSync, readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { KEYSTONE_SCRIPT, type Seed } from '../helpers/keystone.js'

export const FAULT_KEYSTONE_DIR = process.env.KSA_FAULT_KEYSTONE_DIR ?? '/tmp/keystone-faults'
export const FAULT_KEYSTONE_PORT = process.env.KSA_FAULT_KEYSTONE_PORT ?? '5002'

export function faultKeystone (...args: string[]): string {
  const env: NodeJS.ProcessEnv = { ...process.env, KEYSTONE_DEV_DIR: FAULT_KEYSTONE_DIR, KEYSTONE_DEV_PORT: FAULT_KEYSTONE_PORT }
  delete env.NODE_OPTIONS
  return execFileSync('bash', [KEYSTONE_SCRIPT, ...args], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

function running (): boolean {
  try { faultKeystone('status'); return true } catch { return false }
}

/** Starts (and seeds, the first time) the fault-test Keystone; returns its seed. */
export function ensureFaultKeystone (): Seed {
  if (!running()) faultKeystone('start')
  const seedFile = join(FAULT_KEYSTONE_DIR, 'seed.json')
  if (!existsSync(seedFile)) faultKeystone('seed')
  const seed = JSON.parse(readFileSync(seedFile, 'utf8')) as Seed
  if (!seed.auth_url.includes(`:${FAULT_KEYSTONE_PORT}/`)) throw new Error(`${seedFile} is for ${seed.auth_url}, not port ${FAULT_KEYSTONE_PORT}`)
  return seed
}

export async function until (what: () => Promise<boolean>, ms: number, every = 200): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await what()) return true
    await new Promise(resolve => setTimeout(resolve, every))
  }
  return await what()
}
