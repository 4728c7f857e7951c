// No code may be thrown that the catalog (and so docs/reference/errors.md, generated from it and
// checked by generated.test.ts) does not list: a code written out elsewhere in src/ escapes both.
import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { CATALOG } from '../../src/errors.js'

const root = new URL('../../', import.meta.url).pathname

t.test('no KSA_ERR_ code is written out in src/ outside the catalog', async t => {
  const found: string[] = []
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name)
      if (e.isDirectory()) walk(p)
      else if (p.endsWith('.ts') && !p.endsWith(join('src', 'errors.ts'))) {
        for (const m of readFileSync(p, 'utf8').matchAll(/KSA_ERR_[A-Z0-9_]+/g)) found.push(`${p.slice(root.length)}: ${m[0]}`)
      }
    }
  }
  walk(join(root, 'src'))
  t.same(found, [])
})

t.test('every catalog code is unique and documented in one line', async t => {
  const codes = Object.values(CATALOG).map(e => e.code)
  t.equal(new Set(codes).size, codes.length)
  for (const e of Object.values(CATALOG)) t.notMatch(e.meaning, /\n/, e.code)
})
