// Every relative link of README.md, CHANGELOG.md, CONTRIBUTING.md and docs/**/*.md points at a file that exists, and every
// #anchor at a heading of that file (GitHub's slugs).
import t from 'tap'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

function markdownFiles (dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir).flatMap(name => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? markdownFiles(p) : name.endsWith('.md') ? [p] : []
  })
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes, -N for repeats. */
export function anchorsOf (text: string): Set<string> {
  const seen = new Map<string, number>()
  const out = new Set<string>()
  let inFence = false
  for (const line of text.split('\n')) {
    if (/^\s*```/.test(line)) inFence = !inFence
    const m = inFence ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)
    if (m === null) continue
    const base = (m[1] as string).toLowerCase().replace(/`/g, '').replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    out.add(n === 0 ? base : `${base}-${n}`)
  }
  return out
}

const files = [...['README.md', 'CHANGELOG.md', 'CONTRIBUTING.md'].map(f => join(root, f)), ...markdownFiles(join(root, 'docs'))]

t.test('every relative link and anchor in the docs resolves', async t => {
  let checked = 0
  for (const file of files) {
    const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '')
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1] as string
      if (/^[a-z]+:/i.test(target)) continue
      const [path, anchor] = target.split('#') as [string, string | undefined]
      const resolved = path === '' ? file : join(dirname(file), path)
      const where = `${relative(root, file)} -> ${target}`
      checked++
      if (!existsSync(resolved)) { t.fail(`${where}: no such file`); continue }
      if (anchor !== undefined && anchor !== '' && resolved.endsWith('.md')) {
        t.ok(anchorsOf(readFileSync(resolved, 'utf8')).has(anchor), `${where}: anchor exists`)
      }
    }
  }
  t.ok(checked > 0, `${checked} links checked in ${files.length} files`)
})
