// RoleBinding names for synced role assignments: `<user id>_<role>`, exactly as Go, so bindings
// made by the Go binary are recognised, kept and cleaned up after a switch.
//
// This name is valid: kube-apiserver validates RBAC object names only as path segments (no `/`,
// no `%`, not `.` or `..`; that is how `system:controller:...` names exist), not as DNS
// subdomains, so `_` and upper case are accepted. A Keystone role name containing `/` or `%`
// would be refused (422): such a character is replaced by `-` in the binding's name (the
// roleRef keeps the role name; a ClusterRole name has the same rule, so such a role cannot be
// bound anyway and its creation error is logged).

export const SEPARATOR = '_'

export function roleBindingName (userId: string, role: string): string {
  return `${userId}${SEPARATOR}${role}`.replace(/[/%]/g, '-')
}

/** True when a RoleBinding name belongs to this user's synced bindings (`<user id>_...`), as Go decides. */
export function isSyncedBindingOf (userId: string, name: string): boolean {
  return name.startsWith(userId + SEPARATOR)
}
