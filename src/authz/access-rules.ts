import { EXTRA_ACCESS_RULES } from '../identity.js'
import type { AccessRequest, Decision, NonResourceAttributes, ResourceAttributes } from './types.js'

// Keystone application-credential access rules, applied to Kubernetes requests.
//
// A credential may carry rules `{service, method, path}`; a service that tells Keystone it
// enforces them (header OpenStack-Identity-Access-Rules on validation) must then refuse every
// request no rule allows. keystonemiddleware does it per HTTP request (validate_allowed_request in
// keystonemiddleware/auth_token/__init__.py); kube-apiserver asks us per request through a
// SubjectAccessReview, so the request is rebuilt from its attributes:
//
//   get, list, watch -> GET      create -> POST      update -> PUT      patch -> PATCH
//   delete, deletecollection -> DELETE               any other verb -> no HTTP method (denied)
//
//   core group:   /api/v1/namespaces/NS/RESOURCE/NAME/SUB   (/api/v1/RESOURCE/... when cluster-scoped)
//   other groups: /apis/GROUP/VERSION/namespaces/NS/RESOURCE/NAME/SUB
//   namespaces:   /api/v1/namespaces/NAME/SUB
//   non-resource: the path as asked
//
// NAME and SUB are left out when the request has none (list, create, deletecollection).

const METHOD_OF_VERB: Readonly<Record<string, string>> = {
  get: 'GET',
  list: 'GET',
  watch: 'GET',
  create: 'POST',
  update: 'PUT',
  patch: 'PATCH',
  delete: 'DELETE',
  deletecollection: 'DELETE'
}

export interface HttpRequestShape {
  method: string
  path: string
}

/** The HTTP request behind a resource request, or undefined for verbs with no HTTP method. */
export function httpRequestOfResource (a: ResourceAttributes): HttpRequestShape | undefined {
  const method = METHOD_OF_VERB[a.verb]
  if (method === undefined) return undefined
  const version = a.version === '' || a.version === '*' ? 'v1' : a.version
  const parts: string[] = a.group === '' ? ['api', version] : ['apis', a.group, version]
  if (a.resource === 'namespaces' && (a.name === '' || a.name === a.namespace)) {
    // kube-apiserver sets namespace = name for the namespace object itself.
    parts.push('namespaces')
    if (a.name !== '') parts.push(a.name)
  } else {
    if (a.namespace !== '') parts.push('namespaces', a.namespace)
    parts.push(a.resource)
    if (a.name !== '') parts.push(a.name)
  }
  if (a.subresource !== '') parts.push(a.subresource)
  return { method, path: '/' + parts.join('/') }
}

export function httpRequestOfNonResource (a: NonResourceAttributes): HttpRequestShape | undefined {
  const method = METHOD_OF_VERB[a.verb] ?? a.verb.toUpperCase()
  // Non-resource verbs are the lower-cased HTTP method (get, post, put, ...), except head/options.
  return /^[A-Z]+$/.test(method) ? { method, path: a.path } : undefined
}

/**
 * A Keystone path pattern as keystonemiddleware reads it (_path_matches): `*` and `{name}` match
 * one path segment, `**` any number of characters, everything else itself.
 */
export function accessRulePathRegExp (pattern: string): RegExp {
  let re = ''
  for (const m of pattern.matchAll(/(\{[^}]*\})|(\*\*)|(\*)|([^{}*])/g)) {
    if (m[1] !== undefined || m[3] !== undefined) re += '[^/]+'
    else if (m[2] !== undefined) re += '.*'
    else re += (m[4] as string).replace(/[.+?^$()|[\]\\/-]/g, '\\$&')
  }
  return new RegExp(`^${re}$`)
}

export interface CompiledAccessRules {
  allows: (req: HttpRequestShape) => boolean
}

/** Compiles `METHOD path` strings; a malformed one allows nothing. */
export function compileAccessRules (encoded: readonly string[]): CompiledAccessRules {
  const rules = encoded.flatMap(text => {
    const space = text.indexOf(' ')
    if (space <= 0) return []
    return [{ method: text.slice(0, space), path: accessRulePathRegExp(text.slice(space + 1)) }]
  })
  return { allows: req => rules.some(r => r.method === req.method && r.path.test(req.path)) }
}

const compiledCache = new Map<string, CompiledAccessRules>()

/**
 * The access-rules verdict on a request, before any policy: undefined when the user's credential
 * has no access rules (the extra is absent), else an explicit deny unless a rule allows it.
 * Compiled rules are kept per rule set (a few credentials at a time; cleared past 1000).
 */
export function accessRulesVerdict (req: AccessRequest): Decision | undefined {
  if (!Object.hasOwn(req.extra, EXTRA_ACCESS_RULES)) return undefined
  const encoded = req.extra[EXTRA_ACCESS_RULES] ?? []
  const key = JSON.stringify(encoded)
  let compiled = compiledCache.get(key)
  if (compiled === undefined) {
    if (compiledCache.size >= 1000) compiledCache.clear()
    compiledCache.set(key, compiled = compileAccessRules(encoded))
  }
  const http = req.resource !== undefined
    ? httpRequestOfResource(req.resource)
    : req.nonResource !== undefined ? httpRequestOfNonResource(req.nonResource) : undefined
  if (http === undefined) {
    return { allowed: false, denied: true, reason: `denied by the access rules of the application credential: verb ${JSON.stringify(req.resource?.verb ?? req.nonResource?.verb ?? '')} has no HTTP method an access rule can allow` }
  }
  if (compiled.allows(http)) return undefined
  return { allowed: false, denied: true, reason: `denied by the access rules of the application credential: no rule allows ${http.method} ${http.path}` }
}
