import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { getBool, getList, getString, parseDuration, type ParsedFlags } from '../config/flags.js'
import { ConfigError, ERR, KsaError, UsageError, errorMessage } from '../errors.js'
import { completeSettings } from './get-token.js'
import { liteOptions, login } from './login.js'
import { methodOf, normalizeAuthUrl, scopeOf, type Settings } from './settings.js'

// `client-keystone-auth kubeconfig`: the "download kubeconfig" button as a command. It writes (or
// merges) a cluster, a user whose exec stanza runs this plugin, and a context. With
// --create-application-credential it first creates a Keystone application credential for the
// user, so that kubectl never needs the password.

const REDACTED = '<secret hidden: add --show-secrets to print it>'

export interface ExecEnv { name: string, value: string }

export interface KubeconfigPlan {
  clusterName: string
  userName: string
  contextName: string
  cluster: Record<string, unknown>
  exec: Record<string, unknown>
  namespace?: string
  /** Names of env entries holding secrets, hidden from printed output. */
  secretEnv: string[]
}

export function kubeconfigPath (p: ParsedFlags, env: NodeJS.ProcessEnv): string {
  const fromFlag = getString(p, 'kubeconfig')
  const first = fromFlag?.split(':').find(x => x !== '')
  return first ?? join(env.HOME ?? homedir(), '.kube', 'config')
}

/** Expiry for a new application credential: a duration from now, or an RFC 3339 date. */
export function parseExpiry (text: string, now = Date.now()): string {
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const d = new Date(text)
    if (Number.isNaN(d.getTime())) throw new UsageError(`invalid value ${JSON.stringify(text)} for --new-credential-expires: not a date`)
    return d.toISOString()
  }
  let ms: number
  try {
    ms = parseDuration(text)
  } catch (err) {
    throw new UsageError(`invalid value ${JSON.stringify(text)} for --new-credential-expires: ${errorMessage(err)} or an RFC 3339 date`)
  }
  if (ms <= 0) throw new UsageError('--new-credential-expires must be in the future')
  return new Date(now + ms).toISOString()
}

function envFromSettings (s: Settings, authUrl: string, p?: ParsedFlags): ExecEnv[] {
  const out: ExecEnv[] = [{ name: 'OS_AUTH_URL', value: authUrl }]
  const add = (name: string, v: string | undefined): void => { if (v !== undefined && v !== '') out.push({ name, value: v }) }
  const method = methodOf(s)
  if (method === 'websso') {
    // No secret at all: the plugin opens the browser when it needs a new token.
    add('OS_AUTH_TYPE', 'v3websso')
    add('OS_IDENTITY_PROVIDER', s.identityProvider?.value)
    add('OS_PROTOCOL', s.protocol?.value)
    if (s.projectId !== undefined) add('OS_PROJECT_ID', s.projectId.value)
    else add('OS_PROJECT_NAME', s.projectName?.value)
    if (s.projectId === undefined && s.projectName !== undefined && s.projectDomain !== undefined) {
      if ('id' in s.projectDomain.sel) add('OS_PROJECT_DOMAIN_ID', s.projectDomain.sel.id)
      else add('OS_PROJECT_DOMAIN_NAME', s.projectDomain.sel.name)
    }
    if (p !== undefined && p.sources.get('websso-ports') !== undefined) add('CLIENT_KEYSTONE_AUTH_WEBSSO_PORTS', getString(p, 'websso-ports'))
    if (s.cacert !== undefined) add('OS_CACERT', s.cacert.value)
    if (s.cert !== undefined) add('OS_CERT', s.cert.value)
    if (s.key !== undefined) add('OS_KEY', s.key.value)
    return out
  }
  if (method === 'application_credential') {
    add('OS_APPLICATION_CREDENTIAL_ID', s.appCredId?.value)
    if (s.appCredId === undefined) {
      add('OS_APPLICATION_CREDENTIAL_NAME', s.appCredName?.value)
      add('OS_USER_ID', s.userId?.value)
      if (s.userId === undefined) add('OS_USERNAME', s.userName?.value)
    }
  } else {
    if (s.userId !== undefined) add('OS_USER_ID', s.userId.value)
    else add('OS_USERNAME', s.userName?.value)
    const scope = scopeOf(s)
    if (scope === 'trust') add('OS_TRUST_ID', s.trustId?.value)
    else if (scope === 'system') add('OS_SYSTEM_SCOPE', 'all')
    else if (scope === 'domain' && s.domainScope !== undefined) {
      if ('id' in s.domainScope.sel) add('OS_DOMAIN_ID', s.domainScope.sel.id)
      else add('OS_DOMAIN_NAME', s.domainScope.sel.name)
    } else if (s.projectId !== undefined) add('OS_PROJECT_ID', s.projectId.value)
    else add('OS_PROJECT_NAME', s.projectName?.value)
  }
  const needUserDomain = s.userId === undefined && (method === 'password' || (method === 'application_credential' && s.appCredId === undefined))
  if (needUserDomain && s.userDomain !== undefined) {
    if ('id' in s.userDomain.sel) add('OS_USER_DOMAIN_ID', s.userDomain.sel.id)
    else add('OS_USER_DOMAIN_NAME', s.userDomain.sel.name)
  }
  if (method !== 'application_credential' && s.projectId === undefined && scopeOf(s) === 'project') {
    const d = s.projectDomain?.sel ?? s.userDomain?.sel
    if (d !== undefined) {
      if ('id' in d) add('OS_PROJECT_DOMAIN_ID', d.id)
      else add('OS_PROJECT_DOMAIN_NAME', d.name)
    }
  }
  if (s.cacert !== undefined) add('OS_CACERT', s.cacert.value)
  if (s.cert !== undefined) add('OS_CERT', s.cert.value)
  if (s.key !== undefined) add('OS_KEY', s.key.value)
  return out
}

interface CreatedCredential { id: string, name: string, secret: string, expiresAt: string | null, projectId: string }

async function createApplicationCredential (p: ParsedFlags, s: Settings, authUrl: string, clusterName: string, timeoutMs: number): Promise<CreatedCredential> {
  const issued = await login(s, authUrl, timeoutMs)
  const lite = await import('./keystone-lite.js')
  const o = await liteOptions(s, authUrl, timeoutMs)
  const day = new Date().toISOString().slice(0, 10)
  const name = getString(p, 'new-credential-name') ?? `kubectl-${clusterName}-${day}-${Math.random().toString(36).slice(2, 6)}`
  const body: Record<string, unknown> = { name, description: `kubectl access to ${clusterName} (client-keystone-auth kubeconfig)` }
  const expires = getString(p, 'new-credential-expires')
  if (expires !== undefined) body.expires_at = parseExpiry(expires)
  const roles = getList(p, 'new-credential-role')
  if (roles !== undefined && roles.length > 0) body.roles = roles.map(r => ({ name: r }))
  try {
    const res = await lite.call(o, 'POST', `/users/${encodeURIComponent(issued.userId)}/application_credentials`, { 'x-auth-token': issued.token }, { application_credential: body })
    const ac = (res.body as { application_credential?: { id?: unknown, name?: unknown, secret?: unknown, expires_at?: unknown, project_id?: unknown } } | undefined)?.application_credential
    if (res.status !== 201 || typeof ac?.id !== 'string' || typeof ac.secret !== 'string') {
      const msg = (res.body as { error?: { message?: string } } | undefined)?.error?.message ?? ''
      const hint = res.status === 403 ? ' (a token from a restricted application credential cannot create another; log in with a password)' : ''
      throw new KsaError(ERR.APP_CRED, `Keystone at ${authUrl} answered ${res.status} to creating application credential ${name}${msg !== '' ? `: ${msg}` : ''}${hint}`)
    }
    return {
      id: ac.id,
      name: typeof ac.name === 'string' ? ac.name : name,
      secret: ac.secret,
      expiresAt: typeof ac.expires_at === 'string' ? ac.expires_at : null,
      projectId: typeof ac.project_id === 'string' ? ac.project_id : ''
    }
  } catch (err) {
    if (err instanceof KsaError) throw err
    throw new KsaError(ERR.APP_CRED, errorMessage(err))
  }
}

export function kubeconfigDocument (plan: KubeconfigPlan, showSecrets: boolean): Record<string, unknown> {
  const exec = structuredClone(plan.exec)
  if (!showSecrets) {
    for (const e of exec.env as ExecEnv[]) if (plan.secretEnv.includes(e.name)) e.value = REDACTED
  }
  const context: Record<string, unknown> = { cluster: plan.clusterName, user: plan.userName }
  if (plan.namespace !== undefined) context.namespace = plan.namespace
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: plan.clusterName, cluster: plan.cluster }],
    users: [{ name: plan.userName, user: { exec } }],
    contexts: [{ name: plan.contextName, context }],
    'current-context': plan.contextName,
    preferences: {}
  }
}

function upsert (list: unknown, name: string, entry: Record<string, unknown>): Array<Record<string, unknown>> {
  const arr = Array.isArray(list) ? (list as Array<Record<string, unknown>>).filter(x => x?.name !== name) : []
  arr.push(entry)
  return arr
}

/** Merges the plan's entries into an existing kubeconfig document (entries of the same name are replaced). */
export function mergeKubeconfig (existing: Record<string, unknown>, plan: KubeconfigPlan, setCurrent: boolean): Record<string, unknown> {
  const add = kubeconfigDocument(plan, true)
  const out: Record<string, unknown> = { apiVersion: 'v1', kind: 'Config', preferences: {}, ...existing }
  out.clusters = upsert(existing.clusters, plan.clusterName, (add.clusters as Array<Record<string, unknown>>)[0] as Record<string, unknown>)
  out.users = upsert(existing.users, plan.userName, (add.users as Array<Record<string, unknown>>)[0] as Record<string, unknown>)
  out.contexts = upsert(existing.contexts, plan.contextName, (add.contexts as Array<Record<string, unknown>>)[0] as Record<string, unknown>)
  if (setCurrent || typeof existing['current-context'] !== 'string' || existing['current-context'] === '') out['current-context'] = plan.contextName
  return out
}

export async function runKubeconfig (p: ParsedFlags, env: NodeJS.ProcessEnv, s: Settings): Promise<number> {
  const server = getString(p, 'server')
  if (server === undefined) throw new UsageError('missing --server: the URL of the cluster\'s API server')
  try {
    const u = new URL(server)
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error('not http(s)')
  } catch {
    throw new UsageError(`invalid value ${JSON.stringify(server)} for --server: expected https://host:port`)
  }
  const clusterName = getString(p, 'cluster-name') ?? 'openstack'
  const cluster: Record<string, unknown> = { server }
  const caFile = getString(p, 'certificate-authority')
  if (caFile !== undefined) {
    let pem: Buffer
    try {
      pem = readFileSync(caFile)
    } catch (err) {
      throw new UsageError(`cannot read --certificate-authority ${caFile}: ${errorMessage(err)}`)
    }
    if (!pem.toString('utf8').includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(`--certificate-authority ${caFile} is not a PEM certificate`)
    cluster['certificate-authority-data'] = pem.toString('base64')
  }
  if (getBool(p, 'insecure-skip-tls-verify') === true) cluster['insecure-skip-tls-verify'] = true

  const interactive = process.stdin.isTTY === true
  const prompterMod = interactive ? await import('./prompt.js') : undefined
  let prompter: import('./prompt.js').Prompter | undefined
  const promptOpts = { interactive, prompter: prompterMod === undefined ? undefined : () => (prompter ??= new prompterMod.Prompter()) }
  const timeoutMs = 30_000
  const secretEnv: string[] = []
  let envList: ExecEnv[]
  let interactiveMode: string
  let label: string
  let created: CreatedCredential | undefined
  try {
    if (getBool(p, 'create-application-credential') === true) {
      if (methodOf(s) === 'websso') throw new UsageError('--create-application-credential with a WebSSO login: run `client-keystone-auth login` first, then create the credential with OS_TOKEN set to a token, or use the WebSSO kubeconfig (without --create-application-credential)')
      await completeSettings(s, promptOpts, 'not prompting: no terminal')
      const authUrl = normalizeAuthUrl(s.authUrl?.value ?? '')
      created = await createApplicationCredential(p, s, authUrl, clusterName, timeoutMs)
      envList = [
        { name: 'OS_AUTH_URL', value: authUrl },
        { name: 'OS_APPLICATION_CREDENTIAL_ID', value: created.id },
        { name: 'OS_APPLICATION_CREDENTIAL_SECRET', value: created.secret }
      ]
      if (s.cacert !== undefined) envList.push({ name: 'OS_CACERT', value: s.cacert.value })
      secretEnv.push('OS_APPLICATION_CREDENTIAL_SECRET')
      interactiveMode = 'Never'
      label = s.userName?.value ?? s.userId?.value ?? created.name
    } else {
      const method = methodOf(s)
      if (method === 'websso' && s.protocol === undefined) throw new UsageError('missing federation protocol (--protocol or OS_PROTOCOL, e.g. openid) for the WebSSO login')
      if (method === 'token') throw new UsageError('a kubeconfig cannot carry a Keystone token (it expires): give a password with --create-application-credential, or an application credential')
      if (s.authUrl === undefined) throw new UsageError('missing Keystone URL (--keystone-url or OS_AUTH_URL)')
      const authUrl = normalizeAuthUrl(s.authUrl.value)
      envList = envFromSettings(s, authUrl, p)
      if (method === 'websso') {
        const cloud = getString(p, 'os-cloud')
        if (cloud !== undefined) envList.push({ name: 'OS_CLOUD', value: cloud })
        interactiveMode = 'IfAvailable'
        label = s.identityProvider?.value ?? 'websso'
      } else if (method === 'application_credential') {
        if (s.appCredSecret === undefined) throw new UsageError('missing application credential secret (--application-credential-secret or OS_APPLICATION_CREDENTIAL_SECRET)')
        envList.push({ name: 'OS_APPLICATION_CREDENTIAL_SECRET', value: s.appCredSecret.value })
        secretEnv.push('OS_APPLICATION_CREDENTIAL_SECRET')
        interactiveMode = 'Never'
        label = s.userName?.value ?? s.appCredName?.value ?? s.appCredId?.value ?? 'appcred'
      } else {
        // The password is never written: the plugin asks for it on the terminal when needed, or,
        // with OS_CLOUD, reads it from clouds.yaml/secure.yaml as the settings were read here.
        if (s.userName === undefined && s.userId === undefined) throw new UsageError('missing user name (--user-name or OS_USERNAME)')
        const cloud = getString(p, 'os-cloud')
        if (cloud !== undefined) envList.push({ name: 'OS_CLOUD', value: cloud })
        interactiveMode = 'IfAvailable'
        label = s.userName?.value ?? s.userId?.value ?? 'user'
      }
    }
  } finally {
    prompter?.close()
  }
  const mode = getString(p, 'interactive-mode')
  if (mode !== undefined) {
    if (!['Never', 'IfAvailable', 'Always'].includes(mode)) throw new UsageError(`invalid value ${JSON.stringify(mode)} for --interactive-mode: use Never, IfAvailable or Always`)
    interactiveMode = mode
  }
  const userName = getString(p, 'kube-user') ?? `${label}@${clusterName}`
  const plan: KubeconfigPlan = {
    clusterName,
    userName,
    contextName: getString(p, 'context-name') ?? userName,
    cluster,
    exec: {
      apiVersion: 'client.authentication.k8s.io/v1',
      command: getString(p, 'exec-command') ?? 'client-keystone-auth',
      args: [],
      env: envList,
      interactiveMode,
      provideClusterInfo: false
    },
    secretEnv
  }
  const ns = getString(p, 'namespace')
  if (ns !== undefined) plan.namespace = ns

  const YAML = await import('yaml')
  if (created !== undefined) {
    process.stderr.write(`client-keystone-auth: created application credential ${created.name} (id ${created.id}${created.expiresAt !== null ? `, expires ${created.expiresAt}` : ', no expiry'})\n`)
  }
  if (getBool(p, 'dry-run') === true) {
    process.stdout.write(YAML.stringify(kubeconfigDocument(plan, getBool(p, 'show-secrets') === true)))
    return 0
  }
  const path = kubeconfigPath(p, env)
  let existing: Record<string, unknown> = {}
  if (existsSync(path)) {
    try {
      const doc: unknown = YAML.parse(readFileSync(path, 'utf8'))
      if (doc !== null && doc !== undefined) {
        if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error('not a kubeconfig map')
        existing = doc as Record<string, unknown>
      }
    } catch (err) {
      throw new ConfigError(`cannot merge into ${path}: ${errorMessage(err)}`)
    }
  }
  const merged = mergeKubeconfig(existing, plan, getBool(p, 'set-current-context') !== false)
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  const tmp = `${path}.${process.pid}.tmp`
  writeFileSync(tmp, YAML.stringify(merged), { mode: 0o600 })
  chmodSync(tmp, 0o600)
  renameSync(tmp, path)
  process.stderr.write(`client-keystone-auth: wrote cluster ${clusterName}, user ${userName} and context ${plan.contextName} to ${path}; try: kubectl --context ${JSON.stringify(plan.contextName)} auth whoami\n`)
  return 0
}
