import t from 'tap'
import { matchNamePattern, parseNamePattern } from '../../src/authz/name-pattern.js'

// The v2 key part patterns, one rule per row: [definition, value, matches?].
const rows: Array<[string, string, boolean]> = [
  ['*', 'pods', true],
  ['pods', 'pods', true],
  ['pods', 'secrets', false],
  ['!secrets', 'pods', true],
  ['!secrets', 'secrets', false],
  ['!*', 'pods', false],
  ['!', 'pods', true],
  ["['a', 'b']", 'b', true],
  ["['a', 'b']", 'c', false],
  ["['a', '*']", 'c', true],
  ['[]', 'a', false],
  ["!['a', 'b']", 'c', true],
  ["!['a', 'b']", 'a', false],
  ["!['*']", 'c', false],
  ['![]', 'c', true],
  ['[a, b]', 'a', false],
  ["['a]b']", 'a', false],
  ["['a'", 'a', false],
  ["!['a'", 'b', false],
  ['[1, 2]', '1', false],
  ['!x', '!x', true],
  ['a[b', 'a[b', true],
  // The Go quirk: an empty value (cluster-scoped request) matches anything, even "!*" and bad lists.
  ['default', '', true],
  ['!*', '', true],
  ['[bad', '', true]
]

t.test('patterns match as the Go getAllowed does', async t => {
  for (const [def, value, expected] of rows) {
    t.equal(matchNamePattern(parseNamePattern(def), value), expected, `${JSON.stringify(def)} vs ${JSON.stringify(value)}`)
  }
})

t.test('without the empty-value quirk (subresource parts)', async t => {
  t.equal(matchNamePattern(parseNamePattern('log'), '', false), false)
  t.equal(matchNamePattern(parseNamePattern('*'), '', false), true)
})

t.test('patterns that can never match say why', async t => {
  for (const def of ['!*', "!['x', '*']", '[x]', '[x', '![x']) {
    const p = parseNamePattern(def).pattern
    t.equal(p.kind, 'never', def)
    if (p.kind === 'never') t.ok(p.why.length > 0)
  }
})
