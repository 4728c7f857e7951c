// The namespace a Keystone project syncs to.
//
// Go rules: `%i` -> project id, `%n` -> project name, `%d` -> the user's domain id, replaced in that
// order; a result longer than 63 bytes is replaced by the project id alone.
//
// Our difference: the result is then made a valid DNS-1123 label (what kube-apiserver requires of
// a namespace name): lowercased, every character other than [a-z0-9-] replaced by `-` (one for
// one, so `My_Project` -> `my-project`), leading and trailing `-` removed, at most 63 characters.
// Go sends such names unchanged and kube-apiserver refuses them (422), so no namespace Go could
// create changes name: valid names pass through untouched.

const MAX = 63

export function namespaceName (format: string, projectId: string, projectName: string, domainId: string): string {
  let name = format.replaceAll('%i', projectId).replaceAll('%n', projectName).replaceAll('%d', domainId)
  if (Buffer.byteLength(name, 'utf8') > MAX) name = projectId
  let label = toDns1123Label(name)
  if (label === '') label = toDns1123Label(projectId)
  return label
}

/** Lowercase, map invalid characters to `-`, trim `-` at both ends, cap at 63. May return ''. */
export function toDns1123Label (s: string): string {
  const mapped = [...s.toLowerCase()].map(c => /[a-z0-9-]/.test(c) ? c : '-').join('')
  return mapped.slice(0, MAX).replace(/^-+/, '').replace(/-+$/, '')
}

export function isDns1123Label (s: string): boolean {
  return s.length <= MAX && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(s)
}
