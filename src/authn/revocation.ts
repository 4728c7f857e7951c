import type { RevocationEvent, TokenInfo } from '../keystone/types.js'

// Whether a Keystone revocation event revokes a token, as Keystone itself decides it when it
// validates one: its SQL back end picks the events issued at or after the token with a matching
// (or unset) user, project and audit id (keystone/revoke/backends/sql.py, _list_token_events),
// then keystone/models/revoke_model.py `matches` compares every other field the event sets.
// Unlike Keystone, a token whose issued_at we do not know counts as issued before every event:
// the cost of a wrong "revoked" is one more validation, of a wrong "valid" an open door.

/** The token as Keystone's build_token_values flattens it. */
export interface TokenValues {
  userId: string
  identityDomainId: string | undefined
  projectId: string | undefined
  /** The project's domain, or the domain of a domain-scoped token. */
  assignmentDomainId: string | undefined
  roleIds: readonly string[]
  auditId: string | undefined
  /** Keystone's parent_audit_id: the second audit id, for a token made from another. */
  auditChainId: string | undefined
  trustId: string | undefined
  trustorId: string | undefined
  trusteeId: string | undefined
  /** Seconds: Keystone trims expiry to the second. */
  expiresAt: number
  issuedAt: number | undefined
}

const orUndefined = (s: string | undefined): string | undefined => s === undefined || s === '' ? undefined : s

export function tokenValues (info: TokenInfo): TokenValues {
  const scope = info.scope
  return {
    userId: info.user.id,
    identityDomainId: orUndefined(info.userDomain.id),
    projectId: scope.kind === 'project' ? scope.project.id : undefined,
    assignmentDomainId: scope.kind === 'project' || scope.kind === 'domain' ? orUndefined(scope.domain.id) : undefined,
    roleIds: info.roles.map(r => r.id),
    auditId: info.auditIds?.[0],
    auditChainId: info.auditIds?.[1],
    trustId: info.trust?.id,
    trustorId: info.trust?.trustorId,
    trusteeId: info.trust?.trusteeId,
    expiresAt: Math.floor(info.expiresAt.getTime() / 1000),
    issuedAt: info.issuedAt?.getTime()
  }
}

/**
 * `slackMs` widens issued_before: Keystone cuts an event's time to the second while a token's
 * issued_at may carry a fraction, so a token issued in the same second as the event escapes the
 * event (Keystone then refuses it by other means: the user or project is gone). Dropping such a
 * token from the cache costs one validation; refusing a new one would refuse a valid login, so
 * eviction uses 1000 ms and the check of a fresh validation uses none.
 */
export function revokes (e: RevocationEvent, t: TokenValues, slackMs = 0): boolean {
  // The SQL back end's choice of events for the token.
  if (t.issuedAt !== undefined && e.issuedBefore + slackMs < t.issuedAt) return false
  if (e.userId !== undefined && e.userId !== t.userId && e.userId !== t.trustorId && e.userId !== t.trusteeId) return false
  if (e.projectId !== undefined && e.projectId !== t.projectId) return false
  if (e.auditId !== undefined && e.auditId !== t.auditId) return false
  // revoke_model.matches: every field the event sets must match.
  if (e.domainId !== undefined && e.domainId !== t.identityDomainId && e.domainId !== t.assignmentDomainId) return false
  if (e.domainScopeId !== undefined && e.domainScopeId !== t.assignmentDomainId) return false
  if (e.expiresAt !== undefined && e.expiresAt !== t.expiresAt) return false
  if (e.trustId !== undefined && e.trustId !== t.trustId) return false
  // No token of ours is OAuth1-scoped: an event for a consumer revokes none of them.
  if (e.consumerId !== undefined) return false
  if (e.auditChainId !== undefined && e.auditChainId !== t.auditChainId) return false
  if (e.roleId !== undefined && !t.roleIds.includes(e.roleId)) return false
  return true
}
