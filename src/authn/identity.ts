import type { RoleMapping } from '../config/sync-config.js'
import type { UsernameFormat } from '../config/server-options.js'
import type { Group, TokenInfo } from '../keystone/types.js'
import {
  EXTRA_DOMAIN_ID, EXTRA_DOMAIN_NAME, EXTRA_PROJECT_ID, EXTRA_PROJECT_NAME, EXTRA_ROLES,
  EXTRA_SCOPE, EXTRA_USER_DOMAIN_ID, EXTRA_USER_DOMAIN_NAME, type UserInfo
} from '../identity.js'

/** --username-prefix and --groups-prefix, put before Keystone-sourced names (kube-apiserver's OIDC convention). */
export interface NamePrefixes {
  username?: string
  groups?: string
}

/** The Kubernetes username Keystone's names make, before any prefix. */
export function keystoneUsername (info: TokenInfo, usernameFormat: UsernameFormat): string {
  return usernameFormat === 'domain/name' ? `${info.userDomain.name}/${info.user.name}` : info.user.name
}

/**
 * Builds the identity exactly as the Go binary does for project-scoped tokens: username = user
 * name, uid = user id, groups = Keystone group names then the project id, and the five
 * `alpha.kubernetes.io/identity/...` extras. Other scopes (opt-in) get scope extras instead of
 * project ones, and no project group. The prefixes (default none, as Go) go before the username
 * and the Keystone group names, not before the project id group: that is Keystone's generated
 * id, which RBAC bindings and policies name as it is.
 */
export function identityFrom (info: TokenInfo, groups: readonly Group[], usernameFormat: UsernameFormat, prefixes: NamePrefixes = {}): UserInfo {
  const username = (prefixes.username ?? '') + keystoneUsername(info, usernameFormat)
  // Key order as the Go binary writes them: roles, project, user domain.
  const extra: Record<string, string[]> = { [EXTRA_ROLES]: info.roles.map(r => r.name) }
  const groupsPrefix = prefixes.groups ?? ''
  const groupNames = groups.map(g => groupsPrefix + g.name)
  const scope = info.scope
  if (scope.kind === 'project') {
    extra[EXTRA_PROJECT_ID] = [scope.project.id]
    extra[EXTRA_PROJECT_NAME] = [scope.project.name]
    groupNames.push(scope.project.id)
  }
  extra[EXTRA_USER_DOMAIN_ID] = [info.userDomain.id]
  extra[EXTRA_USER_DOMAIN_NAME] = [info.userDomain.name]
  switch (scope.kind) {
    case 'project':
      break
    case 'domain':
      extra[EXTRA_SCOPE] = ['domain']
      extra[EXTRA_DOMAIN_ID] = [scope.domain.id]
      extra[EXTRA_DOMAIN_NAME] = [scope.domain.name]
      break
    default:
      extra[EXTRA_SCOPE] = [scope.kind]
  }
  return { username, uid: info.user.id, groups: groupNames, extra }
}

/**
 * Applies the sync config's role-mappings as Go's syncRoles does: each mapping whose
 * keystone-role the user holds appends its groups and, when it names one, replaces the username
 * (the last such mapping wins). Returns a new record; the cached identity is left untouched.
 * The operator wrote these names: no prefix, no filter (a mapping may grant system:masters).
 */
export function applyRoleMappings (user: UserInfo, mappings: readonly RoleMapping[]): UserInfo {
  if (mappings.length === 0) return user
  const roles = user.extra[EXTRA_ROLES] ?? []
  let username = user.username
  const groups = [...user.groups]
  for (const m of mappings) {
    if (!roles.includes(m.keystoneRole)) continue
    groups.push(...m.groups)
    if (m.username !== undefined) username = m.username
  }
  return { ...user, username, groups }
}
