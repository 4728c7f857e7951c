// The Dockerfile, without a container engine: a small interpreter runs its stages' steps (FROM,
// WORKDIR, COPY [--from], RUN, ENV, USER, ENTRYPOINT) in temp directories standing for each
// stage's filesystem, with the host's Node standing for the base image (FROM --platform is read
// and otherwise ignored). Then the production stage is checked as the image would run:
// production dependencies only and their SBOM, only the files it needs, no RUN (so that its
// arm64 image needs no emulation), a numeric non-root USER, both binaries working as that user,
// and the server started from the entrypoint answering /healthz (which needs fastify, pino, ...
// from node_modules: --help alone loads none of them). test/image/ builds and runs the real image.
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, chmodSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, isAbsolute, join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Agent, request } from 'undici'
import { testCerts } from '../helpers/certs.js'

// Two npm installs and a TypeScript build: more than the suite's per-file default under load.
t.setTimeout(480_000)
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')

interface Instr { op: string, args: string, line: number }
function parseDockerfile (src: string): Instr[] {
  const out: Instr[] = []
  const lines = src.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const start = i
    let l = lines[i] as string
    if (/^\s*(#|$)/.test(l)) continue
    while (l.endsWith('\\') && i + 1 < lines.length) l = l.slice(0, -1) + ' ' + (lines[++i] as string)
    const m = /^\s*(\w+)\s+(.*)$/.exec(l)
    if (m === null) throw new Error(`Dockerfile line ${start + 1}: cannot parse`)
    out.push({ op: (m[1] as string).toUpperCase(), args: (m[2] as string).trim(), line: start + 1 })
  }
  return out
}

interface Stage { name: string, root: string, workdir: string, env: Record<string, string>, user?: string, entrypoint?: string[], base: string, platform: string, runs: number }

/** .dockerignore as this project writes it: `*` then `!name` / `!dir/**` exceptions. */
function contextAllows (path: string): boolean {
  const rules = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map(s => s.trim()).filter(s => s !== '' && !s.startsWith('#'))
  if (rules[0] !== '*') throw new Error('.dockerignore is expected to start with * (allow-list)')
  const allowed = rules.slice(1).map(r => {
    if (!r.startsWith('!')) throw new Error(`unexpected .dockerignore rule ${r}`)
    return r.slice(1).replace(/\/\*\*$/, '')
  })
  const top = path.replace(/^\.\//, '').replace(/\/$/, '')
  return allowed.some(a => top === a || top.startsWith(`${a}/`))
}

const workspace = mkdtempSync(join(tmpdir(), 'ksa-docker-'))
chmodSync(workspace, 0o755) // as / in an image: other users may traverse it
const stages: Stage[] = []
const runLog: string[] = []
let globalArgs: Record<string, string> = {}

function resolveIn (stage: Stage, p: string): string {
  return join(stage.root, isAbsolute(p) ? p : posix.join(stage.workdir, p))
}
function copyInto (src: string, dest: string, destIsDir: boolean): void {
  const isDir = statSync(src).isDirectory()
  if (isDir) {
    mkdirSync(dest, { recursive: true })
    cpSync(src, dest, { recursive: true })
  } else {
    const target = destIsDir ? join(dest, src.split('/').pop() as string) : dest
    mkdirSync(dirname(target), { recursive: true })
    cpSync(src, target)
  }
}

function execute (instrs: Instr[]): void {
  let cur: Stage | undefined
  for (const ins of instrs) {
    const where = `Dockerfile:${ins.line} ${ins.op}`
    switch (ins.op) {
      case 'ARG': {
        // a global ARG's default may name an earlier one (ARG RUNTIME_IMAGE=${NODE_IMAGE});
        // a stage's ARG (NODE_EXTRA_CA_CERTS, set only by scripts/image/build.sh) stays unset
        const [k, v] = ins.args.split('=')
        if (cur === undefined) globalArgs = { ...globalArgs, [k as string]: (v ?? '').replace(/\$\{(\w+)\}/g, (_, a) => globalArgs[a] ?? '') }
        break
      }
      case 'FROM': {
        const m = /^(?:--platform=(\S+)\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args)
        if (m === null) throw new Error(`${where}: cannot parse`)
        const image = (m[2] as string).replace(/\$\{(\w+)\}/g, (_, k) => globalArgs[k] ?? '')
        const name = m[3] ?? `stage${stages.length}`
        const root = join(workspace, name)
        mkdirSync(root, { recursive: true })
        const parent = stages.find(s => s.name === image)
        if (parent !== undefined) cpSync(parent.root, root, { recursive: true })
        cur = { name, root, workdir: parent?.workdir ?? '/', env: { ...(parent?.env ?? {}) }, base: parent?.base ?? image, platform: m[1] ?? '', runs: 0 }
        stages.push(cur)
        break
      }
      case 'WORKDIR':
        if (cur === undefined) throw new Error(`${where}: before FROM`)
        cur.workdir = posix.resolve(cur.workdir, ins.args)
        mkdirSync(join(cur.root, cur.workdir), { recursive: true })
        break
      case 'ENV': {
        if (cur === undefined) throw new Error(`${where}: before FROM`)
        const m = /^(\w+)=(.*)$/.exec(ins.args)
        if (m === null) throw new Error(`${where}: use ENV KEY=value`)
        cur.env[m[1] as string] = (m[2] as string).replace(/\$(\w+)/g, (_, k) => cur?.env[k] ?? `$${k as string}`)
        break
      }
      case 'COPY': {
        if (cur === undefined) throw new Error(`${where}: before FROM`)
        const parts = ins.args.split(/\s+/)
        let from: Stage | undefined
        while (parts[0]?.startsWith('--') === true) {
          const flag = parts.shift() as string
          if (flag.startsWith('--from=')) {
            from = stages.find(s => s.name === flag.slice(7))
            if (from === undefined) throw new Error(`${where}: no stage ${flag.slice(7)}`)
          } else {
            throw new Error(`${where}: unsupported ${flag}`)
          }
        }
        const dest = parts.pop() as string
        const destPath = resolveIn(cur, dest)
        const destIsDir = dest.endsWith('/') || parts.length > 1
        for (const src of parts) {
          if (from === undefined) {
            if (!contextAllows(src)) throw new Error(`${where}: ${src} is excluded by .dockerignore`)
            copyInto(join(ROOT, src), destPath, destIsDir)
          } else {
            copyInto(resolveIn(from, src), destPath, destIsDir)
          }
        }
        break
      }
      case 'RUN': {
        if (cur === undefined) throw new Error(`${where}: before FROM`)
        const cmd = ins.args.replace(/--mount=\S+\s+/g, '')
        if (/(^|\s)\//.test(cmd)) throw new Error(`${where}: an absolute path cannot be emulated here; keep RUN relative to WORKDIR`)
        const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...cur.env, npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' }
        env.PATH = process.env.PATH
        const r = spawnSync('sh', ['-c', cmd], { cwd: join(cur.root, cur.workdir), env, encoding: 'utf8', timeout: 400_000 })
        runLog.push(`${where}: ${cmd} -> ${String(r.status)}`)
        cur.runs++
        if (r.status !== 0) throw new Error(`${where}: ${cmd} failed (${String(r.status)}): ${r.stderr.slice(-2000)}`)
        break
      }
      case 'USER':
        if (cur !== undefined) cur.user = ins.args
        break
      case 'ENTRYPOINT':
        if (cur !== undefined) cur.entrypoint = JSON.parse(ins.args)
        break
      case 'EXPOSE': case 'LABEL': case 'CMD':
        break
      default:
        throw new Error(`${where}: not emulated`)
    }
  }
}

/** name@version of every package in a node_modules tree, from npm's hidden lockfile. */
function installedPackages (nm: string): string[] {
  const lock = JSON.parse(readFileSync(join(nm, '.package-lock.json'), 'utf8')) as { packages: Record<string, { version: string }> }
  return Object.entries(lock.packages).filter(([path]) => path.startsWith('node_modules/')).map(([path, p]) => `${path.replace(/^.*node_modules\//, '')}@${p.version}`).sort()
}

execute(parseDockerfile(text))
const prod = stages[stages.length - 1] as Stage
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
const app = join(prod.root, prod.workdir)
const [uid, gid] = (prod.user ?? '').split(':').map(Number)
const asUser = (uid !== undefined && process.getuid?.() === 0 && existsSync('/usr/bin/setpriv'))
  ? ['setpriv', `--reuid=${uid}`, `--regid=${gid ?? uid}`, '--clear-groups']
  : []
// The image's PATH with its absolute paths mapped into the emulated root, then the host's (node).
const imagePath = (prod.env.PATH ?? '').split(':').filter(p => p.startsWith('/app')).map(p => join(prod.root, p)).join(':')
const imageEnv = (): NodeJS.ProcessEnv => ({ ...prod.env, PATH: `${imagePath}:${process.env.PATH ?? ''}`, HOME: '/nonexistent' })

t.test('the stages build: base image, stage order, production stage last', async t => {
  t.match(prod.base, /^node:26-bookworm-slim$/, 'current Node LTS (26), slim')
  t.ok(stages.length >= 3, 'multi-stage')
  t.equal(prod.name, 'production')
  t.ok(runLog.some(l => /npm ci --omit=dev/.test(l)), 'production dependencies installed with npm ci --omit=dev')
  t.comment(runLog.join('\n'))
})

t.test('release shape: the app is built on the build platform, the final stage runs nothing', async t => {
  for (const s of stages.slice(0, -1)) t.equal(s.platform, '$BUILDPLATFORM', `stage ${s.name} runs on the build machine's platform`)
  t.equal(prod.platform, '$TARGETPLATFORM', 'the final stage is of the target platform')
  t.equal(prod.runs, 0, 'no RUN in the final stage: an arm64 image needs no emulation')
})

t.test('production stage: only what it needs, production dependencies only', async t => {
  t.same(readdirSync(app).sort(), ['bin', 'config', 'dist', 'node_modules', 'package.json', 'sbom.cdx.json'], 'no sources, tests or lockfile tools in the image')
  const nm = join(app, 'node_modules')
  for (const dep of Object.keys(pkg.dependencies)) t.ok(existsSync(join(nm, dep, 'package.json')), `dependency ${dep} present`)
  // a devDependency that the production tree also needs (semver, under fastify) is not dev-only:
  // package-lock.json marks what only dev tools need with "dev": true
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> }
  for (const dev of Object.keys(pkg.devDependencies)) {
    if (lock.packages[`node_modules/${dev}`]?.dev === true) t.notOk(existsSync(join(nm, dev)), `devDependency ${dev} absent`)
    else t.ok(existsSync(join(nm, dev)), `${dev}, also needed by the production tree, present`)
  }
  t.notOk(existsSync(join(nm, '.bin', 'tsc')), 'no TypeScript compiler')
  t.ok(existsSync(join(app, 'dist/cli/k8s-keystone-auth.js')))
  t.ok(existsSync(join(app, 'dist/cli/client-keystone-auth.js')))
  t.same(readFileSync(join(app, 'package.json'), 'utf8'), readFileSync(join(ROOT, 'package.json'), 'utf8'), 'package.json as in the repository (the SBOM stage edits only its own copy)')
})

t.test('the SBOM: CycloneDX, the package and exactly the installed packages', async t => {
  const sbom = JSON.parse(readFileSync(join(app, 'sbom.cdx.json'), 'utf8'))
  t.equal(sbom.bomFormat, 'CycloneDX')
  t.match(sbom.metadata.component, { name: pkg.name, version: pkg.version, type: 'application' })
  const installed = installedPackages(join(app, 'node_modules'))
  const listed = (sbom.components as Array<{ name: string, group?: string, version: string }>)
    .map(c => `${c.group !== undefined && c.group !== '' ? `${c.group}/` : ''}${c.name}@${c.version}`).sort()
  t.same(listed, installed, 'one component per installed package, none more')
  for (const dep of Object.keys(pkg.dependencies)) t.ok(listed.some(c => c.startsWith(`${dep}@`)), `lists ${dep}`)
})

t.test('USER is numeric and not root; ENTRYPOINT is the server binary', async t => {
  t.match(prod.user, /^\d+:\d+$/, 'numeric uid:gid, so kubelet can verify runAsNonRoot')
  t.not(uid, 0)
  t.same(prod.entrypoint, ['/app/bin/k8s-keystone-auth'])
  t.equal(prod.env.NODE_ENV, 'production')
  if (asUser.length === 0) t.comment('not root or no setpriv: binaries run as the current user')
})

t.test('both binaries start from the image layout, as the image user', async t => {
  const entry = join(prod.root, (prod.entrypoint as string[])[0] as string)
  // Everything readable by the image user: the files are root-owned and must not need writing.
  const help = spawnSync('env', ['-u', 'NODE_OPTIONS', ...asUser, entry, '--help'], { cwd: app, env: imageEnv(), encoding: 'utf8', timeout: 30_000 })
  t.equal(help.status, 0, help.stderr)
  t.match(help.stdout, /--tls-cert-file/)
  const gen = spawnSync('env', ['-u', 'NODE_OPTIONS', ...asUser, entry, 'gen', 'apiserver-config', '--help'], { cwd: app, env: imageEnv(), encoding: 'utf8', timeout: 30_000 })
  t.equal(gen.status, 0, gen.stderr)
  t.match(gen.stdout, /--ca-file/)
  // The second binary through the image's PATH (ENV PATH=/app/bin:$PATH).
  const plugin = spawnSync('env', ['-u', 'NODE_OPTIONS', ...asUser, 'client-keystone-auth', '--help'], { cwd: '/', env: imageEnv(), encoding: 'utf8', timeout: 30_000 })
  t.equal(plugin.status, 0, plugin.stderr)
  t.match(plugin.stdout + plugin.stderr, /keystone/i)
  const which = spawnSync('sh', ['-c', 'command -v client-keystone-auth'], { env: imageEnv(), encoding: 'utf8' })
  t.equal(which.stdout.trim(), join(app, 'bin/client-keystone-auth'), 'found in the image, not elsewhere')
})

t.test('the server starts from the entrypoint with production dependencies and answers /healthz', async t => {
  const certs = testCerts()
  // The image user must read the key, as with the Secret's fsGroup in the Deployment.
  const keyDir = mkdtempSync(join(tmpdir(), 'ksa-img-tls-'))
  cpSync(certs.certFile, join(keyDir, 'tls.crt'))
  cpSync(certs.keyFile, join(keyDir, 'tls.key'))
  chmodSync(keyDir, 0o755)
  chmodSync(join(keyDir, 'tls.key'), 0o644)
  const entry = join(prod.root, (prod.entrypoint as string[])[0] as string)
  const child = spawn('env', ['-u', 'NODE_OPTIONS', ...asUser, entry, '--listen=127.0.0.1:0', `--tls-cert-file=${join(keyDir, 'tls.crt')}`,
    `--tls-private-key-file=${join(keyDir, 'tls.key')}`, '--keystone-url=http://127.0.0.1:9/v3'], { cwd: app, env: imageEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let out = ''
  const listen = await new Promise<string>((resolve, reject) => {
    const onData = (d: Buffer): void => {
      out += String(d)
      const m = /"listen":"([^"]+)"/.exec(out)
      if (m !== null) resolve(m[1] as string)
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.on('exit', code => reject(new Error(`server exited ${String(code)}: ${out}`)))
  })
  const agent = new Agent({ connect: { ca: certs.ca } })
  t.teardown(async () => await agent.close())
  const res = await request(`https://${listen}/healthz`, { dispatcher: agent })
  t.equal(res.statusCode, 200)
  t.equal(await res.body.text(), 'ok')
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'SIGTERM: clean exit')
})
