import type { Logger } from 'pino'
import type { Group, TokenInfo } from '../keystone/types.js'
import type { UsernameFormat } from '../config/server-options.js'
import { keystoneUsername } from './identity.js'

// Which Keystone names may become Kubernetes identities. Keystone user and group names are chosen
// by whoever may create users or groups in some domain (a domain manager, an LDAP directory, a
// federation mapping), not by the cluster's operator; unfiltered, such a person chose Kubernetes
// identities (the Go binary passes them through: authenticator.go, AuthenticateToken).
//
//   - `system:` is Kubernetes' own prefix (system:masters, system:kube-controller-manager,
//     system:serviceaccount:..., system:nodes ...). A Keystone user name (as --username-format
//     builds it, before --username-prefix) or group name beginning with it refuses the review:
//     answering without it would hand out a different identity than Keystone's.
//   - A group name of the form of a project id (32 hex digits, any case) is dropped from the
//     groups with a warning: the project id the token is scoped to is appended to the groups (as
//     Go does), so such a group posed as another project's group. A group answered by its own id
//     (its name could not be read) keeps it: Keystone generated that id, it is no project's.
//
// Role-mapping output is written by the operator and added afterwards, unfiltered.

export const RESERVED_PREFIX = 'system:'
const PROJECT_ID_FORM = /^[0-9a-f]{32}$/i

export function hasProjectIdForm (name: string): boolean {
  return PROJECT_ID_FORM.test(name)
}

export type Screened = { ok: true, groups: Group[] } | { ok: false, reason: string }

/** Refuses a reserved Keystone username or group name; drops groups named like project ids. */
export function screenKeystoneNames (info: TokenInfo, groups: readonly Group[], usernameFormat: UsernameFormat, logger: Logger): Screened {
  const username = keystoneUsername(info, usernameFormat)
  if (username.startsWith(RESERVED_PREFIX)) {
    const reason = `the Keystone user name "${username}" begins with "${RESERVED_PREFIX}", which Kubernetes reserves for its own identities`
    logger.warn({ userId: info.user.id, username }, `TokenReview refused: ${reason}`)
    return { ok: false, reason }
  }
  const reserved = groups.find(g => g.name.startsWith(RESERVED_PREFIX))
  if (reserved !== undefined) {
    const reason = `the Keystone group "${reserved.name}" (id ${reserved.id}) begins with "${RESERVED_PREFIX}", which Kubernetes reserves for its own groups`
    logger.warn({ userId: info.user.id, username, group: reserved.name, groupId: reserved.id }, `TokenReview refused: ${reason}`)
    return { ok: false, reason }
  }
  const kept = groups.filter(g => !hasProjectIdForm(g.name) || g.name === g.id)
  if (kept.length !== groups.length) {
    for (const g of groups) {
      if (kept.includes(g)) continue
      logger.warn({ userId: info.user.id, username, group: g.name, groupId: g.id },
        'Keystone group named like a project id (32 hex digits) left out of the groups: it could pose as that project\'s group')
    }
  }
  return { ok: true, groups: kept }
}
