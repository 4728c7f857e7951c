import { isUnrestricted, rulesForService, type AccessRule } from '../identity.js'

// Which tokens of application credentials with access rules may log in to Kubernetes, and with
// what. Keystone validates such a token only for a service that says it enforces access rules
// (header OpenStack-Identity-Access-Rules, sent only with --access-rules-service-type); Go never
// sends it, so Keystone answers 404 and Go refuses them.

export interface AccessRulesOptions {
  /** --access-rules-service-type: the service type Kubernetes is registered under in Keystone. */
  serviceType?: string | undefined
  /** --access-rules-enforce: restricted credentials log in, and the authorizer enforces their rules. */
  enforce?: boolean
}

export type AccessRulesOutcome =
  | { ok: true, rules?: undefined }
  /** Restricted: the identity carries these `METHOD path` rules for the authorizer. */
  | { ok: true, rules: string[] }
  | { ok: false, reason: string }

export function accessRulesGate (rules: readonly AccessRule[] | undefined, opts: AccessRulesOptions): AccessRulesOutcome {
  if (rules === undefined) return { ok: true }
  const type = opts.serviceType
  if (type === undefined || type === '') {
    // Keystone should not have answered with rules then; never accept them unchecked.
    return { ok: false, reason: 'the token\'s application credential has access rules and --access-rules-service-type is not set' }
  }
  const mine = rulesForService(rules, type)
  if (mine.length === 0) return { ok: false, reason: `the token's application credential has access rules, none for service type ${JSON.stringify(type)}` }
  if (isUnrestricted(mine)) return { ok: true }
  if (opts.enforce !== true) {
    return { ok: false, reason: `the token's application credential is restricted by access rules for ${JSON.stringify(type)} (${mine.length} rule(s)); such credentials are accepted only with --access-rules-enforce` }
  }
  return { ok: true, rules: mine }
}
