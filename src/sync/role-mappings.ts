import { EXTRA_ROLES, type UserInfo } from '../authn/types.js'
import type { SyncConfig } from '../config/sync-config.js'

// `role-mappings` of the sync config, as Go's syncRoles: for every mapping whose keystone-role the
// user holds, its groups are appended and its username (when set) replaces the username; later
// mappings win. Go applies this to the TokenReview answer and syncs with the mapped user, so the
// RoleBinding subjects name the mapped username too: call this before Syncer.sync.
// Unlike Go, the input is not mutated.

export function applyRoleMappings (user: UserInfo, cfg: SyncConfig): UserInfo {
  if (cfg.roleMappings.length === 0) return user
  const roles = user.extra[EXTRA_ROLES]
  if (roles === undefined) return user
  const out: UserInfo = { ...user, groups: [...user.groups] }
  for (const m of cfg.roleMappings) {
    if (!roles.includes(m.keystoneRole)) continue
    out.groups.push(...m.groups)
    if (m.username !== undefined && m.username !== '') out.username = m.username
  }
  return out
}
