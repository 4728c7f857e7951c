import { KLOG_IGNORED_FLAGS, type FlagSpec } from '../config/flags.js'

// The command line of client-keystone-auth. The first block is the Go plugin's (same names, same
// env vars); the rest are the standard OpenStack variables and this plugin's own settings.
// Kept free of imports with side effects: it is loaded on every kubectl run.

export const CREDENTIAL_FLAGS: FlagSpec[] = [
  { name: 'keystone-url', type: 'string', env: ['OS_AUTH_URL'], help: 'URL of the OpenStack Keystone API' },
  { name: 'domain-name', type: 'string', env: ['OS_DOMAIN_NAME'], help: 'Keystone domain name of the user and of the project (unless set apart)' },
  { name: 'user-name', type: 'string', env: ['OS_USERNAME'], help: 'User name' },
  { name: 'project-name', type: 'string', env: ['OS_PROJECT_NAME', 'OS_TENANT_NAME'], help: 'Keystone project name' },
  { name: 'password', type: 'string', env: ['OS_PASSWORD'], help: 'Password' },
  { name: 'cert', type: 'string', env: ['OS_CERT'], help: 'Client certificate bundle file' },
  { name: 'key', type: 'string', env: ['OS_KEY'], help: 'Client certificate key file' },
  { name: 'cacert', type: 'string', env: ['OS_CACERT'], help: 'Certificate authority file' },
  { name: 'application-credential-id', type: 'string', env: ['OS_APPLICATION_CREDENTIAL_ID'], help: 'Application credential ID' },
  { name: 'application-credential-name', type: 'string', env: ['OS_APPLICATION_CREDENTIAL_NAME'], help: 'Application credential name' },
  { name: 'application-credential-secret', type: 'string', env: ['OS_APPLICATION_CREDENTIAL_SECRET'], help: 'Application credential secret' },
  { name: 'user-id', type: 'string', env: ['OS_USER_ID'], help: 'User ID (instead of user name and domain)' },
  { name: 'user-domain-name', type: 'string', env: ['OS_USER_DOMAIN_NAME'], help: 'Domain name of the user' },
  { name: 'user-domain-id', type: 'string', env: ['OS_USER_DOMAIN_ID'], help: 'Domain ID of the user' },
  { name: 'project-id', type: 'string', env: ['OS_PROJECT_ID', 'OS_TENANT_ID'], help: 'Keystone project ID' },
  { name: 'project-domain-name', type: 'string', env: ['OS_PROJECT_DOMAIN_NAME'], help: 'Domain name of the project' },
  { name: 'project-domain-id', type: 'string', env: ['OS_PROJECT_DOMAIN_ID'], help: 'Domain ID of the project' },
  { name: 'domain-id', type: 'string', env: ['OS_DOMAIN_ID'], help: 'Keystone domain ID of the user and of the project (unless set apart); without a project, the domain the token is scoped to' },
  { name: 'default-domain-id', type: 'string', env: ['OS_DEFAULT_DOMAIN_ID', 'OS_DEFAULT_DOMAIN'], help: 'Domain ID of the user and of the project when no other domain setting names them' },
  { name: 'default-domain-name', type: 'string', env: ['OS_DEFAULT_DOMAIN_NAME'], help: 'Domain name of the user and of the project when no other domain setting names them' },
  { name: 'system-scope', type: 'string', env: ['OS_SYSTEM_SCOPE'], help: 'Without a project: scope the token to the system (all); any value but empty asks for it' },
  { name: 'trust-id', type: 'string', env: ['OS_TRUST_ID'], help: 'Scope the token to this Keystone trust (the user logging in is its trustee)' },
  { name: 'token', type: 'string', env: ['OS_AUTH_TOKEN', 'OS_TOKEN'], help: 'An existing Keystone token, exchanged for a scoped one' },
  { name: 'auth-type', type: 'string', env: ['OS_AUTH_TYPE'], help: 'v3websso: log in through Keystone WebSSO in a browser (federated users); other values: the login follows the settings given' },
  { name: 'identity-provider', type: 'string', env: ['OS_IDENTITY_PROVIDER'], help: 'WebSSO: the Keystone identity provider (optional: Keystone may find it from the protocol)' },
  { name: 'protocol', type: 'string', env: ['OS_PROTOCOL'], help: 'WebSSO: the federation protocol, e.g. openid, saml2, mapped' },
  { name: 'websso-ports', type: 'string', env: ['CLIENT_KEYSTONE_AUTH_WEBSSO_PORTS'], default: '8250-8259', help: 'WebSSO: loopback ports for the callback http://127.0.0.1:<port>/callback, each listed in Keystone\'s [federation] trusted_dashboard; the first free one is used' },
  { name: 'websso-timeout', type: 'duration', env: ['CLIENT_KEYSTONE_AUTH_WEBSSO_TIMEOUT'], default: '5m', help: 'WebSSO: how long to wait for the browser login' },
  { name: 'browser', type: 'string', env: ['CLIENT_KEYSTONE_AUTH_BROWSER'], help: 'WebSSO: command that opens the login URL (given as its last argument); default xdg-open, open or start; none = only print the URL' },
  { name: 'os-cloud', type: 'string', env: ['OS_CLOUD'], help: 'Cloud entry of clouds.yaml (./, ~/.config/openstack/, /etc/openstack/)' },
  { name: 'token-cache', type: 'string', env: ['CLIENT_KEYSTONE_AUTH_TOKEN_CACHE'], default: 'disk', help: 'Where to keep tokens between runs: disk, keyring or none' },
  { name: 'no-cache', type: 'bool', help: 'Neither read nor write the token cache (same as --token-cache=none)' },
  { name: 'cache-margin', type: 'duration', env: ['CLIENT_KEYSTONE_AUTH_CACHE_MARGIN'], default: '5m', help: 'Log in again when a cached token expires within this time' },
  { name: 'revalidate-after', type: 'duration', env: ['CLIENT_KEYSTONE_AUTH_REVALIDATE_AFTER'], default: '1m', help: 'Check a cached token with Keystone (a cheap GET) before use when it was last checked longer ago than this; 0 = always' },
  { name: 'timeout', type: 'duration', env: ['CLIENT_KEYSTONE_AUTH_TIMEOUT'], default: '30s', help: 'Timeout of each Keystone request' }
]

export const COMMON_FLAGS: FlagSpec[] = [
  { name: 'version', type: 'bool', help: 'Show the version and exit' },
  { name: 'help', type: 'bool', short: 'h', help: 'Show this help' },
  // klog's verbosity flag of the Go binary (kept, so that old kubeconfigs keep working): 1 or more
  // says on stderr which configuration files the settings came from.
  { name: 'v', type: 'int', env: ['CLIENT_KEYSTONE_AUTH_VERBOSITY'], help: 'Verbosity: 1 or more prints on stderr which clouds.yaml/secure.yaml files were read' },
  // The rest of klog's flags the Go binary shows in --help (component-base logs: --vmodule,
  // --log-flush-frequency) and older klog ones: accepted and ignored, for Go users' exec args.
  ...KLOG_IGNORED_FLAGS
]

export const LOGIN_FLAGS: FlagSpec[] = [
  { name: 'switch', type: 'bool', help: 'WebSSO: accept a login as another user (or identity provider) than the last login of this Keystone, identity provider and protocol' }
]

export const LOGOUT_FLAGS: FlagSpec[] = [
  { name: 'all', type: 'bool', help: 'Forget every cached token, not only the one for these settings' }
]

export const KUBECONFIG_FLAGS: FlagSpec[] = [
  { name: 'server', type: 'string', help: 'URL of the cluster\'s API server (required)' },
  { name: 'certificate-authority', type: 'string', help: 'PEM file of the CA of the API server (embedded in the kubeconfig)' },
  { name: 'insecure-skip-tls-verify', type: 'bool', help: 'Do not check the API server\'s certificate (testing only)' },
  { name: 'cluster-name', type: 'string', default: 'openstack', help: 'Name of the cluster entry' },
  { name: 'kube-user', type: 'string', help: 'Name of the user entry (default <user>@<cluster-name>)' },
  { name: 'context-name', type: 'string', help: 'Name of the context (default <kube-user>)' },
  { name: 'namespace', type: 'string', help: 'Default namespace of the context' },
  { name: 'kubeconfig', type: 'string', env: ['KUBECONFIG'], help: 'Kubeconfig file to write or merge into (default ~/.kube/config)' },
  { name: 'set-current-context', type: 'bool', default: 'true', help: 'Make the new context the current one' },
  { name: 'exec-command', type: 'string', default: 'client-keystone-auth', help: 'Command that kubectl runs as the credential plugin' },
  { name: 'interactive-mode', type: 'string', help: 'kubectl interactiveMode: Never, IfAvailable or Always (default IfAvailable with a password, Never with an application credential)' },
  { name: 'create-application-credential', type: 'bool', help: 'Log in and create a Keystone application credential for kubectl' },
  { name: 'new-credential-name', type: 'string', help: 'Name of the created application credential (default kubectl-<cluster-name>-<date>)' },
  { name: 'new-credential-expires', type: 'string', help: 'Expiry of the created credential: a duration (720h) or an RFC 3339 date; none by default' },
  { name: 'new-credential-role', type: 'list', help: 'Role name the created credential carries (default: all of the user\'s roles on the project)' },
  { name: 'dry-run', type: 'bool', help: 'Print the kubeconfig YAML instead of writing it' },
  { name: 'show-secrets', type: 'bool', help: 'With --dry-run, print the application credential secret instead of a placeholder' }
]
