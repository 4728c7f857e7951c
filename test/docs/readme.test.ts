// The README stays true: every flag of both binaries and every env var is documented, and the
// commands it promises exist.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { SERVER_FLAGS } from '../../src/cli/server-flags.js'
import { COMMON_FLAGS, CREDENTIAL_FLAGS, KUBECONFIG_FLAGS, LOGOUT_FLAGS } from '../../src/plugin/flags.js'

const PLUGIN_FLAGS = [...CREDENTIAL_FLAGS, ...COMMON_FLAGS, ...LOGOUT_FLAGS, ...KUBECONFIG_FLAGS]

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> }

t.test('every server flag and env var is in the README', async t => {
  for (const f of SERVER_FLAGS) {
    t.ok(readme.includes(`--${f.name}`), `--${f.name}`)
    for (const e of f.env ?? []) t.ok(readme.includes(e), e)
  }
})

t.test('every plugin flag and env var is in the README', async t => {
  for (const f of PLUGIN_FLAGS.filter(f => f.hidden !== true)) {
    t.ok(readme.includes(`--${f.name}`), `--${f.name}`)
    for (const e of f.env ?? []) t.ok(readme.includes(e), e)
  }
})

t.test('the README\'s commands exist', async t => {
  for (const script of ['demo', 'test', 'bench']) {
    t.ok(readme.includes(`npm run ${script}`) || readme.includes(`npm ${script}`), `README mentions npm ${script}`)
    t.ok(pkg.scripts[script] !== undefined, `package.json has a "${script}" script`)
  }
  t.match(readFileSync(new URL('../../.ci/run', import.meta.url), 'utf8'), /^npm test <\/dev\/null$/m, '.ci/run runs exactly the README\'s test command')
})
