// The kube-apiserver side of the webhook, as pure functions: the authentication and authorization
// webhook kubeconfigs, the structured AuthorizationConfiguration, and the flags that load them.
//
// What kube-apiserver supports (checked against the Kubernetes API types and KEPs 3221/3331):
// - Authorization: AuthorizationConfiguration (--authorization-config) has Webhook authorizers
//   with timeout, failurePolicy, TTLs and CEL matchConditions: apiserver.config.k8s.io/v1beta1
//   from 1.30, v1 from 1.32. cacheAuthorizedRequests/cacheUnauthorizedRequests came later (1.34)
//   and kube-apiserver decodes this file strictly, so they are written only for 1.34 and later.
//   --authorization-config cannot be combined with --authorization-mode or
//   --authorization-webhook-* flags.
// - Authentication: AuthenticationConfiguration (--authentication-config) configures JWT
//   authenticators (and, from 1.32, anonymous access). It has no token-webhook authenticator, so
//   a TokenReview webhook is still configured with the --authentication-token-webhook-* flags,
//   which may be used together with --authentication-config.

export const DEFAULT_WEBHOOK_URL = 'https://127.0.0.1:8443/webhook'
export const DEFAULT_CONFIG_DIR = '/etc/kubernetes/keystone-auth'

export type AuthzMode = 'webhook' | 'none'
export type FailurePolicy = 'NoOpinion' | 'Deny'

export interface ApiserverConfigInput {
  /** https URL of the webhook, as kube-apiserver reaches it. */
  webhookUrl: string
  /** PEM of the CA bundle that signed the webhook's serving certificate. */
  caPem: string
  /** PEM client certificate and key kube-apiserver presents to the webhook (optional). */
  clientCertPem?: string | undefined
  clientKeyPem?: string | undefined
  /**
   * false: the client pair is written as files of its own (CLIENT_CERT_FILE, CLIENT_KEY_FILE) that
   * the kubeconfigs name by path under configDir; true (default): embedded as -data.
   */
  embedClientCert?: boolean | undefined
  /** Absolute directory where the files will be on the control-plane nodes. */
  configDir: string
  /**
   * --access-rules-enforce: a first webhook authorizer, before Node and RBAC, asked only about
   * users whose application credential has access rules; its explicit denies cannot be overridden.
   */
  accessRulesEnforce?: boolean | undefined
  /** Target kube-apiserver minor version, e.g. { major: 1, minor: 32 }. */
  kubernetesVersion: { major: number, minor: number }
  authz: AuthzMode
  /** Durations in milliseconds. */
  authnCacheTtlMs: number
  authzAuthorizedTtlMs: number
  authzUnauthorizedTtlMs: number
  authzTimeoutMs: number
  failurePolicy: FailurePolicy
}

export interface GeneratedFile {
  /** File name inside configDir (and inside the output directory). */
  name: string
  content: string
  /** File mode: kubeconfigs with a client key are 0600. */
  mode: number
}

export interface ApiserverConfigOutput {
  files: GeneratedFile[]
  /** Flags to add to kube-apiserver, in order. */
  flags: string[]
  /** Flags to remove from kube-apiserver, if present (they conflict with the ones above). */
  removeFlags: string[]
  /** Plain-language notes for the operator. */
  notes: string[]
  /** 'v1' | 'v1beta1' when an AuthorizationConfiguration is written, else undefined. */
  authorizationConfigVersion?: string
}

export const AUTHN_KUBECONFIG = 'authn-webhook.kubeconfig'
export const AUTHZ_KUBECONFIG = 'authz-webhook.kubeconfig'
export const AUTHZ_CONFIG = 'authorization-config.yaml'
/** The client pair's file names when it is not embedded (--embed-client-cert=false). */
export const CLIENT_CERT_FILE = 'apiserver-webhook-client.crt'
export const CLIENT_KEY_FILE = 'apiserver-webhook-client.key'

/**
 * CEL conditions (all must be true) for a SubjectAccessReview to reach the webhook: service
 * accounts, nodes and every other `system:` identity (controllers, scheduler, anonymous) are
 * decided by Node and RBAC alone, so a webhook outage or a policy typo cannot lock them out, and
 * they add no load to the webhook or to Keystone.
 */
/** Only users that the TokenReview answered with access rules reach the first authorizer. */
export const ACCESS_RULES_MATCH_CONDITIONS: ReadonlyArray<{ expression: string }> = [
  { expression: "has(request.extra) && 'alpha.kubernetes.io/identity/access-rules' in request.extra" }
]

export const MATCH_CONDITIONS: ReadonlyArray<{ expression: string }> = [
  { expression: "!request.user.startsWith('system:')" },
  { expression: "!has(request.groups) || !('system:serviceaccounts' in request.groups)" },
  { expression: "!has(request.groups) || !('system:nodes' in request.groups)" },
  { expression: "!has(request.groups) || !('system:masters' in request.groups)" }
]

/** Go duration text as kube-apiserver prints it for these flags: 1h2m3s, 30s, 500ms. */
export function formatDuration (ms: number): string {
  if (ms === 0) return '0s'
  if (ms % 1000 !== 0) return `${ms}ms`
  let s = ms / 1000
  const h = Math.floor(s / 3600); s -= h * 3600
  const m = Math.floor(s / 60); s -= m * 60
  return `${h > 0 ? `${h}h` : ''}${m > 0 ? `${m}m` : ''}${s > 0 ? `${s}s` : ''}`
}

const pemText = (pem: string): string => pem.endsWith('\n') ? pem : `${pem}\n`
const b64 = (pem: string): string => Buffer.from(pemText(pem), 'utf8').toString('base64')

function yamlString (s: string): string {
  return JSON.stringify(s)
}

/**
 * A webhook kubeconfig: one cluster (URL + CA data, never insecure-skip-tls-verify), one user
 * (client certificate data, or no credentials), one current context, as kube-apiserver reads it.
 */
export function webhookKubeconfig (name: string, input: ApiserverConfigInput): string {
  const lines = [
    '# Written by `k8s-keystone-auth gen apiserver-config`. kube-apiserver reads the current context.',
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${name}`,
    '  cluster:',
    `    server: ${yamlString(input.webhookUrl)}`,
    `    certificate-authority-data: ${b64(input.caPem)}`,
    'users:',
    '- name: kube-apiserver'
  ]
  if (input.clientCertPem !== undefined && input.clientKeyPem !== undefined && input.embedClientCert === false) {
    lines.push('  user:',
      `    client-certificate: ${yamlString(`${input.configDir}/${CLIENT_CERT_FILE}`)}`,
      `    client-key: ${yamlString(`${input.configDir}/${CLIENT_KEY_FILE}`)}`)
  } else if (input.clientCertPem !== undefined && input.clientKeyPem !== undefined) {
    lines.push('  user:',
      `    client-certificate-data: ${b64(input.clientCertPem)}`,
      `    client-key-data: ${b64(input.clientKeyPem)}`)
  } else {
    lines.push('  user: {}')
  }
  lines.push('contexts:',
    `- name: ${name}`,
    '  context:',
    `    cluster: ${name}`,
    '    user: kube-apiserver',
    `current-context: ${name}`,
    'preferences: {}')
  return lines.join('\n') + '\n'
}

export function authorizationConfigVersion (v: { major: number, minor: number }): 'v1' | 'v1beta1' | undefined {
  if (v.major !== 1) return 'v1'
  if (v.minor >= 32) return 'v1'
  if (v.minor >= 30) return 'v1beta1'
  return undefined
}

/** One Webhook authorizer entry: both of ours call the same webhook, with their own conditions. */
function webhookAuthorizer (input: ApiserverConfigInput, name: string, failurePolicy: string, conditions: ReadonlyArray<{ expression: string }>): string[] {
  const v = input.kubernetesVersion
  const lines = [
    '- type: Webhook',
    `  name: ${name}`,
    '  webhook:',
    `    timeout: ${formatDuration(input.authzTimeoutMs)}`,
    '    subjectAccessReviewVersion: v1',
    '    matchConditionSubjectAccessReviewVersion: v1',
    `    failurePolicy: ${failurePolicy}`,
    `    authorizedTTL: ${formatDuration(input.authzAuthorizedTtlMs)}`,
    `    unauthorizedTTL: ${formatDuration(input.authzUnauthorizedTtlMs)}`
  ]
  if (v.major > 1 || v.minor >= 34) {
    lines.push(`    cacheAuthorizedRequests: ${input.authzAuthorizedTtlMs > 0}`,
      `    cacheUnauthorizedRequests: ${input.authzUnauthorizedTtlMs > 0}`)
  }
  lines.push('    connectionInfo:',
    '      type: KubeConfigFile',
    `      kubeConfigFile: ${yamlString(`${input.configDir}/${AUTHZ_KUBECONFIG}`)}`,
    '    matchConditions:',
    ...conditions.map(c => `    - expression: ${yamlString(c.expression)}`))
  return lines
}

export function authorizationConfiguration (input: ApiserverConfigInput, apiVersion: 'v1' | 'v1beta1'): string {
  const lines = [
    '# Written by `k8s-keystone-auth gen apiserver-config`; load with kube-apiserver --authorization-config.',
    '# Order matters: Node and RBAC answer first; the Keystone webhook is asked only when they have',
    '# no opinion, and (matchConditions) never for service accounts, nodes or other system: users.',
    `apiVersion: apiserver.config.k8s.io/${apiVersion}`,
    'kind: AuthorizationConfiguration',
    'authorizers:'
  ]
  if (input.accessRulesEnforce === true) {
    // Before Node and RBAC, so that an explicit deny for what a restricted credential's access
    // rules do not allow is final; Deny on failure, so an outage does not lift the restriction.
    lines.push('# First: users whose application credential has access rules (--access-rules-enforce). The',
      '# webhook denies what their rules do not allow; what they allow goes on to Node, RBAC, keystone.',
      ...webhookAuthorizer(input, 'keystone-access-rules', 'Deny', ACCESS_RULES_MATCH_CONDITIONS))
  }
  lines.push('- type: Node',
    '  name: node',
    '- type: RBAC',
    '  name: rbac',
    ...webhookAuthorizer(input, 'keystone', input.failurePolicy, MATCH_CONDITIONS))
  return lines.join('\n') + '\n'
}

export function generateApiserverConfig (input: ApiserverConfigInput): ApiserverConfigOutput {
  const dir = input.configDir
  const withClient = input.clientCertPem !== undefined && input.clientKeyPem !== undefined
  const keyAsFile = withClient && input.embedClientCert === false
  // A kubeconfig holding the client key is 0600; one naming the key's file need not be.
  const withKey = withClient && !keyAsFile
  const files: GeneratedFile[] = [
    { name: AUTHN_KUBECONFIG, content: webhookKubeconfig('keystone-authn', input), mode: withKey ? 0o600 : 0o644 }
  ]
  if (keyAsFile) {
    files.push({ name: CLIENT_CERT_FILE, content: pemText(input.clientCertPem as string), mode: 0o644 },
      { name: CLIENT_KEY_FILE, content: pemText(input.clientKeyPem as string), mode: 0o600 })
  }
  const flags = [
    `--authentication-token-webhook-config-file=${dir}/${AUTHN_KUBECONFIG}`,
    '--authentication-token-webhook-version=v1',
    `--authentication-token-webhook-cache-ttl=${formatDuration(input.authnCacheTtlMs)}`
  ]
  const removeFlags: string[] = []
  const notes: string[] = [
    'Authentication: kube-apiserver has no structured (AuthenticationConfiguration) form of a token webhook ' +
      '(that file configures JWT/OIDC authenticators and anonymous access only), so the TokenReview webhook uses ' +
      'the --authentication-token-webhook-* flags. They can be used together with --authentication-config.'
  ]
  let version: 'v1' | 'v1beta1' | undefined
  if (input.authz === 'webhook') {
    files.push({ name: AUTHZ_KUBECONFIG, content: webhookKubeconfig('keystone-authz', input), mode: withKey ? 0o600 : 0o644 })
    version = authorizationConfigVersion(input.kubernetesVersion)
    if (version !== undefined) {
      files.push({ name: AUTHZ_CONFIG, content: authorizationConfiguration(input, version), mode: 0o644 })
      flags.push(`--authorization-config=${dir}/${AUTHZ_CONFIG}`)
      removeFlags.push('--authorization-mode', '--authorization-webhook-config-file', '--authorization-webhook-version',
        '--authorization-webhook-cache-authorized-ttl', '--authorization-webhook-cache-unauthorized-ttl')
      notes.push(`Authorization: AuthorizationConfiguration apiserver.config.k8s.io/${version} with the chain Node, RBAC, ` +
        'Webhook; matchConditions keep service accounts, nodes and system: users away from the webhook.' +
        (version === 'v1beta1' ? ' On 1.30 and 1.31 the StructuredAuthorizationConfiguration feature gate is beta and on by default.' : ''))
    } else {
      flags.push('--authorization-mode=Node,RBAC,Webhook',
        `--authorization-webhook-config-file=${dir}/${AUTHZ_KUBECONFIG}`,
        '--authorization-webhook-version=v1',
        `--authorization-webhook-cache-authorized-ttl=${formatDuration(input.authzAuthorizedTtlMs)}`,
        `--authorization-webhook-cache-unauthorized-ttl=${formatDuration(input.authzUnauthorizedTtlMs)}`)
      removeFlags.push('--authorization-config')
      notes.push('Authorization: Kubernetes before 1.30 has no structured authorization config here, so the legacy ' +
        '--authorization-webhook-* flags are used; they have no matchConditions, timeout or failurePolicy: ' +
        'requests RBAC does not allow (service accounts included) reach the webhook.')
    }
  } else {
    notes.push('Authorization: authn-only. Keystone users are authorized by RBAC alone; bind their user names or ' +
      'groups (role-mappings in the sync config) to Roles/ClusterRoles. Keep --authorization-mode as it is (Node,RBAC).')
  }
  const host = new URL(input.webhookUrl).hostname.replace(/^\[|\]$/g, '')
  const isIp = /^[\d.]+$/.test(host) || host.includes(':')
  notes.push(`The webhook's serving certificate must be signed by this CA and list ${isIp ? 'IP' : 'DNS'}:${host} in its subjectAltName.`)
  if (withKey) notes.push('The kubeconfigs contain the client key: keep them root-only (mode 0600).')
  if (keyAsFile) {
    notes.push(`The kubeconfigs name the client pair by path: ${dir}/${CLIENT_CERT_FILE} and ${dir}/${CLIENT_KEY_FILE} ` +
      '(keep the key root-only, mode 0600). To renew it, replace these two files and restart kube-apiserver; the kubeconfigs stay.')
  }
  if (withClient) {
    notes.push('kube-apiserver presents the client certificate to the webhook: start the webhook with --client-ca-file naming the CA ' +
      'that signed it (deploy/ does), so that nothing else can have tokens checked.')
  } else {
    notes.push('No client certificate: kube-apiserver presents none, so a webhook started with --client-ca-file (as deploy/ does) ' +
      'refuses its reviews (401), and one started without answers anyone who reaches it. Give --client-cert-file and --client-key-file.')
  }
  notes.push(`Copy the files to ${dir}/ on every control-plane node and mount that directory read-only into the kube-apiserver pod.`)
  return { files, flags, removeFlags, notes, ...(version !== undefined ? { authorizationConfigVersion: version } : {}) }
}
