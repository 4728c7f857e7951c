// The probes of the manifests (the DaemonSet's and the static pod's) answer without a client
// certificate, as the kubelet probes; reviews do not. A TLS server on 127.0.0.1, so not in the
// unit tier with manifests.test.ts.
import t from 'tap'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { parseAllDocuments } from 'yaml'
import { Agent, request } from 'undici'
import { parseFlags } from '../../src/config/flags.js'
import { SERVER_FLAGS } from '../../src/cli/server-flags.js'
import { serverOptionsFrom } from '../../src/cli/k8s-keystone-auth.js'
import { createLogger } from '../../src/log.js'
import { startServer } from '../../src/server/start/serve.js'
import { testCerts } from '../helpers/certs.js'

const exec = promisify(execFile)
const DEPLOY = fileURLToPath(new URL('../../deploy', import.meta.url))

const yamlDocs = (text: string): any[] => parseAllDocuments(text).map(d => d.toJS()).filter(d => d !== null)

const find = (docs: any[], kind: string): any => {
  const d = docs.find(x => x.kind === kind)
  if (d === undefined) throw new Error(`no ${kind} in the build`)
  return d
}

async function kustomize (dir: string): Promise<any[]> {
  const { stdout } = await exec('kubectl', ['kustomize', dir], { maxBuffer: 16 * 1024 * 1024 })
  return yamlDocs(stdout)
}

t.test('the probes of the manifests answer without a client certificate; reviews do not', async t => {
  // The server as the manifests start it: --client-ca-file set. The kubelet probes HTTPS without
  // a client certificate (and without verifying the server's).
  const certs = testCerts()
  const opts = serverOptionsFrom(parseFlags(SERVER_FLAGS, ['--listen', '127.0.0.1:0', '--tls-cert-file', certs.certFile,
    '--tls-private-key-file', certs.keyFile, '--keystone-url', 'http://127.0.0.1:9/v3', '--client-ca-file', certs.caFile], {}))
  const server = await startServer(opts, { env: {}, logger: createLogger({ level: 'silent' }) })
  const kubelet = new Agent({ connect: { rejectUnauthorized: false } })
  t.teardown(async () => { await server.close(); await kubelet.close() })
  const dep = find(await kustomize(DEPLOY), 'DaemonSet').spec.template.spec.containers[0]
  const [staticPod] = yamlDocs(readFileSync(join(DEPLOY, 'static-pod/k8s-keystone-auth.yaml'), 'utf8'))
  const paths = new Set([dep, staticPod.spec.containers[0]].flatMap(c => [c.livenessProbe.httpGet.path, c.readinessProbe.httpGet.path]))
  for (const path of paths) {
    const res = await request(`${server.url}${path}`, { dispatcher: kubelet })
    await res.body.text()
    t.not(res.statusCode, 401, `${path}: answered without a client certificate (${res.statusCode})`)
  }
  const review = await request(`${server.url}/webhook`, { method: 'POST', dispatcher: kubelet, body: JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: 'x' } }) })
  t.equal(review.statusCode, 401, 'a review without the client certificate is refused')
  await review.body.text()
})
