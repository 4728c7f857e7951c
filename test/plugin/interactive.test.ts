// Interactive use: the plugin prompts on the terminal (stderr) when kubectl says the session is
// interactive, reads the password without echo, and keeps stdout for the ExecCredential.
// Runs the real kubectl inside tmux for a real terminal. Needs `npx tsc -p tsconfig.json` first.
import t from 'tap'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadSeed } from '../helpers/keystone.js'
import { startFakeApiServer, type FakeApiServer } from '../helpers/fake-apiserver.js'
import { PLUGIN, startAuthn, sandbox, writeKubeconfig } from './_support.js'

const seed = loadSeed()
const demo = seed.users.demo!
let authn: Awaited<ReturnType<typeof startAuthn>>
let api: FakeApiServer

t.before(async () => {
  authn = await startAuthn(seed.auth_url)
  api = await startFakeApiServer({ authenticate: authn.authenticate })
})
t.teardown(async () => { await api?.close(); await authn?.close() })

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

const hasTmux = spawnSync('tmux', ['-V']).status === 0

t.test('kubectl in a terminal: password prompt without echo, then whoami works', { skip: hasTmux ? false : 'tmux is not installed (apt-get install tmux)' }, async t => {
  const sb = sandbox()
  writeKubeconfig(sb.kubeconfig, api, {
    apiVersion: 'client.authentication.k8s.io/v1',
    interactiveMode: 'IfAvailable',
    env: { OS_AUTH_URL: seed.auth_url, OS_USERNAME: 'demo', OS_DOMAIN_NAME: 'Default', OS_PROJECT_NAME: 'demo' }
  })
  const script = join(sb.dir, 'run.sh')
  writeFileSync(script, [
    '#!/bin/sh',
    `export HOME='${sb.home}' XDG_CACHE_HOME='${sb.cacheDir}' KUBECONFIG='${sb.kubeconfig}'`,
    'unset NODE_OPTIONS',
    'kubectl auth whoami -o jsonpath="{.status.userInfo.username}{\\"\\\\n\\"}"',
    'echo "EXIT=$?"',
    'sleep 120'
  ].join('\n'), { mode: 0o755 })
  const sock = `ksa-plugin-${process.pid}`
  const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', sock, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, TERM: 'xterm' } })
  tmux('new-session', '-d', '-x', '150', '-y', '40', script)
  t.teardown(() => { try { tmux('kill-server') } catch {} })
  const screen = async (want: RegExp): Promise<string> => {
    let text = ''
    for (let i = 0; i < 400 && !want.test(text); i++) {
      await sleep(50)
      text = tmux('capture-pane', '-p')
    }
    return text
  }
  const prompt = await screen(/Please enter password:/)
  t.match(prompt, /Please enter password:/)
  tmux('send-keys', '-l', demo.password)
  tmux('send-keys', 'Enter')
  const done = await screen(/EXIT=\d+/)
  t.match(done, /EXIT=0/)
  t.match(done, /^demo$/m, 'whoami printed the Keystone user')
  t.notOk(done.includes(demo.password), 'the password was not echoed')
})

t.test('spec.interactive with answers on stdin: prompts in Go order on stderr, ExecCredential on stdout', async t => {
  const sb = sandbox()
  const child = spawn('env', ['-u', 'NODE_OPTIONS', PLUGIN], {
    env: { ...sb.env, KUBERNETES_EXEC_INFO: JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', spec: { interactive: true } }) },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', d => { stdout += String(d) })
  child.stderr.on('data', d => { stderr += String(d) })
  child.stdin.end([seed.auth_url, 'Default', 'demo', 'demo', demo.password, ''].join('\n'))
  const code = await new Promise<number | null>(resolve => child.on('close', c => resolve(c)))
  t.equal(code, 0, stderr)
  t.same(stderr.match(/Please enter [^:]+/g), ['Please enter Keystone Auth URL', 'Please enter domain name', 'Please enter user name', 'Please enter project name', 'Please enter password'])
  t.notOk(stderr.includes(demo.password))
  const cred = JSON.parse(stdout)
  t.equal(cred.apiVersion, 'client.authentication.k8s.io/v1')
  t.ok(cred.status.token.length > 20)
})

t.test('spec.interactive but stdin ends early: an error, no hang', async t => {
  const sb = sandbox()
  const child = spawn('env', ['-u', 'NODE_OPTIONS', PLUGIN], {
    env: { ...sb.env, OS_AUTH_URL: seed.auth_url, KUBERNETES_EXEC_INFO: '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":true}}' },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  let stderr = ''
  child.stderr.on('data', d => { stderr += String(d) })
  child.stdin.end('Default\n')  // the domain; then input ends before the user name
  const code = await new Promise<number | null>(resolve => child.on('close', c => resolve(c)))
  t.not(code, 0)
  t.match(stderr, /no user name given \(end of input\)/)
})
