// The README stays true: every flag of both binaries and every env var is documented, and the
// commands it promises exist.
import t from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SERVER_FLAGS } from '../../src/cli/server-flags.js'
import { COMMON_FLAGS, CREDENTIAL_FLAGS, KUBECONFIG_FLAGS, LOGOUT_FLAGS } from '../../src/plugin/flags.js'

const PLUGIN_FLAGS = [...CREDENTIAL_FLAGS, ...COMMON_FLAGS, ...LOGOUT_FLAGS, ...KUBECONFIG_FLAGS]

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
// The flags are documented in docs/ (hand-written reference pages and the generated tables).
function markdown (dir: string): string[] {
  return readdirSync(dir).flatMap(n => { const p = join(dir, n); return statSync(p).isDirectory() ? markdown(p) : n.endsWith('.md') ? [p] : [] })
}
const docs = markdown(fileURLToPath(new URL('../../docs', import.meta.url))).map(p => readFileSync(p, 'utf8')).join('\n')
const handWritten = ['server.md', 'plugin.md'].map(f => readFileSync(new URL(`../../docs/reference/${f}`, import.meta.url), 'utf8')).join('\n')
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> }

t.test('every server flag and env var is in the hand-written reference', async t => {
  for (const f of SERVER_FLAGS) {
    t.ok(handWritten.includes(`--${f.name}`), `--${f.name}`)
    for (const e of f.env ?? []) t.ok(handWritten.includes(e), e)
  }
})

t.test('every plugin flag and env var is in the hand-written reference', async t => {
  for (const f of PLUGIN_FLAGS.filter(f => f.hidden !== true)) {
    t.ok(handWritten.includes(`--${f.name}`), `--${f.name}`)
    for (const e of f.env ?? []) t.ok(handWritten.includes(e), e)
  }
})

t.test('the README\'s commands exist', async t => {
  for (const script of ['demo', 'test', 'bench']) {
    t.ok([readme, docs].some(s => s.includes(`npm run ${script}`) || s.includes(`npm ${script}`)), `README mentions npm ${script}`)
    t.ok(pkg.scripts[script] !== undefined, `package.json has a "${script}" script`)
  }
  t.match(readFileSync(new URL('../../.ci/run', import.meta.url), 'utf8'), /^npm test <\/dev\/null$/m, '.ci/run runs exactly the README\'s test command')
})

t.test('the README stays short and points at the answers a newcomer looks for', async t => {
  t.ok(Buffer.byteLength(readme) <= 10_240, `README.md is ${Buffer.byteLength(readme)} bytes (at most 10 KB)`)
  for (const link of ['docs/operators/install.md', 'docs/operators/troubleshooting.md#why-is-my-token-rejected']) t.ok(readme.includes(`](${link})`), link)
})
