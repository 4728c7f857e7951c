// The records the rest of the program works with; Keystone's JSON stays in wire.ts.

export interface NamedRef {
  id: string
  name: string
}

export type TokenScope =
  | { kind: 'project', project: NamedRef, domain: NamedRef }
  | { kind: 'domain', domain: NamedRef }
  | { kind: 'system' }
  | { kind: 'unscoped' }

export interface TokenInfo {
  user: NamedRef
  userDomain: NamedRef
  scope: TokenScope
  roles: NamedRef[]
  methods: string[]
  expiresAt: Date
  /** Group ids carried by a federated token (`user.OS-FEDERATION.groups`); undefined otherwise. */
  federatedGroupIds?: string[]
  identityProvider?: string
  applicationCredentialId?: string
  /** The access rules of the token's application credential, when Keystone sent them. */
  accessRules?: Array<{ service: string, method: string, path: string }>
  /** `audit_ids`: the token's own audit id, then its chain's (the token it was made from), if any. */
  auditIds?: string[]
  issuedAt?: Date
  /** A trust-scoped token's trust (`OS-TRUST:trust`). */
  trust?: { id: string, trustorId: string, trusteeId: string }
}

/**
 * One Keystone revocation event (GET /v3/OS-REVOKE/events): every field set must match a token,
 * and the token must be issued at or before `issuedBefore`, for the token to be revoked.
 */
export interface RevocationEvent {
  userId?: string
  projectId?: string
  domainId?: string
  /** Only tokens scoped to this domain (Keystone's domain_scope_id). */
  domainScopeId?: string
  auditId?: string
  auditChainId?: string
  trustId?: string
  consumerId?: string
  accessTokenId?: string
  roleId?: string
  /** Seconds since the epoch: only the token expiring then. */
  expiresAt?: number
  issuedBefore: number
  /** As Keystone wrote it (ISO 8601 with microseconds): the next poll's `since`. */
  revokedAt: string
  revokedAtMs: number
}

export interface Group {
  id: string
  name: string
  domainId?: string
}

/** How to log in to Keystone (POST /v3/auth/tokens). */
export type AuthMethod =
  | { method: 'password', user: UserRef, password: string }
  | { method: 'application_credential', id: string, secret: string }
  | { method: 'application_credential', name: string, user: UserRef, secret: string }
  | { method: 'token', token: string }

export type UserRef =
  | { id: string }
  | { name: string, domain: DomainSel }

export type DomainSel = { id: string } | { name: string }

export type ScopeRequest =
  | { project: { id: string } }
  | { project: { name: string, domain: DomainSel } }
  | { domain: DomainSel }
  | { system: true }
  | { trust: { id: string } }
  | 'unscoped'

export interface IssuedToken {
  token: string
  expiresAt: Date
  info: TokenInfo
}
