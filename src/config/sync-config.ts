import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { ConfigError } from '../errors.js'

// The sync config of the Go k8s-keystone-auth (file --sync-config-file or ConfigMap key
// `syncConfig`), same YAML keys. Unlike Go, an invalid config is an error the caller sees, never
// a half-applied one.

export const DATA_TYPES = ['projects', 'role_assignments'] as const
export type DataType = typeof DATA_TYPES[number]

const RoleMapping = z.object({
  'keystone-role': z.string().min(1, 'keystone-role must not be empty'),
  username: z.string().optional(),
  groups: z.array(z.string()).optional()
}).strict()

const SyncConfigFile = z.object({
  'data-types-to-sync': z.array(z.enum(DATA_TYPES, { error: `must be one of: ${DATA_TYPES.join(', ')}` })).optional(),
  'namespace-format': z.string().optional(),
  'projects-blacklist': z.array(z.string()).optional(),
  'projects-name-blacklist': z.array(z.string()).optional(),
  'role-mappings': z.array(RoleMapping).optional()
}).strict()

export interface RoleMapping {
  keystoneRole: string
  username?: string
  groups: string[]
}

export interface SyncConfig {
  dataTypesToSync: DataType[]
  namespaceFormat: string
  projectsBlacklist: string[]
  projectsNameBlacklist: string[]
  roleMappings: RoleMapping[]
}

export function defaultSyncConfig (): SyncConfig {
  return { dataTypesToSync: [], namespaceFormat: '%i', projectsBlacklist: [], projectsNameBlacklist: [], roleMappings: [] }
}

/** Validates a namespace format as Go does: must contain %i; with %i/%n/%d replaced it must be a name. */
export function checkNamespaceFormat (format: string): string | null {
  if (!format.includes('%i')) return 'must contain %i (the Keystone project id)'
  const sample = format.replaceAll('%i', 'aa').replaceAll('%n', 'aa').replaceAll('%d', 'aa')
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*[a-zA-Z0-9]$/.test(sample)) {
    return "must consist of alphanumeric characters, '-', '_' or '.', and start and end with an alphanumeric character"
  }
  return null
}

/** Parses sync config YAML. Throws ConfigError naming `source` and the offending key. */
export function parseSyncConfig (text: string, source: string): SyncConfig {
  let raw: unknown
  try {
    raw = parseYaml(text)
  } catch (err) {
    throw new ConfigError(`${source}: not valid YAML: ${(err as Error).message.split('\n')[0] ?? ''}`)
  }
  if (raw === null || raw === undefined) return defaultSyncConfig()
  const r = SyncConfigFile.safeParse(raw)
  if (!r.success) {
    const issue = r.error.issues[0]
    const where = issue?.path.length !== undefined && issue.path.length > 0 ? issue.path.join('.') : '(top level)'
    throw new ConfigError(`${source}: ${where}: ${issue?.message ?? 'invalid'}`)
  }
  const c = r.data
  const cfg = defaultSyncConfig()
  if (c['namespace-format'] !== undefined && c['namespace-format'] !== '') {
    const problem = checkNamespaceFormat(c['namespace-format'])
    if (problem !== null) throw new ConfigError(`${source}: namespace-format ${JSON.stringify(c['namespace-format'])} ${problem}`)
    cfg.namespaceFormat = c['namespace-format']
  }
  cfg.dataTypesToSync = [...new Set(c['data-types-to-sync'] ?? [])]
  cfg.projectsBlacklist = c['projects-blacklist'] ?? []
  cfg.projectsNameBlacklist = c['projects-name-blacklist'] ?? []
  cfg.roleMappings = (c['role-mappings'] ?? []).map(m => {
    const out: RoleMapping = { keystoneRole: m['keystone-role'], groups: m.groups ?? [] }
    if (m.username !== undefined && m.username !== '') out.username = m.username
    return out
  })
  return cfg
}
