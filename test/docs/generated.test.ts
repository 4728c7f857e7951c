// The flag references are generated from the flag tables: a checked-in page that differs from
// what the generator writes now means someone edited a table (or the page) without regenerating.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { GENERATED } from '../../src/cli/gen-docs.js'
import { SERVER_FLAGS } from '../../src/cli/server-flags.js'
import type { FlagSpec } from '../../src/config/flags.js'
import { COMMON_FLAGS, CREDENTIAL_FLAGS, KUBECONFIG_FLAGS, LOGIN_FLAGS, LOGOUT_FLAGS } from '../../src/plugin/flags.js'

for (const [path, page] of GENERATED) {
  t.test(path, async t => {
    t.equal(readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8'), page(), `${path} is stale: run npm run docs:gen and commit it`)
  })
}

// The prose references (server.md, plugin.md) keep their own tables, with longer explanations:
// every flag, env var and default they name must be the flag table's.
const HAND_TABLES = [
  ['docs/reference/server.md', SERVER_FLAGS],
  ['docs/reference/plugin.md', [...COMMON_FLAGS, ...CREDENTIAL_FLAGS, ...LOGIN_FLAGS, ...LOGOUT_FLAGS, ...KUBECONFIG_FLAGS]]
] as const

for (const [path, specs] of HAND_TABLES) {
  t.test(`${path} agrees with the flag table`, async t => {
    const byName = new Map<string, FlagSpec>(specs.map(s => [s.name, s]))
    let rows = 0
    for (const line of readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8').split('\n')) {
      const cells = line.split('|').slice(1, -1).map(c => c.trim())
      const flags = [...(cells[0] ?? '').matchAll(/`--([a-z0-9-]+)`/g)].map(m => m[1] as string)
      if (flags.length === 0) continue
      rows++
      for (const name of flags) {
        if (name === 'help' || name === 'version') continue
        const spec = byName.get(name)
        t.ok(spec, `${path}: --${name} is a flag`)
        if (spec === undefined || flags.length > 1) continue
        for (const env of [...(cells[1] ?? '').matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map(m => m[1] as string)) {
          t.ok((spec.env ?? []).includes(env), `${path}: --${name} reads ${env}`)
        }
        const shownDefault = /^`([^`]*)`$/.exec(cells[2] ?? '')?.[1]
        if (specs === SERVER_FLAGS && shownDefault !== undefined) t.equal(shownDefault, spec.default, `${path}: the default of --${name}`)
      }
    }
    t.ok(rows >= 20, `${path}: the tables were read (${rows} rows)`)
  })
}
