import { existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { ConfigError, errorMessage } from '../errors.js'

// clouds.yaml and secure.yaml as openstacksdk and gophercloud's clientconfig read them: the first
// file found in ./, ~/.config/openstack/, /etc/openstack/ (or the file OS_CLIENT_CONFIG_FILE names),
// with secure.yaml's entry merged over clouds.yaml's. Loaded only when OS_CLOUD is set.
// Unlike openstacksdk, a secure.yaml is merged only with the clouds.yaml of its own directory:
// otherwise a clouds.yaml planted in the current directory (a cloned repository, a shared /tmp)
// would set auth_url and receive the password of ~/.config/openstack/secure.yaml.

/** The fields of a cloud entry the plugin uses, flattened. */
export interface CloudEntry {
  auth_url?: string
  username?: string
  user_id?: string
  password?: string
  project_name?: string
  project_id?: string
  user_domain_name?: string
  user_domain_id?: string
  project_domain_name?: string
  project_domain_id?: string
  domain_name?: string
  domain_id?: string
  /** gophercloud/openstacksdk: the domain ID of the user and project when none is named. */
  default_domain?: string
  /** keystoneauth's names of the same. */
  default_domain_id?: string
  default_domain_name?: string
  system_scope?: string
  trust_id?: string
  application_credential_id?: string
  application_credential_name?: string
  application_credential_secret?: string
  token?: string
  cacert?: string
  cert?: string
  key?: string
  auth_type?: string
  identity_provider?: string
  protocol?: string
  /** Where the entry came from, for messages. */
  source: string
  /** The files the entry was read from, in merge order (for the verbose line). */
  files?: string[]
  /** Warnings for the user: a secure.yaml left out because it is not next to the clouds.yaml used. */
  warnings?: string[]
}

export function cloudsDirs (env: NodeJS.ProcessEnv): string[] {
  const home = env.HOME ?? homedir()
  return [process.cwd(), join(home, '.config', 'openstack'), '/etc/openstack']
}

function inDir (dir: string, base: string): string | undefined {
  for (const ext of ['.yaml', '.yml']) {
    const p = join(dir, base + ext)
    if (existsSync(p)) return p
  }
  return undefined
}

function findFile (env: NodeJS.ProcessEnv, base: string, override: string | undefined): string | undefined {
  if (override !== undefined && override !== '') return existsSync(override) ? override : undefined
  for (const dir of cloudsDirs(env)) {
    const p = inDir(dir, base)
    if (p !== undefined) return p
  }
  return undefined
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function deepMerge (a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a }
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k]
    out[k] = isObject(prev) && isObject(v) ? deepMerge(prev, v) : v
  }
  return out
}

async function loadClouds (path: string): Promise<Record<string, unknown>> {
  const YAML = await import('yaml')
  let doc: unknown
  try {
    doc = YAML.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new ConfigError(`cannot read ${path}: ${errorMessage(err)}`)
  }
  if (!isObject(doc) || !isObject(doc.clouds)) throw new ConfigError(`${path} has no "clouds" map`)
  return doc.clouds
}

const STRING_KEYS = ['auth_url', 'username', 'user_id', 'password', 'project_name', 'project_id', 'user_domain_name',
  'user_domain_id', 'project_domain_name', 'project_domain_id', 'domain_name', 'domain_id',
  'default_domain', 'default_domain_id', 'default_domain_name', 'system_scope', 'trust_id',
  'application_credential_id', 'application_credential_name', 'application_credential_secret', 'token',
  'identity_provider', 'protocol'] as const

/** The named cloud, or a ConfigError that says where it was looked for. */
export async function loadCloud (name: string, env: NodeJS.ProcessEnv): Promise<CloudEntry> {
  const cloudsPath = findFile(env, 'clouds', env.OS_CLIENT_CONFIG_FILE)
  // secure.yaml: only the one next to the clouds.yaml used (or, without any clouds.yaml, the first found).
  const securePath = cloudsPath !== undefined ? inDir(dirname(resolve(cloudsPath)), 'secure') : findFile(env, 'secure', undefined)
  let entry: Record<string, unknown> | undefined
  const sources: string[] = []
  const warnings: string[] = []
  if (cloudsPath !== undefined) {
    const c = (await loadClouds(cloudsPath))[name]
    if (isObject(c)) { entry = c; sources.push(cloudsPath) }
  }
  if (securePath !== undefined) {
    const s = (await loadClouds(securePath))[name]
    if (isObject(s)) { entry = deepMerge(entry ?? {}, s); sources.push(securePath) }
  }
  if (cloudsPath !== undefined) {
    // Say so when a secure.yaml elsewhere has this cloud: its secrets are not sent where this clouds.yaml says.
    for (const dir of cloudsDirs(env)) {
      const other = inDir(dir, 'secure')
      if (other === undefined || (securePath !== undefined && resolve(other) === resolve(securePath))) continue
      let has = false
      try { has = isObject((await loadClouds(other))[name]) } catch {}
      if (has) warnings.push(`not using ${other} for cloud ${name}: secrets in a secure.yaml are only combined with the clouds.yaml of the same directory, and the clouds.yaml used is ${resolve(cloudsPath)}; if that file is not yours, remove it (or run from another directory)`)
    }
  }
  if (entry === undefined) {
    const where = cloudsPath ?? `clouds.yaml in ${cloudsDirs(env).join(', ')}`
    throw new ConfigError(`OS_CLOUD=${name}: no such cloud in ${where}`)
  }
  const auth = isObject(entry.auth) ? entry.auth : {}
  const out: CloudEntry = { source: sources.join(' + '), files: sources, warnings }
  for (const k of STRING_KEYS) {
    const v = auth[k]
    if (typeof v === 'string' && v !== '') out[k] = v
  }
  // Older files put the project under tenant_*; openstacksdk still reads them.
  if (out.project_name === undefined && typeof auth.tenant_name === 'string') out.project_name = auth.tenant_name
  if (out.project_id === undefined && typeof auth.tenant_id === 'string') out.project_id = auth.tenant_id
  for (const k of ['cacert', 'cert', 'key', 'auth_type'] as const) {
    const v = entry[k]
    if (typeof v === 'string' && v !== '') out[k] = v
  }
  return out
}
