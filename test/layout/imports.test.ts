import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

// The shape of src/: each folder has one job and data flows one way, so a folder imports only
// folders below it (the ranks below), and no module reaches itself again through its imports
// (static or dynamic). A new folder must be given a rank here.

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src')

/** Lower imports nothing higher. Folders of one rank may not import each other either. */
const RANKS: Record<string, number> = {
  '.': 0, // errors.ts, log.ts, version.ts
  config: 1,
  keystone: 2,
  kube: 2,
  authn: 3,
  authz: 3,
  sync: 4,
  plugin: 4,
  'server/operations': 5,
  'server/http': 6,
  'server/workers': 6,
  'server/start': 7,
  cli: 8
}

function files (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(e =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [])
}

function folderOf (file: string): string {
  const rel = relative(SRC, dirname(file)).split('/')
  if (rel[0] === '') return '.'
  return rel[0] === 'server' ? `server/${rel[1] ?? ''}` : rel[0] as string
}

/** Relative imports of a module: `from '…'`, `import '…'`, `import('…')`, with their kind. */
function importsOf (file: string): Array<{ target: string, line: number, dynamic: boolean }> {
  const text = readFileSync(file, 'utf8')
  const out: Array<{ target: string, line: number, dynamic: boolean }> = []
  const re = /(?:\bfrom\s+|\bimport\s+|\bimport\(\s*)'(\.\.?\/[^']+)'/g
  for (const m of text.matchAll(re)) {
    const spec = m[1] as string
    const line = text.slice(0, m.index).split('\n').length
    out.push({ target: resolve(dirname(file), spec.replace(/\.js$/, '.ts')), line, dynamic: m[0].includes('(') })
  }
  return out
}

const all = files(SRC)
const graph = new Map(all.map(f => [f, importsOf(f)]))

t.test('every folder of src/ has a rank', async t => {
  const unranked = [...new Set(all.map(folderOf))].filter(f => RANKS[f] === undefined)
  t.same(unranked, [], 'give new folders a rank in test/layout/imports.test.ts')
})

t.test('every relative import names a file of src/', async t => {
  const broken = [...graph].flatMap(([f, imps]) => imps.filter(i => !graph.has(i.target)).map(i => `${relative(SRC, f)}:${i.line} → ${relative(SRC, i.target)}`))
  t.same(broken, [])
})

t.test('no upward or sideways imports between folders', async t => {
  const bad: string[] = []
  for (const [f, imps] of graph) {
    const from = folderOf(f)
    for (const i of imps) {
      const to = folderOf(i.target)
      if (to === from) continue
      if ((RANKS[to] ?? Infinity) >= (RANKS[from] ?? -1)) bad.push(`${relative(SRC, f)}:${i.line} (${from}) imports ${relative(SRC, i.target)} (${to})`)
    }
  }
  t.same(bad, [])
})

t.test('no import cycles, counting dynamic imports', async t => {
  const cycles: string[] = []
  const state = new Map<string, 'open' | 'done'>()
  const stack: string[] = []
  const visit = (f: string): void => {
    state.set(f, 'open')
    stack.push(f)
    for (const { target } of graph.get(f) ?? []) {
      if (!graph.has(target)) continue
      if (state.get(target) === 'open') cycles.push([...stack.slice(stack.indexOf(target)), target].map(x => relative(SRC, x)).join(' → '))
      else if (state.get(target) === undefined) visit(target)
    }
    stack.pop()
    state.set(f, 'done')
  }
  for (const f of all) if (state.get(f) === undefined) visit(f)
  t.same(cycles, [])
})

t.test('the checks see the imports they judge', async t => {
  // Guards the scanner itself: a regex that matched nothing would pass every test above.
  const cli = graph.get(join(SRC, 'cli/k8s-keystone-auth.ts')) ?? []
  t.ok(cli.some(i => i.dynamic && i.target === join(SRC, 'server/start/serve.ts')), 'a dynamic import is seen')
  t.ok(cli.some(i => !i.dynamic && i.target === join(SRC, 'config/flags.ts')), 'a static import is seen')
  t.ok([...graph.values()].reduce((n, imps) => n + imps.length, 0) > 150, 'hundreds of imports are seen')
})
