// The identity we answer to kube-apiserver (the `status.user` of a TokenReview) and that comes
// back in every SubjectAccessReview: authn writes it, authz reads it, so it lives below both.

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

// An application credential's access rules, as they travel in EXTRA_ACCESS_RULES.

export interface AccessRule {
  service: string
  method: string
  path: string
}

export const ACCESS_RULE_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const

/** The rules of one service type, as `METHOD path` strings (the form carried in the extras). */
export function rulesForService (rules: readonly AccessRule[], serviceType: string): string[] {
  return rules.filter(r => r.service === serviceType).map(r => `${r.method} ${r.path}`)
}

/** Every method on `/**`: a credential that Kubernetes-wise is not restricted at all. */
export function isUnrestricted (encoded: readonly string[]): boolean {
  return ACCESS_RULE_METHODS.every(m => encoded.includes(`${m} /**`))
}
