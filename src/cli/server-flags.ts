import { KLOG_IGNORED_FLAGS, type FlagSpec } from './flags.js'

// The webhook's flags: the Go binary's (same names, env vars and meaning) first, then ours.
export const SERVER_FLAGS: readonly FlagSpec[] = [
  { name: 'listen', type: 'string', default: '0.0.0.0:8443', help: '<address>:<port> to listen on' },
  { name: 'tls-cert-file', type: 'string', env: ['TLS_CERT_FILE'], help: 'File containing the x509 certificate for HTTPS (re-read when it changes)' },
  { name: 'tls-private-key-file', type: 'string', env: ['TLS_PRIVATE_KEY_FILE'], help: 'File containing the x509 private key matching --tls-cert-file' },
  { name: 'keystone-url', type: 'string', env: ['OS_AUTH_URL'], help: 'URL of the OpenStack Keystone v3 API' },
  { name: 'keystone-ca-file', type: 'string', env: ['KEYSTONE_CA_FILE'], help: 'File containing the CA bundle for Keystone\'s certificate' },
  { name: 'keystone-policy-file', type: 'string', env: ['KEYSTONE_POLICY_FILE'], help: 'Authorization policy file (JSON or YAML); takes precedence over the policy ConfigMap; re-read on change' },
  { name: 'policy-configmap-name', type: 'string', env: ['KEYSTONE_POLICY_CONFIGMAP_NAME'], help: 'ConfigMap holding the policy under the key "policies"' },
  { name: 'sync-config-file', type: 'string', env: ['KEYSTONE_SYNC_CONFIG_FILE'], help: 'Sync config file (YAML): role-mappings, namespaces and RoleBindings sync' },
  { name: 'sync-configmap-name', type: 'string', env: ['KEYSTONE_SYNC_CONFIGMAP_NAME'], help: 'ConfigMap holding the sync config under the key "syncConfig"' },
  { name: 'kubeconfig', type: 'string', env: ['KEYSTONE_KUBECONFIG_FILE'], help: 'Kubeconfig for the Kubernetes API (in-cluster config when unset)' },
  { name: 'user-agent', type: 'list', help: 'Extra product to add to the User-Agent sent to Keystone' },
  { name: 'configmap-namespace', type: 'string', env: ['KEYSTONE_CONFIGMAP_NAMESPACE'], default: 'kube-system', help: 'Namespace of the policy and sync ConfigMaps' },
  { name: 'client-ca-file', type: 'string', env: ['TLS_CLIENT_CA_FILE'], help: 'Require a client certificate signed by this CA on review routes (probes and /metrics exempt)' },
  { name: 'keystone-timeout', type: 'duration', env: ['KEYSTONE_TIMEOUT'], default: '10s', help: 'Timeout of each request to Keystone' },
  { name: 'token-cache-ttl', type: 'duration', env: ['KEYSTONE_TOKEN_CACHE_TTL'], default: '1m', help: 'How long a valid token\'s identity is cached (capped by the token\'s expiry); 0 turns the cache off' },
  { name: 'token-cache-negative-ttl', type: 'duration', env: ['KEYSTONE_TOKEN_CACHE_NEGATIVE_TTL'], default: '10s', help: 'How long a rejected token is remembered' },
  { name: 'token-cache-size', type: 'int', env: ['KEYSTONE_TOKEN_CACHE_SIZE'], default: '10000', help: 'Maximum entries of the token cache (valid tokens)' },
  { name: 'token-cache-negative-size', type: 'int', env: ['KEYSTONE_TOKEN_CACHE_NEGATIVE_SIZE'], default: '1000', help: 'Maximum entries of the rejected-token cache, kept apart so that junk tokens cannot evict valid ones (0 = off)' },
  { name: 'keystone-max-inflight', type: 'int', env: ['KEYSTONE_MAX_INFLIGHT'], default: '32', help: 'Token validations talking to Keystone at once; as many more wait, beyond that a review is answered HTTP 500 (kube-apiserver retries); 0 = no bound' },
  { name: 'groups-cache-ttl', type: 'duration', env: ['KEYSTONE_GROUPS_CACHE_TTL'], default: '1m', help: 'How long a user\'s Keystone groups are cached' },
  { name: 'authz-cache-size', type: 'int', env: ['KEYSTONE_AUTHZ_CACHE_SIZE'], default: '10000', help: 'Maximum entries of the authorization decision cache (0 = off)' },
  { name: 'authorization-subresource-compat', type: 'bool', env: ['KEYSTONE_AUTHZ_SUBRESOURCE_COMPAT'], default: 'false', help: 'Let a v2 policy key for a resource also grant its subresources, as the Go binary does' },
  { name: 'authorization-loose-namespaces', type: 'bool', env: ['KEYSTONE_AUTHZ_LOOSE_NAMESPACES'], default: 'false', help: 'Not Go: a v2 policy namespace other than * also matches requests without a namespace (cluster-scoped, all namespaces)' },
  { name: 'authorization-strict-namespaces', type: 'bool', env: ['KEYSTONE_AUTHZ_STRICT_NAMESPACES'], hidden: true, help: 'The default now (as Go); =false is --authorization-loose-namespaces' },
  { name: 'allowed-token-scopes', type: 'list', env: ['KEYSTONE_ALLOWED_TOKEN_SCOPES'], default: 'project', help: 'Token scopes accepted: project, domain, system, unscoped' },
  { name: 'username-format', type: 'string', env: ['KEYSTONE_USERNAME_FORMAT'], default: 'name', help: 'Kubernetes username: "name" (as Go) or "domain/name" (keeps same-named users of different domains apart)' },
  { name: 'service-credential-id', type: 'string', env: ['KEYSTONE_SERVICE_CREDENTIAL_ID'], help: 'Service mode: id of the webhook\'s own application credential' },
  { name: 'service-credential-secret-file', type: 'string', env: ['KEYSTONE_SERVICE_CREDENTIAL_SECRET_FILE'], help: 'Service mode: file holding that credential\'s secret (or env KEYSTONE_SERVICE_CREDENTIAL_SECRET)' },
  { name: 'max-request-bytes', type: 'int', env: ['KEYSTONE_MAX_REQUEST_BYTES'], default: '262144', help: 'Largest review body accepted' },
  { name: 'shutdown-grace', type: 'duration', default: '10s', help: 'On SIGTERM, how long in-flight reviews may take before connections are closed' },
  { name: 'workers', type: 'int', env: ['KEYSTONE_WORKERS'], default: '1', help: 'Worker processes sharing the port (node:cluster), each with its own caches; 0 = one per CPU core' },
  { name: 'log-level', type: 'string', env: ['LOG_LEVEL'], default: 'info', help: 'fatal, error, warn, info, debug, trace or silent' },
  // Go's klog verbosity (-v, --v), with --log-level at its default: --v>=4 means debug, --v>=6 trace.
  { name: 'v', type: 'int', hidden: true, help: 'klog verbosity (compatibility)' },
  // The other klog flags, accepted so existing manifests start; a warning says they do nothing.
  ...KLOG_IGNORED_FLAGS,
  { name: 'version', type: 'bool', help: 'Print the version and exit' },
  { name: 'help', type: 'bool', short: 'h', help: 'Show this help' }
]
