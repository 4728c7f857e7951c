// client-keystone-auth: the kubectl credential plugin. kubectl runs it for every command, so this
// file imports only small modules up front; YAML (clouds.yaml, kubeconfig) and the HTTP client are
// loaded on the paths that need them, and a cache hit loads neither.
import { isatty } from 'node:tty'
import { resolve } from 'node:path'
import { formatHelp, getBool, getNumber, getString, parseFlags, type FlagSpec, type ParsedFlags } from '../config/flags.js'
import { KsaError, UsageError, errorMessage } from '../errors.js'
import { COMMON_FLAGS, CREDENTIAL_FLAGS, KUBECONFIG_FLAGS, LOGIN_FLAGS, LOGOUT_FLAGS } from '../plugin/flags.js'
import type { Settings } from '../plugin/settings.js'

const NAME = 'client-keystone-auth'

const USAGE: Record<string, string> = {
  token: `Usage: ${NAME} [flags]

Prints a client.authentication.k8s.io ExecCredential with a Keystone token, for kubectl.
Commands:
  ${NAME} [flags]               get a token (the default; what kubectl runs)
  ${NAME} login [--switch]      log in now (WebSSO: in the browser) and cache the token
  ${NAME} logout [--all]        forget and revoke the cached token (of these settings, or all)
  ${NAME} kubeconfig [flags]    write a kubeconfig user and context that run this plugin
  ${NAME} version               print the version`,
  login: `Usage: ${NAME} login [--switch] [credential flags]\n\nLogs in ahead of time and caches the token, so that kubectl runs without a terminal (IDEs, scripts)\nfind one. With --auth-type=v3websso (OS_AUTH_TYPE) it always makes a new browser login, and\nrefuses a login as another user than the last one of this Keystone, identity provider and\nprotocol unless --switch is given.`,
  logout: `Usage: ${NAME} logout [--all] [credential flags]\n\nRemoves the cached token of these settings, or every cached token with --all, and revokes it in\nKeystone (when Keystone cannot be reached, it says until when the token stays valid).`,
  kubeconfig: `Usage: ${NAME} kubeconfig --server URL [--certificate-authority FILE] [credential flags]

Writes (or merges) a kubeconfig cluster, user and context whose exec stanza runs this plugin.
With --create-application-credential it logs in and creates a Keystone application credential
for kubectl, and the kubeconfig carries it; secrets are printed only with --dry-run --show-secrets.`
}

function specsFor (cmd: string): FlagSpec[] {
  if (cmd === 'logout') return [...CREDENTIAL_FLAGS, ...LOGOUT_FLAGS, ...COMMON_FLAGS]
  if (cmd === 'login') return [...CREDENTIAL_FLAGS, ...LOGIN_FLAGS, ...COMMON_FLAGS]
  if (cmd === 'kubeconfig') return [...CREDENTIAL_FLAGS, ...KUBECONFIG_FLAGS, ...COMMON_FLAGS]
  return [...CREDENTIAL_FLAGS, ...COMMON_FLAGS]
}

async function loadSettings (p: ParsedFlags, env: NodeJS.ProcessEnv): Promise<import('../plugin/settings.js').Settings> {
  const { resolveSettings } = await import('../plugin/settings.js')
  const cloudName = getString(p, 'os-cloud')
  if (cloudName === undefined) return resolveSettings(p)
  const { loadCloud } = await import('../plugin/clouds.js')
  const cloud = await loadCloud(cloudName, env)
  for (const w of cloud.warnings ?? []) process.stderr.write(`${NAME}: warning: ${w}\n`)
  if ((getNumber(p, 'v') ?? 0) >= 1) {
    process.stderr.write(`${NAME}: cloud ${cloudName} read from ${(cloud.files ?? []).map(f => resolve(f)).join(' + ')}\n`)
  }
  return resolveSettings(p, cloud)
}

async function openCache (p: ParsedFlags, env: NodeJS.ProcessEnv): Promise<import('../plugin/cache.js').TokenCache | undefined> {
  const mode = getBool(p, 'no-cache') === true ? 'none' : (getString(p, 'token-cache') ?? 'disk')
  if (mode === 'none') return undefined
  if (mode === 'keyring') throw new UsageError('--token-cache=keyring is not available: no OS keyring library is installed with this plugin; use --token-cache=disk or none')
  if (mode !== 'disk') throw new UsageError(`invalid value ${JSON.stringify(mode)} for --token-cache: use disk, keyring or none`)
  const { TokenCache, defaultCacheDir } = await import('../plugin/cache.js')
  return new TokenCache(defaultCacheDir(env))
}

async function webssoOptions (p: ParsedFlags, settings: import('../plugin/settings.js').Settings, force: boolean): Promise<import('../plugin/get-token.js').WebssoRunOptions | undefined> {
  if (settings.authType === undefined) return undefined
  const { isWebssoAuthType } = await import('../plugin/settings.js')
  if (!isWebssoAuthType(settings.authType.value)) return undefined
  const { parsePorts, browserCommand } = await import('../plugin/websso.js')
  const o: import('../plugin/get-token.js').WebssoRunOptions = {
    ports: parsePorts(getString(p, 'websso-ports') ?? '8250-8259'),
    timeoutMs: getNumber(p, 'websso-timeout') ?? 300_000,
    force
  }
  if (getBool(p, 'switch') === true) o.switchUser = true
  const browser = browserCommand(getString(p, 'browser'))
  if (browser !== undefined) o.browser = browser
  return o
}

async function runToken (p: ParsedFlags, env: NodeJS.ProcessEnv, cmd: 'token' | 'login' = 'token'): Promise<number> {
  const { readExecInfo, execCredential } = await import('../plugin/exec-credential.js')
  const info = readExecInfo(env)
  const settings = await loadSettings(p, env)
  const cache = await openCache(p, env)
  // isatty(0) rather than process.stdin.isTTY: the latter builds the stdin stream, which a run
  // that does not prompt never needs.
  const interactive = cmd === 'login' ? isatty(0) : (info.interactive ?? isatty(0))
  const websso = await webssoOptions(p, settings, cmd === 'login')
  const { getToken } = await import('../plugin/get-token.js')
  let prompter: import('../plugin/prompt.js').Prompter | undefined
  const { Prompter } = interactive ? await import('../plugin/prompt.js') : { Prompter: undefined }
  try {
    const res = await getToken({
      settings,
      cache,
      marginMs: getNumber(p, 'cache-margin') ?? 5 * 60_000,
      revalidateAfterMs: getNumber(p, 'revalidate-after') ?? 60_000,
      timeoutMs: getNumber(p, 'timeout') ?? 30_000,
      interactive,
      prompter: Prompter === undefined ? undefined : () => (prompter ??= new Prompter()),
      ppid: process.ppid,
      ...(websso !== undefined ? { websso } : {})
    })
    if (cmd === 'login') {
      process.stderr.write(`${NAME}: logged in; ${res.source === 'cache' ? 'a cached token' : 'the new token'} is valid until ${res.expiresAt.toISOString()}${cache === undefined ? ' (not cached: --no-cache)' : ''}\n`)
      return 0
    }
    process.stdout.write(execCredential(info.apiVersion, res.token, res.expiresAt))
    return 0
  } finally {
    prompter?.close()
  }
}

async function runLogout (p: ParsedFlags, env: NodeJS.ProcessEnv): Promise<number> {
  const cache = await openCache(p, env)
  if (cache === undefined) return 0
  const { cacheKey, missingSettings, methodOf, webssoUnscopedKey } = await import('../plugin/settings.js')
  let settings: Settings
  let keys: string[]
  if (getBool(p, 'all') === true) {
    keys = cache.keys()
    // Only for the TLS options (--os-cacert etc.) of the revocations; every entry has its own URL.
    settings = await loadSettings(p, env).catch(() => ({}) as Settings)
  } else {
    settings = await loadSettings(p, env)
    const missing = missingSettings(settings).filter(m => m.field !== 'password' && m.field !== 'appCredSecret')
    if (missing.length > 0) {
      throw new UsageError(`logout needs the same settings as the login to find its token (missing ${missing.map(m => m.hint).join(', ')}), or --all`)
    }
    keys = [cacheKey(settings)]
    // A WebSSO login also keeps the unscoped federated token (for switching project): forget it too.
    if (methodOf(settings) === 'websso') keys.push(webssoUnscopedKey(settings))
  }
  const { liteOptions } = await import('../plugin/login.js')
  const { revokeToken } = await import('../plugin/keystone-lite.js')
  const timeoutMs = Math.min(getNumber(p, 'timeout') ?? 30_000, 10_000)
  let removed = 0
  for (const key of keys) {
    const entry = cache.read(key)
    if (cache.remove(key)) removed++
    if (entry === undefined || Date.parse(entry.expiresAt) <= Date.now()) continue
    // Forgetting a token here does not end it: whoever copied it could still use it until it
    // expires. So it is revoked too; when Keystone cannot be reached, the user is told so.
    const who = `the token of ${entry.userName}${entry.projectName !== undefined ? ` (project ${entry.projectName})` : ''}`
    try {
      const revoked = await revokeToken(await liteOptions(settings, entry.authUrl, timeoutMs), entry.token)
      process.stderr.write(`${NAME}: ${who}: ${revoked ? 'revoked in Keystone' : 'Keystone no longer honours it'}\n`)
    } catch (err) {
      process.stderr.write(`${NAME}: warning: ${who} was forgotten but could not be revoked (${errorMessage(err)}); it stays valid until ${entry.expiresAt}\n`)
    }
  }
  if (getBool(p, 'all') === true) process.stderr.write(`${NAME}: removed ${removed} cached token${removed === 1 ? '' : 's'} from ${cache.dir}\n`)
  else process.stderr.write(`${NAME}: ${removed > 0 ? 'removed the cached token' : 'no cached token'} for these settings\n`)
  return 0
}

async function main (argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const first = argv[0]
  const cmd = first === 'logout' || first === 'login' || first === 'kubeconfig' || first === 'version' ? first : 'token'
  const rest = cmd === 'token' ? argv : argv.slice(1)
  const specs = specsFor(cmd)
  const p = parseFlags(specs, rest, env)
  if (getBool(p, 'help') === true) {
    process.stdout.write(formatHelp(USAGE[cmd] ?? USAGE.token as string, specs))
    return 0
  }
  if (cmd === 'version' || getBool(p, 'version') === true) {
    const { VERSION } = await import('../version.js')
    process.stdout.write(`${VERSION}\n`)
    return 0
  }
  if (p.positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(p.positionals[0])} (see --help)`)
  if (cmd === 'logout') return await runLogout(p, env)
  if (cmd === 'kubeconfig') {
    const { runKubeconfig } = await import('../plugin/kubeconfig.js')
    return await runKubeconfig(p, env, await loadSettings(p, env))
  }
  if (cmd === 'login') return await runToken(p, env, 'login')
  return await runToken(p, env)
}

function oneLine (msg: string): string {
  return msg.replace(/\s*\n\s*/g, ' ').trim()
}

main(process.argv.slice(2), process.env).then(code => {
  process.exitCode = code
}, (err: unknown) => {
  const msg = err instanceof KsaError || err instanceof Error ? err.message : errorMessage(err)
  process.stderr.write(`${NAME}: ${oneLine(msg)}\n`)
  process.exitCode = err instanceof UsageError ? 2 : 1
})
