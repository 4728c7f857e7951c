import { X509Certificate, createPrivateKey } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { isAbsolute, join } from 'node:path'
import { UsageError, errorMessage } from '../errors.js'
import {
  DEFAULT_CONFIG_DIR, DEFAULT_WEBHOOK_URL, authorizationConfigVersion, generateApiserverConfig,
  type ApiserverConfigInput, type AuthzMode, type FailurePolicy
} from '../config/apiserver-config.js'
import { formatHelp, getString, getNumber, getBool, parseFlags, withDefaults, type FlagSpec } from '../config/flags.js'
import type { Io } from './io.js'

export const GEN_APISERVER_FLAGS: readonly FlagSpec[] = [
  { name: 'webhook-url', type: 'string', default: DEFAULT_WEBHOOK_URL, help: 'https URL at which kube-apiserver reaches the webhook (hostNetwork pod on the same node: https://127.0.0.1:8443/webhook; the serving certificate needs that host in its SANs)' },
  { name: 'ca-file', type: 'string', help: 'PEM CA bundle that signed the webhook\'s serving certificate (required; embedded as certificate-authority-data)' },
  { name: 'client-cert-file', type: 'string', help: 'PEM client certificate kube-apiserver presents to the webhook (use with the server\'s --client-ca-file)' },
  { name: 'client-key-file', type: 'string', help: 'PEM private key of --client-cert-file' },
  { name: 'embed-client-cert', type: 'bool', default: 'true', help: 'Embed the client pair in the kubeconfigs (client-certificate-data); =false writes it as two files under --config-dir that the kubeconfigs name by path' },
  { name: 'out-dir', type: 'string', help: 'Directory to write the files to (required; created, mode 0700)' },
  { name: 'config-dir', type: 'string', default: DEFAULT_CONFIG_DIR, help: 'Absolute directory where the files will be on the control-plane nodes (used in the flags and in the authorization config)' },
  { name: 'kubernetes-version', type: 'string', default: '1.32', help: 'kube-apiserver version (1.30+: structured AuthorizationConfiguration; older: legacy --authorization-webhook-* flags)' },
  { name: 'authorization', type: 'string', default: 'webhook', help: '"webhook": Node, RBAC, then the Keystone policy webhook; "none": authentication only, RBAC decides' },
  { name: 'authn-cache-ttl', type: 'duration', default: '10s', help: 'How long kube-apiserver caches a TokenReview answer (--authentication-token-webhook-cache-ttl): the first part of how long a token Keystone revoked still works (our own caches are the second); short is cheap, our cache answers the repeats' },
  { name: 'authz-authorized-ttl', type: 'duration', default: '1m', help: 'How long kube-apiserver caches an allow from the webhook' },
  { name: 'authz-unauthorized-ttl', type: 'duration', default: '10s', help: 'How long kube-apiserver caches a deny from the webhook' },
  { name: 'authz-timeout', type: 'duration', default: '3s', help: 'Authorization webhook timeout (1ms to 30s)' },
  { name: 'access-rules-enforce', type: 'bool', help: 'With the server\'s --access-rules-enforce: a first webhook authorizer, before Node and RBAC, for users whose application credential has access rules (Kubernetes 1.30+)' },
  { name: 'failure-policy', type: 'string', default: 'NoOpinion', help: 'When the authorization webhook fails: NoOpinion (later authorizers, then deny) or Deny' },
  { name: 'help', type: 'bool', short: 'h', help: 'Show this help' }
]

const USAGE = `Usage:
  k8s-keystone-auth gen apiserver-config --ca-file FILE --out-dir DIR [flags]

Writes the kube-apiserver side of the webhook into --out-dir: the authentication (and, unless
--authorization=none, authorization) webhook kubeconfigs with certificate-authority-data, and for
Kubernetes 1.30+ an AuthorizationConfiguration; prints the kube-apiserver flags to add.`

function readPem (file: string, flag: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    throw new UsageError(`${flag}: cannot read ${file}: ${errorMessage(err)}`)
  }
}

function certsIn (pem: string, flag: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
  if (blocks.length === 0) throw new UsageError(`${flag}: no PEM certificate found`)
  return blocks.map(b => {
    try {
      return new X509Certificate(b)
    } catch (err) {
      throw new UsageError(`${flag}: not a valid certificate: ${errorMessage(err)}`)
    }
  })
}

function parseVersion (text: string): { major: number, minor: number } {
  const m = /^v?(\d+)\.(\d+)(?:\.\d+)?$/.exec(text.trim())
  if (m === null) throw new UsageError(`--kubernetes-version: expected MAJOR.MINOR such as 1.32, got ${JSON.stringify(text)}`)
  return { major: Number(m[1]), minor: Number(m[2]) }
}

/** Turns the flags into the generator's input; every problem is one UsageError naming its flag. */
export function genInputFrom (argv: string[]): { input: ApiserverConfigInput, outDir: string, warnings: string[] } {
  const given = parseFlags(GEN_APISERVER_FLAGS, argv)
  // Each flag's default comes from the table above, as if typed: --help and the output agree.
  const p = { ...given, values: withDefaults(GEN_APISERVER_FLAGS, given) }
  const str = (name: string): string => getString(p, name) ?? ''
  const warnings: string[] = []
  const url = str('webhook-url')
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new UsageError(`--webhook-url: not a URL: ${JSON.stringify(url)}`)
  }
  if (parsed.protocol !== 'https:') throw new UsageError('--webhook-url: must be https (kube-apiserver sends bearer tokens to it)')
  if (parsed.pathname === '/' || parsed.pathname === '') warnings.push('--webhook-url has no path; the server answers reviews on /webhook, /authenticate and /authorize')

  const caFile = getString(p, 'ca-file')
  if (caFile === undefined) throw new UsageError('--ca-file is required (the CA that signed the webhook\'s serving certificate; insecure-skip-tls-verify is never written)')
  const caPem = readPem(caFile, '--ca-file')
  const now = Date.now()
  for (const c of certsIn(caPem, '--ca-file')) {
    if (!c.ca) warnings.push(`--ca-file: ${c.subject.replace(/\n/g, ', ')} is not a CA certificate (basicConstraints CA:FALSE); kube-apiserver will trust it only as a root`)
    if (Date.parse(c.validTo) < now) throw new UsageError(`--ca-file: certificate ${c.subject.replace(/\n/g, ', ')} expired on ${c.validTo}`)
  }

  const certFile = getString(p, 'client-cert-file')
  const keyFile = getString(p, 'client-key-file')
  if ((certFile === undefined) !== (keyFile === undefined)) throw new UsageError('--client-cert-file and --client-key-file go together')
  let clientCertPem: string | undefined
  let clientKeyPem: string | undefined
  if (certFile !== undefined && keyFile !== undefined) {
    clientCertPem = readPem(certFile, '--client-cert-file')
    clientKeyPem = readPem(keyFile, '--client-key-file')
    const [leaf] = certsIn(clientCertPem, '--client-cert-file')
    let key
    try {
      key = createPrivateKey(clientKeyPem)
    } catch (err) {
      throw new UsageError(`--client-key-file: not a PEM private key: ${errorMessage(err)}`)
    }
    if (leaf === undefined || !leaf.checkPrivateKey(key)) throw new UsageError('--client-key-file does not match --client-cert-file')
    if (Date.parse(leaf.validTo) < now) throw new UsageError(`--client-cert-file: expired on ${leaf.validTo}`)
  }

  const embedClientCert = getBool(p, 'embed-client-cert') === true
  if (clientCertPem === undefined) {
    warnings.push('no --client-cert-file/--client-key-file: kube-apiserver will present no client certificate, so a webhook started with --client-ca-file (as deploy/ does) refuses its reviews (401), and one started without it answers anyone who can reach it')
    if (!embedClientCert) throw new UsageError('--embed-client-cert=false needs --client-cert-file and --client-key-file')
  }

  const outDir = getString(p, 'out-dir')
  if (outDir === undefined) throw new UsageError('--out-dir is required')
  const configDir = str('config-dir').replace(/\/+$/, '')
  if (!isAbsolute(configDir)) throw new UsageError('--config-dir: must be an absolute path (kube-apiserver requires absolute kubeConfigFile paths)')

  const authz = str('authorization')
  if (authz !== 'webhook' && authz !== 'none') throw new UsageError('--authorization: expected webhook or none')
  const failurePolicy = str('failure-policy')
  if (failurePolicy !== 'NoOpinion' && failurePolicy !== 'Deny') throw new UsageError('--failure-policy: expected NoOpinion or Deny')
  const ms = (name: string): number => getNumber(p, name) ?? 0
  const authzTimeoutMs = ms('authz-timeout')
  if (authzTimeoutMs <= 0 || authzTimeoutMs > 30_000) throw new UsageError('--authz-timeout: must be more than 0 and at most 30s')
  const authzAuthorizedTtlMs = ms('authz-authorized-ttl')
  const authzUnauthorizedTtlMs = ms('authz-unauthorized-ttl')
  const kubernetesVersion = parseVersion(str('kubernetes-version'))
  if (authz === 'webhook' && kubernetesVersion.major === 1 && kubernetesVersion.minor < 34 &&
    (authzAuthorizedTtlMs === 0 || authzUnauthorizedTtlMs === 0)) {
    throw new UsageError('--authz-*-ttl: 0 (no cache) needs Kubernetes 1.34+ (cacheAuthorizedRequests); before that kube-apiserver reads 0 as its default TTL')
  }
  const accessRulesEnforce = getBool(p, 'access-rules-enforce') === true
  if (accessRulesEnforce && (authz !== 'webhook' || authorizationConfigVersion(kubernetesVersion) === undefined)) {
    throw new UsageError('--access-rules-enforce needs --authorization webhook and Kubernetes 1.30+ (an AuthorizationConfiguration with the webhook before RBAC)')
  }
  if (p.positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(p.positionals[0])}`)
  return {
    input: {
      webhookUrl: url,
      caPem,
      ...(clientCertPem !== undefined ? { clientCertPem, clientKeyPem, embedClientCert } : {}),
      configDir,
      ...(accessRulesEnforce ? { accessRulesEnforce } : {}),
      kubernetesVersion,
      authz: authz as AuthzMode,
      authnCacheTtlMs: ms('authn-cache-ttl'),
      authzAuthorizedTtlMs,
      authzUnauthorizedTtlMs,
      authzTimeoutMs,
      failurePolicy: failurePolicy as FailurePolicy
    },
    outDir,
    warnings
  }
}

export async function runGenCommand (argv: string[], _env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const [what, ...rest] = argv
  if (what === undefined || what === '--help' || what === '-h' || what === 'help') {
    io.stdout(`${USAGE}\n\nRun \`k8s-keystone-auth gen apiserver-config --help\` for its flags.\n`)
    return what === undefined ? 2 : 0
  }
  if (what !== 'apiserver-config') {
    io.stderr(`k8s-keystone-auth gen: unknown target ${JSON.stringify(what)} (known: apiserver-config)\n`)
    return 2
  }
  let parsed: ReturnType<typeof genInputFrom>
  try {
    if (getBool(parseFlags(GEN_APISERVER_FLAGS, rest), 'help') === true) {
      io.stdout(formatHelp(USAGE, GEN_APISERVER_FLAGS))
      return 0
    }
    parsed = genInputFrom(rest)
  } catch (err) {
    io.stderr(`k8s-keystone-auth gen apiserver-config: ${errorMessage(err)}\n`)
    return 2
  }
  const { input, outDir, warnings } = parsed
  for (const w of warnings) io.stderr(`warning: ${w}\n`)
  const out = generateApiserverConfig(input)
  try {
    mkdirSync(outDir, { recursive: true, mode: 0o700 })
    for (const f of out.files) {
      const path = join(outDir, f.name)
      writeFileSync(path, f.content, { mode: f.mode })
      chmodSync(path, f.mode)
    }
  } catch (err) {
    io.stderr(`k8s-keystone-auth gen apiserver-config: cannot write to ${outDir}: ${errorMessage(err)}\n`)
    return 1
  }
  const lines = [
    `Wrote to ${outDir}:`,
    ...out.files.map(f => `  ${f.name}`),
    '',
    `Copy them to ${input.configDir}/ on every control-plane node, then add to kube-apiserver:`,
    ...out.flags.map(f => `  ${f}`)
  ]
  if (out.removeFlags.length > 0) lines.push('', 'and remove these if present (they conflict):', ...out.removeFlags.map(f => `  ${f}`))
  lines.push('', 'Notes:', ...out.notes.map(n => `- ${n}`))
  io.stdout(lines.join('\n') + '\n')
  return 0
}
