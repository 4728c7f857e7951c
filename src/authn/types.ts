// The identity we answer to kube-apiserver: the `status.user` of a TokenReview.

export const EXTRA_ROLES = 'alpha.kubernetes.io/identity/roles'
export const EXTRA_PROJECT_ID = 'alpha.kubernetes.io/identity/project/id'
export const EXTRA_PROJECT_NAME = 'alpha.kubernetes.io/identity/project/name'
export const EXTRA_USER_DOMAIN_ID = 'alpha.kubernetes.io/identity/user/domain/id'
export const EXTRA_USER_DOMAIN_NAME = 'alpha.kubernetes.io/identity/user/domain/name'
/**
 * Ours, only with --access-rules-enforce: the access rules of the token's application credential
 * for --access-rules-service-type, as `METHOD path`; the authorizer denies what none allows.
 */
export const EXTRA_ACCESS_RULES = 'alpha.kubernetes.io/identity/access-rules'
// Ours, only for the opt-in non-project scopes (the Go binary rejects such tokens).
export const EXTRA_SCOPE = 'alpha.kubernetes.io/identity/scope'
export const EXTRA_DOMAIN_ID = 'alpha.kubernetes.io/identity/domain/id'
export const EXTRA_DOMAIN_NAME = 'alpha.kubernetes.io/identity/domain/name'

export interface UserInfo {
  username: string
  uid: string
  groups: string[]
  extra: Record<string, string[]>
}
