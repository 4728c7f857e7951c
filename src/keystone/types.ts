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
