// The name patterns of v2 `resource_permissions` keys: `*`, `name`, `!name`, `['a','b']` and
// `!['a','b']`, for the namespace part and the resource part of `namespace/resource`.
//
// The rules are those of the Go binary's getAllowed, including its quirks, because existing
// policies rely on them:
//  - an empty request value (a cluster-scoped request has namespace "") matches every pattern;
//  - `!*` matches nothing, `!` alone matches every non-empty value;
//  - a list is recognised only when the first `]` is the last character; it is parsed as JSON
//    after turning every `'` into `"`; a list that does not parse makes the whole key unusable;
//  - `*` inside a list matches everything, and inside a negated list nothing.
// Patterns are parsed once per policy load; matching is a Set lookup.

export type NamePattern =
  | { kind: 'any' }
  | { kind: 'exact', value: string }
  | { kind: 'not', value: string }
  | { kind: 'in', values: ReadonlySet<string> }
  | { kind: 'notIn', values: ReadonlySet<string> }
  /** A definition that can never match (an unparsable list, `!*`, `!['*']`), except by the quirks. */
  | { kind: 'never', why: string }

export interface ParsedPattern {
  /** The definition as written after normalisation (trimmed, lower-cased for resource keys). */
  source: string
  pattern: NamePattern
}

function parseList (text: string): string[] | undefined {
  let items: unknown
  try {
    items = JSON.parse(text.replaceAll("'", '"'))
  } catch {
    return undefined
  }
  if (!Array.isArray(items) || !items.every(x => typeof x === 'string')) return undefined
  return items as string[]
}

export function parseNamePattern (definition: string): ParsedPattern {
  const def = definition
  const wrap = (pattern: NamePattern): ParsedPattern => ({ source: def, pattern })
  if (def === '*') return wrap({ kind: 'any' })
  const closesAtEnd = def.indexOf(']') === def.length - 1
  if (def.startsWith('!') && def.indexOf('[') !== 1) {
    const value = def.slice(1)
    if (value === '*') return wrap({ kind: 'never', why: '"!*" excludes everything' })
    return wrap({ kind: 'not', value })
  }
  if (def.startsWith('[') && closesAtEnd) {
    const items = parseList(def)
    if (items === undefined) return wrap({ kind: 'never', why: `${def} is not a list of quoted names like ['a', 'b']` })
    if (items.includes('*')) return wrap({ kind: 'any' })
    return wrap({ kind: 'in', values: new Set(items) })
  }
  if (def.startsWith('![') && closesAtEnd) {
    const items = parseList(def.slice(1))
    if (items === undefined) return wrap({ kind: 'never', why: `${def} is not a negated list of quoted names like !['a', 'b']` })
    if (items.includes('*')) return wrap({ kind: 'never', why: `${def} excludes everything` })
    return wrap({ kind: 'notIn', values: new Set(items) })
  }
  if (def.startsWith('[') || def.startsWith('![')) {
    return wrap({ kind: 'never', why: `${def} looks like a list but does not end with its first "]"` })
  }
  return wrap({ kind: 'exact', value: def })
}

/**
 * Does `value` match? `emptyMatchesAll` is the Go quirk for the namespace and resource parts:
 * an empty value (cluster-scoped request) matches whatever the pattern says.
 */
export function matchNamePattern (p: ParsedPattern, value: string, emptyMatchesAll = true): boolean {
  if (emptyMatchesAll && value === '') return true
  // Go compares the raw definition first, so "!x" matches a value spelled "!x".
  if (p.source === value) return true
  const pat = p.pattern
  switch (pat.kind) {
    case 'any': return true
    case 'exact': return pat.value === value
    case 'not': return pat.value !== value
    case 'in': return pat.values.has(value)
    case 'notIn': return !pat.values.has(value)
    case 'never': return false
  }
}
