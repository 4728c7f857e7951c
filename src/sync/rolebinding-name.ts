// RoleBinding names for synced role assignments: `<user id>_<role>`, exactly as Go, so a binding
// the Go binary made for a role the user still holds is kept (not created twice) after a switch.
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

/**
 * True when a binding's name is exactly the one sync gives this user's binding of its roleRef.
 * Go (sync.go, syncRoleAssignmentsData) takes any name whose part before the first `_` is the user
 * id; we used to take any name starting with `<user id>_`. Both let the clean-up of user `john`
 * reach user `john_doe`'s bindings where ids contain `_` (LDAP and other identity backends choose
 * their ids). `<user id>_<roleRef name>` cannot name another user's binding of that role.
 */
export function isSyncedBindingOf (userId: string, name: string, roleRefName: string): boolean {
  return name === roleBindingName(userId, roleRefName)
}
