// The container image, as scripts/image/build.sh builds it with podman from the Dockerfile, run
// the way a cluster runs it: read-only root filesystem (no tmpfs either), uid 65532, no
// capabilities, host network, against the test Keystone (KEYSTONE_DEV_DIR) through a proxy that
// can hold a Keystone call in flight. Checks the image (user, entrypoint, production
// dependencies only, the SBOM, no copy of the build machine's CA), the server in it (TokenReview,
// SubjectAccessReview by a mounted policy, /readyz, /metrics, SIGTERM finishing a review in
// flight and exiting 0), client-keystone-auth in it, the arm64 image (which cannot run here: its
// config, the ELF headers of its node and libraries, the same /app as amd64) and the release
// files of scripts/image/release.sh. Skipped, with the reason, where podman or the image is missing.
import t, { type Test } from 'tap'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, chownSync, copyFileSync, createReadStream, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { isAbsolute, join, posix, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Agent, request } from 'undici'
import { testCerts } from '../helpers/certs.js'
import { loadSeed, passwordToken, type Seed } from '../helpers/keystone.js'
import { keystoneFetch } from '../helpers/keystone-fetch.js'
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js'

t.setTimeout(15 * 60_000)
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string, version: string, dependencies: Record<string, string>, devDependencies: Record<string, string> }
// devDependencies that only dev tools need (package-lock.json's "dev": true): semver, say, is also
// a dependency of fastify, so it belongs in the image
const locked = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> }
const devOnly = Object.keys(pkg.devDependencies).filter(d => locked.packages[`node_modules/${d}`]?.dev === true)
const NAME = process.env.KSA_IMAGE_NAME ?? 'localhost/k8s-keystone-auth'
const IMAGE = { amd64: `${NAME}:${pkg.version}-amd64`, arm64: `${NAME}:${pkg.version}-arm64` }
const RELEASE_DIR = resolve(ROOT, process.env.KSA_RELEASE_DIR ?? 'dist-release')
const EXTRA = 'alpha.kubernetes.io/identity/'
const ELF_MACHINE = { amd64: 62, arm64: 183 } // EM_X86_64, EM_AARCH64
const TRIPLET = { amd64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' }

function podman (args: string[], input?: string): { status: number | null, stdout: string, stderr: string } {
  const r = spawnSync('bash', [join(ROOT, 'scripts/image/podman.sh'), ...args], { encoding: 'utf8', input, maxBuffer: 64 << 20, timeout: 300_000 })
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') }
}
function podmanOk (args: string[]): string {
  const r = podman(args)
  if (r.status !== 0) throw new Error(`podman ${args.join(' ')}: exit ${String(r.status)}: ${r.stderr}`)
  return r.stdout
}

/** Why this file cannot run here, or false. */
function whyNot (): string | false {
  if (spawnSync('sh', ['-c', 'command -v podman']).status !== 0) return 'podman is not installed (bash scripts/test.sh image installs it)'
  if (process.getuid?.() !== 0) return 'needs root (the image is read through podman image mount)'
  const info = podman(['info', '--format', '{{.Host.OCIRuntime.Name}}'])
  if (info.status !== 0) return `podman does not work here: ${info.stderr.trim().split('\n')[0] ?? ''}`
  for (const image of Object.values(IMAGE)) {
    if (podman(['image', 'exists', image]).status !== 0) return `no image ${image} (bash scripts/image/build.sh builds it)`
  }
  return false
}
const skip = whyNot()

const inspect = (image: string): any => JSON.parse(podmanOk(['image', 'inspect', image]))[0]

/** The image's root filesystem, read-only through podman image mount, unmounted at teardown. */
function mountImage (t: Test, image: string): string {
  const dir = podmanOk(['image', 'mount', image]).trim()
  t.teardown(() => { podman(['image', 'unmount', image]) })
  return dir
}

/** A path inside an image's root, following symlinks as the image would (absolute ones re-rooted). */
function inRoot (root: string, path: string, depth = 0): string {
  if (depth > 40) throw new Error(`symlink loop at ${path}`)
  const parts = path.split('/').filter(p => p !== '' && p !== '.')
  let cur = '/'
  for (let i = 0; i < parts.length; i++) {
    const next = posix.resolve(cur, parts[i] as string)
    if (isLink(join(root, next))) {
      const target = readlinkSync(join(root, next))
      const at = isAbsolute(target) ? target : posix.resolve(cur, target)
      const rest = parts.slice(i + 1).join('/')
      return inRoot(root, rest === '' ? at : `${at}/${rest}`, depth + 1)
    }
    cur = next
  }
  return join(root, cur)
}
function isLink (p: string): boolean { try { return lstatSync(p).isSymbolicLink() } catch { return false } }

interface ElfInfo { machine: number, interp?: string, needed: string[] }
/** Machine, program interpreter and DT_NEEDED libraries of an ELF64 little-endian file. */
function readElf (file: string): ElfInfo {
  const b = readFileSync(file)
  if (b.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file}: not ELF`)
  if (b[4] !== 2 || b[5] !== 1) throw new Error(`${file}: not ELF64 little-endian`)
  const machine = b.readUInt16LE(18)
  const phoff = Number(b.readBigUInt64LE(32))
  const phentsize = b.readUInt16LE(54)
  const phnum = b.readUInt16LE(56)
  const loads: Array<{ vaddr: number, offset: number, size: number }> = []
  let interp: string | undefined
  let dyn: { offset: number, size: number } | undefined
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize
    const type = b.readUInt32LE(o)
    const offset = Number(b.readBigUInt64LE(o + 8))
    const vaddr = Number(b.readBigUInt64LE(o + 16))
    const size = Number(b.readBigUInt64LE(o + 32))
    if (type === 1) loads.push({ vaddr, offset, size })
    if (type === 2) dyn = { offset, size }
    if (type === 3) interp = b.toString('latin1', offset, offset + size).replace(/\0+$/, '')
  }
  const needed: string[] = []
  if (dyn !== undefined) {
    const names: number[] = []
    let strtab = -1
    for (let o = dyn.offset; o + 16 <= dyn.offset + dyn.size; o += 16) {
      const tag = Number(b.readBigInt64LE(o))
      const val = Number(b.readBigUInt64LE(o + 8))
      if (tag === 0) break
      if (tag === 1) names.push(val)
      if (tag === 5) strtab = val
    }
    const seg = loads.find(l => strtab >= l.vaddr && strtab < l.vaddr + l.size)
    if (seg === undefined) throw new Error(`${file}: DT_STRTAB outside every PT_LOAD`)
    const base = strtab - seg.vaddr + seg.offset
    for (const n of names) needed.push(b.toString('latin1', base + n, b.indexOf(0, base + n)))
  }
  return interp === undefined ? { machine, needed } : { machine, interp, needed }
}

/** Relative path -> sha256 of every file under dir (symlinks as "-> target"). */
function treeHashes (dir: string, rel = ''): Map<string, string> {
  const out = new Map<string, string>()
  for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const r = rel === '' ? e.name : `${rel}/${e.name}`
    if (e.isSymbolicLink()) out.set(r, `-> ${readlinkSync(join(dir, r))}`)
    else if (e.isDirectory()) for (const [k, v] of treeHashes(dir, r)) out.set(k, v)
    else out.set(r, createHash('sha256').update(readFileSync(join(dir, r))).digest('hex'))
  }
  return out
}

/** name@version of every package in a node_modules tree, from npm's hidden lockfile. */
function installedPackages (nm: string): string[] {
  const lock = JSON.parse(readFileSync(join(nm, '.package-lock.json'), 'utf8')) as { packages: Record<string, { version: string }> }
  return Object.entries(lock.packages).filter(([p]) => p.startsWith('node_modules/'))
    .map(([p, v]) => `${p.replace(/^.*node_modules\//, '')}@${v.version}`).sort()
}

function walkFiles (dir: string, visit: (path: string, size: number) => void): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) walkFiles(p, visit)
    else if (e.isFile()) visit(p, statSync(p).size)
  }
}

/** The certificates (base64 bodies) of a PEM bundle. */
function pemBodies (text: string): string[] {
  return [...text.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)].map(m => (m[1] as string).replace(/\s+/g, ''))
}

async function sha256File (file: string): Promise<string> {
  const h = createHash('sha256')
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer)
  return h.digest('hex')
}

async function waitFor (what: string, cond: () => boolean | Promise<boolean>, ms = 180_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting (${ms / 1000} s) for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

t.test('image config: uid/gid 65532, the server as entrypoint, no CMD, amd64', { skip }, async t => {
  const img = inspect(IMAGE.amd64)
  t.equal(img.Architecture, 'amd64')
  t.equal(img.Os, 'linux')
  t.equal(img.Config.User, '65532:65532', 'numeric, so kubelet can verify runAsNonRoot')
  t.same(img.Config.Entrypoint, ['/app/bin/k8s-keystone-auth'])
  t.notOk(img.Config.Cmd?.length > 0, "no CMD (the base's `node` must not become an argument)")
  t.ok(img.Config.Env.includes('NODE_ENV=production'))
  t.ok((img.Config.Env as string[]).some(e => /^PATH=\/app\/bin:/.test(e)), 'client-keystone-auth on PATH')
  t.notOk((img.Config.Env as string[]).some(e => e.startsWith('NODE_EXTRA_CA_CERTS')), 'no build-time CA setting')
  const base = img.Labels?.['io.github.k8s-keystone-auth.stand-in-base']
  t.comment(base === undefined ? 'built on the real node:26-bookworm-slim' : `built on a stand-in base: ${String(base)}`)
  // the user as the image runs it, without --user
  const r = podman(['run', '--rm', '--pull=never', '--network=none', '--entrypoint', 'node', IMAGE.amd64, '-e', 'console.log(process.getuid(), process.getgid(), process.version)'])
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, /^65532 65532 v26\./, 'runs as 65532:65532, on Node 26')
})

t.test('filesystem: production dependencies only, the SBOM, no copy of the build CA', { skip }, async t => {
  const root = mountImage(t, IMAGE.amd64)
  const app = join(root, 'app')
  t.same(readdirSync(app).sort(), ['bin', 'config', 'dist', 'node_modules', 'package.json', 'sbom.cdx.json'])
  const nm = join(app, 'node_modules')
  for (const dep of Object.keys(pkg.dependencies)) t.ok(existsSync(join(nm, dep, 'package.json')), `dependency ${dep}`)
  for (const dev of devOnly) t.notOk(existsSync(join(nm, dev)), `no devDependency ${dev}`)
  t.notOk(existsSync(join(nm, '.bin', 'tsc')), 'no TypeScript compiler')
  const native: string[] = []
  walkFiles(nm, p => { if (p.endsWith('.node')) native.push(p) })
  t.same(native, [], 'no native addon: the same node_modules serves every platform')

  const sbom = JSON.parse(readFileSync(join(app, 'sbom.cdx.json'), 'utf8'))
  t.equal(sbom.bomFormat, 'CycloneDX')
  t.match(sbom.metadata.component, { name: pkg.name, version: pkg.version, type: 'application' })
  const listed = (sbom.components as Array<{ name: string, group?: string, version: string }>)
    .map(c => `${c.group !== undefined && c.group !== '' ? `${c.group}/` : ''}${c.name}@${c.version}`).sort()
  t.ok(listed.some(c => c.startsWith('fastify@')), 'lists fastify')
  for (const dev of devOnly) t.notOk(listed.some(c => c.startsWith(`${dev}@`)), `does not list ${dev}`)
  t.same(listed, installedPackages(nm), 'exactly the packages in /app/node_modules')

  // The CA bundle the build mounted for npm (scripts/image/build.sh): no file of the image is a
  // copy of it, and no file holds a certificate of it that Debian does not ship (the proxy's).
  const caFile = process.env.KSA_BUILD_CA_FILE ?? process.env.NODE_EXTRA_CA_CERTS ?? ''
  if (caFile === '' || !existsSync(caFile)) {
    t.comment('no build CA (KSA_BUILD_CA_FILE, NODE_EXTRA_CA_CERTS) on this machine: nothing to look for')
    return
  }
  const ca = readFileSync(caFile)
  const caHash = createHash('sha256').update(ca).digest('hex')
  const debian = new Set<string>()
  walkFiles('/usr/share/ca-certificates', p => { if (p.endsWith('.crt')) for (const b of pemBodies(readFileSync(p, 'utf8'))) debian.add(b) })
  const hostOnly = pemBodies(ca.toString('utf8')).filter(b => !debian.has(b))
  const copies: string[] = []
  walkFiles(root, (p, size) => {
    if (size === ca.length && createHash('sha256').update(readFileSync(p)).digest('hex') === caHash) copies.push(p)
  })
  t.same(copies, [], `no copy of ${caFile}`)
  t.comment(`${hostOnly.length} certificate(s) of ${caFile} that Debian does not ship`)
  if (hostOnly.length > 0) {
    // one 64-character line from the middle of each: grep finds it in any file, PEM or not
    const patterns = join(mkdtempSync(join(tmpdir(), 'ksa-img-ca-')), 'patterns')
    writeFileSync(patterns, hostOnly.map(b => b.slice(128, 192)).join('\n') + '\n')
    const g = spawnSync('grep', ['-rlF', '--binary-files=text', '-f', patterns, root], { encoding: 'utf8', maxBuffer: 16 << 20 })
    t.equal(g.status, 1, `no file holds them${g.stdout === '' ? '' : `: ${g.stdout}`}`)
  }
  const history = podmanOk(['image', 'history', '--no-trunc', '--format', '{{.CreatedBy}}', IMAGE.amd64])
  t.notMatch(history, /NODE_EXTRA_CA_CERTS|ksa-build-ca|ca-certificates\.crt/, 'the final image\'s history names no build CA')
})

t.test('arm64 image: arm64 config, aarch64 node and libraries, the same /app as amd64', { skip }, async t => {
  const amd = inspect(IMAGE.amd64)
  const arm = inspect(IMAGE.arm64)
  t.equal(arm.Architecture, 'arm64')
  t.equal(arm.Os, 'linux')
  for (const k of ['User', 'Entrypoint', 'Env', 'WorkingDir']) t.same(arm.Config[k], amd.Config[k], `config ${k} as amd64's`)
  t.notOk(arm.Config.Cmd?.length > 0, 'no CMD')
  const roots = { amd64: mountImage(t, IMAGE.amd64), arm64: mountImage(t, IMAGE.arm64) }
  for (const arch of ['amd64', 'arm64'] as const) {
    const root = roots[arch]
    const node = readElf(inRoot(root, '/usr/local/bin/node'))
    t.equal(node.machine, ELF_MACHINE[arch], `${arch}: /usr/local/bin/node is ${arch === 'arm64' ? 'aarch64' : 'x86-64'}`)
    t.ok(node.interp !== undefined && existsSync(inRoot(root, node.interp)), `${arch}: its loader ${String(node.interp)} is in the image`)
    t.ok(node.needed.includes('libc.so.6'), `${arch}: needs ${node.needed.join(' ')}`)
    for (const lib of node.needed) {
      const found = [`/lib/${TRIPLET[arch]}`, `/usr/lib/${TRIPLET[arch]}`].map(d => inRoot(root, `${d}/${lib}`)).find(p => existsSync(p))
      t.ok(found !== undefined && readElf(found).machine === ELF_MACHINE[arch], `${arch}: ${lib} in the image, of the same machine`)
    }
  }
  const amdApp = treeHashes(join(roots.amd64, 'app'))
  const armApp = treeHashes(join(roots.arm64, 'app'))
  t.ok(amdApp.size > 100, `${amdApp.size} files in /app`)
  t.same([...armApp.entries()].sort(), [...amdApp.entries()].sort(), '/app identical, file by file')
})

t.test('release files: both archives and the SBOM, with their SHA-256 sums', { skip: skip !== false ? skip : existsSync(RELEASE_DIR) ? false : `no ${RELEASE_DIR} (bash scripts/image/release.sh writes it)` }, async t => {
  const sums = readFileSync(join(RELEASE_DIR, 'SHA256SUMS'), 'utf8').trim().split('\n').map(l => l.split(/\s+\*?/) as [string, string])
  const names = sums.map(s => s[1]).sort()
  t.same(names, [`${pkg.name}-${pkg.version}-amd64.tar`, `${pkg.name}-${pkg.version}-arm64.tar`, 'sbom.cdx.json'])
  for (const [sum, name] of sums) t.equal(await sha256File(join(RELEASE_DIR, name)), sum, `${name}: SHA-256 as in SHA256SUMS`)
  const root = mountImage(t, IMAGE.amd64)
  t.ok(readFileSync(join(RELEASE_DIR, 'sbom.cdx.json')).equals(readFileSync(join(root, 'app/sbom.cdx.json'))), 'the SBOM is the image\'s')
  for (const arch of ['amd64', 'arm64'] as const) {
    const archive = join(RELEASE_DIR, `${pkg.name}-${pkg.version}-${arch}.tar`)
    const manifest = JSON.parse(spawnSync('tar', ['-xOf', archive, 'manifest.json'], { encoding: 'utf8', maxBuffer: 1 << 20 }).stdout)[0]
    t.same(manifest.RepoTags, [IMAGE[arch]], `${arch}: the archive is tagged ${IMAGE[arch]}`)
    t.equal(String(manifest.Config).replace(/\.json$/, ''), String(inspect(IMAGE[arch]).Id).replace(/^sha256:/, ''), `${arch}: the archive holds the image built (else rerun release.sh)`)
    const config = JSON.parse(spawnSync('tar', ['-xOf', archive, manifest.Config], { encoding: 'utf8', maxBuffer: 16 << 20 }).stdout)
    t.equal(config.architecture, arch)
  }
})

interface Container { name: string, child: ChildProcess, logs: () => string, exit: Promise<number | null>, port: number }

/** The server in the image, as the DaemonSet runs it (read-only, 65532, no capabilities, host network). */
async function runServer (t: Test, flags: string[], mounts: Record<string, string>): Promise<Container> {
  const name = `ksa-image-test-${process.pid}`
  podman(['rm', '-f', name])
  const volumes = Object.entries(mounts).flatMap(([host, inside]) => ['-v', `${host}:${inside}:ro`])
  const child = spawn('bash', [join(ROOT, 'scripts/image/podman.sh'), 'run', '--rm', '--pull=never', '--name', name,
    '--read-only', '--read-only-tmpfs=false', '--user', '65532:65532', '--cap-drop=all', '--security-opt=no-new-privileges',
    '--network=host', ...volumes, IMAGE.amd64, '--listen=127.0.0.1:0', ...flags], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout?.on('data', d => { out += String(d) })
  child.stderr?.on('data', d => { out += String(d) })
  const exit = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  t.teardown(async () => {
    if (child.exitCode === null) {
      podman(['rm', '-f', '-t', '0', name])
      await exit
    }
  })
  let exited = false
  void exit.then(() => { exited = true })
  await waitFor('the server\'s listen line', () => {
    if (exited) throw new Error(`the container exited: ${out}`)
    return /"listen":"127\.0\.0\.1:\d+"/.test(out)
  })
  const port = Number((/"listen":"127\.0\.0\.1:(\d+)"/.exec(out) as RegExpExecArray)[1])
  return { name, child, logs: () => out, exit, port }
}

t.test('the server in the image: reviews, probes, metrics, and a graceful stop', { skip }, async t => {
  const seed: Seed = loadSeed()
  const certs = testCerts()
  // The TLS pair and the CA as the static pod has them: the key owned by the image's user, 0400.
  const tls = mkdtempSync(join(tmpdir(), 'ksa-img-tls-'))
  chmodSync(tls, 0o755)
  copyFileSync(certs.certFile, join(tls, 'tls.crt'))
  copyFileSync(certs.keyFile, join(tls, 'tls.key'))
  copyFileSync(certs.caFile, join(tls, 'client-ca.crt'))
  chownSync(join(tls, 'tls.key'), 65532, 65532)
  chmodSync(join(tls, 'tls.key'), 0o400)
  const policyDir = mkdtempSync(join(tmpdir(), 'ksa-img-policy-'))
  chmodSync(policyDir, 0o755)
  writeFileSync(join(policyDir, 'policy.json'), JSON.stringify([
    { users: { roles: ['member'], projects: ['demo'] }, resource_permissions: { 'demo/pods': ['get', 'list'] } }
  ]))
  chmodSync(join(policyDir, 'policy.json'), 0o644)
  const proxy: FaultProxy = await startFaultProxy(seed.auth_url)
  t.teardown(async () => await proxy.close())

  const c = await runServer(t, ['--tls-cert-file=/etc/k8s-keystone-auth/tls/tls.crt', '--tls-private-key-file=/etc/k8s-keystone-auth/tls/tls.key',
    '--client-ca-file=/etc/k8s-keystone-auth/tls/client-ca.crt', `--keystone-url=${proxy.url}`,
    '--keystone-policy-file=/etc/k8s-keystone-auth/policy/policy.json', '--shutdown-grace=120s',
    // a Keystone call held by the proxy (the graceful stop) must not time out first
    '--keystone-timeout=240s'],
  { [tls]: '/etc/k8s-keystone-auth/tls', [policyDir]: '/etc/k8s-keystone-auth/policy' })
  const base = `https://127.0.0.1:${c.port}`
  const agent = new Agent({ connect: { ca: certs.ca, cert: readFileSync(certs.clientCertFile), key: readFileSync(certs.clientKeyFile) } })
  let agentOpen = true
  const closeAgent = async (): Promise<void> => { if (agentOpen) { agentOpen = false; await agent.close() } }
  t.teardown(closeAgent)
  const call = async (method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number, body: any, text: string }> => {
    const res = await request(base + path, {
      method,
      dispatcher: agent,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? null : JSON.stringify(body)
    })
    const text = await res.body.text()
    let parsed: unknown
    try { parsed = JSON.parse(text) } catch { parsed = undefined }
    return { status: res.statusCode, body: parsed, text }
  }
  const tokenReview = async (token: string): Promise<{ status: number, body: any, text: string }> =>
    await call('POST', '/webhook', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } })
  const reviewsTotal = async (kind: string): Promise<number> => {
    const text = (await call('GET', '/metrics')).text
    return text.split('\n').filter(l => l.startsWith('k8s_keystone_auth_reviews_total{') && l.includes(`kind="${kind}"`))
      .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0)
  }
  const tokens: string[] = []
  let user: any

  await t.test('/readyz: ready, Keystone and the policy checked', async t => {
    await waitFor('/readyz ready', async () => (await call('GET', '/readyz')).status === 200)
    const r = await call('GET', '/readyz')
    t.equal(r.body.ready, true)
    t.match(r.body.checks, { keystone: { ok: true }, policy: { ok: true } })
  })

  await t.test('TokenReview v1 for a real Keystone token: the user and groups', async t => {
    const before = await reviewsTotal('TokenReview')
    const token = await passwordToken(seed, 'demo', 'demo')
    tokens.push(token)
    const r = await tokenReview(token)
    t.equal(r.status, 200)
    t.equal(r.body.apiVersion, 'authentication.k8s.io/v1')
    t.equal(r.body.status.authenticated, true)
    user = r.body.status.user
    t.equal(user.username, 'demo')
    t.equal(user.uid, seed.users.demo?.id)
    t.same(user.groups, ['developers', seed.projects.demo?.id], 'Keystone groups, then the project id')
    t.same(user.extra[`${EXTRA}project/name`], ['demo'])
    t.notOk(r.text.includes(token), 'the token is not echoed')
    t.equal(await reviewsTotal('TokenReview'), before + 1, '/metrics: k8s_keystone_auth_reviews_total{kind="TokenReview"} moved by one')
  })

  await t.test('SubjectAccessReview decided by the mounted policy', async t => {
    const before = await reviewsTotal('SubjectAccessReview')
    const sar = async (verb: string, resource: string): Promise<any> => (await call('POST', '/webhook', {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: { user: user.username, uid: user.uid, groups: user.groups, extra: user.extra, resourceAttributes: { namespace: 'demo', verb, resource, version: 'v1' } }
    })).body
    const allowed = await sar('get', 'pods')
    t.equal(allowed.status.allowed, true)
    t.match(allowed.status.reason, /^allowed by policy entry 0 \(resource_permissions "demo\/pods"\)/)
    t.equal((await sar('delete', 'pods')).status.allowed, false, 'a verb the policy does not give')
    t.equal((await sar('get', 'secrets')).status.allowed, false, 'a resource the policy does not give')
    t.equal(await reviewsTotal('SubjectAccessReview'), before + 3, '/metrics: three SubjectAccessReviews counted')
  })

  await t.test('SIGTERM: a review in flight is answered, then the server exits 0', async t => {
    const token = await passwordToken(seed, 'alice', 'ops')
    tokens.push(token)
    proxy.set({ mode: 'hold' })
    const review = tokenReview(token)
    await waitFor('the validation to reach Keystone', () => proxy.holding.some(h => h.includes('/auth/tokens')))
    // podman stop: SIGTERM, and SIGKILL (exit 137) only if the server has not exited 300 s later
    const stop = spawn('bash', [join(ROOT, 'scripts/image/podman.sh'), 'stop', '-t', '300', c.name], { stdio: 'ignore' })
    const stopped = new Promise<number | null>(resolve => stop.on('exit', code => resolve(code)))
    await waitFor('the server to log its shutdown', () => /"signal":"SIGTERM".*shutting down/.test(c.logs()))
    t.equal(c.child.exitCode, null, 'still running while the review is in flight')
    proxy.release()
    const r = await review
    t.equal(r.status, 200, 'the review in flight was answered')
    t.equal(r.body.status.authenticated, true)
    t.equal(r.body.status.user?.username, 'alice')
    // The answer leaves its connection open for keep-alive, and the server waits for open
    // connections (up to --shutdown-grace, then it exits anyway): close ours, as a client would
    // on seeing the listener gone.
    await closeAgent()
    t.equal(await c.exit, 0, 'exit 0: a clean stop, not podman\'s SIGKILL')
    t.notMatch(c.logs(), /shutdown grace period over/, 'by itself, not at the end of --shutdown-grace')
    t.equal(await stopped, 0, 'podman stop succeeded')
    for (const tk of tokens) t.notOk(c.logs().includes(tk), 'no token in the logs')
  })
})

t.test('client-keystone-auth in the image: an ExecCredential whose token Keystone accepts', { skip }, async t => {
  const seed = loadSeed()
  const demo = seed.users.demo
  if (demo === undefined) throw new Error('no seeded user demo')
  // a read-only root filesystem leaves nowhere to keep the token cache: a warning, not a failure
  const r = podman(['run', '--rm', '--pull=never', '--read-only', '--read-only-tmpfs=false', '--user', '65532:65532',
    '--cap-drop=all', '--security-opt=no-new-privileges', '--network=host', '--entrypoint', 'client-keystone-auth',
    '-e', `OS_AUTH_URL=${seed.auth_url}`, '-e', 'OS_USERNAME=demo', '-e', `OS_PASSWORD=${demo.password}`,
    '-e', 'OS_PROJECT_NAME=demo', '-e', `OS_DOMAIN_NAME=${demo.domain_name}`, IMAGE.amd64])
  t.equal(r.status, 0, r.stderr)
  t.match(r.stderr, /warning: token cache in .* not usable .*; logging in without it/, 'says it runs without the cache')
  const cred = JSON.parse(r.stdout)
  t.equal(cred.apiVersion, 'client.authentication.k8s.io/v1beta1')
  t.equal(cred.kind, 'ExecCredential')
  t.match(cred.status, { token: String, expirationTimestamp: String })
  const check = await keystoneFetch(`${seed.auth_url}/auth/tokens`, { headers: { 'x-auth-token': cred.status.token, 'x-subject-token': cred.status.token } })
  t.equal(check.status, 200, 'Keystone validates the token')
  const body = await check.json() as any
  t.equal(body.token.user.name, 'demo')
  t.equal(body.token.project.name, 'demo')
})
