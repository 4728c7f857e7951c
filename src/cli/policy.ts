import { readFile } from 'node:fs/promises'
import { EXTRA_PROJECT_ID, EXTRA_PROJECT_NAME, EXTRA_ROLES, EXTRA_USER_DOMAIN_NAME } from '../identity.js'
import { PolicyEngine } from '../authz/engine.js'
import { MAX_POLICY_FILE_BYTES } from '../authz/policy-file.js'
import { formatIssue, parsePolicy } from '../authz/policy.js'
import type { AccessRequest } from '../authz/types.js'
import { errorMessage, UsageError } from '../errors.js'
import { formatHelp, getBool, getList, getString, parseFlags, type FlagSpec } from '../config/flags.js'

// `k8s-keystone-auth policy check FILE` and `k8s-keystone-auth policy eval FILE ...`: let an
// operator validate a policy before rolling it out, and ask what it decides for a given user and
// request, with the same parser and engine the server uses.

export interface PolicyCommandIO {
  stdout: (s: string) => void
  stderr: (s: string) => void
}

export const EXIT_OK = 0
export const EXIT_NO = 1
export const EXIT_USAGE = 2

const COMMON_FLAGS: FlagSpec[] = [
  { name: 'help', short: 'h', type: 'bool', help: 'Show this help' }
]

const CHECK_FLAGS: FlagSpec[] = [
  ...COMMON_FLAGS,
  { name: 'strict', type: 'bool', help: 'Treat warnings as errors (exit 1 when there are any)' }
]

const EVAL_FLAGS: FlagSpec[] = [
  ...COMMON_FLAGS,
  { name: 'user', type: 'string', help: 'User name, as in the TokenReview answer' },
  { name: 'uid', type: 'string', help: 'User id' },
  { name: 'user-group', type: 'list', help: 'A group of the user' },
  { name: 'project', type: 'list', help: 'Keystone project name of the token' },
  { name: 'project-id', type: 'list', help: 'Keystone project id of the token' },
  { name: 'role', type: 'list', help: 'Keystone role of the user in the project' },
  { name: 'user-domain', type: 'string', default: 'Default', help: 'Keystone domain name of the user, as the TokenReview answer carries it; "" for a user this webhook did not authenticate (denied)' },
  { name: 'extra', type: 'list', help: 'Any other user extra, as key=value' },
  { name: 'verb', type: 'string', help: 'Request verb: get, list, watch, create, update, patch, delete, ...' },
  { name: 'resource', type: 'string', help: 'Resource, e.g. pods (a resource request)' },
  { name: 'subresource', type: 'string', help: 'Subresource, e.g. log' },
  { name: 'namespace', type: 'string', help: 'Namespace (empty: cluster-scoped or all namespaces)' },
  { name: 'group', type: 'string', help: 'API group of the resource ("" is the core group)' },
  { name: 'name', type: 'string', help: 'Object name' },
  { name: 'path', type: 'string', help: 'Non-resource path, e.g. /healthz (instead of --resource)' },
  { name: 'authorization-subresource-compat', type: 'bool', help: 'Go behaviour: a v2 key "ns/pods" also grants pods/log, pods/exec, ...' },
  { name: 'authorization-loose-namespaces', type: 'bool', help: 'Not Go: a v2 namespace other than "*" also matches requests without a namespace' },
  { name: 'authorization-strict-namespaces', type: 'bool', hidden: true, help: 'The default now; =false is --authorization-loose-namespaces' }
]

const USAGE = `Usage:
  k8s-keystone-auth policy check FILE [--strict]
  k8s-keystone-auth policy eval FILE --user U [--project P] [--role R]... --verb V (--resource R [--namespace N] [--subresource S] [--group G] | --path P)

Commands:
  check   Validate a policy file (JSON or YAML) and point at each error and warning
  eval    Decide one request with the policy, as the webhook would, and say why`

/** The file's text, or undefined after saying on stderr why it cannot be read. */
async function readPolicy (file: string, io: PolicyCommandIO): Promise<string | undefined> {
  try {
    const text = await readFile(file, 'utf8')
    if (Buffer.byteLength(text) > MAX_POLICY_FILE_BYTES) throw new Error(`the file is larger than ${MAX_POLICY_FILE_BYTES} bytes`)
    return text
  } catch (err) {
    io.stderr(`${file}: cannot read: ${errorMessage(err)}\n`)
    return undefined
  }
}

function oneFile (positionals: string[], command: string): string {
  if (positionals.length !== 1) throw new UsageError(`policy ${command} takes exactly one FILE argument, got ${positionals.length}`)
  return positionals[0] as string
}

async function check (argv: string[], io: PolicyCommandIO): Promise<number> {
  const flags = parseFlags(CHECK_FLAGS, argv)
  if (getBool(flags, 'help') === true) {
    io.stdout(formatHelp('Usage: k8s-keystone-auth policy check FILE [--strict]', CHECK_FLAGS))
    return EXIT_OK
  }
  const file = oneFile(flags.positionals, 'check')
  const text = await readPolicy(file, io)
  if (text === undefined) return EXIT_NO
  const result = parsePolicy(text)
  const errors = result.issues.filter(i => i.severity === 'error')
  const warnings = result.issues.filter(i => i.severity === 'warning')
  for (const issue of result.issues) io.stderr(`${formatIssue(issue, file)} (${issue.severity})\n`)
  if (errors.length > 0) {
    io.stdout(`${file}: invalid: ${errors.length} error(s), ${warnings.length} warning(s)\n`)
    return EXIT_NO
  }
  io.stdout(`${file}: valid: ${result.entries.length} entries, ${warnings.length} warning(s)\n`)
  return getBool(flags, 'strict') === true && warnings.length > 0 ? EXIT_NO : EXIT_OK
}

function buildRequest (flags: ReturnType<typeof parseFlags>): AccessRequest {
  const verb = getString(flags, 'verb')
  if (verb === undefined || verb === '') throw new UsageError('--verb is required')
  const resource = getString(flags, 'resource')
  const path = getString(flags, 'path')
  if ((resource === undefined) === (path === undefined)) throw new UsageError('give either --resource (a resource request) or --path (a non-resource request)')
  if (path !== undefined) {
    for (const f of ['namespace', 'subresource', 'group', 'name']) {
      if (getString(flags, f) !== undefined) throw new UsageError(`--${f} applies to --resource requests, not to --path`)
    }
  }
  const extra = Object.create(null) as Record<string, string[]>
  const add = (key: string, values: string[] | undefined): void => {
    if (values === undefined || values.length === 0) return
    extra[key] = [...(extra[key] ?? []), ...values]
  }
  for (const kv of getList(flags, 'extra') ?? []) {
    const eq = kv.indexOf('=')
    if (eq <= 0) throw new UsageError(`--extra needs key=value, got ${JSON.stringify(kv)}`)
    add(kv.slice(0, eq), [kv.slice(eq + 1)])
  }
  add(EXTRA_PROJECT_NAME, getList(flags, 'project'))
  add(EXTRA_PROJECT_ID, getList(flags, 'project-id'))
  add(EXTRA_ROLES, getList(flags, 'role'))
  const domain = getString(flags, 'user-domain') ?? 'Default'
  if (domain !== '') add(EXTRA_USER_DOMAIN_NAME, [domain])
  const req: AccessRequest = { user: getString(flags, 'user') ?? '', groups: getList(flags, 'user-group') ?? [], extra }
  const uid = getString(flags, 'uid')
  if (uid !== undefined) req.uid = uid
  if (path !== undefined) {
    req.nonResource = { path, verb }
  } else {
    req.resource = {
      namespace: getString(flags, 'namespace') ?? '',
      verb,
      group: getString(flags, 'group') ?? '',
      version: '',
      resource: resource as string,
      subresource: getString(flags, 'subresource') ?? '',
      name: getString(flags, 'name') ?? ''
    }
  }
  return req
}

async function evaluate (argv: string[], io: PolicyCommandIO): Promise<number> {
  const flags = parseFlags(EVAL_FLAGS, argv)
  if (getBool(flags, 'help') === true) {
    io.stdout(formatHelp('Usage: k8s-keystone-auth policy eval FILE [flags]', EVAL_FLAGS))
    return EXIT_OK
  }
  const file = oneFile(flags.positionals, 'eval')
  const req = buildRequest(flags)
  const text = await readPolicy(file, io)
  if (text === undefined) return EXIT_NO
  const engine = new PolicyEngine({
    cacheMax: 0,
    subresourceCompat: getBool(flags, 'authorization-subresource-compat') === true,
    looseNamespaces: getBool(flags, 'authorization-loose-namespaces') === true || getBool(flags, 'authorization-strict-namespaces') === false
  })
  try {
    engine.load(text, file)
  } catch (err) {
    io.stderr(`${errorMessage(err)}\n`)
    io.stdout(`denied: the policy file is invalid (run: k8s-keystone-auth policy check ${file})\n`)
    return EXIT_NO
  }
  const decision = engine.authorize(req)
  io.stdout(`${decision.allowed ? 'allowed' : 'denied'}: ${decision.reason}\n`)
  return decision.allowed ? EXIT_OK : EXIT_NO
}

/** `argv` starts after the word `policy`. Exit codes: 0 allowed/valid, 1 denied/invalid, 2 usage. */
export async function runPolicyCommand (argv: string[], io: PolicyCommandIO): Promise<number> {
  const [command, ...rest] = argv
  try {
    switch (command) {
      case 'check': return await check(rest, io)
      case 'eval': return await evaluate(rest, io)
      case undefined:
      case 'help':
      case '-h':
      case '--help':
        io.stdout(`${USAGE}\n`)
        return command === undefined ? EXIT_USAGE : EXIT_OK
      default:
        throw new UsageError(`unknown policy command ${JSON.stringify(command)} (expected check or eval)`)
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`error: ${err.message}\n\n${USAGE}\n`)
      return EXIT_USAGE
    }
    throw err
  }
}
