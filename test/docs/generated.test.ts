// The flag references are generated from the flag tables: a checked-in page that differs from
// what the generator writes now means someone edited a table (or the page) without regenerating.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { GENERATED } from '../../src/cli/gen-docs.js'

for (const [path, page] of GENERATED) {
  t.test(path, async t => {
    t.equal(readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8'), page(), `${path} is stale: run npm run docs:gen and commit it`)
  })
}
