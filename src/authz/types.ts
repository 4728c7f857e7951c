// The records the authorization engine works on. The Kubernetes wire format (SubjectAccessReview
// v1/v1beta1) is translated into these at the edge, in src/server/http/subject-access-review.ts.

/** One question kube-apiserver asks: may this user do this? Exactly one of resource/nonResource. */
export interface AccessRequest {
  user: string
  uid?: string
  groups: string[]
  /** Built with a null prototype by the parser; read with Object.hasOwn, never by plain lookup. */
  extra: Record<string, string[]>
  resource?: ResourceAttributes
  nonResource?: NonResourceAttributes
}

export interface ResourceAttributes {
  namespace: string
  verb: string
  /** The API group ("" is the core group). */
  group: string
  version: string
  resource: string
  subresource: string
  name: string
}

export interface NonResourceAttributes {
  path: string
  verb: string
}

export interface Decision {
  allowed: boolean
  /**
   * An explicit "no" (status.denied): later authorizers are not asked. Only for requests that
   * the access rules of the user's application credential do not allow.
   */
  denied?: true
  /** Why, in words an operator can act on; goes to `status.reason`. */
  reason: string
}

/** A problem found in a policy file, with where it is when that is known. */
export interface PolicyIssue {
  severity: 'error' | 'warning'
  /** 0-based index in the policy list (as `jq '.[N]'`), absent for file-level problems. */
  entry?: number
  /** Dotted field path inside the entry, e.g. `resource.verbs` or `resource_permissions["ns/pods"]`. */
  field?: string
  message: string
  /** 1-based position in the source text, when the parser could find it. */
  line?: number
  col?: number
}
