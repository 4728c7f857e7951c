// The Go binaries this project replaces (kubernetes/cloud-provider-openstack v1.32.1), run side by
// side with ours on the same input. They are not part of the project: a test finds them through
// KSA_GO_PEER_DIR (set by .ci/run when ../shared/go-peer exists) and is skipped with a one-line
// reason where that is unset.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { testCerts } from './certs.js'
import { loadSeed } from './keystone.js'

export const GO_PEER_DIR = process.env.KSA_GO_PEER_DIR
export const GO_PEER_VERSION = 'v1.32.1'
export const GO_PEER_COMMIT = '8045e16064e73d9ee965ecedd40490cba640720e'

/** Why the Go peer cannot be used here, or undefined when it can. */
export function goPeerUnavailable (name: 'k8s-keystone-auth' | 'client-keystone-auth' = 'k8s-keystone-auth'): string | undefined {
  if (GO_PEER_DIR === undefined || GO_PEER_DIR === '') return 'KSA_GO_PEER_DIR is not set (the Go binaries live in shared/go-peer, which a fresh clone lacks)'
  const xz = join(GO_PEER_DIR, `${name}-${GO_PEER_VERSION}-linux-amd64.xz`)
  if (!existsSync(xz)) return `${xz} does not exist`
  return undefined
}

/** Unpacks the binary once per checksum and returns its path; the checksum file is checked. */
export function goPeerBinary (name: 'k8s-keystone-auth' | 'client-keystone-auth' = 'k8s-keystone-auth'): string {
  const why = goPeerUnavailable(name)
  if (why !== undefined) throw new Error(why)
  const base = join(GO_PEER_DIR as string, `${name}-${GO_PEER_VERSION}-linux-amd64`)
  const want = readFileSync(`${base}.sha256`, 'utf8').trim().split(/\s+/)[0] as string
  const dir = join(tmpdir(), 'ksa-go-peer', want.slice(0, 16))
  const bin = join(dir, name)
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true })
    const data = execFileSync('xz', ['-dc', `${base}.xz`], { maxBuffer: 512 * 1024 * 1024 })
    const got = createHash('sha256').update(data).digest('hex')
    if (got !== want) throw new Error(`${base}.xz unpacks to sha256 ${got}, expected ${want}`)
    writeFileSync(`${bin}.tmp`, data, { mode: 0o755 })
    execFileSync('mv', [`${bin}.tmp`, bin])
  }
  return bin
}

export interface GoWebhook {
  url: string
  /** POSTs a review to /webhook; `body` is what the Go binary answered (JSON), or undefined. */
  post: (body: unknown) => Promise<{ status: number, body: any, text: string }>
  logs: () => string
  close: () => Promise<void>
}

async function freePort (): Promise<number> {
  const { createServer } = await import('node:net')
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

/**
 * Starts the Go k8s-keystone-auth on 127.0.0.1 against the test Keystone (it checks Keystone's
 * version document at start, so Keystone must be up), with our test certificate.
 */
export async function startGoWebhook (args: string[]): Promise<GoWebhook> {
  const bin = goPeerBinary('k8s-keystone-auth')
  const certs = testCerts()
  const port = await freePort()
  let output = ''
  const child: ChildProcess = spawn(bin, [
    '--listen', `127.0.0.1:${port}`,
    '--tls-cert-file', certs.certFile,
    '--tls-private-key-file', certs.keyFile,
    '--keystone-url', loadSeed().auth_url,
    ...args
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout?.on('data', d => { output += String(d) })
  child.stderr?.on('data', d => { output += String(d) })
  const agent = new Agent({ connect: { ca: certs.ca }, connections: 8 })
  const url = `https://127.0.0.1:${port}`
  const post = async (body: unknown): Promise<{ status: number, body: any, text: string }> => {
    const res = await request(`${url}/webhook`, { method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    const text = await res.body.text()
    let parsed: unknown
    try { parsed = JSON.parse(text) } catch { parsed = undefined }
    return { status: res.statusCode, body: parsed, text }
  }
  const deadline = Date.now() + 15_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`Go k8s-keystone-auth exited with ${child.exitCode}: ${output}`)
    try {
      await request(`${url}/webhook`, { method: 'GET', dispatcher: agent }).then(async r => await r.body.dump())
      break
    } catch {
      if (Date.now() > deadline) { child.kill(); throw new Error(`Go k8s-keystone-auth did not listen within 15 s: ${output}`) }
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  }
  return {
    url,
    post,
    logs: () => output,
    close: async () => {
      child.kill('SIGTERM')
      await agent.close()
    }
  }
}
