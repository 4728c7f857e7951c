import { UsageError } from '../errors.js'

// A small parser with the semantics of Go's pflag, which the Go binaries use, so that existing
// command lines and manifests keep working: `--name=value`, `--name value`, `-name value`,
// booleans as `--name` or `--name=false`, repeatable list flags, and `--` ending the flags.
// Each flag may fall back to environment variables; the command line wins over the environment.
// `_` in a flag name is read as `-` (`--keystone_url` is `--keystone-url`): both Go binaries run
// through component-base's cli.Run, which sets cliflag.WordSepNormalizeFunc on every flag set.

export type FlagType = 'string' | 'bool' | 'int' | 'duration' | 'list'

export interface FlagSpec {
  name: string
  type: FlagType
  help: string
  env?: string[]
  /**
   * The value when neither the flag nor its env vars are given, written as on a command line and
   * read by the same parser (withDefaults), so that --help, the docs and the behaviour cannot disagree.
   */
  default?: string
  /** Hidden from --help (kept for compatibility). */
  hidden?: boolean
  short?: string
  /**
   * Accepted so that existing command lines keep working, and otherwise without effect: parseFlags
   * lists it in `ignored` and the caller says so (one warning line).
   */
  ignored?: boolean
}

export type FlagValue = string | boolean | number | string[]

export interface ParsedFlags {
  values: Map<string, FlagValue>
  /** Where each value came from, for error messages: `--listen` or `env TLS_CERT_FILE`. */
  sources: Map<string, string>
  positionals: string[]
  /** Flags given on the command line whose spec is `ignored`, as `--name`, in order, once each. */
  ignored: string[]
}

/** pflag's name normalisation of the Go binaries (cliflag.WordSepNormalizeFunc): `_` becomes `-`. */
export function normalizeFlagName (name: string): string {
  return name.replaceAll('_', '-')
}

/**
 * klog's flags that do nothing here (we log JSON lines to stderr). The Go binaries (v1.32.1) register
 * `-v`/`--v`, `--vmodule` and `--log-flush-frequency` (component-base logs.AddFlags, through
 * cli.Run); the others are klog's own (klog.InitFlags), which Kubernetes components stopped
 * registering in 1.26 and older manifests still pass. Names as normalised (`--log_dir` is
 * `--log-dir`). `--v` is not here: each binary decides what it means.
 */
export const KLOG_IGNORED_FLAGS: readonly FlagSpec[] = ([
  ['vmodule', 'string'], ['log-flush-frequency', 'duration'],
  ['logtostderr', 'bool'], ['alsologtostderr', 'bool'], ['log-dir', 'string'], ['log-file', 'string'],
  ['log-file-max-size', 'int'], ['stderrthreshold', 'string'], ['skip-headers', 'bool'],
  ['skip-log-headers', 'bool'], ['add-dir-header', 'bool'], ['one-output', 'bool'], ['log-backtrace-at', 'string']
] as const).map(([name, type]) => ({ name, type, hidden: true, ignored: true, help: 'klog flag, accepted and ignored' }))

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** Parses a Go duration ("1m30s", "500ms", "0") into milliseconds. */
export function parseDuration (text: string): number {
  const s = text.trim()
  if (s === '0') return 0
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy
  let total = 0
  let matched = 0
  let m: RegExpExecArray | null
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * (DURATION_UNITS[m[2] as string] as number)
    matched = re.lastIndex
  }
  if (matched === 0 || matched !== s.length) {
    throw new Error('not a duration (use a number with a unit: 500ms, 30s, 5m, 1h)')
  }
  return Math.round(total)
}

function convert (spec: FlagSpec, raw: string, source: string): FlagValue {
  const bad = (why: string): never => {
    throw new UsageError(`invalid value ${JSON.stringify(raw)} for ${source}: ${why}`)
  }
  switch (spec.type) {
    case 'bool': {
      const v = raw.toLowerCase()
      if (['1', 't', 'true', 'yes'].includes(v)) return true
      if (['0', 'f', 'false', 'no', ''].includes(v)) return false
      return bad('expected true or false')
    }
    case 'int': {
      if (!/^-?\d+$/.test(raw.trim())) bad('expected an integer')
      return Number(raw)
    }
    case 'duration':
      try {
        return parseDuration(raw)
      } catch (err) {
        return bad((err as Error).message)
      }
    case 'list':
      return [raw]
    default:
      return raw
  }
}

export function parseFlags (specs: readonly FlagSpec[], argv: readonly string[], env: NodeJS.ProcessEnv = {}): ParsedFlags {
  const byName = new Map<string, FlagSpec>()
  for (const s of specs) {
    byName.set(normalizeFlagName(s.name), s)
    if (s.short !== undefined) byName.set(s.short, s)
  }
  const values = new Map<string, FlagValue>()
  const sources = new Map<string, string>()
  const positionals: string[] = []
  const ignored: string[] = []

  const set = (spec: FlagSpec, raw: string, source: string): void => {
    const v = convert(spec, raw, source)
    const prev = values.get(spec.name)
    if (spec.type === 'list' && Array.isArray(prev) && sources.get(spec.name)?.startsWith('--') === true) {
      values.set(spec.name, [...prev, ...(v as string[])])
    } else {
      values.set(spec.name, v)
    }
    sources.set(spec.name, source)
  }

  // Environment first, so the command line overrides it.
  for (const spec of specs) {
    for (const name of spec.env ?? []) {
      const raw = env[name]
      if (raw !== undefined && raw !== '') {
        if (spec.type === 'list') {
          values.set(spec.name, raw.split(',').map(x => x.trim()).filter(Boolean))
          sources.set(spec.name, `env ${name}`)
        } else {
          set(spec, raw, `env ${name}`)
        }
        break
      }
    }
  }

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1))
      break
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg)
      continue
    }
    const body = arg.replace(/^--?/, '')
    const eq = body.indexOf('=')
    const name = eq === -1 ? body : body.slice(0, eq)
    const spec = byName.get(name) ?? byName.get(normalizeFlagName(name))
    if (spec === undefined) throw new UsageError(`unknown flag: ${arg.split('=')[0]} (see --help)`)
    const source = `--${spec.name}`
    if (spec.ignored === true && !ignored.includes(source)) ignored.push(source)
    if (eq !== -1) {
      set(spec, body.slice(eq + 1), source)
    } else if (spec.type === 'bool') {
      set(spec, 'true', source)
    } else {
      const next = argv[i + 1]
      if (next === undefined) throw new UsageError(`flag needs an argument: ${source}`)
      set(spec, next, source)
      i++
    }
  }
  return { values, sources, positionals, ignored }
}

export function formatHelp (usage: string, specs: readonly FlagSpec[]): string {
  const rows = specs.filter(s => s.hidden !== true).map(s => {
    const arg = s.type === 'bool' ? '' : s.type === 'duration' ? ' duration' : s.type === 'int' ? ' int' : ' string'
    const left = `  ${s.short !== undefined ? `-${s.short}, ` : '    '}--${s.name}${arg}`
    const extras: string[] = []
    if (s.env !== undefined && s.env.length > 0) extras.push(`env ${s.env.join(', ')}`)
    if (s.default !== undefined) extras.push(`default ${s.default}`)
    if (s.type === 'list') extras.push('repeatable')
    return { left, right: s.help + (extras.length > 0 ? ` (${extras.join('; ')})` : '') }
  })
  const width = Math.min(48, Math.max(...rows.map(r => r.left.length)) + 2)
  const lines = rows.map(r => r.left.length >= width ? `${r.left}\n${' '.repeat(width)}${r.right}` : r.left.padEnd(width) + r.right)
  return `${usage}\n\nFlags:\n${lines.join('\n')}\n`
}

/** Typed accessors that callers use to build their zod-validated option objects. */
export function getString (p: ParsedFlags, name: string): string | undefined {
  const v = p.values.get(name)
  return typeof v === 'string' ? v : undefined
}
export function getBool (p: ParsedFlags, name: string): boolean | undefined {
  const v = p.values.get(name)
  return typeof v === 'boolean' ? v : undefined
}
export function getNumber (p: ParsedFlags, name: string): number | undefined {
  const v = p.values.get(name)
  return typeof v === 'number' ? v : undefined
}
export function getList (p: ParsedFlags, name: string): string[] | undefined {
  const v = p.values.get(name)
  return Array.isArray(v) ? v : undefined
}

/** The parsed values, with each flag's default where neither the command line nor the env set it. */
export function withDefaults (specs: readonly FlagSpec[], parsed: ParsedFlags): Map<string, FlagValue> {
  const values = new Map(parsed.values)
  for (const spec of specs) {
    if (spec.default !== undefined && !values.has(spec.name)) values.set(spec.name, convert(spec, spec.default, `the default of --${spec.name}`))
  }
  return values
}
