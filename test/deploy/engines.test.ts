// `engines` is a promise to users: every production dependency runs on each Node it admits (npm
// prints EBADENGINE where one does not). `devEngines` is the same promise to contributors for the
// dev tools. Both are checked against package-lock.json, so an update that narrows a dependency's
// range fails here instead of warning on a user's machine.
import t from 'tap'
import { readFileSync } from 'node:fs'
import semver from 'semver'

interface Locked { version?: string, dev?: boolean, engines?: { node?: string } | string[] }
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  engines: { node: string }, devEngines: { runtime: { name: string, version: string } }
}
const lock = JSON.parse(readFileSync(new URL('../../package-lock.json', import.meta.url), 'utf8')) as { packages: Record<string, Locked> }
const locked = Object.entries(lock.packages).filter(([path]) => path !== '')
const nodeRange = (l: Locked): string | undefined => Array.isArray(l.engines) ? undefined : l.engines?.node

t.test('every production dependency admits every Node that `engines` admits', async t => {
  const prod = locked.filter(([, l]) => l.dev !== true)
  t.ok(prod.some(([path]) => path === 'node_modules/fastify'), 'the lock lists the production tree')
  const narrower = prod.filter(([, l]) => { const r = nodeRange(l); return r !== undefined && !semver.subset(pkg.engines.node, r) })
    .map(([path, l]) => `${path}@${l.version ?? '?'} wants ${nodeRange(l) ?? ''}`)
  t.same(narrower, [], `engines.node "${pkg.engines.node}" is within each production dependency's range`)
})

t.test('every dev dependency admits every Node that `devEngines` admits', async t => {
  t.equal(pkg.devEngines.runtime.name, 'node')
  const narrower = locked.filter(([, l]) => { const r = nodeRange(l); return r !== undefined && !semver.subset(pkg.devEngines.runtime.version, r) })
    .map(([path, l]) => `${path}@${l.version ?? '?'} wants ${nodeRange(l) ?? ''}`)
  t.same(narrower, [], `devEngines "${pkg.devEngines.runtime.version}" is within each dependency's range`)
  t.ok(semver.subset(pkg.devEngines.runtime.version, pkg.engines.node), 'the dev range is within the user range')
})

t.test('the Node running the tests is one both ranges admit (no EBADENGINE here)', async t => {
  t.ok(semver.satisfies(process.version, pkg.engines.node), `${process.version} satisfies engines`)
  t.ok(semver.satisfies(process.version, pkg.devEngines.runtime.version), `${process.version} satisfies devEngines`)
})
